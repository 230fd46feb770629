package scheduler

// FlowTable returns a copy of the lookup table s picks from, for the
// schedulers that are Tabled (mh and hrw), and true; an empty table means
// no backend can take a flow. For every other scheduler it returns nil,
// false. A data plane that runs the table itself fills its copy from it.
func FlowTable(s Scheduler) ([]int32, bool) {
	if t, ok := s.(Tabled); ok {
		return append([]int32(nil), t.LookupTable()...), true
	}
	return nil, false
}
