package flowtable

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	hugePage = 2 << 20
	// mapMin is the smallest block worth mapping on its own: below a few
	// huge pages the TLB covers the block anyway.
	mapMin = 4 * hugePage
)

// allocRegion returns zeroed memory for a table's slots and tags. A large
// block is mapped outside the Go heap, aligned to 2 MiB and marked for
// transparent huge pages (MADV_HUGEPAGE; the usual system setting
// "madvise" grants huge pages only to memory so marked): at a million
// flows the slots span about 75 MB, and with 4 KiB pages nearly every
// lookup would also miss the TLB, a page walk that costs as much as a
// second cache miss (more under virtualisation). mem is the mapping, to be
// released with freeRegion, or nil when the block is on the Go heap:
// small blocks, race-detector builds (the detector watches only the Go
// heap) and systems where the mapping fails.
func allocRegion(nSlots, nTags int) (slots []slot, tags []atomic.Uint64, mem []byte) {
	size := regionSize(nSlots, nTags)
	if raceEnabled || size < mapMin {
		slots, tags = heapRegion(nSlots, nTags)
		return slots, tags, nil
	}
	// The length is rounded to small pages only: rounding it to a huge
	// page would waste up to 2 MiB (2 bytes per flow at 1M) for one more
	// huge page at the very end of the block.
	page := uintptr(unix.Getpagesize())
	length := (size + page - 1) &^ (page - 1)
	// Map one huge page more than needed, then return the unaligned head
	// and the tail, so that the block starts on a huge page's boundary and
	// every huge page it spans but the last is whole.
	p, err := unix.MmapPtr(-1, 0, nil, length+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		slots, tags = heapRegion(nSlots, nTags)
		return slots, tags, nil
	}
	head := (hugePage - uintptr(p)%hugePage) % hugePage
	if head > 0 {
		_ = unix.MunmapPtr(p, head)
	}
	if tail := hugePage - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, head+length), tail)
	}
	mem = unsafe.Slice((*byte)(unsafe.Add(p, head)), length)
	// Only a hint: where refused, the block works on small pages.
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	mappedBytes.Add(int64(length))
	slots, tags = carve(unsafe.Pointer(unsafe.SliceData(mem)), nSlots, nTags)
	return slots, tags, mem
}

// freeRegion releases a mapping made by allocRegion.
func freeRegion(mem []byte) {
	if err := unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem))); err == nil {
		mappedBytes.Add(-int64(len(mem)))
	}
}
