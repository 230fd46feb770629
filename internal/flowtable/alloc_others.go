//go:build !linux

package flowtable

import "sync/atomic"

// allocRegion returns zeroed memory for a table's slots and tags, on the
// Go heap: huge-page mappings are a Linux-only refinement (see
// alloc_linux.go). mem is always nil.
func allocRegion(nSlots, nTags int) (slots []slot, tags []atomic.Uint64, mem []byte) {
	slots, tags = heapRegion(nSlots, nTags)
	return slots, tags, nil
}

// freeRegion is never called: allocRegion maps nothing here.
func freeRegion([]byte) {}
