package netlab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCtx bounds every network step of a test, so a broken lab fails
// instead of hanging.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// labNamespaces lists the entries of the netns directory that belong to lab id.
func labNamespaces(t *testing.T, id string) []string {
	t.Helper()
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "dsrlb-"+id+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func httpURL(a netip.Addr, port uint16, path string) string {
	return "http://" + netip.AddrPortFrom(a, port).String() + path
}

func get(ctx context.Context, c *http.Client, url string) (body string, backend string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("status %s: %s", resp.Status, b)
	}
	return string(b), resp.Header.Get("X-Backend"), nil
}

func TestIntegrationLab(t *testing.T) {
	l := NewT(t, &Config{Servers: 3, Clients: 1, IPv6: true})
	ctx := testCtx(t)

	require.Len(t, l.Servers, 3)
	require.Len(t, l.Clients, 1)
	assert.Regexp(t, `^[0-9a-f]{6}$`, l.ID)
	assert.Equal(t, []netip.Addr{DefaultVIP4, DefaultVIP6}, l.VIPs)
	assert.ElementsMatch(t, []string{
		"dsrlb-" + l.ID + "-sw", "dsrlb-" + l.ID + "-lb", "dsrlb-" + l.ID + "-c0",
		"dsrlb-" + l.ID + "-s0", "dsrlb-" + l.ID + "-s1", "dsrlb-" + l.ID + "-s2",
	}, labNamespaces(t, l.ID))

	t.Run("addresses and MACs", func(t *testing.T) {
		assert.Equal(t, netip.MustParseAddr("192.0.2.2"), l.Balancer.IP)
		assert.Equal(t, netip.MustParseAddr("2001:db8:0:1::2"), l.Balancer.IP6)
		assert.Equal(t, netip.MustParseAddr("192.0.2.10"), l.Clients[0].IP)
		assert.Equal(t, netip.MustParseAddr("192.0.2.21"), l.Servers[1].IP)
		seen := map[string]string{}
		for _, h := range l.hosts() {
			require.Len(t, h.MAC, 6, h.Name)
			prev, dup := seen[h.MAC.String()]
			require.False(t, dup, "%s and %s share MAC %s", h.Name, prev, h.MAC)
			seen[h.MAC.String()] = h.Name
			addrs, err := h.Addrs("eth0")
			require.NoError(t, err)
			assert.Contains(t, addrs, netip.PrefixFrom(h.IP, 24), h.Name)
			assert.Contains(t, addrs, netip.PrefixFrom(h.IP6, 64), h.Name)
		}
	})

	t.Run("VIPs only on servers' lo", func(t *testing.T) {
		for _, h := range l.hosts() {
			lo, err := h.Addrs("lo")
			require.NoError(t, err)
			eth, err := h.Addrs("eth0")
			require.NoError(t, err)
			for _, v := range l.VIPs {
				vp := netip.PrefixFrom(v, v.BitLen())
				if strings.HasPrefix(h.Name, "s") {
					assert.Contains(t, lo, vp, h.Name)
				} else {
					assert.NotContains(t, lo, vp, h.Name)
				}
				for _, p := range eth {
					assert.NotEqual(t, v, p.Addr(), "%s has the VIP on eth0", h.Name)
				}
			}
		}
	})

	t.Run("sysctls", func(t *testing.T) {
		tests := []struct {
			h         *Host
			key, want string
		}{
			{l.Servers[0], "net.ipv4.conf.all.arp_ignore", "1"},
			{l.Servers[0], "net.ipv4.conf.eth0.arp_ignore", "1"},
			{l.Servers[2], "net.ipv4.conf.all.arp_announce", "2"},
			{l.Servers[2], "net.ipv4.conf.eth0.arp_announce", "2"},
			{l.Balancer, "net.ipv4.ip_forward", "0"},
			{l.Balancer, "net.ipv6.conf.all.forwarding", "0"},
			{l.Balancer, "net.ipv4.conf.all.arp_ignore", "0"},
			{l.Clients[0], "net.ipv6.conf.eth0.accept_dad", "0"},
			{l.Switch, "net.ipv6.conf.all.disable_ipv6", "1"},
		}
		for _, tt := range tests {
			got, err := tt.h.ReadSysctl(tt.key)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "%s %s", tt.h.Name, tt.key)
		}
	})

	t.Run("every host reaches every server by its own address", func(t *testing.T) {
		for _, from := range append([]*Host{l.Balancer}, l.Clients...) {
			c := from.HTTPClient()
			for _, s := range l.Servers {
				for _, a := range []netip.Addr{s.IP, s.IP6} {
					body, backend, err := get(ctx, c, httpURL(a, 80, "/"))
					require.NoError(t, err, "%s -> %s %v", from.Name, s.Name, a)
					assert.Equal(t, s.Name, body)
					assert.Equal(t, s.Name, backend)
				}
			}
			c.CloseIdleConnections()
		}
	})

	t.Run("client reaches balancer", func(t *testing.T) {
		for _, a := range []netip.Addr{l.Balancer.IP, l.Balancer.IP6} {
			ln, err := l.Balancer.Listen(ctx, "tcp", netip.AddrPortFrom(a, 7000).String())
			require.NoError(t, err)
			accepted := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					_, err = c.Write([]byte("hi"))
					c.Close()
				}
				accepted <- err
			}()
			c, err := l.Clients[0].DialContext(ctx, "tcp", netip.AddrPortFrom(a, 7000).String())
			require.NoError(t, err)
			b, err := io.ReadAll(c)
			require.NoError(t, err)
			assert.Equal(t, "hi", string(b))
			require.NoError(t, <-accepted)
			c.Close()
			ln.Close()
		}
	})

	t.Run("DialContext dials from the host's namespace", func(t *testing.T) {
		for _, a := range []netip.Addr{l.Servers[0].IP, l.Servers[0].IP6} {
			c, err := l.Clients[0].DialContext(ctx, "tcp", netip.AddrPortFrom(a, 80).String())
			require.NoError(t, err)
			local := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			assert.Contains(t, []netip.Addr{l.Clients[0].IP, l.Clients[0].IP6}, local)
			c.Close()
		}
	})

	t.Run("link stats count traffic", func(t *testing.T) {
		before, err := l.Clients[0].LinkStats()
		require.NoError(t, err)
		body, _, err := get(ctx, l.Clients[0].HTTPClient(), httpURL(l.Servers[0].IP, 80, "/bytes?n=100000"))
		require.NoError(t, err)
		require.Len(t, body, 100000)
		after, err := l.Clients[0].LinkStats()
		require.NoError(t, err)
		d := after.Sub(before)
		assert.GreaterOrEqual(t, d.RxBytes, uint64(100000))
		assert.Positive(t, d.TxPackets)
		sw, err := l.Switch.LinkStats()
		require.NoError(t, err)
		assert.Positive(t, sw.RxPackets)
	})

	t.Run("Command runs inside the namespace", func(t *testing.T) {
		out, err := l.Servers[1].Command(ctx, "cat", "/proc/net/fib_trie").CombinedOutput()
		require.NoError(t, err, string(out))
		assert.Contains(t, string(out), "192.0.2.21")
		assert.Contains(t, string(out), "192.0.2.100")
		out, err = l.Balancer.Command(ctx, "cat", "/proc/net/fib_trie").Output()
		require.NoError(t, err)
		assert.Contains(t, string(out), "192.0.2.2\n")
		assert.NotContains(t, string(out), "192.0.2.21")
		err = l.Servers[0].Command(ctx, "sh", "-c", "exit 3").Run()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 3, ee.ExitCode())
	})

	require.NoError(t, l.Close())
	assert.Empty(t, labNamespaces(t, l.ID), "Close removes every namespace")
	assert.NoFileExists(t, filepath.Join(markerDir, l.ID))
	require.NoError(t, l.Close(), "Close is idempotent")
	assert.ErrorIs(t, l.Servers[0].Do(func() error { return nil }), ErrClosed)
	assert.ErrorIs(t, l.StartServer(0), ErrClosed)
	assert.ErrorIs(t, l.Clients[0].Command(ctx, "true").Run(), ErrClosed)
}

// leftoversOfPID returns the namespaces in the netns directory whose lab
// marker names this process, or that have no marker at all but did not
// exist in before.
func ownNamespaces(t *testing.T, before map[string]bool) []string {
	t.Helper()
	ents, err := os.ReadDir(netnsDir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		m := nsPattern.FindStringSubmatch(e.Name())
		if m == nil || before[e.Name()] {
			continue
		}
		o, err := readMarker(m[1])
		if err != nil || o.pid == os.Getpid() {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestIntegrationNewCleansUpOnLateFailure(t *testing.T) {
	RequirePrivileged(t)
	before := map[string]bool{}
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			before[e.Name()] = true
		}
	}
	// The last server listens twice on one address: its child fails after
	// every namespace is built and the other children run.
	dup := netip.MustParseAddrPort("192.0.2.22:80")
	cfg := &Config{Servers: 3, IPv6: true, Server: func(i int) ServerOptions {
		if i == 2 {
			return ServerOptions{Listen: []netip.AddrPort{dup, dup}}
		}
		return ServerOptions{}
	}}
	l, err := New(testCtx(t), cfg)
	require.Error(t, err)
	assert.Nil(t, l)
	assert.Contains(t, err.Error(), "s2 not ready")
	assert.Contains(t, err.Error(), "address already in use", "the child's output is part of the error")
	assert.Empty(t, ownNamespaces(t, before))
}

func TestIntegrationNewRespectsContext(t *testing.T) {
	RequirePrivileged(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, err := New(ctx, nil)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, l)
}

func TestIntegrationDSRWithoutBalancer(t *testing.T) {
	l := NewT(t, &Config{IPv6: true})
	ctx := testCtx(t)
	cl := l.Clients[0]
	for _, vip := range l.VIPs {
		for _, s := range []*Host{l.Servers[1], l.Servers[2]} {
			t.Run(vip.String()+"/"+s.Name, func(t *testing.T) {
				// Aim the client's VIP traffic at one server's MAC, as the
				// balancer would, without touching the IP header.
				aimVIP(t, l, vip, s)

				c := cl.HTTPClient()
				defer c.CloseIdleConnections()
				body, backend, err := get(ctx, c, httpURL(vip, 80, "/"))
				require.NoError(t, err)
				assert.Equal(t, s.Name, body)
				assert.Equal(t, s.Name, backend)

				// A connected UDP socket only accepts datagrams from the
				// address it is connected to: receiving the echo proves
				// the reply came from the VIP.
				u, err := cl.DialContext(ctx, "udp", netip.AddrPortFrom(vip, 9000).String())
				require.NoError(t, err)
				defer u.Close()
				dl, _ := ctx.Deadline()
				require.NoError(t, u.SetDeadline(dl))
				_, err = u.Write([]byte("hello"))
				require.NoError(t, err)
				buf := make([]byte, 100)
				n, err := u.Read(buf)
				require.NoError(t, err)
				assert.Equal(t, s.Name+":hello", string(buf[:n]))
			})
		}
	}
}

func TestIntegrationMisconfiguredServers(t *testing.T) {
	zero := 0
	l := NewT(t, &Config{Servers: 3, Server: func(i int) ServerOptions {
		switch i {
		case 1:
			return ServerOptions{NoVIP: true}
		case 2:
			return ServerOptions{ARPIgnore: &zero, ARPAnnounce: &zero}
		}
		return ServerOptions{}
	}})
	ctx := testCtx(t)
	cl := l.Clients[0]
	vip := l.VIPs[0]

	lo, err := l.Servers[1].Addrs("lo")
	require.NoError(t, err)
	assert.NotContains(t, lo, netip.PrefixFrom(vip, 32))
	for _, k := range []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.eth0.arp_announce"} {
		v, err := l.Servers[2].ReadSysctl(k)
		require.NoError(t, err)
		assert.Equal(t, "0", v, k)
	}

	// Only s2 (arp_ignore=0) answers ARP for the VIP it holds on lo: the
	// misconfiguration that lets a server steal the VIP from the balancer.
	body, _, err := get(ctx, cl.HTTPClient(), httpURL(vip, 80, "/"))
	require.NoError(t, err)
	assert.Equal(t, "s2", body)

	// s1 has no VIP: its kernel drops VIP traffic, a silent black hole.
	// (s2 stops answering for the VIP first, or it would keep stealing it.)
	for _, k := range []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.eth0.arp_ignore"} {
		require.NoError(t, l.Servers[2].Sysctl(k, "1"))
	}
	aimVIP(t, l, vip, l.Servers[1])
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, _, err = get(short, cl.HTTPClient(), httpURL(vip, 80, "/"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestIntegrationBulkViaVIP(t *testing.T) {
	const size = 20 << 20
	l := NewT(t, &Config{IPv6: true})
	ctx := testCtx(t)
	cl := l.Clients[0]
	s := l.Servers[1]
	for _, vip := range l.VIPs {
		t.Run(vip.String(), func(t *testing.T) {
			aimVIP(t, l, vip, s)
			c := cl.HTTPClient()
			defer c.CloseIdleConnections()

			req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpURL(vip, 80, fmt.Sprintf("/bytes?n=%d", size)), nil)
			require.NoError(t, err)
			resp, err := c.Do(req)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, s.Name, resp.Header.Get("X-Backend"))
			var off int64
			buf := make([]byte, 64<<10)
			for {
				n, err := resp.Body.Read(buf)
				if i := CheckPattern(buf[:n], off); i >= 0 {
					t.Fatalf("byte %d differs", off+int64(i))
				}
				off += int64(n)
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
			}
			resp.Body.Close()
			require.Equal(t, int64(size), off)

			payload := make([]byte, size)
			FillPattern(payload, 7)
			want := sha256.Sum256(payload)
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, httpURL(vip, 80, "/upload"), bytes.NewReader(payload))
			require.NoError(t, err)
			resp, err = c.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var got UploadResult
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			assert.Equal(t, UploadResult{N: size, SHA256: hex.EncodeToString(want[:])}, got)
		})
	}
}

func TestIntegrationStopStartServer(t *testing.T) {
	l := NewT(t, nil)
	ctx := testCtx(t)
	s := l.Servers[1]
	url := httpURL(s.IP, 80, "/")
	newClient := func() *http.Client {
		c := l.Clients[0].HTTPClient()
		c.Transport.(*http.Transport).DisableKeepAlives = true
		return c
	}

	_, _, err := get(ctx, newClient(), url)
	require.NoError(t, err)

	require.NoError(t, l.StopServer(1))
	require.NoError(t, l.StopServer(1), "stopping a stopped server is a no-op")
	_, _, err = get(ctx, newClient(), url)
	require.ErrorIs(t, err, syscallECONNREFUSED, "nothing listens while stopped")
	// Other servers are untouched.
	body, _, err := get(ctx, newClient(), httpURL(l.Servers[0].IP, 80, "/"))
	require.NoError(t, err)
	assert.Equal(t, "s0", body)

	require.NoError(t, l.StartServer(1))
	require.NoError(t, l.StartServer(1), "starting a running server is a no-op")
	body, _, err = get(ctx, newClient(), url)
	require.NoError(t, err, "StartServer returns only once the server listens")
	assert.Equal(t, "s1", body)

	require.Error(t, l.StopServer(7))
	require.Error(t, l.StartServer(-1))
}

func TestIntegrationNoServerProcesses(t *testing.T) {
	l := NewT(t, &Config{Servers: 1, NoServerProcesses: true})
	ctx := testCtx(t)
	_, _, err := get(ctx, l.Clients[0].HTTPClient(), httpURL(l.Servers[0].IP, 80, "/"))
	require.ErrorIs(t, err, syscallECONNREFUSED)
	require.NoError(t, l.StartServer(0))
	body, _, err := get(ctx, l.Clients[0].HTTPClient(), httpURL(l.Servers[0].IP, 80, "/"))
	require.NoError(t, err)
	assert.Equal(t, "s0", body)
}

func TestIntegrationOffSegmentVIP(t *testing.T) {
	vip := netip.MustParseAddr("203.0.113.80")
	l := NewT(t, &Config{Servers: 1, VIPs: []netip.Addr{vip}, HTTPPort: 8080, UDPPort: 9999})
	ctx := testCtx(t)
	cl := l.Clients[0]
	aimVIP(t, l, vip, l.Servers[0])
	body, _, err := get(ctx, cl.HTTPClient(), httpURL(vip, 8080, "/"))
	require.NoError(t, err)
	assert.Equal(t, "s0", body)
}

func TestIntegrationSweepLeftovers(t *testing.T) {
	RequirePrivileged(t)
	// A process that has certainly exited: its PID is dead (until reused,
	// which the start time in the marker detects).
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+roleExit)
	require.NoError(t, cmd.Run())
	deadPID := cmd.ProcessState.Pid()
	ownStart, err := procStart(os.Getpid())
	require.NoError(t, err)

	tests := []struct {
		name     string
		owner    owner
		wantGone bool
	}{
		{"dead owner", owner{pid: deadPID, start: 1}, true},
		{"PID reused by another process", owner{pid: os.Getpid(), start: ownStart + 1}, true},
		{"live owner", owner{pid: os.Getpid(), start: ownStart}, false},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		id, err := randomID()
		require.NoError(t, err)
		ids[i] = id
		require.NoError(t, writeMarkerFor(id, tt.owner))
		for _, role := range []string{"sw", "s0"} {
			require.NoError(t, createNamedNS(nsName(id, role)))
		}
		t.Cleanup(func() {
			for _, role := range []string{"sw", "s0"} {
				assert.NoError(t, deleteNamedNS(nsName(id, role)))
			}
			assert.NoError(t, removeMarker(id))
		})
	}
	// An unowned namespace in our naming scheme is left alone.
	orphan, err := randomID()
	require.NoError(t, err)
	require.NoError(t, createNamedNS(nsName(orphan, "lb")))
	t.Cleanup(func() { assert.NoError(t, deleteNamedNS(nsName(orphan, "lb"))) })

	removed, err := SweepLeftovers(nil)
	require.NoError(t, err)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := labNamespaces(t, ids[i])
			if tt.wantGone {
				assert.Empty(t, names)
				assert.Contains(t, removed, nsName(ids[i], "sw"))
				assert.NoFileExists(t, filepath.Join(markerDir, ids[i]))
			} else {
				assert.Len(t, names, 2)
				assert.NotContains(t, removed, nsName(ids[i], "sw"))
				assert.FileExists(t, filepath.Join(markerDir, ids[i]))
			}
		})
	}
	assert.Equal(t, []string{nsName(orphan, "lb")}, labNamespaces(t, orphan))
}

func TestIntegrationDoIsolatesCallerThread(t *testing.T) {
	l := NewT(t, &Config{Servers: 1})
	read := func() string {
		b, err := os.ReadFile("/proc/thread-self/ns/net")
		if err == nil {
			return string(b)
		}
		s, _ := os.Readlink("/proc/thread-self/ns/net")
		return s
	}
	mine := read()
	var inside string
	require.NoError(t, l.Servers[0].Do(func() error { inside = read(); return nil }))
	assert.NotEqual(t, mine, inside)
	assert.Equal(t, mine, read(), "the caller's thread keeps its namespace")
	wantErr := errors.New("boom")
	assert.ErrorIs(t, l.Servers[0].Do(func() error { return wantErr }), wantErr)
}

var syscallECONNREFUSED = syscall.ECONNREFUSED
