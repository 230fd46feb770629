package bgp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/stretchr/testify/require"
)

// The balancer side of the router tests runs in a child process inside the
// lab's balancer namespace (a namespace belongs to a thread, and GoBGP
// opens its sockets from threads of its own), and so that a test can kill
// and restart it like a crashed daemon.

const envChild = "DSRLB_BGP_TEST_CHILD"

type childConfig struct {
	RouterID    string
	LocalAS     uint32
	Peer        string
	PeerAS      uint32
	VIP         string
	Backend     string
	Healthy     bool // the backend's initial health
	RestartTime time.Duration
	BFD         bool
	NoGR        bool
}

func init() { childMain = runChildIfRequested }

func runChildIfRequested() {
	raw := os.Getenv(envChild)
	if raw == "" {
		return
	}
	if err := runChild(raw); err != nil {
		fmt.Fprintln(os.Stderr, "bgp test child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runChild is a minimal balancer: one service with one backend whose health
// check passes or fails on command ("up", "down" on stdin), a Speaker and an
// Announcer. It reports events with their wall-clock time on stdout.
func runChild(raw string) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return err
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	var healthy atomic.Bool
	healthy.Store(cfg.Healthy)
	check := health.CheckerFunc(func(context.Context, health.Target) error {
		if healthy.Load() {
			return nil
		}
		return fmt.Errorf("told to fail")
	})
	peer := Peer{Addr: netip.MustParseAddr(cfg.Peer), AS: cfg.PeerAS, HoldTime: 9 * time.Second}
	if !cfg.NoGR {
		peer.GracefulRestart = &GracefulRestart{RestartTime: cfg.RestartTime}
	}
	if cfg.BFD {
		peer.BFD = &BFD{}
	}
	speaker, err := New(&Config{
		RouterID: netip.MustParseAddr(cfg.RouterID), LocalAS: cfg.LocalAS,
		Peers:   []Peer{peer},
		OnEvent: func(e Event) { say("bgp %d %s", e.At.UnixNano(), e.Kind) },
	})
	if err != nil {
		return err
	}
	var ann atomic.Pointer[Announcer]
	b, err := dsr.New(&dsr.Config{
		Health: &health.MonitorConfig{Interval: 50 * time.Millisecond, Rise: 1, Fall: 1},
		OnEvent: func(e dsr.Event) {
			say("dsr %d %s", e.At.UnixNano(), e.Kind)
			ann.Load().HandleEvent(e)
		},
	})
	if err != nil {
		return err
	}
	if err := b.AddService(dsr.Service{VIP: netip.MustParseAddr(cfg.VIP), Protocol: dsr.TCP, Port: 80,
		Checks:   []dsr.HealthCheck{{Checker: check}},
		Backends: []dsr.Backend{{Addr: netip.MustParseAddr(cfg.Backend), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x21}}}}); err != nil {
		return err
	}
	a, err := NewAnnouncer(b, speaker, nil)
	if err != nil {
		return err
	}
	ann.Store(a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 3)
	go func() { errs <- b.Run(ctx) }()
	go func() { errs <- speaker.Run(ctx) }()
	go func() { errs <- a.Run(ctx) }()
	say("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "up":
			healthy.Store(true)
		case "down":
			healthy.Store(false)
		case "rib":
			rib, err := speaker.RIB()
			if err != nil {
				return err
			}
			var adj []string
			speaker.mu.Lock()
			srv := speaker.srv
			speaker.mu.Unlock()
			if srv != nil {
				adj = adjInOf(srv, cfg.Peer)
			}
			say("rib %s adjin %s", joinPrefixes(rib), strings.Join(adj, ","))
		}
	}
	// stdin closed: a clean stop.
	cancel()
	for range 3 {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// child is a running balancer-side process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

func startChild(t *testing.T, h *netlab.Host, cfg childConfig) *child {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := h.Command(context.Background(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+string(raw))
	cmd.Stderr = &testWriter{t: t, prefix: "child: "}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	go func() { defer close(c.done); _ = cmd.Wait() }()
	t.Cleanup(c.kill)
	c.await(t, "ready", 30*time.Second)
	return c
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

func (c *child) send(t *testing.T, line string) {
	_, err := io.WriteString(c.stdin, line+"\n")
	require.NoError(t, err)
}

// await returns the first line starting with prefix, failing after d.
func (c *child) await(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-c.lines:
			require.True(t, ok, "child exited while waiting for %q", prefix)
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("child did not report %q within %v", prefix, d)
		}
	}
}

// eventTime waits for "dsr <ns> <kind>" and returns its time.
func (c *child) eventTime(t *testing.T, kind string) time.Time {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			require.True(t, ok, "child exited while waiting for %s", kind)
			f := strings.Fields(l)
			if len(f) == 3 && f[0] == "dsr" && f[2] == kind {
				var ns int64
				_, err := fmt.Sscan(f[1], &ns)
				require.NoError(t, err)
				return time.Unix(0, ns)
			}
		case <-deadline:
			t.Fatalf("child did not report %s", kind)
		}
	}
}

type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(p), nil
}

// routerView is what a router reports about the VIP's host route.
type routerView struct {
	Present, Stale bool
}

// testRouter is a real routing daemon in a namespace of the lab.
type testRouter interface {
	sessionUp(t *testing.T) bool
	route(t *testing.T, p netip.Prefix) routerView
}

const (
	routerAS = 65000
	lbAS     = 65001
)

var (
	testVIP    = netip.MustParseAddr("192.0.2.100")
	testPrefix = netip.MustParsePrefix("192.0.2.100/32")
	theirs     = netip.MustParsePrefix("198.51.100.0/24")
)

// runRouterTests runs the shared scenario against a router.
func runRouterTests(t *testing.T, lab *netlab.Lab, r testRouter) {
	restart := 30 * time.Second
	cfg := childConfig{RouterID: lab.Balancer.IP.String(), LocalAS: lbAS, Peer: lab.Clients[0].IP.String(), PeerAS: routerAS,
		VIP: testVIP.String(), Backend: lab.Servers[0].IP.String(), RestartTime: restart}
	c := startChild(t, lab.Balancer, cfg)
	require.Eventually(t, func() bool { return r.sessionUp(t) }, 30*time.Second, 50*time.Millisecond, "BGP session never came up")
	require.False(t, r.route(t, testPrefix).Present, "announced with no healthy backend")

	poll := func(want bool) time.Time {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if r.route(t, testPrefix).Present == want {
				return time.Now()
			}
			time.Sleep(5 * time.Millisecond) // polling the router's view; bounded by the deadline
		}
		t.Fatalf("route present=%v not observed at the router within 10s", want)
		return time.Time{}
	}
	var up, down []time.Duration
	for i := 0; i < 3; i++ {
		c.send(t, "up")
		t0 := c.eventTime(t, "backend-up")
		up = append(up, poll(true).Sub(t0))
		c.send(t, "down")
		t1 := c.eventTime(t, "backend-down")
		down = append(down, poll(false).Sub(t1))
	}
	sort.Slice(up, func(i, j int) bool { return up[i] < up[j] })
	sort.Slice(down, func(i, j int) bool { return down[i] < down[j] })
	t.Logf("latency health change -> route at the router (3 trials, sorted): announce %v, withdraw %v", up, down)

	// Nothing is imported: the router sends its own route; the speaker
	// receives it and keeps its RIB to its own announcement.
	c.send(t, "up")
	poll(true)
	var last string
	require.Eventually(t, func() bool {
		c.send(t, "rib")
		last = c.await(t, "rib ", 5*time.Second)
		return strings.Contains(last, theirs.String())
	}, 20*time.Second, 100*time.Millisecond, "the speaker never received the router's route: %s", last)
	// (FRR also reflects the VIP back, which the AS-path check drops.)
	rib, adj, _ := strings.Cut(strings.TrimPrefix(last, "rib "), " adjin ")
	require.Equal(t, testPrefix.String(), rib, "the speaker's RIB")
	require.Contains(t, strings.Split(adj, ","), theirs.String())

	// Graceful restart: kill the speaker; the router keeps the route as
	// stale while the speaker is away, and refreshes it once it is back.
	c.kill()
	require.Eventually(t, func() bool { return r.route(t, testPrefix).Stale }, 15*time.Second, 20*time.Millisecond,
		"the router never marked the route stale (graceful restart not in effect)")
	away := time.Now()
	for time.Since(away) < 3*time.Second { // the route must stay throughout the absence
		require.True(t, r.route(t, testPrefix).Present, "route dropped %v after the speaker died, before the restart time %v", time.Since(away), restart)
		time.Sleep(100 * time.Millisecond)
	}
	cfg.Healthy = true
	startChild(t, lab.Balancer, cfg)
	require.Eventually(t, func() bool {
		v := r.route(t, testPrefix)
		return v.Present && !v.Stale
	}, restart, 50*time.Millisecond, "the restarted speaker did not refresh the route")
	require.True(t, r.sessionUp(t))
}

func newRouterLab(t *testing.T) *netlab.Lab {
	return netlab.NewT(t, &netlab.Config{Servers: 1, Clients: 1, NoServerProcesses: true})
}

// --- BIRD ---

type bird struct {
	h    *netlab.Host
	sock string
}

func startBird(t *testing.T, h *netlab.Host, peer netip.Addr) *bird {
	return startBirdWith(t, h, peer, "", "")
}

// startBirdWith runs BIRD with extra protocols and extra lines in the
// session's block.
func startBirdWith(t *testing.T, h *netlab.Host, peer netip.Addr, protocols, session string) *bird {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bird is not installed (scripts/install-deps.sh installs bird2)")
		}
		t.Skip("bird is not installed: run scripts/install-deps.sh")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `router id %s;
protocol device {}
protocol static theirs { ipv4; route %s blackhole; }
%s
protocol bgp lb {
	local %s as %d;
	neighbor %s as %d;
	ipv4 { import all; export where proto = "theirs"; };
	graceful restart on;
	connect retry time 1;
	%s
}
`, h.IP, theirs, protocols, h.IP, routerAS, peer, lbAS, session), 0o644))
	b := &bird{h: h, sock: filepath.Join(dir, "bird.ctl")}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, "bird", "-f", "-c", conf, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"))
	cmd.Stdout, cmd.Stderr = &testWriter{t: t, prefix: "bird: "}, &testWriter{t: t, prefix: "bird: "}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	require.Eventually(t, func() bool { _, err := os.Stat(b.sock); return err == nil }, 10*time.Second, 20*time.Millisecond)
	return b
}

func (b *bird) birdc(t *testing.T, args ...string) string {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	require.NoError(t, err, "birdc %v: %s", args, out)
	return string(out)
}

func (b *bird) sessionUp(t *testing.T) bool {
	return strings.Contains(b.birdc(t, "show", "protocols", "lb"), "Established")
}

func (b *bird) route(t *testing.T, p netip.Prefix) routerView {
	raw, err := exec.Command("birdc", "-s", b.sock, "show", "route", "for", p.String(), "all").CombinedOutput()
	out := string(raw)
	if strings.Contains(out, "Network not found") {
		return routerView{}
	}
	require.NoError(t, err, "birdc: %s", out)
	v := routerView{Present: strings.Contains(out, p.String())}
	// BIRD 2 does not flag single routes stale; the protocol says whether
	// it keeps the neighbour's routes for a graceful restart.
	v.Stale = v.Present && strings.Contains(b.birdc(t, "show", "protocols", "all", "lb"), "Neighbor graceful restart active")
	return v
}

func TestIntegrationBGPWithBird(t *testing.T) {
	lab := newRouterLab(t)
	b := startBird(t, lab.Clients[0], lab.Balancer.IP)
	runRouterTests(t, lab, b)
}

// --- FRR ---

// frr runs FRR's bgpd on its own, without zebra (-Z): the test needs the
// router's BGP view, not routes in its kernel. Only BFD needs zebra (and
// bfdd) too; see startFRRWith.
type frr struct {
	h    *netlab.Host
	dir  string
	peer netip.Addr
	user string // the user the next daemon runs as
}

func startFRR(t *testing.T, h *netlab.Host, peer netip.Addr) *frr {
	return startFRRWith(t, h, peer, false)
}

// startFRRWith runs bgpd, and with bfd also zebra and bfdd: in FRR 8.4
// bgpd registers its BFD peers with zebra, which relays them to bfdd, so
// BFD needs all three (connected by a zebra socket of their own). The
// neighbour then gets "bfd" with a bfdd profile of 300 ms × 3.
func startFRRWith(t *testing.T, h *netlab.Host, peer netip.Addr, bfd bool) *frr {
	t.Helper()
	const bgpd = "/usr/lib/frr/bgpd"
	_, err1 := os.Stat(bgpd)
	_, err2 := exec.LookPath("vtysh")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("FRR is not installed (scripts/install-deps.sh installs frr)")
		}
		t.Skip("FRR is not installed: run scripts/install-deps.sh")
	}
	dir := t.TempDir()
	f := &frr{h: h, dir: dir, peer: peer, user: "root"}
	zsock := filepath.Join(dir, "zserv.api")
	bgpdArgs := []string{"-Z"}
	neighborBFD := ""
	if bfd {
		// zebra and bfdd cannot skip the check that their user is in
		// FRR's vty group, which root is not: they run as FRR's own user
		// (keeping the capabilities they need), in a directory it owns.
		u, err := user.Lookup("frr")
		require.NoError(t, err, "FRR's user (the frr package creates it)")
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		require.NoError(t, errors.Join(err1, err2))
		require.NoError(t, os.Chown(dir, uid, gid))
		for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			require.NoError(t, os.Chmod(d, 0o755)) // t.TempDir's levels are 0700
		}
		f.user = "frr"
		f.daemon(t, "zebra", "hostname router\nlog stdout\n", "-z", zsock)
		f.daemon(t, "bfdd", "hostname router\nlog stdout\nbfd\n profile lb\n  receive-interval 300\n  transmit-interval 300\n  detect-multiplier 3\n exit\nexit\n",
			"-z", zsock, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		bgpdArgs = nil
		neighborBFD = fmt.Sprintf(" neighbor %s bfd\n neighbor %s bfd profile lb\n", peer, peer)
	}
	conf := `frr defaults traditional
hostname router
log stdout
router bgp %d
 bgp router-id %s
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp graceful-restart
 neighbor %s remote-as %d
 neighbor %s timers connect 1
%s address-family ipv4 unicast
  network %s
 exit-address-family
`
	f.user = "root" // with -S: no change of user
	f.daemon(t, "bgpd", fmt.Sprintf(conf, routerAS, h.IP, peer, lbAS, peer, neighborBFD, theirs), append(bgpdArgs, "-z", zsock, "-S")...)
	return f
}

// daemon starts FRR's daemon name in the router's namespace with config
// text, its pid file and vty socket in the test's directory, and waits
// for the vty socket. The test's cleanup stops it.
func (f *frr) daemon(t *testing.T, name, config string, args ...string) {
	t.Helper()
	conf := filepath.Join(f.dir, name+".conf")
	require.NoError(t, os.WriteFile(conf, []byte(config), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := f.h.Command(ctx, "/usr/lib/frr/"+name, append([]string{"-f", conf, "-i", filepath.Join(f.dir, name+".pid"),
		"--vty_socket", f.dir, "-P", "0", "-u", f.user, "-g", f.user}, args...)...)
	cmd.Stdout, cmd.Stderr = &testWriter{t: t, prefix: name + ": "}, &testWriter{t: t, prefix: name + ": "}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(f.dir, name+".vty")); return err == nil },
		10*time.Second, 20*time.Millisecond, "%s never opened its vty socket", name)
}

func (f *frr) vtysh(t *testing.T, command string) []byte {
	return f.vtyshTo(t, "bgpd", command)
}

func (f *frr) vtyshTo(t *testing.T, daemon, command string) []byte {
	out, err := exec.Command("vtysh", "--vty_socket", f.dir, "-d", daemon, "-c", command).CombinedOutput()
	require.NoError(t, err, "vtysh %q: %s", command, out)
	return out
}

func (f *frr) sessionUp(t *testing.T) bool {
	var v map[string]struct {
		BGPState string `json:"bgpState"`
	}
	out := f.vtysh(t, "show bgp neighbors "+f.peer.String()+" json")
	require.NoError(t, json.Unmarshal(out, &v), "%s", out)
	return v[f.peer.String()].BGPState == "Established"
}

func (f *frr) route(t *testing.T, p netip.Prefix) routerView {
	var v struct {
		Prefix string `json:"prefix"`
		Paths  []struct {
			Stale bool `json:"stale"`
		} `json:"paths"`
	}
	out := f.vtysh(t, "show bgp ipv4 unicast "+p.String()+" json")
	require.NoError(t, json.Unmarshal(out, &v), "%s", out)
	if v.Prefix != p.String() || len(v.Paths) == 0 {
		return routerView{}
	}
	return routerView{Present: true, Stale: v.Paths[0].Stale}
}

func TestIntegrationBGPWithFRR(t *testing.T) {
	lab := newRouterLab(t)
	f := startFRR(t, lab.Clients[0], lab.Balancer.IP)
	runRouterTests(t, lab, f)
}

// TestIntegrationBFDWithBird: with BFD, a balancer that stops dead (frozen
// with SIGSTOP: no FIN closes its TCP session, no packet leaves it) loses
// its route at the router long before the BGP hold time (9 s here) would
// expire. (A killed process is no test of BFD: its kernel closes the
// session at once.)
func TestIntegrationBFDWithBird(t *testing.T) {
	lab := newRouterLab(t)
	b := startBirdWith(t, lab.Clients[0], lab.Balancer.IP, "protocol bfd { interface \"*\" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }; }", "bfd on;")
	cfg := childConfig{RouterID: lab.Balancer.IP.String(), LocalAS: lbAS, Peer: lab.Clients[0].IP.String(), PeerAS: routerAS,
		VIP: testVIP.String(), Backend: lab.Servers[0].IP.String(), Healthy: true, BFD: true, NoGR: true}
	c := startChild(t, lab.Balancer, cfg)
	require.Eventually(t, func() bool { return b.sessionUp(t) }, 30*time.Second, 50*time.Millisecond, "BGP session never came up")
	require.Eventually(t, func() bool { return strings.Contains(b.birdc(t, "show", "bfd", "sessions"), "Up") }, 30*time.Second, 50*time.Millisecond,
		"BFD session never came up: %s", b.birdc(t, "show", "bfd", "sessions"))
	require.Eventually(t, func() bool { return b.route(t, testPrefix).Present }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGSTOP))
	killed := time.Now()
	require.Eventually(t, func() bool { return !b.route(t, testPrefix).Present }, 20*time.Second, 5*time.Millisecond)
	gone := time.Since(killed)
	bfd := b.birdc(t, "show", "bfd", "sessions")
	t.Logf("route gone at the router %v after the balancer froze (BFD 300ms x 3; BGP hold time 9s)\n%s", gone, bfd)
	require.NotContains(t, bfd, " Up ", "BIRD's BFD session should be down")
	require.Contains(t, b.birdc(t, "show", "protocols", "all", "lb"), "BFD session down", "the session should have been brought down by BFD, not by the hold timer")
}

// frrBFDPeer is bfdd's view of the session with the balancer.
type frrBFDPeer struct {
	Peer       string `json:"peer"`
	Status     string `json:"status"`
	Multiplier int    `json:"detect-multiplier"`
	RxInterval int    `json:"receive-interval"`
	TxInterval int    `json:"transmit-interval"`
	RemoteRx   int    `json:"remote-receive-interval"`
	RemoteTx   int    `json:"remote-transmit-interval"`
}

func (f *frr) bfdPeer(t *testing.T) (frrBFDPeer, string) {
	out := f.vtyshTo(t, "bfdd", "show bfd peers json")
	var peers []frrBFDPeer
	require.NoError(t, json.Unmarshal(out, &peers), "%s", out)
	for _, p := range peers {
		if p.Peer == f.peer.String() {
			return p, string(out)
		}
	}
	return frrBFDPeer{}, string(out)
}

// TestIntegrationBFDWithFRR is TestIntegrationBFDWithBird against FRR:
// bfdd (with zebra, through which bgpd registers the peer) next to bgpd,
// the neighbour configured with "bfd".
func TestIntegrationBFDWithFRR(t *testing.T) {
	const hold = 9 * time.Second // the child's hold time
	lab := newRouterLab(t)
	f := startFRRWith(t, lab.Clients[0], lab.Balancer.IP, true)
	cfg := childConfig{RouterID: lab.Balancer.IP.String(), LocalAS: lbAS, Peer: lab.Clients[0].IP.String(), PeerAS: routerAS,
		VIP: testVIP.String(), Backend: lab.Servers[0].IP.String(), Healthy: true, BFD: true, NoGR: true}
	c := startChild(t, lab.Balancer, cfg)
	require.Eventually(t, func() bool { return f.sessionUp(t) }, 30*time.Second, 50*time.Millisecond, "BGP session never came up")
	var last string
	require.Eventually(t, func() bool {
		var p frrBFDPeer
		p, last = f.bfdPeer(t)
		return p.Status == "up"
	}, 30*time.Second, 50*time.Millisecond, "bfdd's session with the balancer never came up: %s", last)
	require.Eventually(t, func() bool { return f.route(t, testPrefix).Present }, 10*time.Second, 20*time.Millisecond)
	up, _ := f.bfdPeer(t)

	require.NoError(t, c.cmd.Process.Signal(syscall.SIGSTOP))
	frozen := time.Now()
	t.Cleanup(func() { _ = c.cmd.Process.Signal(syscall.SIGCONT) }) // runs before the child's kill
	deadline := frozen.Add(hold / 2)
	for f.route(t, testPrefix).Present {
		require.True(t, time.Now().Before(deadline), "route still at FRR %v after the balancer froze (hold time %v)", hold/2, hold)
		time.Sleep(5 * time.Millisecond) // polling the router's view; bounded by the deadline
	}
	gone := time.Since(frozen)
	down, raw := f.bfdPeer(t)
	t.Logf("route gone at FRR %v after the balancer froze (bfdd %d/%d ms x %d, balancer %d/%d ms; BGP hold time %v)\n%s",
		gone, up.TxInterval, up.RxInterval, up.Multiplier, up.RemoteTx, up.RemoteRx, hold, raw)
	require.Equal(t, "down", down.Status, "bfdd's session should be down")
	var nb map[string]struct {
		LastNotification string `json:"lastNotificationReason"`
	}
	out := f.vtysh(t, "show bgp neighbors "+f.peer.String()+" json")
	require.NoError(t, json.Unmarshal(out, &nb), "%s", out)
	// bgpd closes the session with a Cease (BFD Down) notification; the
	// hold timer would have sent Hold Timer Expired.
	require.Contains(t, nb[f.peer.String()].LastNotification, "BFD Down", "the session should have been brought down by BFD, not by the hold timer")
}
