package dsr

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/scheduler"
)

// The compile step is tested on its own: no Balancer, no workers, only the
// input a plan is made of and the plan that comes out.

var t0 = time.Unix(1_700_000_000, 0)

// compileCase builds a compile input from a service and per-backend
// runtime state.
type compileCase struct {
	svc      Service
	failing  map[int]error     // backend index → failing check
	joined   map[int]time.Time // backend index → slow-start origin (default: long ago)
	resolved map[int]net.HardwareAddr
	runtime  svcRuntime
	prev     *svcState // the previous compile's state, for scheduler reuse
	now      time.Time
}

func (c *compileCase) input() (*compileInput, *svcState) {
	st := &svcState{svc: cloneService(c.svc), backends: map[netip.Addr]*beState{}, runtime: c.runtime,
		stats: &serviceStats{traffic: newTraffic(1)}}
	if c.prev != nil {
		st.sched, st.fragSched, st.schedName, st.schedCfg, st.schedInput, st.schedGen =
			c.prev.sched, c.prev.fragSched, c.prev.schedName, c.prev.schedCfg, c.prev.schedInput, c.prev.schedGen
	}
	resolved := map[nbKey]net.HardwareAddr{}
	for j, be := range st.svc.Backends {
		bs := &beState{id: uint32(j), stats: &backendStats{traffic: newTraffic(1)}, joined: t0.Add(-time.Hour), failing: map[health.Key]error{}}
		if at, ok := c.joined[j]; ok {
			bs.joined = at
		}
		if err := c.failing[j]; err != nil {
			bs.failing[health.Key{}] = err
		}
		st.backends[be.Addr] = bs
		if m := c.resolved[j]; m != nil {
			resolved[nbKey{addr: be.Addr, vlan: c.svc.VLAN}] = m
		}
	}
	now := c.now
	if now.IsZero() {
		now = t0
	}
	return &compileInput{now: now, services: []*svcState{st}, resolved: resolved, slots: len(st.svc.Backends), gen: 7}, st
}

// view is what the tests read of one compiled backend.
type view struct {
	usable, healthy bool
	weight          uint32
	mac             bool
}

func compiled(t *testing.T, c compileCase) (*plan, []view) {
	t.Helper()
	in, _ := c.input()
	p, err := compile(in)
	require.NoError(t, err)
	var vs []view
	for j := range c.svc.Backends {
		be := &p.snap.backends[j]
		vs = append(vs, view{usable: be.usable, healthy: be.healthy, weight: be.weight, mac: be.hasMAC})
	}
	return p, vs
}

func macN(n byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 1, n} }

func threeBackends() Service {
	s := Service{VIP: netip.MustParseAddr("192.0.2.100"), Protocol: TCP, Port: 80}
	for i := range 3 {
		s.Backends = append(s.Backends, Backend{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), MAC: macN(byte(i))})
	}
	return s
}

func TestCompileWeightsAndStates(t *testing.T) {
	s := threeBackends()
	s.Backends[0].Weight = 5
	s.Backends[1].State = BackendDraining
	s.Backends[2].State = BackendDown
	p, vs := compiled(t, compileCase{svc: s})
	assert.Equal(t, []view{
		{usable: true, healthy: true, weight: 5, mac: true},
		{usable: true, healthy: true, weight: 0, mac: true},  // draining: keeps flows, takes none
		{usable: false, healthy: true, weight: 0, mac: true}, // down: nothing
	}, vs)
	assert.Empty(t, p.events)
	assert.False(t, p.ramping)
	assert.Equal(t, uint64(7), p.snap.gen)
	assert.Equal(t, []netip.Addr{s.VIP}, p.snap.vipList)
}

func TestCompileMACs(t *testing.T) {
	s := threeBackends()
	s.Backends[1].MAC = nil // to be resolved
	s.Backends[2].MAC = nil // unresolved
	c := compileCase{svc: s, resolved: map[int]net.HardwareAddr{0: macN(9), 1: macN(8)}}
	p, vs := compiled(t, c)
	assert.Equal(t, [6]byte(macN(0)), p.snap.backends[0].mac, "a configured MAC wins over a resolved one")
	assert.Equal(t, [6]byte(macN(8)), p.snap.backends[1].mac, "else the resolved one")
	assert.Equal(t, view{usable: false, healthy: true, weight: 0, mac: false}, vs[2], "no MAC: no flows")

	// The MAC changes: the next plan forwards to the new one.
	c.resolved[1] = macN(7)
	p, _ = compiled(t, c)
	assert.Equal(t, [6]byte(macN(7)), p.snap.backends[1].mac)
}

func TestCompileHealth(t *testing.T) {
	down := errors.New("connection refused")
	s := threeBackends()
	p, vs := compiled(t, compileCase{svc: s, failing: map[int]error{1: down}})
	assert.Equal(t, view{usable: false, healthy: false, weight: 0, mac: true}, vs[1])
	assert.Equal(t, down, p.snap.backends[1].healthErr)
	assert.Equal(t, map[netip.Addr]bool{s.Backends[0].Addr: true, s.Backends[2].Addr: true}, p.services[0].runtime.lastHealthy)

	// A check with no result yet counts as healthy.
	_, vs = compiled(t, compileCase{svc: s, failing: map[int]error{1: errHealthUnknown}})
	assert.True(t, vs[1].usable)
}

func TestCompileFailOpen(t *testing.T) {
	down := errors.New("timeout")
	s := threeBackends()
	s.FailOpen = true
	all := map[int]error{0: down, 1: down, 2: down}
	last := map[netip.Addr]bool{s.Backends[0].Addr: true, s.Backends[2].Addr: true}

	p, vs := compiled(t, compileCase{svc: s, failing: all, runtime: svcRuntime{lastHealthy: last}})
	assert.True(t, vs[0].usable && vs[2].usable, "the last healthy set keeps taking flows")
	assert.False(t, vs[1].usable, "a backend that was not in it stays out")
	assert.True(t, p.snap.backends[0].failOpen)
	assert.True(t, p.services[0].runtime.failOpen)
	require.Len(t, p.events, 1)
	assert.Equal(t, EventFailOpen, p.events[0].Kind)

	// Already failing open: no second event.
	p, _ = compiled(t, compileCase{svc: s, failing: all, runtime: svcRuntime{lastHealthy: last, failOpen: true}})
	assert.Empty(t, p.events)

	// Without FailOpen everything is dropped.
	s.FailOpen = false
	_, vs = compiled(t, compileCase{svc: s, failing: all, runtime: svcRuntime{lastHealthy: last}})
	for _, v := range vs {
		assert.False(t, v.usable)
	}

	// Never healthy: nothing to fail open to.
	s.FailOpen = true
	_, vs = compiled(t, compileCase{svc: s, failing: all})
	for _, v := range vs {
		assert.False(t, v.usable)
	}
}

func TestCompileMinHealthy(t *testing.T) {
	down := errors.New("refused")
	s := threeBackends()
	s.MinHealthy = 2
	for _, tc := range []struct {
		name     string
		failing  map[int]error
		wasBelow bool
		want     []EventKind
	}{
		{"enough", nil, false, nil},
		{"falls below", map[int]error{0: down, 1: down}, false, []EventKind{EventBelowMinHealthy}},
		{"stays below", map[int]error{0: down, 1: down}, true, nil},
		{"restored", map[int]error{0: down}, true, []EventKind{EventMinHealthyRestored}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := compiled(t, compileCase{svc: s, failing: tc.failing, runtime: svcRuntime{belowMin: tc.wasBelow}})
			var kinds []EventKind
			for _, e := range p.events {
				kinds = append(kinds, e.Kind)
			}
			assert.Equal(t, tc.want, kinds)
		})
	}
	// A draining backend is healthy but does not count: it takes no new flows.
	s.Backends[1].State = BackendDraining
	p, _ := compiled(t, compileCase{svc: s, failing: map[int]error{0: down}})
	assert.True(t, p.services[0].runtime.belowMin)
}

func TestCompileSlowStart(t *testing.T) {
	s := threeBackends()
	s.SlowStart = 10 * time.Second
	c := compileCase{svc: s, joined: map[int]time.Time{2: t0.Add(-2500 * time.Millisecond)}}
	p, vs := compiled(t, c)
	assert.True(t, p.ramping)
	assert.Equal(t, uint32(rampScale), vs[0].weight, "every weight is scaled while one ramps")
	assert.Equal(t, uint32(rampScale/4), vs[2].weight, "a quarter of the way in, a quarter of the weight")
	assert.InDelta(t, 0.25, p.snap.backends[2].rampFrac, 1e-9)

	// Done ramping: plain weights, no more recompiles needed.
	c.now = t0.Add(8 * time.Second)
	p, vs = compiled(t, c)
	assert.False(t, p.ramping)
	assert.Equal(t, uint32(1), vs[2].weight)

	// An unhealthy backend does not ramp (it restarts when it recovers).
	c.now, c.failing = t0, map[int]error{2: errors.New("down")}
	p, _ = compiled(t, c)
	assert.False(t, p.ramping)
}

func TestCompileSchedulerReuse(t *testing.T) {
	s := threeBackends()
	in, st := (&compileCase{svc: s}).input()
	p, err := compile(in)
	require.NoError(t, err)
	require.True(t, p.services[0].fresh)
	// Keep what apply would keep.
	sp := p.services[0]
	st.sched, st.schedName, st.schedCfg, st.schedInput, st.schedGen = sp.sched, sp.schedName, s.SchedulerConfig, sp.schedInput, sp.schedGen

	// Unchanged inputs: the same scheduler, so a stateful one keeps its state.
	p2, _ := compiled(t, compileCase{svc: s, prev: st})
	assert.False(t, p2.services[0].fresh)
	assert.Same(t, sp.sched, p2.services[0].sched)
	assert.Equal(t, uint64(7), p2.snap.services[svcLookup{vip: s.VIP.As16(), port: 80, proto: 6}].schedGen)

	// A weight change, a scheduler change, a config change: a new one.
	w := s
	w.Backends = append([]Backend(nil), s.Backends...)
	w.Backends[0].Weight = 3
	rr := s
	rr.Scheduler = "rr"
	seeded := s
	seeded.SchedulerConfig = scheduler.Config{Seed: 1}
	for name, svc := range map[string]Service{"weight": w, "scheduler": rr, "config": seeded} {
		p3, _ := compiled(t, compileCase{svc: svc, prev: st})
		assert.True(t, p3.services[0].fresh, name)
	}
	// A backend going down changes the scheduler's input too.
	p4, _ := compiled(t, compileCase{svc: s, prev: st, failing: map[int]error{0: errors.New("x")}})
	assert.True(t, p4.services[0].fresh)
	assert.Equal(t, uint32(0), p4.services[0].schedInput[0].Weight)
}

func TestCompileFragmentPlacement(t *testing.T) {
	s := threeBackends()
	s.Scheduler = "rr"
	in, _ := (&compileCase{svc: s}).input()
	in.fragments = FragmentsHash
	p, err := compile(in)
	require.NoError(t, err)
	require.NotNil(t, p.services[0].fragSched, "a rotating scheduler gets a flow-keyed one for fragments")
	assert.True(t, scheduler.FollowsFlow(p.services[0].fragSched))

	s.Scheduler = "sh"
	in, _ = (&compileCase{svc: s}).input()
	in.fragments = FragmentsHash
	p, err = compile(in)
	require.NoError(t, err)
	assert.Nil(t, p.services[0].fragSched, "a flow-keyed scheduler places fragments itself")
}

func TestCompileRefusesAndChangesNothing(t *testing.T) {
	s := threeBackends()
	s.SchedulerConfig.TableSize = 4 // not a prime: mh refuses
	in, st := (&compileCase{svc: s}).input()
	before := *st
	_, err := compile(in)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "services[0].scheduler", ce.Field)
	assert.Equal(t, before.runtime, st.runtime, "compile writes nothing")
	assert.Nil(t, st.sched)
}
