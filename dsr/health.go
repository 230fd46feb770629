package dsr

import (
	"errors"
	"slices"

	"github.com/dsrlb/dsrlb/health"
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

// errHealthUnknown is the reason recorded while a check has no result.
var errHealthUnknown = errors.New("no result yet")

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
			mac := hopMAC(s, &be, b.resolved)
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
				k, err := b.monitor.Add(health.Target{Addr: be.Addr, Port: port, VIP: s.VIP, MAC: mac, Tunnel: healthTunnel(s, &be), VLAN: s.VLAN}, hc.Checker)
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
		b.recompile()
	}
}
