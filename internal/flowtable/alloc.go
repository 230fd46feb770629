package flowtable

import (
	"sync/atomic"
	"unsafe"
)

const cacheLine = 64

// mappedBytes counts the bytes of slot memory mapped outside the Go heap
// (see allocRegion) and not yet released, so that memory accounting can
// add them to the heap's figures.
var mappedBytes atomic.Int64

// regionSize is the size of the block that holds nTags tag words and
// nSlots slots, the tags first.
func regionSize(nSlots, nTags int) uintptr {
	return (uintptr(nTags)*8+cacheLine-1)&^(cacheLine-1) + uintptr(nSlots)*unsafe.Sizeof(slot{})
}

// carve splits mem, a zeroed block of regionSize(nSlots, nTags) bytes that
// starts on a cache line, into the tag words and the slot array. The tags
// come first: they are small and read by every lookup, so they share the
// block's first huge page (where there is one) and stay in the TLB.
func carve(mem unsafe.Pointer, nSlots, nTags int) ([]slot, []atomic.Uint64) {
	tagBytes := (uintptr(nTags)*8 + cacheLine - 1) &^ (cacheLine - 1)
	tags := unsafe.Slice((*atomic.Uint64)(mem), nTags)
	slots := unsafe.Slice((*slot)(unsafe.Add(mem, tagBytes)), nSlots)
	return slots, tags
}

// heapRegion allocates the block on the Go heap, aligned to a cache line
// so that the tag words of a window share a line as often as possible.
// The garbage collector frees it with the table.
func heapRegion(nSlots, nTags int) ([]slot, []atomic.Uint64) {
	// slot has no pointers, so the collector never scans the block.
	buf := make([]slot, (regionSize(nSlots, nTags)+cacheLine)/unsafe.Sizeof(slot{})+1)
	p := unsafe.Pointer(unsafe.SliceData(buf))
	pad := (cacheLine - uintptr(p)%cacheLine) % cacheLine
	return carve(unsafe.Add(p, pad), nSlots, nTags)
}
