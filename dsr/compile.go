package dsr

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/dsrlb/dsrlb/scheduler"
)

// The control plane is a compile step and an apply step. compile is a pure
// function of the configuration, the runtime state of every backend
// (health, drain, slow start), the MACs address resolution learned and the
// time; it returns a plan: the immutable snapshot the forwarding workers
// run, the scheduler and health-policy state each service keeps, and the
// events the change causes. apply swaps the snapshot in and queues the
// events. Nothing else builds forwarding state, so what a worker does, what
// Explain says and what a test of compile asserts are the same decision.

// compileInput is everything a plan is compiled from.
type compileInput struct {
	now       time.Time
	services  []*svcState // in configuration order
	resolved  map[nbKey]net.HardwareAddr
	fragments FragmentPolicy
	slots     int    // backend ID slots allocated: the size of the snapshot's backend table
	turns     int    // turn indices allocated
	gen       uint64 // the generation of the plan to build
}

// plan is the result of compile.
type plan struct {
	snap     *snapshot
	services []svcPlan // parallel to compileInput.services
	events   []Event
	// ramping is set while a backend is in slow start: its weight grows
	// with time, so the plan must be compiled again periodically.
	ramping bool
}

// svcPlan is what one service keeps from a plan.
type svcPlan struct {
	sched      scheduler.Scheduler
	fragSched  scheduler.Scheduler
	schedName  string
	schedInput []scheduler.Backend
	schedGen   uint64
	fresh      bool // sched was built by this compile
	runtime    svcRuntime
}

// rampScale multiplies every weight of a service while one of its backends
// ramps up, so that a backend of weight 1 can still start at a fraction.
const rampScale = 16

// compile builds the plan for in. It reads its input and changes nothing:
// on error (a scheduler refused its backend set) the caller keeps the plan
// it has. Errors name the field as "services[i]...".
func compile(in *compileInput) (*plan, error) {
	p := &plan{services: make([]svcPlan, len(in.services))}
	backends := make([][]beEntry, len(in.services))
	for i, st := range in.services {
		sp, bes, ramping, err := compileService(in, st)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("services[%d].scheduler", i), "%v", err)
		}
		p.services[i], backends[i] = sp, bes
		p.ramping = p.ramping || ramping
		p.events = append(p.events, policyEvents(in.now, st, &sp.runtime)...)
	}
	p.snap = buildSnapshot(in, p.services, backends)
	return p, nil
}

// compileService applies the health policy, slow start and the scheduler to
// one service. It returns the service's plan, the forwarding view of each of
// its backends (in configuration order, svc not yet set), and whether a
// backend is ramping up.
func compileService(in *compileInput, st *svcState) (svcPlan, []beEntry, bool, error) {
	s := &st.svc
	bes := make([]beEntry, len(s.Backends))
	healthyActive := map[netip.Addr]bool{}
	for j := range s.Backends {
		be := &s.Backends[j]
		bs := st.backends[be.Addr]
		e := &bes[j]
		*e = beEntry{id: bs.id, state: be.State, index: j, stats: bs.stats, healthy: bs.healthy(), healthErr: bs.healthError()}
		e.encap = compileEncap(s, be)
		if mac := hopMAC(s, be, in.resolved); mac != nil {
			e.mac, e.hasMAC = [6]byte(mac), true
		}
		if e.healthy && e.hasMAC && be.State == BackendActive {
			healthyActive[be.Addr] = true
		}
	}

	// Health policy: fail-open and min-healthy.
	rt := svcRuntime{lastHealthy: st.runtime.lastHealthy}
	switch {
	case len(healthyActive) == 0 && s.FailOpen && len(st.runtime.lastHealthy) > 0:
		// Every backend failed: keep the last healthy set rather than
		// dropping the service's traffic.
		rt.failOpen = true
		for j, be := range s.Backends {
			if st.runtime.lastHealthy[be.Addr] && !bes[j].healthy {
				bes[j].healthy, bes[j].failOpen = true, true
			}
		}
	case len(healthyActive) > 0:
		rt.lastHealthy = healthyActive
	}
	rt.belowMin = s.MinHealthy > 0 && len(healthyActive) < s.MinHealthy

	// Slow start: while a backend ramps up, every weight of the service is
	// scaled so that the ramping one can take a fraction of its own.
	ramping := false
	for _, be := range s.Backends {
		if rampingAt(s, st.backends[be.Addr], in.now) {
			ramping = true
		}
	}
	scale := uint32(1)
	if ramping {
		scale = rampScale
	}
	input := make([]scheduler.Backend, len(s.Backends))
	for j, be := range s.Backends {
		e := &bes[j]
		bs := st.backends[be.Addr]
		e.usable = e.hasMAC && be.State != BackendDown && e.healthy
		w := max(be.Weight, 1) * scale
		if rampingAt(s, bs, in.now) {
			e.rampFrac = float64(in.now.Sub(bs.joined)) / float64(s.SlowStart)
			w = max(1, uint32(float64(w)*e.rampFrac))
		}
		if be.State != BackendActive || !e.usable {
			w = 0
		}
		e.weight = w
		input[j] = scheduler.Backend{Addr: be.Addr, Weight: w}
	}

	// The scheduler is reused while its inputs are unchanged, so stateful
	// ones keep their state.
	name := s.Scheduler
	if name == "" {
		name = scheduler.Default
	}
	sp := svcPlan{sched: st.sched, fragSched: st.fragSched, schedName: name, schedInput: input, schedGen: st.schedGen, runtime: rt}
	if st.sched == nil || st.schedName != name || st.schedCfg != s.SchedulerConfig || !slices.Equal(st.schedInput, input) {
		sch, err := scheduler.New(name, input, s.SchedulerConfig)
		if err != nil {
			return svcPlan{}, nil, false, err
		}
		sp.sched, sp.fragSched, sp.fresh, sp.schedGen = sch, nil, true, in.gen
		if in.fragments == FragmentsHash && !scheduler.FollowsFlow(sch) {
			// Fragments of a datagram must reach one backend: a scheduler
			// whose picks depend on more than the flow would scatter them.
			fs, err := scheduler.New("mh", input, scheduler.Config{Seed: s.SchedulerConfig.Seed})
			if err != nil {
				return svcPlan{}, nil, false, fmt.Errorf("fragment placement: %w", err)
			}
			sp.fragSched = fs
		}
	}
	return sp, bes, ramping, nil
}

// policyEvents are the events of a service's health policy changing state
// from st's runtime to next.
func policyEvents(now time.Time, st *svcState, next *svcRuntime) []Event {
	var evs []Event
	key := st.svc.Key()
	if next.failOpen && !st.runtime.failOpen {
		evs = append(evs, Event{Kind: EventFailOpen, Service: key, At: now})
	}
	if st.svc.MinHealthy > 0 && next.belowMin != st.runtime.belowMin {
		kind := EventMinHealthyRestored
		if next.belowMin {
			kind = EventBelowMinHealthy
		}
		evs = append(evs, Event{Kind: kind, Service: key, At: now, Count: len(next.lastHealthy)})
	}
	return evs
}

func rampingAt(s *Service, bs *beState, now time.Time) bool {
	return s.SlowStart > 0 && bs.healthy() && now.Sub(bs.joined) < s.SlowStart
}

// buildSnapshot assembles the forwarding view of the compiled services.
func buildSnapshot(in *compileInput, sps []svcPlan, backends [][]beEntry) *snapshot {
	snap := &snapshot{
		gen:      in.gen,
		services: make(map[svcLookup]*svcEntry, len(in.services)),
		frag:     map[fragLookup]*svcEntry{},
		vips:     map[[16]byte]struct{}{},
		backends: make([]beEntry, in.slots),
		turns:    in.turns,
	}
	for i, st := range in.services {
		key := st.svc.Key()
		sp := &sps[i]
		e := &svcEntry{key: key, sched: sp.sched, frag: sp.fragSched, schedName: sp.schedName, schedGen: sp.schedGen,
			turn: st.turn, stats: st.stats, ids: make([]uint32, len(st.svc.Backends)), addrs: make([]netip.Addr, len(st.svc.Backends))}
		if e.frag == nil {
			e.frag = e.sched
		}
		e.obs, _ = sp.sched.(scheduler.FlowObserver)
		for j := range backends[i] {
			be := backends[i][j]
			be.svc = e
			e.l3 = e.l3 || be.encap != nil
			e.ids[j] = be.id
			e.addrs[j] = st.svc.Backends[j].Addr
			snap.backends[be.id&idSlotMask] = be
		}
		vip := key.VIP.As16()
		if _, ok := snap.vips[vip]; !ok {
			snap.vips[vip] = struct{}{}
			snap.vipList = append(snap.vipList, key.VIP)
		}
		for _, proto := range protoNumbers(key.Protocol) {
			snap.services[svcLookup{vip: vip, port: key.Port, proto: proto, vlan: key.VLAN}] = e
			fk := fragLookup{vip: vip, proto: proto, vlan: key.VLAN}
			prev, seen := snap.frag[fk]
			switch {
			case !seen:
				snap.frag[fk] = e
			case key.Port == 0:
				// The all-ports service takes every fragment of the VIP.
				snap.frag[fk] = e
			case prev != nil && prev.key.Port == 0:
				// Keep the all-ports service.
			default:
				snap.frag[fk] = nil // two port services: ambiguous
			}
		}
	}
	return snap
}
