package dsr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/scheduler"
)

// HealthCheck is one health check run against every backend of a service.
type HealthCheck struct {
	// Checker probes a backend (see package health for the built-ins,
	// including the DSR-path checker). Required.
	Checker health.Checker
	// Port is the port the checker probes. Zero means the service's port
	// (and, for an all-ports service, the checker's own default).
	Port uint16
}

// svcRuntime is the control plane's runtime state of one service.
type svcRuntime struct {
	belowMin    bool
	failOpen    bool
	lastHealthy map[netip.Addr]bool
}

// effective is a backend's forwarding state after configuration, health,
// address resolution and slow start are combined.
type effective struct {
	mac     net.HardwareAddr
	healthy bool
	usable  bool   // may carry established flows
	weight  uint32 // scheduler weight; 0: no new flows
}

// rampScale multiplies every weight of a service while one of its backends
// ramps up, so that a backend of weight 1 can still start at a fraction.
const rampScale = 16

// errHealthUnknown is the reason recorded while a check has no result.
var errHealthUnknown = errors.New("no result yet")

// rebuild combines configuration and runtime state into schedulers and a new
// snapshot and swaps it in. Called with b.mu held. field prefixes errors
// ("services"). On error nothing changes.
func (b *Balancer) rebuild(states map[ServiceKey]*svcState, order []ServiceKey, field string) error {
	now := b.cfg.Clock()
	eff := make(map[ServiceKey][]effective, len(order))
	type schedUpdate struct {
		st          *svcState
		sched       scheduler.Scheduler
		fragSched   scheduler.Scheduler
		name        string
		input       []scheduler.Backend
		fresh       bool
		failOpen    bool
		lastHealthy map[netip.Addr]bool
		belowMin    bool
	}
	updates := make([]schedUpdate, 0, len(order))
	ramping := false
	for i, key := range order {
		st := states[key]
		s := &st.svc
		rt := st.runtime
		es := make([]effective, len(s.Backends))
		healthyActive := map[netip.Addr]bool{}
		for j, be := range s.Backends {
			bs := st.backends[be.Addr]
			mac := be.MAC
			if mac == nil {
				mac = b.resolved[be.Addr]
			}
			es[j] = effective{mac: mac, healthy: bs.healthy()}
			if es[j].healthy && mac != nil && be.State == BackendActive {
				healthyActive[be.Addr] = true
			}
		}
		u := schedUpdate{st: st, lastHealthy: rt.lastHealthy}
		if len(healthyActive) == 0 && s.FailOpen && len(rt.lastHealthy) > 0 {
			// Every backend failed: keep the last healthy set rather than
			// dropping the service's traffic.
			u.failOpen = true
			for j, be := range s.Backends {
				if rt.lastHealthy[be.Addr] {
					es[j].healthy = true
				}
			}
		} else if len(healthyActive) > 0 {
			u.lastHealthy = healthyActive
		}
		u.belowMin = s.MinHealthy > 0 && len(healthyActive) < s.MinHealthy

		scale := uint32(1)
		for _, be := range s.Backends {
			if b.rampingAt(s, st.backends[be.Addr], now) {
				scale = rampScale
				ramping = true
			}
		}
		input := make([]scheduler.Backend, len(s.Backends))
		for j, be := range s.Backends {
			e := &es[j]
			bs := st.backends[be.Addr]
			e.usable = e.mac != nil && be.State != BackendDown && e.healthy
			w := be.Weight
			if w == 0 {
				w = 1
			}
			w *= scale
			if b.rampingAt(s, bs, now) {
				frac := float64(now.Sub(bs.joined)) / float64(s.SlowStart)
				w = max(1, uint32(float64(w)*frac))
			}
			if be.State != BackendActive || !e.usable {
				w = 0
			}
			e.weight = w
			input[j] = scheduler.Backend{Addr: be.Addr, Weight: w}
		}
		eff[key] = es
		name := s.Scheduler
		if name == "" {
			name = scheduler.Default
		}
		u.name, u.input, u.sched, u.fragSched = name, input, st.sched, st.fragSched
		if st.sched == nil || st.schedName != name || st.schedConfig != s.SchedulerConfig || !slices.Equal(st.schedInput, input) {
			sch, err := scheduler.New(name, input, s.SchedulerConfig)
			if err != nil {
				return fieldErr(fmt.Sprintf("%s[%d].scheduler", field, i), "%v", err)
			}
			u.sched, u.fresh, u.fragSched = sch, true, nil
			if b.cfg.Fragments == FragmentsHash && !placesByFlow(name) {
				fs, err := scheduler.New("mh", input, scheduler.Config{Seed: s.SchedulerConfig.Seed})
				if err != nil {
					return fieldErr(fmt.Sprintf("%s[%d].scheduler", field, i), "fragment placement: %v", err)
				}
				u.fragSched = fs
			}
		}
		updates = append(updates, u)
	}
	// Everything built: apply.
	for _, u := range updates {
		st, rt := u.st, u.st.runtime
		key := st.svc.Key()
		if u.fresh {
			// A fresh stateful scheduler learns the flows that already exist.
			if obs, ok := u.sched.(scheduler.FlowObserver); ok {
				for j, be := range st.svc.Backends {
					for n := st.backends[be.Addr].stats.active.Load(); n > 0; n-- {
						obs.FlowStarted(j)
					}
				}
			}
		}
		st.sched, st.fragSched, st.schedName, st.schedConfig, st.schedInput = u.sched, u.fragSched, u.name, st.svc.SchedulerConfig, u.input
		if u.failOpen && !rt.failOpen {
			b.emit(Event{Kind: EventFailOpen, Service: key, At: now})
		}
		rt.failOpen = u.failOpen
		rt.lastHealthy = u.lastHealthy
		if st.svc.MinHealthy > 0 && u.belowMin != rt.belowMin {
			kind := EventMinHealthyRestored
			if u.belowMin {
				kind = EventBelowMinHealthy
			}
			b.emit(Event{Kind: kind, Service: key, At: now, Count: len(u.lastHealthy)})
		}
		rt.belowMin = u.belowMin
	}
	b.ramping = ramping
	b.snap.Store(b.buildSnapshot(states, order, eff))
	return nil
}

// placesByFlow reports whether the named scheduler's picks depend only on
// the flow and the backend set, so that it can place fragments: every
// fragment of a datagram, offered with the same addresses and protocol,
// then reaches the same backend. Rotating and least-connection schedulers
// (and plugins, which promise nothing) would scatter them.
func placesByFlow(name string) bool {
	switch name {
	case "mh", "sh", "hrw":
		return true
	}
	return false
}

func (b *Balancer) rampingAt(s *Service, bs *beState, now time.Time) bool {
	return s.SlowStart > 0 && bs.healthy() && now.Sub(bs.joined) < s.SlowStart
}

func (bs *beState) healthy() bool {
	for _, err := range bs.failing {
		if err != errHealthUnknown {
			return false
		}
	}
	return true
}

// rebuildLocked rebuilds the snapshot of the current configuration after a
// runtime change (health, address resolution, slow start). Called with b.mu
// held.
func (b *Balancer) rebuildLocked() {
	if err := b.rebuild(b.services, b.order, "services"); err != nil {
		b.log.Error("rebuilding forwarding state failed; the previous state stays", "err", err)
	}
}

// afterChangeLocked brings the helpers in step with a new configuration:
// kernel filters, health-check registrations, address resolution. Called
// with b.mu held.
func (b *Balancer) afterChangeLocked() {
	b.syncVIPs(b.snap.Load().vipList)
	b.reconcileHealth()
	b.syncARP()
}

// emit queues an event for delivery once b.mu is released. Called with b.mu
// held.
func (b *Balancer) emit(e Event) {
	b.pending = append(b.pending, e)
}

// unlockAndFlush releases b.mu and then delivers queued events, so that an
// OnEvent callback may call back into the Balancer.
func (b *Balancer) unlockAndFlush() {
	evs := b.pending
	b.pending = nil
	b.mu.Unlock()
	for _, e := range evs {
		b.log.Info("event", "kind", e.Kind.String(), "event", e.String())
		if b.cfg.OnEvent != nil {
			b.cfg.OnEvent(e)
		}
	}
}

// reconcileHealth registers every (backend, check) of the configuration
// with the monitor and removes registrations no longer wanted. Adding before
// removing keeps unchanged registrations (and their state) alive: the
// monitor reference-counts equal registrations.
func (b *Balancer) reconcileHealth() {
	for _, key := range b.order {
		st := b.services[key]
		s := &st.svc
		for _, be := range s.Backends {
			bs := st.backends[be.Addr]
			mac := be.MAC
			if mac == nil {
				mac = b.resolved[be.Addr]
			}
			var keys []health.Key
			// An unresolved backend takes no flows, and checks that need its
			// MAC would only report a spurious failure: check it once it is
			// resolved.
			checks := s.Checks
			if mac == nil {
				checks = nil
			}
			for _, hc := range checks {
				port := hc.Port
				if port == 0 {
					port = s.Port
				}
				k, err := b.monitor.Add(health.Target{Addr: be.Addr, Port: port, VIP: s.VIP, MAC: mac}, hc.Checker)
				if err != nil {
					b.log.Error("health check registration failed", "backend", be.Addr, "err", err)
					continue
				}
				keys = append(keys, k)
			}
			for _, k := range bs.checks {
				b.monitor.Remove(k)
			}
			failing := map[health.Key]error{}
			for _, k := range keys {
				if err, ok := bs.failing[k]; ok {
					failing[k] = err
				} else if st, ok := b.monitor.State(k); ok && st.State == health.StateDown {
					failing[k] = st.LastErr
				}
			}
			bs.checks, bs.failing = keys, failing
		}
	}
	// Registrations of removed services and backends.
	for _, k := range b.orphanChecks {
		b.monitor.Remove(k)
	}
	b.orphanChecks = nil
}

// onHealthEvent applies a monitor event to every backend registered under
// its key.
func (b *Balancer) onHealthEvent(ev health.Event) {
	b.mu.Lock()
	defer b.unlockAndFlush()
	changed := false
	for _, key := range b.order {
		st := b.services[key]
		for _, be := range st.svc.Backends {
			bs := st.backends[be.Addr]
			if !slices.Contains(bs.checks, ev.Key) {
				continue
			}
			was := bs.healthy()
			if ev.Up {
				delete(bs.failing, ev.Key)
			} else {
				reason := ev.Reason
				if reason == nil {
					reason = errors.New("check failed")
				}
				bs.failing[ev.Key] = reason
			}
			now := bs.healthy()
			if was == now {
				continue
			}
			changed = true
			if now {
				bs.joined = ev.At // slow start counts from recovery
				b.emit(Event{Kind: EventBackendUp, Service: key, Backend: be.Addr, At: ev.At})
			} else {
				b.emit(Event{Kind: EventBackendDown, Service: key, Backend: be.Addr, At: ev.At, Reason: ev.Reason})
			}
		}
	}
	if changed {
		b.rebuildLocked()
	}
}

// ControlInterval is how often Run checks drains, slow starts and the SYN
// retransmit signal.
const ControlInterval = 250 * time.Millisecond

func (b *Balancer) controlLoop(ctx context.Context) {
	t := time.NewTicker(ControlInterval)
	defer t.Stop()
	lastSYN := b.cfg.Clock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := b.cfg.Clock()
		checkSYN := now.Sub(lastSYN) >= time.Second
		if checkSYN {
			lastSYN = now
		}
		b.controlTick(now, checkSYN)
	}
}

// controlTick runs one round of the periodic control work.
func (b *Balancer) controlTick(now time.Time, checkSYN bool) {
	b.mu.Lock()
	defer b.unlockAndFlush()
	if b.ramping {
		b.rebuildLocked()
	}
	for _, key := range b.order {
		st := b.services[key]
		for _, be := range st.svc.Backends {
			bs := st.backends[be.Addr]
			// Drain lifecycle: active → draining → drained.
			if be.State == BackendDraining {
				if bs.drainSince.IsZero() {
					bs.drainSince = now
				}
				if !bs.drainedSent {
					active := bs.stats.active.Load()
					expired := st.svc.DrainTimeout > 0 && now.Sub(bs.drainSince) >= st.svc.DrainTimeout
					if active <= 0 || expired {
						bs.drainedSent = true
						e := Event{Kind: EventBackendDrained, Service: key, Backend: be.Addr, At: now}
						if active > 0 {
							e.Reason = fmt.Errorf("drain deadline %v passed with %d flows left", st.svc.DrainTimeout, active)
							e.Count = int(active)
						}
						b.emit(e)
					}
				}
			} else {
				bs.drainSince, bs.drainedSent = time.Time{}, false
			}
			// Passive signal: retransmitted SYNs on existing flows.
			if checkSYN {
				syn, flows := bs.stats.synRetrans.Load(), bs.stats.flows.Load()
				dSYN, dFlows := syn-bs.synSeen, flows-bs.flowsSeen
				bs.synSeen, bs.flowsSeen = syn, flows
				if int(dSYN) >= b.synThreshold && dSYN*2 >= dFlows && now.Sub(bs.suspectAt) >= 10*time.Second {
					bs.suspectAt = now
					b.emit(Event{Kind: EventSYNRetransmits, Service: key, Backend: be.Addr, At: now, Count: int(dSYN),
						Reason: fmt.Errorf("%d SYNs retransmitted on existing flows in the last second (%d new flows): the backend may not answer, or its answers may not reach the clients", dSYN, dFlows)})
				}
			}
		}
	}
}

// SetBackendMAC records the hardware address of the backend addr (in every
// service that has it), as learned by an address resolver. A MAC configured
// in the Service takes precedence. Nil forgets the address: a backend with
// no MAC takes no new flows.
func (b *Balancer) SetBackendMAC(addr netip.Addr, mac net.HardwareAddr) error {
	addr = addr.Unmap()
	if mac != nil && (len(mac) != 6 || mac[0]&1 != 0) {
		return &ConfigError{Field: "mac", Err: fmt.Errorf("%s is not a unicast Ethernet address", mac)}
	}
	b.mu.Lock()
	defer b.unlockAndFlush()
	found := false
	for _, key := range b.order {
		for _, be := range b.services[key].svc.Backends {
			if be.Addr == addr {
				found = true
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: backend %s", ErrNotFound, addr)
	}
	old := b.resolved[addr]
	if string(old) == string(mac) {
		return nil
	}
	if mac == nil {
		delete(b.resolved, addr)
	} else {
		b.resolved[addr] = append(net.HardwareAddr(nil), mac...)
		b.emit(Event{Kind: EventMACResolved, Backend: addr, MAC: b.resolved[addr], At: b.cfg.Clock()})
	}
	b.rebuildLocked()
	b.reconcileHealth()
	return nil
}
