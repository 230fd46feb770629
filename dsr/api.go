package dsr

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/scheduler"
)

// svcState is the control plane's record of one service.
type svcState struct {
	svc      Service // validated, deep copy
	stats    *serviceStats
	backends map[netip.Addr]*beState

	// The scheduler is rebuilt only when its inputs change, so that a change
	// elsewhere keeps stateful schedulers (rr position, lc counts) intact.
	sched       scheduler.Scheduler
	fragSched   scheduler.Scheduler // see svcEntry.frag
	turn        int                 // see svcEntry.turn; kept for the service's life
	runtime     *svcRuntime
	schedName   string
	schedConfig scheduler.Config
	schedInput  []scheduler.Backend
}

type beState struct {
	id    uint32
	stats *backendStats

	// Runtime state, kept across configuration changes for as long as the
	// backend stays in its service.
	joined      time.Time            // added, or recovered: slow start counts from here
	failing     map[health.Key]error // health checks currently failing
	checks      []health.Key         // registrations in the monitor
	drainSince  time.Time            // when it became draining (zero: not draining)
	drainedSent bool                 // the drained event was sent
	synSeen     uint64               // SYN retransmits at the last control tick
	flowsSeen   uint64               // flows at the last control tick
	suspectAt   time.Time            // last SYN-retransmit suspicion event
}

// AddService adds a service. It fails with ErrExists if a service with the
// same key, or one claiming the same packets, exists.
func (b *Balancer) AddService(s Service) error {
	return b.change(func(list []Service) ([]Service, error) {
		k := s.Key()
		for _, o := range list {
			if overlaps(o.Key(), k) {
				return nil, fmt.Errorf("%w: service %s overlaps %s", ErrExists, k, o.Key())
			}
		}
		return append(list, s), nil
	})
}

// UpdateService replaces the service with s's key: scheduler, its config and
// backends. Established flows stay on their backends unless a backend was
// removed or is down.
func (b *Balancer) UpdateService(s Service) error {
	return b.change(func(list []Service) ([]Service, error) {
		i := indexOf(list, s.Key())
		if i < 0 {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, s.Key())
		}
		list[i] = s
		return list, nil
	})
}

// RemoveService removes a service. Its flows are dropped from then on (and
// expire from the flow table).
func (b *Balancer) RemoveService(key ServiceKey) error {
	return b.change(func(list []Service) ([]Service, error) {
		i := indexOf(list, key)
		if i < 0 {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, key)
		}
		return slices.Delete(list, i, i+1), nil
	})
}

// SetServices replaces the whole configuration. Services whose key is
// unchanged keep their flows, statistics and backend identities.
func (b *Balancer) SetServices(services []Service) error {
	return b.change(func([]Service) ([]Service, error) {
		return slices.Clone(services), nil
	})
}

// Services returns a copy of the configured services, in configuration order.
func (b *Balancer) Services() []Service {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Service, 0, len(b.order))
	for _, k := range b.order {
		out = append(out, cloneService(b.services[k].svc))
	}
	return out
}

// SetBackends replaces the backends of one service.
func (b *Balancer) SetBackends(key ServiceKey, backends []Backend) error {
	return b.editService(key, func(s *Service) error {
		s.Backends = slices.Clone(backends)
		return nil
	})
}

// AddBackend adds one backend to a service.
func (b *Balancer) AddBackend(key ServiceKey, be Backend) error {
	return b.editService(key, func(s *Service) error {
		s.Backends = append(s.Backends, be)
		return nil
	})
}

// RemoveBackend removes the backend with address addr from a service. Its
// established flows are rescheduled on their next packet.
func (b *Balancer) RemoveBackend(key ServiceKey, addr netip.Addr) error {
	return b.editBackend(key, addr, func(s *Service, i int) {
		s.Backends = slices.Delete(s.Backends, i, i+1)
	})
}

// DrainBackend stops new flows to a backend; its established flows continue.
func (b *Balancer) DrainBackend(key ServiceKey, addr netip.Addr) error {
	return b.SetBackendState(key, addr, BackendDraining)
}

// SetBackendState sets a backend's state (active, draining, down).
func (b *Balancer) SetBackendState(key ServiceKey, addr netip.Addr, st BackendState) error {
	return b.editBackend(key, addr, func(s *Service, i int) { s.Backends[i].State = st })
}

func (b *Balancer) editService(key ServiceKey, edit func(*Service) error) error {
	return b.change(func(list []Service) ([]Service, error) {
		i := indexOf(list, key)
		if i < 0 {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, key)
		}
		if err := edit(&list[i]); err != nil {
			return nil, err
		}
		return list, nil
	})
}

func (b *Balancer) editBackend(key ServiceKey, addr netip.Addr, edit func(*Service, int)) error {
	addr = addr.Unmap()
	return b.editService(key, func(s *Service) error {
		for i := range s.Backends {
			if s.Backends[i].Addr.Unmap() == addr {
				edit(s, i)
				return nil
			}
		}
		return fmt.Errorf("%w: backend %s in service %s", ErrNotFound, addr, key)
	})
}

func indexOf(list []Service, key ServiceKey) int {
	for i := range list {
		if list[i].Key() == key {
			return i
		}
	}
	return -1
}

// ValidateServices checks a whole configuration the way SetServices would,
// without applying it: daemons use it to check a configuration file before
// (or instead of) loading it. Errors are *ConfigError values naming the field
// as "services[i]...".
func ValidateServices(services []Service) error {
	next := make([]Service, len(services))
	for i := range services {
		next[i] = cloneService(services[i])
		if err := validateService(fmt.Sprintf("services[%d]", i), &next[i]); err != nil {
			return err
		}
	}
	for i := range next {
		for j := range i {
			if overlaps(next[i].Key(), next[j].Key()) {
				return fieldErr(fmt.Sprintf("services[%d]", i), "%w: %s overlaps services[%d] %s", ErrExists, next[i].Key(), j, next[j].Key())
			}
		}
	}
	return nil
}

// change applies one configuration edit: the edit receives a deep copy of the
// current services and returns the new list. The result is validated whole; only then is the new snapshot
// built and swapped in. On any error nothing changes.
func (b *Balancer) change(edit func([]Service) ([]Service, error)) error {
	b.mu.Lock()
	defer b.unlockAndFlush()
	cur := make([]Service, 0, len(b.order))
	for _, k := range b.order {
		cur = append(cur, cloneService(b.services[k].svc))
	}
	next, err := edit(cur)
	if err != nil {
		return err
	}
	if err := ValidateServices(next); err != nil {
		return err
	}
	for i := range next {
		next[i] = cloneService(next[i])
	}
	return b.commit(next)
}

// commit builds the new state and snapshot from validated services and swaps
// them in. Called with b.mu held.
func (b *Balancer) commit(next []Service) error {
	states := make(map[ServiceKey]*svcState, len(next))
	order := make([]ServiceKey, 0, len(next))
	// IDs and turn indices allocated during this commit, released again if
	// it fails.
	var fresh []uint32
	var freshTurns []int
	fail := func(err error) error {
		for _, id := range fresh {
			b.releaseID(id)
		}
		b.freeTurns = append(b.freeTurns, freshTurns...)
		return err
	}
	for i := range next {
		s := next[i]
		key := s.Key()
		old := b.services[key]
		st := &svcState{svc: s, backends: make(map[netip.Addr]*beState, len(s.Backends))}
		if old != nil {
			st.stats = old.stats
			st.runtime = old.runtime
			st.turn = old.turn
			st.sched, st.fragSched, st.schedName, st.schedConfig, st.schedInput = old.sched, old.fragSched, old.schedName, old.schedConfig, old.schedInput
		} else {
			st.stats = &serviceStats{traffic: newTraffic(len(b.workers))}
			st.runtime = &svcRuntime{}
			st.turn = b.allocTurn()
			freshTurns = append(freshTurns, st.turn)
		}
		for _, be := range s.Backends {
			if old != nil {
				if ob := old.backends[be.Addr]; ob != nil {
					st.backends[be.Addr] = ob
					continue
				}
			}
			id, ok := b.allocID()
			if !ok {
				return fail(fieldErr(fmt.Sprintf("services[%d].backends", i), "more than %d backends in total", maxSlots))
			}
			fresh = append(fresh, id)
			st.backends[be.Addr] = &beState{id: id, stats: &backendStats{traffic: newTraffic(len(b.workers))}, joined: b.cfg.Clock()}
		}
		states[key] = st
		order = append(order, key)
	}

	if err := b.rebuild(states, order, "services"); err != nil {
		return fail(err)
	}

	// Release the IDs of backends and services that are gone. Their flows
	// are rescheduled on their next packet: the generation bump makes their
	// IDs unknown to the snapshot.
	for key, old := range b.services {
		st := states[key]
		if st == nil {
			b.freeTurns = append(b.freeTurns, old.turn)
		}
		for addr, ob := range old.backends {
			if st == nil || st.backends[addr] != ob {
				b.releaseID(ob.id)
				b.orphanChecks = append(b.orphanChecks, ob.checks...)
			}
		}
	}
	b.services, b.order = states, order
	b.afterChangeLocked()
	b.log.Info("configuration applied", "services", len(order))
	return nil
}

func (b *Balancer) buildSnapshot(states map[ServiceKey]*svcState, order []ServiceKey, eff map[ServiceKey][]effective) *snapshot {
	snap := &snapshot{
		services: make(map[svcLookup]*svcEntry, len(order)),
		frag:     map[fragLookup]*svcEntry{},
		vips:     map[[16]byte]struct{}{},
		backends: make([]beEntry, len(b.slotGen)),
		turns:    b.turnsUsed,
	}
	for _, key := range order {
		st := states[key]
		e := &svcEntry{key: key, sched: st.sched, frag: st.fragSched, turn: st.turn, stats: st.stats, ids: make([]uint32, len(st.svc.Backends))}
		if e.frag == nil {
			e.frag = e.sched
		}
		e.obs, _ = st.sched.(scheduler.FlowObserver)
		for j, be := range st.svc.Backends {
			bs := st.backends[be.Addr]
			e.ids[j] = bs.id
			ent := &snap.backends[bs.id&idSlotMask]
			ef := eff[key][j]
			*ent = beEntry{id: bs.id, state: be.State, index: j, svc: e, stats: bs.stats, usable: ef.usable}
			if ef.mac != nil {
				ent.mac = [6]byte(ef.mac)
			}
		}
		vip := key.VIP.As16()
		if _, ok := snap.vips[vip]; !ok {
			snap.vips[vip] = struct{}{}
			snap.vipList = append(snap.vipList, key.VIP)
		}
		for _, proto := range protoNumbers(key.Protocol) {
			snap.services[svcLookup{vip: vip, port: key.Port, proto: proto}] = e
			fk := fragLookup{vip: vip, proto: proto}
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
