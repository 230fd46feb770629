package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// transport is the socket a Router speaks through: the raw IPv4 socket on
// Linux, an in-memory segment in tests.
type transport interface {
	// read returns one VRRP message (without its IP header), its source
	// and destination and its IP TTL.
	read(buf []byte) (n int, src, dst netip.Addr, ttl int, err error)
	// write sends one VRRP message from src to the VRRP multicast group.
	write(b []byte, src netip.Addr) error
	setReadDeadline(t time.Time) error
	close() error
}

// Router is one virtual router: it runs the VRRPv3 state machine on one
// interface and reports its transitions through Config.OnEvent. Create it
// with New, start it with Run.
type Router struct {
	cfg   settings
	tr    transport
	now   func() time.Time
	stats counters

	running atomic.Bool
	closed  atomic.Bool
	wake    chan struct{}
	evMu    sync.Mutex // serialises event delivery

	mu    sync.Mutex // guards m
	m     machine
	state atomic.Uint32 // m.state, for State without the lock
}

func newRouter(s settings, tr transport) *Router {
	r := &Router{cfg: s, tr: tr, now: time.Now, wake: make(chan struct{}, 1)}
	r.m = machine{self: s.addr, prio: s.prio, interval: s.interval, preempt: s.preempt,
		preemptDelay: s.preemptDelay}
	return r
}

// State returns the router's current state.
func (r *Router) State() State { return State(r.state.Load()) }

// Addr returns the router's primary address (the advertisements' source).
func (r *Router) Addr() netip.Addr { return r.cfg.addr }

// VRID returns the virtual router id.
func (r *Router) VRID() uint8 { return r.cfg.vrid }

// Priority returns the router's configured priority.
func (r *Router) Priority() uint8 { return r.cfg.prio }

// Stats returns a snapshot of the counters.
func (r *Router) Stats() Stats { return r.stats.snapshot() }

// Close closes the socket; a running Run returns (without the priority 0
// advertisement a cancelled context would send). Safe to call more than once.
func (r *Router) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	return r.tr.close()
}

// Run takes part in the virtual router until ctx is done: it starts as
// Backup, becomes Master when no higher-priority master advertises, and
// reports each transition through Config.OnEvent. When ctx is done, a
// master sends a priority 0 advertisement (so that a backup takes over
// after its skew time rather than the master down interval) and Run
// reports Stopped and returns nil. A socket error moves the router to Fault
// (reported) and is returned. Run does not close the socket; it may be
// called again after it returns.
func (r *Router) Run(ctx context.Context) error {
	if r.closed.Load() {
		return fmt.Errorf("vrrp: run: %w", net.ErrClosed)
	}
	if r.running.Swap(true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var out output
	r.mu.Lock()
	r.m.start(r.now(), fmt.Sprintf("startup with priority %d: waiting %v for a master's advertisement", r.cfg.prio, 3*r.cfg.interval+time.Duration(256-int(r.cfg.prio))*r.cfg.interval/256), &out)
	r.mu.Unlock()
	r.apply(&out)

	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		readErr = r.readLoop(ctx)
		cancel()
	})
	wg.Go(func() { r.timerLoop(ctx) })
	unblocked := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		if err := r.tr.setReadDeadline(time.Unix(1, 0)); err != nil {
			_ = r.Close()
		}
	})
	wg.Wait()
	if !stop() {
		<-unblocked
	}
	_ = r.tr.setReadDeadline(time.Time{})

	out = output{}
	r.mu.Lock()
	switch {
	case r.closed.Load():
		// Close pulled the socket away: nothing can be sent, and a
		// backup takes over only after the master down interval, as
		// after a crash. Say so, so that the event reads differently
		// from a clean stop.
		r.m.stop(r.now(), "closed: the socket was closed under Run, no priority 0 advertisement was sent", &out)
		out.send = false
	case readErr != nil:
		r.m.fault(r.now(), fmt.Sprintf("socket failed: %v", readErr), &out)
	default:
		r.m.stop(r.now(), "shutting down", &out)
	}
	r.mu.Unlock()
	r.apply(&out)
	return readErr
}

func (r *Router) readLoop(ctx context.Context) error {
	buf := make([]byte, 1500)
	var adv Advertisement
	for {
		n, src, dst, ttl, err := r.tr.read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = r.tr.setReadDeadline(time.Time{})
				continue
			}
			if errors.Is(err, net.ErrClosed) && r.closed.Load() {
				return nil
			}
			r.cfg.log.Error("vrrp: reading from socket failed", "err", err)
			return fmt.Errorf("vrrp: read: %w", err)
		}
		if !r.accept(buf[:n], src, dst, ttl, &adv) {
			continue
		}
		var out output
		r.mu.Lock()
		r.m.receive(r.now(), src, &adv, &out)
		r.mu.Unlock()
		r.apply(&out)
		r.nudge()
	}
}

// accept decodes and validates a received message (RFC 5798 §7.1),
// counting what it drops.
func (r *Router) accept(b []byte, src, dst netip.Addr, ttl int, adv *Advertisement) bool {
	st := &r.stats
	if src == r.cfg.addr {
		st.ownDropped.Add(1) // our own multicast, looped back
		return false
	}
	if ttl != TTL {
		st.ttlDropped.Add(1)
		return false
	}
	if err := adv.Decode(b, src, dst); err != nil {
		if errors.Is(err, errChecksum) {
			st.checksumDropped.Add(1)
		} else {
			st.malformed.Add(1)
		}
		return false
	}
	if adv.VRID != r.cfg.vrid {
		st.otherVRID.Add(1)
		return false
	}
	st.received.Add(1)
	if !sameAddrs(adv.Addrs, r.cfg.vips) {
		// RFC 5798 §7.1: log and go on (keepalived does the same).
		if st.addrMismatch.Add(1) == 1 {
			r.cfg.log.Warn("vrrp: a peer advertises other virtual addresses than ours: check the configurations",
				"peer", src, "theirs", fmt.Sprint(adv.Addrs), "ours", fmt.Sprint(r.cfg.vips))
		}
	}
	return true
}

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (r *Router) timerLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var out output
		now := r.now()
		r.mu.Lock()
		r.m.tick(now, &out)
		next := r.m.next()
		r.mu.Unlock()
		r.apply(&out)
		wait := time.Hour
		if !next.IsZero() {
			wait = next.Sub(now)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

func (r *Router) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// apply sends the advertisement and delivers the events of one step.
func (r *Router) apply(out *output) {
	if out.send {
		adv := Advertisement{VRID: r.cfg.vrid, Priority: out.sendPrio,
			Interval: uint16(r.cfg.interval / (10 * time.Millisecond)), Addrs: r.cfg.vips}
		b := adv.Append(make([]byte, 0, headerLen+4*len(r.cfg.vips)), r.cfg.addr, Group4)
		if err := r.tr.write(b, r.cfg.addr); err != nil {
			if r.stats.writeErrors.Add(1) == 1 {
				r.cfg.log.Warn("vrrp: sending an advertisement failed", "err", err)
			}
		} else {
			r.stats.sent.Add(1)
		}
	}
	if len(out.events) == 0 {
		return
	}
	r.evMu.Lock()
	defer r.evMu.Unlock()
	for _, e := range out.events {
		r.state.Store(uint32(e.State))
		if e.Kind == BecameMaster {
			r.stats.masterTransitions.Add(1)
		}
		lvl := r.cfg.log.Info
		if e.Kind == BecameFault {
			lvl = r.cfg.log.Warn
		}
		lvl(e.String(), "vrid", r.cfg.vrid, "peer", e.Peer)
		if r.cfg.onEvent != nil {
			r.cfg.onEvent(e)
		}
	}
}
