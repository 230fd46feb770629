package dsr

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/arp"
)

// fakeNeighbours is a test double of Neighbours that records what the
// Balancer tells it and lets the test deliver events.
type fakeNeighbours struct {
	mu       sync.Mutex
	vips     []netip.Addr
	backends []arp.Backend
	handlers map[int]func(arp.Event)
	next     int
	running  chan struct{}
}

func (f *fakeNeighbours) SetVIPs(v []netip.Addr) { f.mu.Lock(); f.vips = v; f.mu.Unlock() }
func (f *fakeNeighbours) SetBackends(b []arp.Backend) {
	f.mu.Lock()
	f.backends = b
	f.mu.Unlock()
}
func (f *fakeNeighbours) AddEventHandler(fn func(arp.Event)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handlers == nil {
		f.handlers = map[int]func(arp.Event){}
	}
	id := f.next
	f.next++
	f.handlers[id] = fn
	return func() { f.mu.Lock(); delete(f.handlers, id); f.mu.Unlock() }
}
func (f *fakeNeighbours) Run(ctx context.Context) error {
	close(f.running)
	<-ctx.Done()
	return ctx.Err()
}
func (f *fakeNeighbours) deliver(e arp.Event) int {
	f.mu.Lock()
	hs := make([]func(arp.Event), 0, len(f.handlers))
	for _, h := range f.handlers {
		hs = append(hs, h)
	}
	f.mu.Unlock()
	for _, h := range hs {
		h(e)
	}
	return len(hs)
}

func TestNeighboursFollowedOnlyWhileRunning(t *testing.T) {
	nb := &fakeNeighbours{running: make(chan struct{})}
	b, err := New(&Config{ARP: nb})
	require.NoError(t, err)
	svc := web4(2)
	svc.Backends[1].MAC = nil
	require.NoError(t, b.AddService(svc))
	nb.mu.Lock()
	require.Equal(t, []netip.Addr{svc.VIP}, nb.vips, "the VIPs are handed over")
	require.Len(t, nb.backends, 2)
	require.Nil(t, nb.backends[1].MAC, "a backend without a configured MAC is to be resolved")
	nb.mu.Unlock()
	require.Zero(t, nb.deliver(arp.Event{}), "no handler before Run")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-nb.running:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start the neighbour component")
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x42}
	require.Equal(t, 1, nb.deliver(arp.Event{Kind: arp.Resolved, Addr: svc.Backends[1].Addr, MAC: mac}))
	require.Equal(t, mac, b.Stats().Services[0].Backends[1].MAC, "a resolved MAC is applied")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	require.Zero(t, nb.deliver(arp.Event{}), "the handler is removed when Run returns")
}
