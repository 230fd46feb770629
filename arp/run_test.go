package arp

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nextSent returns the next frame written to conn whose ARP packet matches
// keep, failing after a bounded wait.
func nextSent(t *testing.T, conn *fakeConn, keep func(decoded) bool) decoded {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-conn.out:
			d := decode(t, f.b)
			if keep(d) {
				return d
			}
		case <-timeout:
			t.Fatal("no matching frame sent")
		}
	}
}

func TestRun(t *testing.T) {
	events := make(chan Event, 16)
	conn := newFakeConn()
	s, err := New(conn, &Config{
		HardwareAddr: ourMAC, IP: ourIP,
		ResolveInterval: time.Hour, ConflictProbeInterval: time.Hour,
		OnEvent: func(e Event) { events <- e },
	})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	s.SetVIPs([]netip.Addr{vip})
	// The announcement burst starts without waiting for the timer.
	a := nextSent(t, conn, func(d decoded) bool { return d.arp.SenderIP == vip && d.arp.TargetIP == vip })
	assert.Equal(t, arp.OperationRequest, a.arp.Operation)

	conn.in <- request(t, clientMAC, clientIP, vip)
	r := nextSent(t, conn, func(d decoded) bool { return d.arp.Operation == arp.OperationReply })
	assert.Equal(t, clientMAC, r.eth.Destination)
	assert.Equal(t, vip, r.arp.SenderIP)

	s.SetBackends([]Backend{{Addr: srvIP}})
	nextSent(t, conn, func(d decoded) bool { return d.arp.TargetIP == srvIP })
	conn.in <- reply(t, srvMAC, srvIP, ourMAC, ourIP)
	select {
	case e := <-events:
		assert.Equal(t, Resolved, e.Kind)
		assert.Equal(t, srvMAC, e.MAC)
	case <-time.After(5 * time.Second):
		t.Fatal("no Resolved event")
	}
	mac, ok := s.Lookup(srvIP)
	require.True(t, ok)
	assert.Equal(t, srvMAC, mac)

	require.ErrorIs(t, s.Run(ctx), ErrRunning)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	st := s.Stats()
	assert.EqualValues(t, 2, st.Received)
	assert.EqualValues(t, 1, st.Replies)
	assert.EqualValues(t, 1, st.ResolveRequests)
	assert.NotZero(t, st.Announcements)

	// Run again on the same socket: the stop deadline was cleared.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { done <- s.Run(ctx2) }()
	conn.in <- request(t, clientMAC, clientIP, vip)
	nextSent(t, conn, func(d decoded) bool { return d.arp.Operation == arp.OperationReply })
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		require.NoError(t, err, "Close stops Run cleanly")
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	require.NoError(t, s.Close(), "Close is idempotent")
	require.ErrorIs(t, s.Run(context.Background()), net.ErrClosed, "a closed Speaker cannot run")
}

// OnEvent may call back into the Speaker: no lock is held.
func TestRunEventCallbackReentrant(t *testing.T) {
	conn := newFakeConn()
	got := make(chan bool, 1)
	var s *Speaker
	var once sync.Once
	s, err := New(conn, &Config{
		HardwareAddr: ourMAC, IP: ourIP, ConflictProbeInterval: time.Hour,
		OnEvent: func(e Event) {
			_, ok := s.Lookup(e.Addr)
			s.SetVIPs(s.VIPs())
			once.Do(func() { got <- ok })
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	s.SetBackends([]Backend{{Addr: srvIP}})
	nextSent(t, conn, func(d decoded) bool { return d.arp.TargetIP == srvIP })
	conn.in <- reply(t, srvMAC, srvIP, ourMAC, ourIP)
	select {
	case ok := <-got:
		assert.True(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("callback did not run")
	}
}

func TestRunWriteErrorsCounted(t *testing.T) {
	conn := newFakeConn()
	s, err := New(conn, &Config{HardwareAddr: ourMAC})
	require.NoError(t, err)
	s.closed.Store(true) // keep Close semantics out of the way
	require.NoError(t, conn.Close())
	s.SetVIPs([]netip.Addr{vip})
	b := s.step(request(t, clientMAC, clientIP, vip), t0)
	s.apply(&b)
	assert.EqualValues(t, 1, s.Stats().WriteErrors)
	assert.Zero(t, s.Stats().Replies)
}
