package dsr

func (b *Balancer) allocID() (uint32, bool) {
	if n := len(b.free); n > 0 {
		slot := b.free[n-1]
		b.free = b.free[:n-1]
		b.slotGen[slot] = (b.slotGen[slot] + 1) & genMask
		return uint32(b.slotGen[slot])<<idSlotBits | slot, true
	}
	if len(b.slotGen) >= maxSlots {
		return 0, false
	}
	b.slotGen = append(b.slotGen, 0)
	return uint32(len(b.slotGen) - 1), true
}

// allocTurn returns a free index into the workers' per-service turn
// counters. Indices are reused, so the counters stay as many as the most
// services ever configured at once.
func (b *Balancer) allocTurn() int {
	if n := len(b.freeTurns); n > 0 {
		t := b.freeTurns[n-1]
		b.freeTurns = b.freeTurns[:n-1]
		return t
	}
	b.turnsUsed++
	return b.turnsUsed - 1
}

func (b *Balancer) releaseID(id uint32) {
	b.free = append(b.free, id&idSlotMask)
}
