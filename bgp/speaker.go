package bgp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventPeerUp: the session with Peer reached Established.
	EventPeerUp EventKind = iota + 1
	// EventPeerDown: an established session with Peer was lost; Reason
	// says why when the implementation knows.
	EventPeerDown
	// EventAnnounced: Prefix is now announced to every established peer.
	EventAnnounced
	// EventWithdrawn: Prefix is no longer announced.
	EventWithdrawn
)

func (k EventKind) String() string {
	switch k {
	case EventPeerUp:
		return "peer-up"
	case EventPeerDown:
		return "peer-down"
	case EventAnnounced:
		return "announced"
	case EventWithdrawn:
		return "withdrawn"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a session or announcement change. Fields that do not apply to
// the Kind are zero.
type Event struct {
	Kind   EventKind
	At     time.Time
	Peer   netip.Addr
	Prefix netip.Prefix
	Reason string
}

func (e Event) String() string {
	s := "bgp " + e.Kind.String()
	if e.Peer.IsValid() {
		s += " peer=" + e.Peer.String()
	}
	if e.Prefix.IsValid() {
		s += " prefix=" + e.Prefix.String()
	}
	if e.Reason != "" {
		s += " reason=" + e.Reason
	}
	return s
}

// PeerStatus is a point-in-time view of one session.
type PeerStatus struct {
	Addr netip.Addr
	AS   uint32
	// State is the session's FSM state: idle, connect, active, opensent,
	// openconfirm or established.
	State string
	// Up is true while the session is established.
	Up bool
	// Since is when State last changed (zero before the first change).
	Since time.Time
}

// Speaker is an embedded BGP speaker that announces host routes for VIPs.
// Its methods are safe for concurrent use.
type Speaker struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	srv      *server.BgpServer // set while Run runs
	stopped  bool              // Run returned
	started  bool
	want     map[netip.Prefix]bool // what the caller asked to announce
	peerStat map[netip.Addr]*PeerStatus
}

// New validates cfg and returns a Speaker; it does not connect until Run.
func New(cfg *Config) (*Speaker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := *cfg
	c.Peers = slices.Clone(cfg.Peers)
	log := c.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Speaker{cfg: c, log: log, want: map[netip.Prefix]bool{}, peerStat: map[netip.Addr]*PeerStatus{}}
	for _, p := range c.Peers {
		a := p.Addr.Unmap()
		s.peerStat[a] = &PeerStatus{Addr: a, AS: p.AS, State: "idle"}
	}
	return s, nil
}

// HostPrefix returns the host route of vip: a /32 for IPv4 (also for an
// IPv4-mapped IPv6 address), a /128 for IPv6.
func HostPrefix(vip netip.Addr) (netip.Prefix, error) {
	vip = vip.Unmap()
	if !vip.IsValid() || vip.IsUnspecified() || vip.IsMulticast() || vip.IsLoopback() {
		return netip.Prefix{}, fmt.Errorf("%w: %q", ErrNotVIP, vip.String())
	}
	return netip.PrefixFrom(vip, vip.BitLen()), nil
}

// Run starts the sessions and serves until ctx is cancelled. On
// cancellation it withdraws every route and closes the sessions cleanly
// (peers drop the routes at once, graceful restart or not), then returns
// nil. It returns an error if the speaker could not start. Run may be
// called once.
func (s *Speaker) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return fmt.Errorf("%w: Run called twice", ErrStopped)
	}
	s.started = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.srv, s.stopped = nil, true
		for _, st := range s.peerStat {
			st.State, st.Up = "idle", false
		}
		s.mu.Unlock()
	}()

	// GoBGP logs at info level about every FSM step; keep its chatter at
	// warnings unless the injected logger wants debug.
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	if s.log.Enabled(ctx, slog.LevelDebug) {
		lvl.Set(slog.LevelDebug)
	}
	srv := server.NewBgpServer(server.LoggerOption(s.log.With("component", "gobgp"), lvl))
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve() }()
	defer func() { srv.Stop(); <-served }()

	listen := int32(-1)
	if s.cfg.ListenPort != 0 {
		listen = int32(s.cfg.ListenPort)
	}
	bg := context.Background() // management calls must not fail half-way when ctx ends
	if err := srv.StartBgp(bg, &api.StartBgpRequest{Global: &api.Global{
		Asn: s.cfg.LocalAS, RouterId: s.cfg.RouterID.String(), ListenPort: listen,
	}}); err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	// Import nothing: the balancer only announces. GoBGP runs its own
	// announcements through the global import policy too, so the policy
	// accepts local routes and rejects every route learned from a peer.
	if err := srv.AddPolicy(bg, &api.AddPolicyRequest{Policy: &api.Policy{
		Name: "dsrlb-import-nothing",
		Statements: []*api.Statement{{
			Name:       "dsrlb-local-only",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		}},
	}}); err != nil {
		return fmt.Errorf("bgp: import policy: %w", err)
	}
	if err := srv.SetPolicyAssignment(bg, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: "dsrlb-import-nothing"}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}}); err != nil {
		return fmt.Errorf("bgp: import policy: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(bg)
	defer stopWatch()
	if err := srv.WatchEvent(watchCtx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: s.onPeer,
	}, server.WatchPeer()); err != nil {
		return fmt.Errorf("bgp: watch: %w", err)
	}
	for _, p := range s.cfg.Peers {
		if err := srv.AddPeer(bg, &api.AddPeerRequest{Peer: apiPeer(p)}); err != nil {
			return fmt.Errorf("bgp: peer %s: %w", p.Addr, err)
		}
	}

	s.mu.Lock()
	s.srv = srv
	var pending []netip.Prefix
	for p := range s.want {
		pending = append(pending, p)
	}
	s.mu.Unlock()
	for _, p := range pending {
		if err := s.addPath(srv, p); err != nil {
			s.log.Error("bgp: announce", "prefix", p, "err", err)
		}
	}
	s.log.Info("bgp speaker running", "router_id", s.cfg.RouterID, "as", s.cfg.LocalAS, "peers", len(s.cfg.Peers))

	<-ctx.Done()

	// Clean stop: withdraw first so that peers stop sending traffic even
	// before they process the session's end.
	s.mu.Lock()
	s.srv = nil
	s.mu.Unlock()
	if err := srv.DeletePath(apiutil.DeletePathRequest{DeleteAll: true}); err != nil {
		s.log.Warn("bgp: withdraw on stop", "err", err)
	}
	if err := srv.StopBgp(bg, &api.StopBgpRequest{}); err != nil {
		s.log.Warn("bgp: stop", "err", err)
	}
	return nil
}

func apiPeer(p Peer) *api.Peer {
	families := []*api.Family{{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, {Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}}
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Addr.Unmap().String(), PeerAsn: p.AS},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(p.holdTime() / time.Second),
			KeepaliveInterval: uint64(max(p.keepalive()/time.Second, 1)),
			// GoBGP's defaults (120 s, 30 s) would leave a balancer
			// unannounced for minutes after a router restart.
			ConnectRetry:           2,
			IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port), PassiveMode: p.Passive},
	}
	if p.LocalAddr.IsValid() {
		ap.Transport.LocalAddress = p.LocalAddr.Unmap().String()
	}
	if gr := p.GracefulRestart; gr != nil {
		rt := gr.RestartTime
		if rt == 0 {
			rt = DefaultRestartTime
		}
		ap.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(rt / time.Second)}
	}
	for _, f := range families {
		as := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if p.GracefulRestart != nil {
			as.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		ap.AfiSafis = append(ap.AfiSafis, as)
	}
	if b := p.BFD; b != nil {
		iv, mult := b.Interval, b.Multiplier
		if iv == 0 {
			iv = DefaultBFDInterval
		}
		if mult == 0 {
			mult = DefaultBFDMultiplier
		}
		us := uint32(iv / time.Microsecond)
		ap.Bfd = &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: us, RequiredMinimumReceive: us, DetectionMultiplier: uint32(mult)}
	}
	return ap
}

func (s *Speaker) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	addr := ev.Peer.State.NeighborAddress.Unmap()
	if !addr.IsValid() {
		addr = ev.Peer.Conf.NeighborAddress.Unmap()
	}
	state := fsmName(ev.Peer.State.SessionState)
	up := ev.Peer.State.SessionState == gobgp.BGP_FSM_ESTABLISHED
	s.mu.Lock()
	st, ok := s.peerStat[addr]
	if !ok {
		s.mu.Unlock()
		return
	}
	wasUp := st.Up
	st.State, st.Up, st.Since = state, up, at
	s.mu.Unlock()
	switch {
	case up && !wasUp:
		s.log.Info("bgp session up", "peer", addr)
		s.emit(Event{Kind: EventPeerUp, At: at, Peer: addr})
	case !up && wasUp:
		reason := ev.Peer.State.DisconnectMessage
		if reason == "" && ev.Peer.State.DisconnectReason != 0 {
			reason = ev.Peer.State.DisconnectReason.String()
		}
		s.log.Warn("bgp session down", "peer", addr, "state", state, "reason", reason)
		s.emit(Event{Kind: EventPeerDown, At: at, Peer: addr, Reason: reason})
	}
}

func fsmName(st gobgp.FSMState) string {
	switch st {
	case gobgp.BGP_FSM_IDLE:
		return "idle"
	case gobgp.BGP_FSM_CONNECT:
		return "connect"
	case gobgp.BGP_FSM_ACTIVE:
		return "active"
	case gobgp.BGP_FSM_OPENSENT:
		return "opensent"
	case gobgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case gobgp.BGP_FSM_ESTABLISHED:
		return "established"
	}
	return "unknown"
}

func (s *Speaker) emit(e Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
}

// Announce starts announcing vip's host route. Announcing a VIP that is
// already announced does nothing. Before Run, the VIP is remembered and
// announced once Run starts; after Run returned, Announce returns
// ErrStopped.
func (s *Speaker) Announce(vip netip.Addr) error {
	p, err := HostPrefix(vip)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrStopped
	}
	if s.want[p] {
		s.mu.Unlock()
		return nil
	}
	if s.srv != nil {
		if err := s.addPath(s.srv, p); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("bgp: announce %s: %w", p, err)
		}
	}
	s.want[p] = true
	s.mu.Unlock()
	s.log.Info("bgp announce", "prefix", p)
	s.emit(Event{Kind: EventAnnounced, At: time.Now(), Prefix: p})
	return nil
}

// Withdraw stops announcing vip's host route. Withdrawing a VIP that is not
// announced does nothing.
func (s *Speaker) Withdraw(vip netip.Addr) error {
	p, err := HostPrefix(vip)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if !s.want[p] {
		s.mu.Unlock()
		return nil
	}
	if s.srv != nil {
		path, err := s.path(p)
		if err == nil {
			err = s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path}})
		}
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("bgp: withdraw %s: %w", p, err)
		}
	}
	delete(s.want, p)
	s.mu.Unlock()
	s.log.Info("bgp withdraw", "prefix", p)
	s.emit(Event{Kind: EventWithdrawn, At: time.Now(), Prefix: p})
	return nil
}

// Announced returns the announced host routes, sorted.
func (s *Speaker) Announced() []netip.Prefix {
	s.mu.Lock()
	out := make([]netip.Prefix, 0, len(s.want))
	for p := range s.want {
		out = append(out, p)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// Peers returns the state of every configured session, in configuration
// order.
func (s *Speaker) Peers() []PeerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PeerStatus, 0, len(s.cfg.Peers))
	for _, p := range s.cfg.Peers {
		out = append(out, *s.peerStat[p.Addr.Unmap()])
	}
	return out
}

// RIB returns every prefix in the speaker's global RIB: its own
// announcements and anything imported. With the reject-all import policy it
// equals Announced; tests and diagnostics use it to prove that. It returns
// ErrStopped when Run is not running.
func (s *Speaker) RIB() ([]netip.Prefix, error) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil, ErrStopped
	}
	var out []netip.Prefix
	for _, fam := range []gobgp.Family{gobgp.RF_IPv4_UC, gobgp.RF_IPv6_UC} {
		err := srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
			func(n gobgp.NLRI, _ []*apiutil.Path) {
				if pfx, err := netip.ParsePrefix(n.String()); err == nil {
					out = append(out, pfx)
				}
			})
		if err != nil {
			return nil, fmt.Errorf("bgp: list RIB: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out, nil
}

func (s *Speaker) addPath(srv *server.BgpServer, p netip.Prefix) error {
	path, err := s.path(p)
	if err != nil {
		return err
	}
	_, err = srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}})
	return err
}

// path builds the UPDATE content for one host route: origin IGP and the
// configured next hop, or the unspecified address, which GoBGP replaces with
// the session's own address.
func (s *Speaker) path(p netip.Prefix) (*apiutil.Path, error) {
	nlri, err := gobgp.NewIPAddrPrefix(p)
	if err != nil {
		return nil, err
	}
	origin := gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP)
	if p.Addr().Is4() {
		nh := s.cfg.NextHop4.Unmap()
		if !nh.IsValid() {
			nh = netip.IPv4Unspecified()
		}
		a, err := gobgp.NewPathAttributeNextHop(nh)
		if err != nil {
			return nil, err
		}
		return &apiutil.Path{Family: gobgp.RF_IPv4_UC, Nlri: nlri, Attrs: []gobgp.PathAttributeInterface{origin, a}}, nil
	}
	nh := s.cfg.NextHop6
	if !nh.IsValid() {
		nh = netip.IPv6Unspecified()
	}
	mp, err := gobgp.NewPathAttributeMpReachNLRI(gobgp.RF_IPv6_UC, []gobgp.PathNLRI{{NLRI: nlri}}, nh)
	if err != nil {
		return nil, err
	}
	return &apiutil.Path{Family: gobgp.RF_IPv6_UC, Nlri: nlri, Attrs: []gobgp.PathAttributeInterface{origin, mp}}, nil
}
