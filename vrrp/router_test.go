package vrrp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// segment is an in-memory multicast segment for Routers.
type segment struct {
	mu    sync.Mutex
	ports []*port
}

type pkt struct {
	b        []byte
	src, dst netip.Addr
	ttl      int
}

type port struct {
	seg      *segment
	in       chan pkt
	mu       sync.Mutex
	deadline time.Time
	dead     chan struct{}
	closed   chan struct{}
	once     sync.Once
	ttl      int // TTL to send with (255 unless a test changes it)
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (s *segment) port() *port {
	p := &port{seg: s, in: make(chan pkt, 64), dead: make(chan struct{}, 1), closed: make(chan struct{}), ttl: TTL}
	s.mu.Lock()
	s.ports = append(s.ports, p)
	s.mu.Unlock()
	return p
}

func (p *port) read(buf []byte) (int, netip.Addr, netip.Addr, int, error) {
	for {
		p.mu.Lock()
		d := p.deadline
		p.mu.Unlock()
		if !d.IsZero() && !time.Now().Before(d) {
			return 0, netip.Addr{}, netip.Addr{}, 0, timeoutErr{}
		}
		select {
		case k := <-p.in:
			return copy(buf, k.b), k.src, k.dst, k.ttl, nil
		case <-p.dead:
		case <-p.closed:
			return 0, netip.Addr{}, netip.Addr{}, 0, net.ErrClosed
		}
	}
}

func (p *port) write(b []byte, src netip.Addr) error {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	for _, o := range p.seg.ports {
		if o == p {
			continue
		}
		select {
		case o.in <- pkt{b: append([]byte(nil), b...), src: src, dst: Group4, ttl: p.ttl}:
		default:
		}
	}
	return nil
}

func (p *port) setReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	p.mu.Unlock()
	select {
	case p.dead <- struct{}{}:
	default:
	}
	return nil
}

func (p *port) close() error { p.once.Do(func() { close(p.closed) }); return nil }

// eventLog collects a router's events for tests to wait on.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }
func (l *eventLog) kinds() []Kind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var k []Kind
	for _, e := range l.ev {
		k = append(k, e.Kind)
	}
	return k
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func memRouter(t *testing.T, seg *segment, addr netip.Addr, prio uint8, log *eventLog) (*Router, *port) {
	return memRouterEvery(t, seg, addr, prio, log, 20*time.Millisecond)
}

// memRouterEvery is memRouter advertising every interval.
func memRouterEvery(t *testing.T, seg *segment, addr netip.Addr, prio uint8, log *eventLog, interval time.Duration) (*Router, *port) {
	s, err := (&Config{Interface: "mem", VRID: 7, Priority: prio, Interval: interval,
		VIPs: []netip.Addr{vip1}, Addr: addr, OnEvent: log.add, Logger: testLogger()}).settings()
	require.NoError(t, err)
	p := seg.port()
	return newRouter(s, p), p
}

func run(t *testing.T, r *Router) (cancel func() error) {
	ctx, c := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			c()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestRouterElectionAndFastTakeover(t *testing.T) {
	seg := &segment{}
	var la, lb eventLog
	// b must never see a silent master down interval while a runs: on a
	// loaded machine 20 ms advertisements can be late by more than the
	// 72 ms that interval would be, so this test advertises every 100 ms,
	// and b starts once a is master.
	a, _ := memRouterEvery(t, seg, srcA, 200, &la, 100*time.Millisecond)
	b, _ := memRouterEvery(t, seg, srcB, 100, &lb, 100*time.Millisecond)
	stopA := run(t, a)
	require.Eventually(t, func() bool { return a.State() == Master }, 10*time.Second, 5*time.Millisecond)
	run(t, b)
	// b hears a's advertisements and stays backup for several master down
	// intervals of advertisements.
	require.Eventually(t, func() bool { return b.Stats().Received >= 12 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, Backup, b.State())
	assert.NotContains(t, lb.kinds(), BecameMaster)

	// a stops cleanly: its priority 0 advertisement hands over to b.
	require.NoError(t, stopA())
	assert.Equal(t, []Kind{BecameBackup, BecameMaster, Stopped}, la.kinds())
	require.Eventually(t, func() bool { return b.State() == Master }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, Initialize, a.State())
}

func TestRouterDropsBadTTL(t *testing.T) {
	seg := &segment{}
	var la, lb eventLog
	a, pa := memRouter(t, seg, srcA, 200, &la)
	b, _ := memRouter(t, seg, srcB, 100, &lb)
	pa.ttl = 254 // as if a router forwarded a's advertisements
	run(t, a)
	run(t, b)
	require.Eventually(t, func() bool { return b.Stats().TTLDropped >= 5 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return b.State() == Master }, 10*time.Second, 5*time.Millisecond,
		"advertisements with TTL != 255 are ignored, so b becomes master too")
	assert.Zero(t, b.Stats().Received)
}

func TestRouterRunTwice(t *testing.T) {
	seg := &segment{}
	var l eventLog
	a, _ := memRouter(t, seg, srcA, 200, &l)
	run(t, a)
	require.Eventually(t, func() bool { return a.State() != Initialize }, 10*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, a.Run(context.Background()), ErrRunning)
}

// TestRouterClosedUnderRun: Close under a running master is a crash to its
// peers (no priority 0 advertisement), and the Stopped event says so.
func TestRouterClosedUnderRun(t *testing.T) {
	seg := &segment{}
	var la, lb eventLog
	a, _ := memRouter(t, seg, srcA, 200, &la)
	b, _ := memRouter(t, seg, srcB, 100, &lb)
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	run(t, b)
	require.Eventually(t, func() bool { return a.State() == Master && b.State() == Backup }, 10*time.Second, 5*time.Millisecond)
	sentBefore := a.Stats().Sent
	require.NoError(t, a.Close())
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	la.mu.Lock()
	last := la.ev[len(la.ev)-1]
	la.mu.Unlock()
	require.Equal(t, Stopped, last.Kind)
	assert.Contains(t, last.Reason, "no priority 0 advertisement was sent")
	assert.Equal(t, sentBefore, a.Stats().Sent, "nothing sent after Close")
	require.Eventually(t, func() bool { return b.State() == Master }, 10*time.Second, 5*time.Millisecond, "the backup takes over after the master down interval")
}
