package dsr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dsrlb/dsrlb/internal/flowtable"
)

// Run runs the control loops — flow expiry, health checks, drain and slow
// start tracking, and the ARP speaker if configured — until ctx is cancelled, and returns only when all of them
// have stopped. Call it once.
func (b *Balancer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.expireLoop(ctx) })
	wg.Go(func() { b.controlLoop(ctx) })
	var monErr, arpErr error
	wg.Go(func() { monErr = b.monitor.Run(ctx) })
	if b.cfg.ARP != nil {
		// Follow the speaker's events while it runs for us, and no
		// longer: the speaker may outlive this Balancer.
		remove := b.cfg.ARP.AddEventHandler(b.onARPEvent)
		defer remove()
		wg.Go(func() { arpErr = b.cfg.ARP.Run(ctx) })
	}
	wg.Wait()
	if monErr != nil && !errors.Is(monErr, context.Canceled) {
		return fmt.Errorf("dsr: health monitor: %w", monErr)
	}
	if arpErr != nil && !errors.Is(arpErr, context.Canceled) {
		return fmt.Errorf("dsr: arp: %w", arpErr)
	}
	return nil
}

// SweepInterval is how often Run expires idle flows; each sweep visits a
// tenth of the table, so every flow is looked at about once a second.
const SweepInterval = 100 * time.Millisecond

func (b *Balancer) expireLoop(ctx context.Context) {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.ExpireFlows(b.flows.Cap()/10 + 1)
			b.dataPlaneTick(b.now())
		}
	}
}

// ExpireFlows removes idle flows, visiting at most maxSlots flow-table slots,
// and returns how many it removed. Run calls it periodically; it is exported
// for applications that drive their own loops and for tests with a fake
// clock.
func (b *Balancer) ExpireFlows(maxSlots int) int {
	// One pass over the table is the most that can find anything.
	if limit := 2 * b.flows.Cap(); maxSlots > limit {
		maxSlots = limit
	}
	s := b.snap.Load()
	return b.flows.Sweep(b.now(), maxSlots, func(_ *flowtable.Key, id uint32) { b.flowEnded(s, id) })
}

// flowEnded accounts for a flow that left the flow table (expired, or
// evicted to make room) while on backend id.
func (b *Balancer) flowEnded(s *snapshot, id uint32) {
	if be := s.backend(id); be != nil {
		be.stats.active.Add(-1)
		if be.svc.obs != nil {
			be.svc.obs.FlowEnded(be.index)
		}
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

// drainPending reports whether a draining backend still waits for its
// drained event. Called with b.mu held.
func (b *Balancer) drainPending() bool {
	for _, key := range b.order {
		st := b.services[key]
		for _, be := range st.svc.Backends {
			if be.State == BackendDraining && !st.backends[be.Addr].drainedSent {
				return true
			}
		}
	}
	return false
}

// controlTick runs one round of the periodic control work.
func (b *Balancer) controlTick(now time.Time, checkSYN bool) {
	b.mu.Lock()
	defer b.unlockAndFlush()
	if b.ramping {
		b.recompile()
	}
	// The kernel data plane's flows and SYN retransmits count with the Go
	// path's. Its live flows are counted (a walk of its flow table) once a
	// second, and on every tick while a drain waits for its last flow: a
	// count older than the drain could report it drained too early.
	b.collectDataPlanes(b.snap.Load(), checkSYN || b.drainPending())
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
					active := bs.stats.totalActive()
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
				syn, flows := bs.stats.totalSYN(), bs.stats.totalFlows()
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
		b.log.LogAttrs(context.Background(), e.LogLevel(), e.Kind.String(), e.LogAttrs()...)
		if b.cfg.OnEvent != nil {
			b.cfg.OnEvent(e)
		}
	}
}
