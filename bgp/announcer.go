package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
)

// Balancer is what an Announcer reads: *dsr.Balancer implements it.
type Balancer interface {
	Services() []dsr.Service
	Stats() dsr.Stats
}

// Announcements is what an Announcer drives: *Speaker implements it.
type Announcements interface {
	Announce(vip netip.Addr) error
	Withdraw(vip netip.Addr) error
}

// DefaultPoll is the Announcer's re-evaluation interval without events.
const DefaultPoll = 200 * time.Millisecond

// AnnouncerConfig configures an Announcer. A nil *AnnouncerConfig means all
// defaults.
type AnnouncerConfig struct {
	// Poll is how often the Announcer re-reads the balancer's state even
	// without events (a service removed, a backend set replaced). Zero
	// means DefaultPoll.
	Poll time.Duration
	// Announce selects the VIPs the Announcer manages. Nil means every VIP
	// of the balancer's services; VIPs it returns false for are never
	// announced (and withdrawn if they were).
	Announce func(vip netip.Addr) bool
	// Logger receives announcement decisions. Nil discards.
	Logger *slog.Logger
}

// Announcer announces a balancer's VIPs while they can be served: a VIP is
// announced while every service on it has at least MinHealthy healthy,
// active backends with a known MAC (at least one when MinHealthy is 0), and
// withdrawn when one has not. Feed it the balancer's events (HandleEvent from
// dsr.Config.OnEvent) for an immediate reaction; Run also polls.
type Announcer struct {
	b    Balancer
	out  Announcements
	cfg  AnnouncerConfig
	log  *slog.Logger
	kick chan struct{}

	mu   sync.Mutex
	mine map[netip.Addr]bool // VIPs this Announcer announced
	held bool                // WithdrawAll was called
}

// NewAnnouncer returns an Announcer that reads b and drives out.
func NewAnnouncer(b Balancer, out Announcements, cfg *AnnouncerConfig) (*Announcer, error) {
	if b == nil || out == nil {
		return nil, errors.New("bgp: NewAnnouncer: nil balancer or speaker")
	}
	var c AnnouncerConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Poll < 0 {
		return nil, fmt.Errorf("%w: poll: negative: %v", ErrConfig, c.Poll)
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Announcer{b: b, out: out, cfg: c, log: log, kick: make(chan struct{}, 1), mine: map[netip.Addr]bool{}}, nil
}

// HandleEvent makes the Announcer re-evaluate at once after a health
// change. It never blocks, so it can be called from dsr.Config.OnEvent; on a
// nil *Announcer (no BGP, or an event before NewAnnouncer returned) it does
// nothing.
func (a *Announcer) HandleEvent(e dsr.Event) {
	if a == nil {
		return
	}
	switch e.Kind {
	case dsr.EventBackendDown, dsr.EventBackendUp, dsr.EventBelowMinHealthy,
		dsr.EventMinHealthyRestored, dsr.EventMACResolved, dsr.EventUnresolved, dsr.EventFailOpen:
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// Run re-evaluates on every event and every Poll until ctx is cancelled,
// then returns nil. It does not withdraw on return: call WithdrawAll (a
// clean stop) or let the Speaker's Run withdraw.
func (a *Announcer) Run(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Poll)
	defer t.Stop()
	for {
		if err := a.Sync(); err != nil {
			a.log.Warn("bgp announcer", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.kick:
		case <-t.C:
		}
	}
}

// Sync evaluates the balancer's state now and announces or withdraws.
func (a *Announcer) Sync() error {
	want := Eligible(a.b.Services(), a.b.Stats())
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held {
		return nil
	}
	var errs []error
	for vip, ok := range want {
		if a.cfg.Announce != nil && !a.cfg.Announce(vip) {
			ok = false
		}
		switch {
		case ok && !a.mine[vip]:
			if err := a.out.Announce(vip); err != nil {
				errs = append(errs, err)
				continue
			}
			a.mine[vip] = true
			a.log.Info("bgp: announcing VIP: enough healthy backends", "vip", vip)
		case !ok && a.mine[vip]:
			if err := a.out.Withdraw(vip); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(a.mine, vip)
			a.log.Warn("bgp: withdrawing VIP: too few healthy backends", "vip", vip)
		}
	}
	for vip := range a.mine {
		if _, ok := want[vip]; !ok {
			if err := a.out.Withdraw(vip); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(a.mine, vip)
			a.log.Info("bgp: withdrawing VIP: no service left on it", "vip", vip)
		}
	}
	return errors.Join(errs...)
}

// WithdrawAll withdraws every VIP the Announcer announced and announces
// nothing from then on: the first step of a clean shutdown, before the
// balancer drains.
func (a *Announcer) WithdrawAll() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held = true
	var errs []error
	for vip := range a.mine {
		if err := a.out.Withdraw(vip); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(a.mine, vip)
	}
	return errors.Join(errs...)
}

// Eligible says, for every VIP of services, whether it may be announced:
// every service on the VIP has at least max(MinHealthy, 1) backends that are
// healthy, active and have a MAC, according to st. A route attracts the
// traffic of every port of the VIP, so one service that would drop its
// flows keeps the VIP unannounced (another balancer may serve it).
func Eligible(services []dsr.Service, st dsr.Stats) map[netip.Addr]bool {
	healthy := make(map[dsr.ServiceKey]int, len(st.Services))
	for _, s := range st.Services {
		n := 0
		for _, b := range s.Backends {
			if b.Healthy && b.State == dsr.BackendActive && b.MAC != nil {
				n++
			}
		}
		healthy[s.Key] = n
	}
	out := make(map[netip.Addr]bool, len(services))
	for i := range services {
		s := &services[i]
		vip := s.VIP.Unmap()
		need := max(s.MinHealthy, 1)
		ok := healthy[s.Key()] >= need
		if prev, seen := out[vip]; seen {
			ok = ok && prev
		}
		out[vip] = ok
	}
	return out
}
