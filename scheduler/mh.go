package scheduler

// Placeholder consistent hash until the Maglev implementation lands: a
// weighted hash over a prebuilt slot table, which already gives the balancer
// a deterministic, allocation-free Pick behind the interface.

func init() { Register("mh", newSlotHash) }

type slotHash struct{ slots []int32 }

func newSlotHash(backends []Backend, cfg Config) (Scheduler, error) {
	var slots []int32
	for i, b := range backends {
		for w := uint32(0); w < b.Weight && w < 64; w++ {
			slots = append(slots, int32(i))
		}
	}
	return &slotHash{slots: slots}, nil
}

func (s *slotHash) Pick(f *Flow) (int, bool) {
	if len(s.slots) == 0 {
		return 0, false
	}
	return int(s.slots[f.Hash%uint64(len(s.slots))]), true
}
