package dsr

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/frame"
)

// switchboard is a health checker whose verdict per backend the test sets.
type switchboard struct {
	mu   sync.Mutex
	down map[netip.Addr]error
}

func (s *switchboard) Check(_ context.Context, t health.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down[t.Addr]
}

func (s *switchboard) set(a netip.Addr, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down[a] = err
}

// eventHarness runs a Balancer's control loops with fast health checks and
// collects its events.
type eventHarness struct {
	*harness
	events chan Event
	sb     *switchboard
}

func newEventHarness(t *testing.T, cfg *Config, services ...Service) *eventHarness {
	t.Helper()
	events := make(chan Event, 1024)
	sb := &switchboard{down: map[netip.Addr]error{}}
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.Health = &health.MonitorConfig{Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond, Rise: 1, Fall: 1, Jitter: -1}
	cfg.OnEvent = func(e Event) { events <- e }
	for i := range services {
		services[i].Checks = []HealthCheck{{Checker: sb}}
	}
	h := newHarness(t, cfg, services...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.b.monitor.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &eventHarness{harness: h, events: events, sb: sb}
}

// await returns the next event of kind (skipping others), failing after a
// generous bound.
func (h *eventHarness) await(kind EventKind) Event {
	h.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-h.events:
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			h.t.Fatalf("no %s event", kind)
			return Event{}
		}
	}
}

func TestHealthDownReschedulesAndUpReturns(t *testing.T) {
	svc := web4(3)
	h := newEventHarness(t, nil, svc)
	flows := h.open(150, 1000)
	victim := svc.Backends[0].Addr

	h.sb.set(victim, errors.New("connection refused"))
	e := h.await(EventBackendDown)
	assert.Equal(t, victim, e.Backend)
	assert.EqualError(t, e.Reason, "connection refused")
	st := h.b.Stats().Services[0].Backends[0]
	assert.False(t, st.Healthy)
	assert.Equal(t, "connection refused", st.HealthError)

	moved := 0
	for sport, be := range flows {
		now := h.where(sport)
		assert.NotEqual(t, 0, now, "no flow stays on the down backend")
		if be == 0 {
			moved++
		} else {
			assert.Equal(t, be, now, "flows of healthy backends stay")
		}
	}
	assert.Equal(t, uint64(moved), h.b.Stats().Services[0].Rescheduled)

	h.sb.set(victim, nil)
	assert.Equal(t, victim, h.await(EventBackendUp).Backend)
	got := map[int]bool{}
	for sport := uint16(5000); sport < 5200; sport++ {
		in := tcp4(sport, frame.FlagSYN)
		got[expectForward(t, in, h.send(in))] = true
	}
	assert.True(t, got[0], "the recovered backend takes new flows")
}

func TestFailOpenAndMinHealthy(t *testing.T) {
	open := web4(2)
	open.FailOpen = true
	open.MinHealthy = 2
	closed := Service{VIP: vip4, Protocol: TCP, Port: 443, Backends: backends(2, false)}
	h := newEventHarness(t, nil, open, closed)
	for _, be := range open.Backends {
		h.sb.set(be.Addr, errors.New("down"))
	}
	// Both services' checks see both backends fail.
	var below, failOpen bool
	for downs := 0; downs < 4 || !below || !failOpen; {
		select {
		case e := <-h.events:
			switch e.Kind {
			case EventBackendDown:
				downs++
			case EventBelowMinHealthy:
				assert.Equal(t, open.Key(), e.Service)
				below = true
			case EventFailOpen:
				assert.Equal(t, open.Key(), e.Service)
				failOpen = true
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events missing: downs %d below %v failOpen %v", downs, below, failOpen)
		}
	}
	// The fail-open service still forwards; the other drops.
	in := tcp4(7000, frame.FlagSYN)
	expectForward(t, in, h.send(in))
	https := tcp4(7001, frame.FlagSYN)
	https[14+20+2], https[14+20+3] = 0x01, 0xbb // destination port 443
	https = retcp(t, https)
	assert.Nil(t, h.send(https))
	assert.Equal(t, uint64(1), h.drops(DropNoBackend))

	for _, be := range open.Backends {
		h.sb.set(be.Addr, nil)
	}
	assert.Equal(t, open.Key(), h.await(EventMinHealthyRestored).Service)
}

// retcp rebuilds a frame's TCP checksum after a test edited its header.
func retcp(t *testing.T, b []byte) []byte {
	var p frame.Packet
	require.NoError(t, frame.Parse(b, &p))
	b[p.L4Off+16], b[p.L4Off+17] = 0, 0
	start, off, ok := p.ChecksumOffsets()
	require.True(t, ok)
	// Seed the checksum field with the pseudo-header sum, then complete it.
	var sum uint32
	for i := 0; i < 4; i += 2 {
		sum += uint32(b[p.L3Off+12+i])<<8 | uint32(b[p.L3Off+12+i+1])
		sum += uint32(b[p.L3Off+16+i])<<8 | uint32(b[p.L3Off+16+i+1])
	}
	sum += uint32(frame.ProtoTCP) + uint32(p.Len-p.L4Off)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	b[start+off], b[start+off+1] = byte(sum>>8), byte(sum)
	require.NoError(t, frame.CompleteChecksum(b[:p.Len], start, off))
	require.NoError(t, frame.Parse(b, &p))
	require.True(t, frame.TransportChecksumOK(b, &p))
	return b
}

func TestDrainLifecycle(t *testing.T) {
	svc := web4(2)
	h := newEventHarness(t, &Config{TCPClosingTimeout: time.Second}, svc)
	flows := h.open(40, 1000)
	require.NoError(t, h.b.DrainBackend(svc.Key(), svc.Backends[1].Addr))
	h.b.controlTick(h.clock.Now(), false)
	select {
	case e := <-h.events:
		require.NotEqual(t, EventBackendDrained, e.Kind, "drained while flows remain")
	default:
	}
	// Established flows finish on the draining backend; new ones avoid it.
	for sport, be := range flows {
		fin := tcp4(sport, frame.FlagFIN|frame.FlagACK)
		assert.Equal(t, be, expectForward(t, fin, h.send(fin)))
	}
	for sport := uint16(9000); sport < 9050; sport++ {
		in := tcp4(sport, frame.FlagSYN)
		assert.Equal(t, 0, expectForward(t, in, h.send(in)))
	}
	h.clock.Advance(2 * time.Second)
	h.b.ExpireFlows(1 << 30)
	h.b.controlTick(h.clock.Now(), false)
	e := h.await(EventBackendDrained)
	assert.Equal(t, svc.Backends[1].Addr, e.Backend)
	assert.NoError(t, e.Reason)
}

func TestDrainDeadline(t *testing.T) {
	svc := web4(2)
	svc.DrainTimeout = time.Minute
	h := newEventHarness(t, nil, svc)
	h.open(40, 1000)
	require.NoError(t, h.b.DrainBackend(svc.Key(), svc.Backends[1].Addr))
	h.b.controlTick(h.clock.Now(), false)
	h.clock.Advance(time.Minute)
	h.b.controlTick(h.clock.Now(), false)
	e := h.await(EventBackendDrained)
	require.Error(t, e.Reason, "drained by deadline, flows left")
	assert.Positive(t, e.Count)
}

func TestSlowStart(t *testing.T) {
	svc := web4(2)
	h := newEventHarness(t, nil, svc)
	joiner := Backend{Addr: netip.MustParseAddr("192.0.2.40"), MAC: backendMAC(2)}
	svcNew := svc
	svcNew.SlowStart = 10 * time.Second
	svcNew.Backends = append(append([]Backend(nil), svc.Backends...), joiner)
	svcNew.Checks = nil
	h.clock.Advance(time.Minute) // the first two have long been serving
	require.NoError(t, h.b.UpdateService(svcNew))
	share := func(base uint16) float64 {
		n := 0
		for sport := base; sport < base+600; sport++ {
			in := tcp4(sport, frame.FlagSYN)
			if expectForward(t, in, h.send(in)) == 2 {
				n++
			}
		}
		return float64(n) / 600
	}
	early := share(10000)
	h.clock.Advance(5 * time.Second)
	h.b.controlTick(h.clock.Now(), false)
	mid := share(20000)
	h.clock.Advance(6 * time.Second)
	h.b.controlTick(h.clock.Now(), false)
	late := share(30000)
	t.Logf("joiner's share of new flows: start %.2f, half-way %.2f, after %.2f", early, mid, late)
	assert.Less(t, early, 0.08)
	assert.Greater(t, mid, early)
	assert.InDelta(t, 1.0/3, late, 0.1)
}

func TestSYNRetransmitSuspicion(t *testing.T) {
	h := newEventHarness(t, &Config{SYNRetransmitThreshold: 5}, web4(2))
	// Connections that completed and closed, then reuse their ports: new
	// connections, not retransmissions.
	for sport := range h.open(30, 2000) {
		for _, fl := range []uint8{frame.FlagFIN | frame.FlagACK, frame.FlagSYN} {
			in := tcp4(sport, fl)
			expectForward(t, in, h.send(in))
		}
	}
	for sport := uint16(100); sport < 120; sport++ {
		for range 3 { // the SYN and two retransmissions
			in := tcp4(sport, frame.FlagSYN)
			expectForward(t, in, h.send(in))
		}
	}
	h.b.controlTick(h.clock.Now(), true)
	e := h.await(EventSYNRetransmits)
	assert.GreaterOrEqual(t, e.Count, 5)
	var total uint64
	for _, be := range h.b.Stats().Services[0].Backends {
		total += be.SYNRetransmits
	}
	assert.Equal(t, uint64(40), total)
}

func TestResolvedMACSurvivesReload(t *testing.T) {
	svc := web4(2)
	svc.Backends[1].MAC = nil
	h := newHarness(t, &Config{OnEvent: func(Event) {}}, svc)
	require.NoError(t, h.b.SetBackendMAC(svc.Backends[1].Addr, backendMAC(1)))
	require.NoError(t, h.b.SetServices([]Service{svc}), "reloading the same configuration")
	got := map[int]bool{}
	for sport := uint16(1); sport < 200; sport++ {
		in := tcp4(sport, frame.FlagSYN)
		got[expectForward(t, in, h.send(in))] = true
	}
	assert.True(t, got[1], "the resolved MAC is kept across a reload")
	assert.Equal(t, backendMAC(1), h.b.Stats().Services[0].Backends[1].MAC)
	assert.Error(t, h.b.SetBackendMAC(netip.MustParseAddr("192.0.2.250"), backendMAC(1)))
}
