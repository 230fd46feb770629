package dsr

import (
	"fmt"
	"net/netip"

	"github.com/dsrlb/dsrlb/scheduler"
)

// input returns the compile input for services in order. Called with b.mu
// held.
func (b *Balancer) input(services []*svcState) *compileInput {
	return &compileInput{
		now:       b.cfg.Clock(),
		services:  services,
		resolved:  b.resolved,
		fragments: b.cfg.Fragments,
		slots:     len(b.slotGen),
		turns:     b.turnsUsed,
		gen:       b.gen + 1,
	}
}

// apply makes a compiled plan live: each service keeps its scheduler and
// health-policy state, the snapshot is swapped in, and the plan's events are
// queued for delivery. Called with b.mu held.
func (b *Balancer) apply(in *compileInput, p *plan) {
	for i, st := range in.services {
		sp := &p.services[i]
		if sp.fresh {
			// A fresh stateful scheduler learns the flows that already exist.
			if obs, ok := sp.sched.(scheduler.FlowObserver); ok {
				for j, be := range st.svc.Backends {
					for n := st.backends[be.Addr].stats.active.Load(); n > 0; n-- {
						obs.FlowStarted(j)
					}
				}
			}
		}
		st.sched, st.fragSched, st.schedName, st.schedCfg, st.schedInput, st.schedGen =
			sp.sched, sp.fragSched, sp.schedName, st.svc.SchedulerConfig, sp.schedInput, sp.schedGen
		st.runtime = sp.runtime
	}
	b.gen = p.snap.gen
	b.ramping = p.ramping
	b.snap.Store(p.snap)
	b.syncDataPlanes(p.snap)
	for _, e := range p.events {
		b.emit(e)
	}
}

// recompile compiles and applies a plan for the current configuration after
// a runtime change (health, address resolution, slow start). Called with
// b.mu held.
func (b *Balancer) recompile() {
	in := b.input(b.servicesInOrder())
	p, err := compile(in)
	if err != nil {
		b.log.Error("rebuilding forwarding state failed; the previous state stays", "err", err)
		return
	}
	b.apply(in, p)
}

// servicesInOrder returns the services' state in configuration order.
// Called with b.mu held.
func (b *Balancer) servicesInOrder() []*svcState {
	out := make([]*svcState, len(b.order))
	for i, k := range b.order {
		out[i] = b.services[k]
	}
	return out
}

// commit makes validated services the configuration: it carries the state
// of services and backends that stay over, allocates identities for new
// ones, compiles and applies the plan. Called with b.mu held; next is owned
// by the callee. On error nothing changes.
func (b *Balancer) commit(next []Service) error {
	states := make(map[ServiceKey]*svcState, len(next))
	order := make([]ServiceKey, 0, len(next))
	list := make([]*svcState, 0, len(next))
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
			// Everything but the configuration carries over; compile
			// decides whether the scheduler can stay.
			st.stats, st.turn, st.runtime = old.stats, old.turn, old.runtime
			st.sched, st.fragSched, st.schedName, st.schedCfg, st.schedInput, st.schedGen =
				old.sched, old.fragSched, old.schedName, old.schedCfg, old.schedInput, old.schedGen
		} else {
			st.stats = &serviceStats{traffic: newTraffic(len(b.workers))}
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
		list = append(list, st)
	}

	in := b.input(list)
	p, err := compile(in)
	if err != nil {
		return fail(err)
	}
	b.apply(in, p)

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

// afterChangeLocked brings the helpers in step with a new configuration:
// kernel filters, health-check registrations, address resolution. Called
// with b.mu held.
func (b *Balancer) afterChangeLocked() {
	b.syncVIPs(b.snap.Load().vipList)
	b.reconcileHealth()
	b.syncARP()
}
