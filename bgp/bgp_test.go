package bgp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	rid      = netip.MustParseAddr("192.0.2.1")
	loopback = netip.MustParseAddr("127.0.0.1")
)

func TestConfigValidation(t *testing.T) {
	good := func() *Config {
		return &Config{RouterID: rid, LocalAS: 65001, Peers: []Peer{{Addr: netip.MustParseAddr("192.0.2.2"), AS: 65000}}}
	}
	tests := []struct {
		name  string
		edit  func(c *Config)
		field string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"router id missing", func(c *Config) { c.RouterID = netip.Addr{} }, "router_id"},
		{"router id v6", func(c *Config) { c.RouterID = netip.MustParseAddr("2001:db8::1") }, "router_id"},
		{"local as", func(c *Config) { c.LocalAS = 0 }, "local_as"},
		{"no peers", func(c *Config) { c.Peers = nil }, "peers"},
		{"peer address", func(c *Config) { c.Peers[0].Addr = netip.Addr{} }, "peers[0].address"},
		{"peer as", func(c *Config) { c.Peers[0].AS = 0 }, "peers[0].as"},
		{"duplicate peer", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, "peers[1].address"},
		{"hold time too short", func(c *Config) { c.Peers[0].HoldTime = time.Second }, "peers[0].hold_time"},
		{"keepalive not below hold", func(c *Config) { c.Peers[0].HoldTime, c.Peers[0].Keepalive = 3*time.Second, 3*time.Second }, "peers[0].keepalive"},
		{"passive without listen", func(c *Config) { c.Peers[0].Passive = true }, "peers[0].passive"},
		{"restart time", func(c *Config) { c.Peers[0].GracefulRestart = &GracefulRestart{RestartTime: time.Hour * 2} }, "peers[0].graceful_restart.restart_time"},
		{"bfd interval", func(c *Config) { c.Peers[0].BFD = &BFD{Interval: time.Millisecond} }, "peers[0].bfd.interval"},
		{"bfd multiplier", func(c *Config) { c.Peers[0].BFD = &BFD{Multiplier: 300} }, "peers[0].bfd.multiplier"},
		{"next hop family", func(c *Config) { c.NextHop4 = netip.MustParseAddr("2001:db8::1") }, "next_hop4"},
		{"local address family", func(c *Config) { c.Peers[0].LocalAddr = netip.MustParseAddr("2001:db8::1") }, "peers[0].local_address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.edit(c)
			s, err := New(c)
			if tt.field == "" {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.ErrorIs(t, err, ErrConfig)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field)
		})
	}
	_, err := New(nil)
	require.ErrorIs(t, err, ErrConfig)
}

func TestHostPrefix(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.100", "192.0.2.100/32"},
		{"::ffff:192.0.2.100", "192.0.2.100/32"},
		{"2001:db8::100", "2001:db8::100/128"},
	} {
		p, err := HostPrefix(netip.MustParseAddr(tt.in))
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, p.String())
	}
	for _, bad := range []netip.Addr{{}, netip.IPv4Unspecified(), netip.MustParseAddr("224.0.0.1"), loopback} {
		_, err := HostPrefix(bad)
		require.ErrorIs(t, err, ErrNotVIP, bad.String())
	}
}

// router is a plain GoBGP instance on loopback standing in for a router:
// it accepts the speaker's session and imports everything.
type router struct {
	srv  *server.BgpServer
	port uint16
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	return port
}

func startRouter(t *testing.T, as, peerAS uint32) *router {
	t.Helper()
	r := &router{srv: server.NewBgpServer(), port: freePort(t)}
	done := make(chan struct{})
	go func() { defer close(done); r.srv.Serve() }()
	t.Cleanup(func() { r.srv.Stop(); <-done })
	ctx := context.Background()
	require.NoError(t, r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: as, RouterId: "192.0.2.254", ListenPort: int32(r.port), ListenAddresses: []string{"127.0.0.1"},
	}}))
	require.NoError(t, r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: peerAS},
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}}))
	return r
}

// routes returns the router's best routes with their next hops.
func (r *router) routes(t *testing.T) map[netip.Prefix]netip.Addr {
	out := map[netip.Prefix]netip.Addr{}
	for _, fam := range []gobgp.Family{gobgp.RF_IPv4_UC, gobgp.RF_IPv6_UC} {
		require.NoError(t, r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
			func(n gobgp.NLRI, paths []*apiutil.Path) {
				p := netip.MustParsePrefix(n.String())
				for _, path := range paths {
					for _, a := range path.Attrs {
						switch a := a.(type) {
						case *gobgp.PathAttributeNextHop:
							out[p] = a.Value
						case *gobgp.PathAttributeMpReachNLRI:
							out[p] = a.Nexthop
						}
					}
				}
			}))
	}
	return out
}

type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }
func (l *eventLog) kinds() []EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []EventKind
	for _, e := range l.evs {
		out = append(out, e.Kind)
	}
	return out
}

// runSpeaker runs a speaker until stop (or the test's end); stop returns
// Run's result.
func runSpeaker(t *testing.T, cfg *Config) (s *Speaker, stop func() error) {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { defer close(done); runErr = s.Run(ctx) }()
	stop = func() error {
		cancel()
		select {
		case <-done:
			return runErr
		case <-time.After(10 * time.Second):
			return errors.New("speaker did not stop within 10s")
		}
	}
	t.Cleanup(func() { assert.NoError(t, stop()) })
	return s, stop
}

func waitUp(t *testing.T, s *Speaker) {
	t.Helper()
	require.Eventually(t, func() bool { return s.Peers()[0].Up }, 20*time.Second, 20*time.Millisecond, "session never came up")
}

func TestSpeakerAnnouncesHostRoutesAndWithdraws(t *testing.T) {
	r := startRouter(t, 65000, 65001)
	var log eventLog
	nh6 := netip.MustParseAddr("2001:db8::1")
	vip4, vip6 := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8:1::100")
	s, err := New(&Config{RouterID: rid, LocalAS: 65001, NextHop6: nh6, OnEvent: log.add,
		Peers: []Peer{{Addr: loopback, AS: 65000, Port: r.port, GracefulRestart: &GracefulRestart{}}}})
	require.NoError(t, err)
	// Announced before Run: remembered and sent once the session is up.
	require.NoError(t, s.Announce(vip4))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(cancel) // the test waits for Run itself below
	waitUp(t, s)
	require.NoError(t, s.Announce(vip6))
	require.NoError(t, s.Announce(vip6), "announcing twice is a no-op")

	want := map[netip.Prefix]netip.Addr{
		netip.MustParsePrefix("192.0.2.100/32"):      loopback, // next hop self: the session's source
		netip.MustParsePrefix("2001:db8:1::100/128"): nh6,      // the configured next hop
	}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, r.routes(t)) }, 10*time.Second, 10*time.Millisecond,
		"router never had both host routes; has %v", r.routes(t))
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("192.0.2.100/32"), netip.MustParsePrefix("2001:db8:1::100/128")}, s.Announced())

	require.NoError(t, s.Withdraw(vip4))
	require.NoError(t, s.Withdraw(netip.MustParseAddr("192.0.2.200")), "withdrawing what is not announced is a no-op")
	require.Eventually(t, func() bool { _, ok := r.routes(t)[netip.MustParsePrefix("192.0.2.100/32")]; return !ok },
		10*time.Second, 10*time.Millisecond, "withdrawn route stayed at the router")
	assert.Len(t, r.routes(t), 1)

	// A clean stop withdraws everything and the session goes down.
	cancel()
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { return len(r.routes(t)) == 0 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []EventKind{EventAnnounced, EventPeerUp, EventAnnounced, EventWithdrawn}, log.kinds()[:4])
	require.ErrorIs(t, s.Announce(vip4), ErrStopped)
	require.ErrorIs(t, s.Run(context.Background()), ErrStopped)
}

func TestSpeakerImportsNothing(t *testing.T) {
	r := startRouter(t, 65000, 65001)
	s, _ := runSpeaker(t, &Config{RouterID: rid, LocalAS: 65001, Peers: []Peer{{Addr: loopback, AS: 65000, Port: r.port}}})
	waitUp(t, s)
	require.NoError(t, s.Announce(netip.MustParseAddr("192.0.2.100")))
	theirs := netip.MustParsePrefix("198.51.100.0/24")
	nlri, err := gobgp.NewIPAddrPrefix(theirs)
	require.NoError(t, err)
	nh, err := gobgp.NewPathAttributeNextHop(netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	_, err = r.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: gobgp.RF_IPv4_UC, Nlri: nlri,
		Attrs: []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(0), nh}}}})
	require.NoError(t, err)

	// The speaker received the route (its Adj-RIB-In holds it)...
	require.Eventually(t, func() bool { return slices.Contains(adjIn(t, s), theirs) }, 10*time.Second, 10*time.Millisecond,
		"the speaker never received the router's route")
	// ...and did not import it: its RIB holds only its own announcement.
	rib, err := s.RIB()
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("192.0.2.100/32")}, rib)
}

func adjIn(t *testing.T, s *Speaker) []netip.Prefix {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	require.NotNil(t, srv)
	var out []netip.Prefix
	require.NoError(t, srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: "127.0.0.1",
		Family: gobgp.RF_IPv4_UC, EnableFiltered: true}, func(n gobgp.NLRI, _ []*apiutil.Path) {
		out = append(out, netip.MustParsePrefix(n.String()))
	}))
	return out
}

func TestRunTwiceAndAfterStop(t *testing.T) {
	s, stop := runSpeaker(t, &Config{RouterID: rid, LocalAS: 65001, Peers: []Peer{{Addr: loopback, AS: 65000, Port: freePort(t)}}})
	require.Eventually(t, func() bool { _, err := s.RIB(); return err == nil }, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, s.Run(context.Background()), ErrStopped)
	require.NoError(t, stop())
	_, err := s.RIB()
	require.True(t, errors.Is(err, ErrStopped))
	assert.False(t, s.Peers()[0].Up)
}

// TestCoreBuildsWithoutBGP: a program that imports only the balancer's
// packages must not link the BGP implementation in.
func TestCoreBuildsWithoutBGP(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	for _, pkg := range []string{"../dsr", "../health", "../arp", "../scheduler"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "github.com/dsrlb/dsrlb/", "go list printed no packages of the module")
		for _, dep := range strings.Fields(string(out)) {
			assert.NotContains(t, dep, "gobgp", "%s depends on %s", pkg, dep)
			assert.NotContains(t, dep, "google.golang.org/grpc", "%s depends on %s", pkg, dep)
		}
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "github.com/osrg/gobgp/v4", "the check cannot see GoBGP where it is used")
}
