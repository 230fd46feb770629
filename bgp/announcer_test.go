package bgp

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var mac = net.HardwareAddr{2, 0, 0, 0, 0, 1}

func svc(vip string, port uint16, minHealthy int, backends ...string) dsr.Service {
	s := dsr.Service{VIP: netip.MustParseAddr(vip), Protocol: dsr.TCP, Port: port, MinHealthy: minHealthy}
	for _, b := range backends {
		s.Backends = append(s.Backends, dsr.Backend{Addr: netip.MustParseAddr(b), MAC: mac})
	}
	return s
}

// fakeBalancer reports services and per-backend health that a test sets.
type fakeBalancer struct {
	mu       sync.Mutex
	services []dsr.Service
	healthy  map[netip.Addr]bool
}

func (f *fakeBalancer) Services() []dsr.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.services)
}

func (f *fakeBalancer) Stats() dsr.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st dsr.Stats
	for _, s := range f.services {
		ss := dsr.ServiceStats{Key: s.Key()}
		for _, b := range s.Backends {
			ss.Backends = append(ss.Backends, dsr.BackendStats{Addr: b.Addr, MAC: b.MAC, State: b.State, Healthy: f.healthy[b.Addr]})
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

func (f *fakeBalancer) set(addr string, ok bool) {
	f.mu.Lock()
	f.healthy[netip.MustParseAddr(addr)] = ok
	f.mu.Unlock()
}

// fakeSpeaker records what is announced.
type fakeSpeaker struct {
	mu  sync.Mutex
	set map[netip.Addr]bool
	ops int
}

func (f *fakeSpeaker) Announce(v netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[v] = true
	f.ops++
	return nil
}

func (f *fakeSpeaker) Withdraw(v netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.set, v)
	f.ops++
	return nil
}

func (f *fakeSpeaker) has(v string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set[netip.MustParseAddr(v)]
}

func TestEligible(t *testing.T) {
	tests := []struct {
		name     string
		services []dsr.Service
		healthy  []string
		state    map[string]dsr.BackendState
		want     map[string]bool
	}{
		{"min 0 means one healthy", []dsr.Service{svc("192.0.2.100", 80, 0, "192.0.2.21", "192.0.2.22")}, []string{"192.0.2.22"}, nil,
			map[string]bool{"192.0.2.100": true}},
		{"none healthy", []dsr.Service{svc("192.0.2.100", 80, 0, "192.0.2.21")}, nil, nil, map[string]bool{"192.0.2.100": false}},
		{"below min healthy", []dsr.Service{svc("192.0.2.100", 80, 2, "192.0.2.21", "192.0.2.22")}, []string{"192.0.2.21"}, nil,
			map[string]bool{"192.0.2.100": false}},
		{"at min healthy", []dsr.Service{svc("192.0.2.100", 80, 2, "192.0.2.21", "192.0.2.22")}, []string{"192.0.2.21", "192.0.2.22"}, nil,
			map[string]bool{"192.0.2.100": true}},
		{"draining does not count", []dsr.Service{svc("192.0.2.100", 80, 0, "192.0.2.21")}, []string{"192.0.2.21"},
			map[string]dsr.BackendState{"192.0.2.21": dsr.BackendDraining}, map[string]bool{"192.0.2.100": false}},
		{"every service of a VIP must qualify", []dsr.Service{svc("192.0.2.100", 80, 0, "192.0.2.21"), svc("192.0.2.100", 443, 0, "192.0.2.22"),
			svc("2001:db8::100", 80, 0, "192.0.2.21")}, []string{"192.0.2.21"}, nil,
			map[string]bool{"192.0.2.100": false, "2001:db8::100": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := &fakeBalancer{services: tt.services, healthy: map[netip.Addr]bool{}}
			for i := range fb.services {
				for j := range fb.services[i].Backends {
					fb.services[i].Backends[j].State = tt.state[fb.services[i].Backends[j].Addr.String()]
				}
			}
			for _, h := range tt.healthy {
				fb.set(h, true)
			}
			got := map[string]bool{}
			for vip, ok := range Eligible(fb.Services(), fb.Stats()) {
				got[vip.String()] = ok
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestAnnouncerFollowsHealth(t *testing.T) {
	fb := &fakeBalancer{services: []dsr.Service{svc("192.0.2.100", 80, 0, "192.0.2.21"), svc("192.0.2.101", 80, 0, "192.0.2.22")},
		healthy: map[netip.Addr]bool{}}
	fs := &fakeSpeaker{set: map[netip.Addr]bool{}}
	// A poll far beyond the test's deadlines: only events can drive it.
	a, err := NewAnnouncer(fb, fs, &AnnouncerConfig{Poll: time.Hour, Announce: func(v netip.Addr) bool { return v != netip.MustParseAddr("192.0.2.101") }})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	fb.set("192.0.2.21", true)
	fb.set("192.0.2.22", true)
	a.HandleEvent(dsr.Event{Kind: dsr.EventBackendUp})
	require.Eventually(t, func() bool { return fs.has("192.0.2.100") }, 5*time.Second, time.Millisecond)
	assert.False(t, fs.has("192.0.2.101"), "a VIP the filter excludes is never announced")

	fb.set("192.0.2.21", false)
	a.HandleEvent(dsr.Event{Kind: dsr.EventBackendDown})
	require.Eventually(t, func() bool { return !fs.has("192.0.2.100") }, 5*time.Second, time.Millisecond)

	fb.set("192.0.2.21", true)
	a.HandleEvent(dsr.Event{Kind: dsr.EventMinHealthyRestored})
	require.Eventually(t, func() bool { return fs.has("192.0.2.100") }, 5*time.Second, time.Millisecond)

	// WithdrawAll withdraws and holds: later syncs announce nothing.
	require.NoError(t, a.WithdrawAll())
	assert.False(t, fs.has("192.0.2.100"))
	require.NoError(t, a.Sync())
	assert.False(t, fs.has("192.0.2.100"))
}

func TestAnnouncerPollsAndForgetsRemovedServices(t *testing.T) {
	fb := &fakeBalancer{services: []dsr.Service{svc("192.0.2.100", 80, 0, "192.0.2.21")}, healthy: map[netip.Addr]bool{}}
	fb.set("192.0.2.21", true)
	fs := &fakeSpeaker{set: map[netip.Addr]bool{}}
	a, err := NewAnnouncer(fb, fs, &AnnouncerConfig{Poll: 5 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	require.Eventually(t, func() bool { return fs.has("192.0.2.100") }, 5*time.Second, time.Millisecond)
	fb.mu.Lock()
	fb.services = nil // no event: the poll notices
	fb.mu.Unlock()
	require.Eventually(t, func() bool { return !fs.has("192.0.2.100") }, 5*time.Second, time.Millisecond)
}

func TestAnnouncerWithRealBalancer(t *testing.T) {
	var a *Announcer
	b, err := dsr.New(&dsr.Config{OnEvent: func(e dsr.Event) {
		if a != nil {
			a.HandleEvent(e)
		}
	}})
	require.NoError(t, err)
	s := svc("192.0.2.100", 80, 2, "192.0.2.21", "192.0.2.22")
	require.NoError(t, b.AddService(s))
	fs := &fakeSpeaker{set: map[netip.Addr]bool{}}
	a, err = NewAnnouncer(b, fs, nil)
	require.NoError(t, err)
	require.NoError(t, a.Sync())
	assert.True(t, fs.has("192.0.2.100"), "two backends without checks count healthy")
	require.NoError(t, b.SetBackendState(s.Key(), netip.MustParseAddr("192.0.2.22"), dsr.BackendDown))
	require.NoError(t, a.Sync())
	assert.False(t, fs.has("192.0.2.100"), "below MinHealthy 2")
	_, err = NewAnnouncer(nil, fs, nil)
	require.Error(t, err)
	_, err = NewAnnouncer(b, fs, &AnnouncerConfig{Poll: -1})
	require.ErrorIs(t, err, ErrConfig)
}

func TestHandleEventOnNilAnnouncer(t *testing.T) {
	var a *Announcer
	require.NotPanics(t, func() { a.HandleEvent(dsr.Event{Kind: dsr.EventBackendUp}) })
}
