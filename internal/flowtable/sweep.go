package flowtable

import "runtime"

// Sweep removes expired entries, visiting at most maxSlots slots per call
// (maxSlots <= 0 means one full pass over every slot). A cursor keeps its place between
// calls, so calling Sweep periodically with a small budget walks the whole
// table in bounded steps without long lock holds. It returns the number of
// entries removed and reports each one to fn (if not nil) exactly once,
// after releasing the shard lock, so fn may call back into the table; k is
// valid only during the call. The balancer uses fn to decrement per-backend
// flow counts and to tell least-connection schedulers a flow ended.
//
// Entries that concurrent writers move across the cursor may be visited
// twice or skipped until the next pass; every expired entry is removed
// within two full passes.
func (t *Table) Sweep(now Tick, maxSlots int, fn func(k *Key, backend uint32)) (removed int) {
	defer runtime.KeepAlive(t) // see New
	t.sweepMu.Lock()
	defer t.sweepMu.Unlock()
	budget := maxSlots
	if budget <= 0 {
		budget = 0
		for i := range t.shards {
			budget += len(t.shards[i].slots)
		}
	}
	for budget > 0 {
		s := &t.shards[t.sweepShard]
		nbuf := 0
		s.mu.Lock()
		for budget > 0 && nbuf < len(t.sweepBuf) && t.sweepSlot < len(s.slots) {
			i := t.sweepSlot
			sl := &s.slots[i]
			m := sl.w[4].Load()
			if m&metaLive == 0 || !t.expired(m, sl.w[5].Load(), now) {
				t.sweepSlot++
				budget--
				continue
			}
			s.load(i, &t.sweepBuf[nbuf])
			nbuf++
			// Backward shift may pull the next entry into slot i: stay
			// on i and look at it in the next step. Only moving on costs
			// budget, so a call removes at most the entries of the slots
			// it covers plus those pulled back into them.
			s.remove(i)
			s.count.Add(-1)
			t.count.Add(-1)
		}
		if t.sweepSlot >= len(s.slots) {
			t.sweepSlot = 0
			t.sweepShard++
			if t.sweepShard == len(t.shards) {
				t.sweepShard = 0
			}
		}
		s.mu.Unlock()
		removed += nbuf
		if fn != nil {
			for j := 0; j < nbuf; j++ {
				fn(&t.sweepBuf[j].k, t.sweepBuf[j].backend)
			}
		}
	}
	return removed
}

// Range calls fn for every flow in the table, with its backend and state,
// until fn returns false. It is for the control plane (listing flows,
// waiting for a drained backend to lose its last flow): it copies entries
// out in small batches under each shard's lock and calls fn without any
// lock held, so fn may call back into the table; k is valid only during the
// call. Expired entries not yet removed are included. Flows inserted,
// removed or moved by concurrent writers may be missed or seen twice; with
// no concurrent writers every flow is seen exactly once.
func (t *Table) Range(fn func(k *Key, backend uint32, st State) bool) {
	defer runtime.KeepAlive(t) // see New
	var buf [64]record
	for si := range t.shards {
		s := &t.shards[si]
		for next := 0; next < len(s.slots); {
			n := 0
			s.mu.Lock()
			for ; next < len(s.slots) && n < len(buf); next++ {
				if s.slots[next].w[4].Load()&metaLive != 0 {
					s.load(next, &buf[n])
					n++
				}
			}
			s.mu.Unlock()
			for j := 0; j < n; j++ {
				if !fn(&buf[j].k, buf[j].backend, buf[j].st) {
					return
				}
			}
		}
	}
}
