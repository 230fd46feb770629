package health

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// halfOpen counts TCP sockets in SYN_RECV towards local port in host's
// namespace (read on a thread inside it).
func halfOpen(t *testing.T, h *netlab.Host, port uint16) int {
	var n int
	require.NoError(t, h.Do(func() error {
		f, err := os.Open("/proc/thread-self/net/tcp")
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		suffix := fmt.Sprintf(":%04X", port)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 3 && strings.HasSuffix(fs[1], suffix) && fs[3] == "03" {
				n++
			}
		}
		return sc.Err()
	}))
	return n
}

func TestIntegrationDSRPathChecker(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{
		Servers: 2,
		Server: func(i int) netlab.ServerOptions {
			return netlab.ServerOptions{NoVIP: i == 1}
		},
	})
	good, noVIP := lab.Servers[0], lab.Servers[1]
	vip, port := lab.VIPs[0], lab.Cfg.HTTPPort

	newChecker := func(cfg *DSRPathConfig) *DSRPathChecker {
		var c *DSRPathChecker
		require.NoError(t, lab.Balancer.Do(func() error {
			var err error
			c, err = NewDSRPathChecker(cfg)
			return err
		}))
		t.Cleanup(func() { assert.NoError(t, c.Close()) })
		return c
	}
	check := func(c Checker, tg Target) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Check(ctx, tg)
	}
	dsrTarget := func(h *netlab.Host) Target {
		return Target{Addr: h.IP, Port: port, VIP: vip, MAC: h.MAC}
	}

	own := newChecker(&DSRPathConfig{Interface: lab.Balancer.Link})
	// A probe source no host owns: the balancer's kernel never RSTs the
	// SYN-ACK and the checker answers the backend's ARP for it.
	spare := newChecker(&DSRPathConfig{Interface: lab.Balancer.Link, Source: netip.MustParseAddr("192.0.2.250")})

	t.Run("correct server passes", func(t *testing.T) {
		for _, c := range []*DSRPathChecker{own, spare} {
			for range 3 {
				require.NoError(t, check(c, dsrTarget(good)))
			}
		}
		assert.Zero(t, halfOpen(t, good, port), "the probe's RST leaves no half-open connection")
	})

	t.Run("server without loopback VIP passes TCP but fails DSR path", func(t *testing.T) {
		require.NoError(t, lab.Balancer.Do(func() error {
			return check(&TCPChecker{}, Target{Addr: noVIP.IP, Port: port})
		}), "the service listens on the server's own address")
		err := check(own, dsrTarget(noVIP))
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "VIP missing")
		assert.Error(t, check(spare, dsrTarget(noVIP)))
	})

	t.Run("stopped service is refused on the VIP", func(t *testing.T) {
		require.NoError(t, lab.StopServer(0))
		err := check(own, dsrTarget(good))
		assert.ErrorIs(t, err, ErrUnexpectedResponse)
		require.NoError(t, lab.StartServer(0))
		require.NoError(t, check(own, dsrTarget(good)), "back once the service listens again")
	})

	t.Run("concurrent probes", func(t *testing.T) {
		errs := make(chan error, 20)
		for i := range 20 {
			tg := dsrTarget(good)
			if i%2 == 1 {
				tg = dsrTarget(noVIP)
			}
			go func() { errs <- check(own, tg) }()
		}
		var ok, failed int
		for range 20 {
			if recv(t, errs, "probe result") == nil {
				ok++
			} else {
				failed++
			}
		}
		assert.Equal(t, 10, ok)
		assert.Equal(t, 10, failed)
	})

	t.Run("incomplete target", func(t *testing.T) {
		tg := dsrTarget(good)
		tg.MAC = nil
		assert.ErrorIs(t, check(own, tg), ErrTargetIncomplete)
	})

	t.Run("monitor events", func(t *testing.T) {
		events := make(chan Event, 10)
		m := NewMonitor(&MonitorConfig{Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, OnEvent: func(e Event) { events <- e }})
		kGood, err := m.Add(dsrTarget(good), own)
		require.NoError(t, err)
		kBad, err := m.Add(dsrTarget(noVIP), own)
		require.NoError(t, err)
		runMonitor(t, m)
		got := map[Key]bool{}
		for range 2 {
			ev := recv(t, events, "first state")
			got[ev.Key] = ev.Up
		}
		assert.Equal(t, map[Key]bool{kGood: true, kBad: false}, got)
	})

	t.Run("closed checker", func(t *testing.T) {
		c := newChecker(&DSRPathConfig{Interface: lab.Balancer.Link})
		require.NoError(t, c.Close())
		assert.ErrorIs(t, check(c, dsrTarget(good)), ErrClosed)
	})
}
