package scheduler

// Reduce is the range reduction the table schedulers pick with: it maps a
// uniform 64-bit hash onto [0, n) by the high 64 bits of the 128-bit
// product h*n. It is exported so that another data plane (the XDP program)
// can be checked against it.
func Reduce(h, n uint64) uint64 { return reduce(h, n) }

// FlowTable returns a copy of the lookup table s picks from, for the
// schedulers whose Pick is exactly table[Reduce(f.Hash, len(table))] (mh
// and hrw), and true; an empty table means no backend can take a flow. For
// every other scheduler it returns nil, false. A data plane that runs the
// table itself fills its copy from it.
func FlowTable(s Scheduler) ([]int32, bool) {
	switch s := s.(type) {
	case *maglevHash:
		return append([]int32(nil), s.table...), true
	case *rendezvous:
		return append([]int32(nil), s.table...), true
	}
	return nil, false
}
