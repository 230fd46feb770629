package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// keepAlive is one long-lived client connection to the VIP that asks for
// pattern bytes over and over on the same TCP connection.
type keepAlive struct {
	conn    net.Conn
	rd      *bufio.Reader
	backend string // the server that answered the first request

	done atomic.Int64 // requests answered byte-exact by backend
	mu   sync.Mutex
	err  error // the first failure: an error, a wrong byte, another server
}

const keepAliveBytes = 32 << 10

func (k *keepAlive) ask() (string, error) {
	if err := k.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(k.conn, "GET /bytes?n=%d HTTP/1.1\r\nHost: vip\r\n\r\n", keepAliveBytes); err != nil {
		return "", err
	}
	r, err := http.ReadResponse(k.rd, nil)
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", err
	}
	if r.StatusCode != http.StatusOK || len(body) != keepAliveBytes {
		return "", fmt.Errorf("status %s, %d bytes", r.Status, len(body))
	}
	if i := netlab.CheckPattern(body, 0); i >= 0 {
		return "", fmt.Errorf("byte %d differs", i)
	}
	return r.Header.Get("X-Backend"), nil
}

// run asks until stop closes or the first failure, at most every 20 ms
// (the machine is shared) and at most 20,000 times.
func (k *keepAlive) run(stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range 20000 {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		be, err := k.ask()
		if err == nil && be != k.backend {
			err = fmt.Errorf("answered by %s, not %s", be, k.backend)
		}
		if err != nil {
			k.mu.Lock()
			k.err = err
			k.mu.Unlock()
			return
		}
		k.done.Add(1)
	}
}

func (k *keepAlive) failure() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// TestIntegrationDaemonXDPRestart runs the daemon in XDP mode with its maps
// pinned, opens keep-alive TCP connections to the VIP that keep asking for
// bytes, and restarts the daemon (SIGTERM, a new process on the same
// pins): no connection sees a reset or a wrong byte, each stays on its
// server, and they keep flowing while no daemon runs. A second restart,
// after a crash, with one backend removed resets only that backend's
// connections (rescheduled to a server that does not know them); the
// others go on.
func TestIntegrationDaemonXDPRestart(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDaemon(t)
	pins := netlab.MountBPFFS(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 3})
	t.Cleanup(func() { _ = dsr.RemoveXDPPins(filepath.Join(pins, lab.Balancer.Link)) })
	config := func(servers []int) string {
		return strings.Replace(labConfig(lab, servers, ""), "listen:", "dataplane: xdp\nxdp_pin: "+pins+"\nlisten:", 1)
	}
	waitHealthy := func(d *runningDaemon, servers []int) {
		for _, i := range servers {
			d.waitMetric(fmt.Sprintf(`dsrlb_backend_resolved{backend="%s",service="web"}`, lab.Servers[i].IP), 1)
			d.waitMetric(fmt.Sprintf(`dsrlb_backend_healthy{backend="%s",service="web"}`, lab.Servers[i].IP), 1)
		}
	}
	stopDaemon := func(d *runningDaemon) {
		require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-d.done:
			require.NoError(t, err, "the daemon stops cleanly on SIGTERM")
		case <-time.After(15 * time.Second):
			t.Fatal("the daemon did not stop within 15 s of SIGTERM")
		}
		assert.Contains(t, d.logs.String(), "the XDP program stays attached and pinned")
	}

	d1 := startDaemon(t, lab, bin, config([]int{0, 1}))
	waitHealthy(d1, []int{0, 1})
	assert.Contains(t, d1.logs.String(), "xdp: no pinned state: starting empty and pinning")

	// Keep-alive connections until both servers hold some (mh spreads
	// them; 64 connections all on one of two servers would be a broken
	// scheduler).
	var conns []*keepAlive
	per := map[string]int{}
	for len(conns) < 64 && (len(per) < 2 || len(conns) < 8) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := lab.Clients[0].DialContext(ctx, "tcp", netip.AddrPortFrom(lab.VIPs[0], 80).String())
		cancel()
		require.NoError(t, err)
		k := &keepAlive{conn: c, rd: bufio.NewReader(c)}
		t.Cleanup(func() { c.Close() })
		k.backend, err = k.ask()
		require.NoError(t, err)
		conns = append(conns, k)
		per[k.backend]++
	}
	require.Len(t, per, 2, "both servers hold connections: %v", per)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, k := range conns {
		wg.Go(func() { k.run(stop) })
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	// progress waits until every connection has answered n more requests
	// (or failed, which the caller checks).
	progress := func(what string, n int64, ks []*keepAlive, exited <-chan error) {
		t.Helper()
		base := make([]int64, len(ks))
		for i, k := range ks {
			base[i] = k.done.Load()
		}
		waitFor(t, what, 30*time.Second, exited, func() bool {
			for i, k := range ks {
				if k.failure() == nil && k.done.Load() < base[i]+n {
					return false
				}
			}
			return true
		})
	}
	failures := func(ks []*keepAlive) []string {
		var out []string
		for _, k := range ks {
			if err := k.failure(); err != nil {
				out = append(out, fmt.Sprintf("%s via %s: %v", k.conn.LocalAddr(), k.backend, err))
			}
		}
		return out
	}
	progress("traffic on every connection", 3, conns, d1.done)
	require.Empty(t, failures(conns))

	// Restart: the connections flow on while no daemon runs, and after.
	stopDaemon(d1)
	progress("traffic on every connection while no daemon runs", 2, conns, nil)
	require.Empty(t, failures(conns), "the pinned program forwards without its process")
	d2 := startDaemon(t, lab, bin, config([]int{0, 1}))
	waitHealthy(d2, []int{0, 1})
	progress("traffic on every connection after the restart", 5, conns, d2.done)
	require.Empty(t, failures(conns), "no connection was reset, got a wrong byte or changed server across the restart")
	logs := d2.logs.String()
	assert.Contains(t, logs, "xdp: took over the pinned state of the previous process")
	assert.Contains(t, logs, `"program_replaced":true`)
	assert.NotContains(t, logs, "replaced: its content is lost")

	// Restart after a crash (SIGKILL: nothing closed in order) with
	// server 1 removed (server 2 added): its connections are rescheduled
	// and reset by the server they now reach; server 0's go on.
	require.NoError(t, d2.cmd.Process.Kill())
	select {
	case <-d2.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the daemon did not die within 15 s of SIGKILL")
	}
	removed := lab.Servers[1].Name
	var stay, moved []*keepAlive
	for _, k := range conns {
		if k.backend == removed {
			moved = append(moved, k)
		} else {
			stay = append(stay, k)
		}
	}
	d3 := startDaemon(t, lab, bin, config([]int{0, 2}))
	waitHealthy(d3, []int{0, 2})
	assert.Contains(t, d3.logs.String(), "xdp: took over the pinned state of the previous process")
	waitFor(t, "the removed server's connections to fail", 30*time.Second, d3.done, func() bool {
		return len(failures(moved)) == len(moved)
	})
	progress("traffic on the remaining server's connections", 5, stay, d3.done)
	assert.Empty(t, failures(stay), "the connections of the server that stays are untouched")
	close(stop)
	wg.Wait()
	stopDaemon(d3)
	require.True(t, xdpAttached(t, lab), "the pinned program outlives its daemon")

	// A daemon that does not run XDP removes the pins of the previous run,
	// which detaches its program, and forwards with packet sockets.
	d4 := startDaemon(t, lab, bin, strings.Replace(config([]int{0, 2}), "dataplane: xdp\n", "dataplane: packet\n", 1))
	waitHealthy(d4, []int{0, 2})
	assert.Contains(t, d4.logs.String(), "xdp: removed the pins of a previous run and detached its program")
	assert.False(t, xdpAttached(t, lab))
	got, err := fetchVIP(lab, "/")
	require.NoError(t, err, "packet sockets forward once the stale program is gone")
	assert.NotEmpty(t, got)
}

// xdpAttached reports whether the balancer's interface runs an XDP program.
func xdpAttached(t *testing.T, lab *netlab.Lab) bool {
	t.Helper()
	var on bool
	require.NoError(t, lab.Balancer.Do(func() error {
		l, err := netlink.LinkByName(lab.Balancer.Link)
		if err != nil {
			return err
		}
		on = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
		return nil
	}))
	return on
}
