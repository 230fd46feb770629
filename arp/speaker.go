package arp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is a real server the Speaker resolves (or, with MAC set, only
// knows, so conflicts can name it).
type Backend struct {
	// Addr is the backend's address on the segment. IPv6 backends are
	// resolved by neighbour discovery, and ignored when the Speaker has no
	// neighbour discovery socket (Config.NDPConn).
	Addr netip.Addr
	// MAC is a statically configured hardware address. Nil means resolve
	// Addr by ARP or neighbour discovery; a static MAC is never probed nor
	// overridden.
	MAC net.HardwareAddr
	// VLAN is the 802.1Q VLAN ID the backend is on (1..MaxVLAN): its
	// requests go out tagged and only tagged answers resolve it. The same
	// address on two VLANs is two backends. Zero is the untagged VLAN;
	// a backend with a VLAN above MaxVLAN is ignored.
	VLAN uint16
}

// Speaker owns VIPs on one Ethernet segment: it answers ARP for them,
// announces them, resolves backend MACs and watches for other hosts claiming
// the VIPs. Create it with New or Listen, configure it with SetVIPs and
// SetBackends (at any time, from any goroutine) and start it with Run.
type Speaker struct {
	conn    net.PacketConn
	ndpConn net.PacketConn // nil: IPv6 disabled
	cfg     settings
	log     *slog.Logger
	now     func() time.Time

	wake    chan struct{} // nudges the timer loop after a state change
	running atomic.Bool
	closed  atomic.Bool
	stats   counters
	evMu    sync.Mutex // serialises OnEvent calls
	extra   []*handler // AddEventHandler's, guarded by evMu

	mu        sync.Mutex
	vips      map[VIP]*vipState
	backends  map[VIP]*backendState
	conflicts map[conflictKey]time.Time // last Conflict event per VIP and MAC
	limit     limiter

	// groupsMu serialises multicast membership updates, which run
	// outside mu because they are system calls.
	groupsMu sync.Mutex
	// joinGroups, when set, makes the NDP socket receive exactly the given
	// solicited-node groups (Linux sockets on NICs that filter multicast).
	joinGroups func(macs [][6]byte) error
}

type vipState struct {
	burstLeft    int       // announcements left in the current burst
	nextAnnounce time.Time // zero: none scheduled
	nextProbe    time.Time
}

type backendState struct {
	static   net.HardwareAddr
	mac      net.HardwareAddr // last MAC that answered us; nil if never
	resolved bool             // mac is current (not Unresolved)
	reported bool             // Unresolved was reported and not yet cleared
	pending  bool             // a request is outstanding since sentAt
	sentAt   time.Time
	misses   int
	next     time.Time // next request
	lastHint time.Time
}

type conflictKey struct {
	vip VIP
	mac [6]byte
}

// outFrame is a frame to send once the state lock is released.
type outFrame struct {
	dst [6]byte
	b   []byte
	ctr *atomic.Uint64
	nd  bool // goes out on the NDP socket
}

// batch collects the effects of one step, applied after unlocking so that
// neither a slow socket nor an OnEvent callback runs under the lock.
type batch struct {
	frames []outFrame
	events []Event
	wake   bool
}

// New returns a Speaker that reads and writes whole Ethernet frames on conn
// (in production an AF_PACKET socket bound to ETH_P_ARP on the segment
// interface; in tests any in-memory net.PacketConn). Outgoing frames are
// written to a *packet.Addr from github.com/mdlayher/packet holding the
// destination MAC. The Speaker owns conn: Close closes it. cfg.HardwareAddr
// is required. IPv6 VIPs and backends are served only when cfg.NDPConn is
// set.
func New(conn net.PacketConn, cfg *Config) (*Speaker, error) {
	if conn == nil {
		return nil, fmt.Errorf("%w: nil conn", ErrInvalidConfig)
	}
	st, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	var ndpConn net.PacketConn
	if cfg != nil {
		ndpConn = cfg.NDPConn
	}
	return &Speaker{
		conn:      conn,
		ndpConn:   ndpConn,
		cfg:       st,
		log:       st.log,
		now:       time.Now,
		wake:      make(chan struct{}, 1),
		vips:      make(map[VIP]*vipState),
		backends:  make(map[VIP]*backendState),
		conflicts: make(map[conflictKey]time.Time),
		limit:     newLimiter(st.replyRate, st.replyBurst, MaxRequesters),
	}, nil
}

// HardwareAddr returns the MAC the Speaker answers with.
func (s *Speaker) HardwareAddr() net.HardwareAddr { return slices.Clone(s.cfg.mac[:]) }

// IP returns the sender address of the Speaker's probes (0.0.0.0 if none).
func (s *Speaker) IP() netip.Addr { return s.cfg.ip }

// IP6 returns the source address of the Speaker's Neighbor Solicitations
// (:: if none).
func (s *Speaker) IP6() netip.Addr { return s.cfg.ip6 }

// NDP reports whether the Speaker serves IPv6 VIPs and backends, that is
// whether it has a neighbour discovery socket.
func (s *Speaker) NDP() bool { return s.ndpConn != nil }

// family reports whether a (unmapped) is an address the Speaker serves:
// IPv4, or IPv6 with neighbour discovery. Multicast, loopback and
// unspecified addresses are never VIPs nor backends, and neither are
// addresses with a zone (the Speaker's link is its zone).
func (s *Speaker) family(a netip.Addr) bool {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		return false
	}
	return a.Is4() || (s.ndpConn != nil && a.Is6() && a.Zone() == "")
}

// SetVIPs replaces the set of VIPs the Speaker answers for with vips, all
// on the untagged VLAN (SetVLANVIPs serves VIPs on VLANs). A VIP that is
// new gets a burst of gratuitous ARPs (unsolicited Neighbor Advertisements
// for IPv6) and an immediate conflict probe; a VIP that is gone is neither
// answered nor announced any more (the next owner's announcements, or the
// clients' cache expiry, move it away). IPv6 VIPs are ignored without a
// neighbour discovery socket; with one, the socket joins their
// solicited-node multicast groups.
func (s *Speaker) SetVIPs(vips []netip.Addr) {
	vs := make([]VIP, len(vips))
	for i, a := range vips {
		vs[i] = VIP{Addr: a}
	}
	s.SetVLANVIPs(vs)
}

// SetVLANVIPs replaces the set of VIPs the Speaker answers for, each on its
// VLAN, as SetVIPs does for untagged ones: a VIP on VLAN N is answered,
// announced and conflict-checked only with frames tagged N. VIPs with a
// VLAN above MaxVLAN are ignored.
func (s *Speaker) SetVLANVIPs(vips []VIP) {
	now := s.now()
	s.mu.Lock()
	keep := make(map[VIP]bool, len(vips))
	for _, v := range vips {
		v.Addr = v.Addr.Unmap()
		if !s.family(v.Addr) || v.VLAN > MaxVLAN {
			continue
		}
		keep[v] = true
		if _, ok := s.vips[v]; !ok {
			s.vips[v] = &vipState{burstLeft: s.cfg.announceCount, nextAnnounce: now, nextProbe: now}
		}
	}
	for v := range s.vips {
		if !keep[v] {
			delete(s.vips, v)
		}
	}
	s.mu.Unlock()
	s.syncGroups()
	s.nudge()
}

// VIPs returns the addresses of the VIPs currently served, on any VLAN,
// sorted and without duplicates.
func (s *Speaker) VIPs() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.Addr, 0, len(s.vips))
	for v := range s.vips {
		out = append(out, v.Addr)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// VLANVIPs returns the VIPs currently served with their VLANs, sorted by
// VLAN, then address.
func (s *Speaker) VLANVIPs() []VIP {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VIP, 0, len(s.vips))
	for v := range s.vips {
		out = append(out, v)
	}
	slices.SortFunc(out, VIP.compare)
	return out
}

// Takeover restarts the gratuitous burst for the given VIPs (on every VLAN
// they are served on), or for every served VIP when none are given: call it
// when this balancer takes over from another one, so that hosts and
// switches move to our MAC at once instead of at their cache expiry. VIPs
// not served (see SetVIPs) are ignored.
func (s *Speaker) Takeover(vips ...netip.Addr) {
	now := s.now()
	s.mu.Lock()
	for v, st := range s.vips {
		if len(vips) == 0 || slices.Contains(vips, v.Addr) {
			st.burstLeft = s.cfg.announceCount
			st.nextAnnounce = now
		}
	}
	s.mu.Unlock()
	s.nudge()
}

// SetBackends replaces the set of backends. Backends already known keep
// their resolved MAC; new ones without a static MAC are resolved at once.
func (s *Speaker) SetBackends(backends []Backend) {
	now := s.now()
	s.mu.Lock()
	keep := make(map[VIP]bool, len(backends))
	for _, b := range backends {
		if !s.family(b.Addr.Unmap()) || b.VLAN > MaxVLAN {
			continue
		}
		a := VIP{Addr: b.Addr.Unmap(), VLAN: b.VLAN}
		keep[a] = true
		st, ok := s.backends[a]
		if !ok {
			st = &backendState{next: now}
			s.backends[a] = st
		}
		var static net.HardwareAddr
		if len(b.MAC) == 6 {
			static = slices.Clone(b.MAC)
		}
		if st.static != nil && static == nil {
			st.next = now // became dynamic: resolve now
		}
		st.static = static
	}
	for a := range s.backends {
		if !keep[a] {
			delete(s.backends, a)
		}
	}
	s.mu.Unlock()
	s.nudge()
}

// Lookup returns the MAC to forward to backend addr on the untagged VLAN:
// its static MAC, or the resolved one. ok is false while the backend is
// unknown, not yet resolved or Unresolved.
func (s *Speaker) Lookup(addr netip.Addr) (mac net.HardwareAddr, ok bool) {
	return s.LookupVLAN(0, addr)
}

// LookupVLAN is Lookup for a backend on a VLAN.
func (s *Speaker) LookupVLAN(vlan uint16, addr netip.Addr) (mac net.HardwareAddr, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.backends[VIP{Addr: addr.Unmap(), VLAN: vlan}]
	switch {
	case st == nil:
		return nil, false
	case st.static != nil:
		return slices.Clone(st.static), true
	case st.resolved:
		return slices.Clone(st.mac), true
	}
	return nil, false
}

// Stats returns a snapshot of the counters.
func (s *Speaker) Stats() Stats { return s.stats.snapshot() }

// Close closes the sockets. A running Run returns. It is safe to call more
// than once.
func (s *Speaker) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.conn.Close()
	if s.ndpConn != nil {
		err = errors.Join(err, s.ndpConn.Close())
	}
	return err
}

// ErrRunning is returned by Run when the Speaker is already running.
var ErrRunning = errors.New("arp: Speaker is already running")

// Run reads and answers ARP (and neighbour discovery), sends announcements
// and probes, and returns only when all of its goroutines have stopped: nil
// after ctx is cancelled or Close, or the socket error that stopped a read
// loop (an error wrapping net.ErrClosed if the Speaker was already closed).
// It does not close the sockets (Close does), so a Speaker may be run again
// after Run returns.
func (s *Speaker) Run(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("arp: run: %w", net.ErrClosed)
	}
	if s.running.Swap(true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	conns := []net.PacketConn{s.conn}
	if s.ndpConn != nil {
		conns = append(conns, s.ndpConn)
	}
	var wg sync.WaitGroup
	readErrs := make([]error, len(conns))
	for i, c := range conns {
		wg.Go(func() {
			readErrs[i] = s.readLoop(ctx, c)
			cancel()
		})
	}
	wg.Go(func() { s.timerLoop(ctx) })
	// Unblock the readers when ctx ends. A conn without deadlines is closed
	// instead: stopping matters more than keeping it.
	unblocked := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		for _, c := range conns {
			if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
				_ = s.Close()
			}
		}
	})
	wg.Wait()
	if !stop() {
		<-unblocked // never leave a past deadline behind for the next Run
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Time{})
	}
	return errors.Join(readErrs...)
}

// logPrefix names the protocol in log lines: "arp: " for IPv4 and "ndp: "
// for IPv6 (neighbour discovery), so an operator reading the log is not
// sent looking for ARP trouble on an IPv6 backend.
func logPrefix(ipv6 bool) string {
	if ipv6 {
		return "ndp: "
	}
	return "arp: "
}

func (s *Speaker) readLoop(ctx context.Context, conn net.PacketConn) error {
	buf := make([]byte, 1600)
	for {
		n, _, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.stats.readErrors.Add(1)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A deadline we did not set for stopping: clear it and
				// keep reading.
				_ = conn.SetReadDeadline(time.Time{})
				continue
			}
			if errors.Is(err, net.ErrClosed) && s.closed.Load() {
				return nil
			}
			p := logPrefix(conn == s.ndpConn)
			s.log.Error(p+"reading from socket failed", "err", err)
			return fmt.Errorf("arp: read: %w", err)
		}
		var b batch
		s.mu.Lock()
		s.handle(buf[:n], s.now(), &b)
		s.mu.Unlock()
		s.apply(&b)
	}
}

func (s *Speaker) timerLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := s.now()
		var b batch
		s.mu.Lock()
		next := s.tick(now, &b)
		s.mu.Unlock()
		s.apply(&b)
		t.Reset(next.Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

func (s *Speaker) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// apply sends the frames and delivers the events of a step.
func (s *Speaker) apply(b *batch) {
	for _, f := range b.frames {
		conn := s.conn
		if f.nd {
			conn = s.ndpConn
		}
		// Counted before the write, so that a peer that has seen the
		// frame never finds it missing from Stats; taken back on failure.
		f.ctr.Add(1)
		if _, err := conn.WriteTo(f.b, hwAddr(f.dst)); err != nil {
			f.ctr.Add(^uint64(0))
			if s.stats.writeErrors.Add(1) == 1 {
				s.log.Warn(logPrefix(f.nd)+"sending failed", "err", err)
			}
		}
	}
	if b.wake {
		s.nudge()
	}
	if len(b.events) == 0 {
		return
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	for _, e := range b.events {
		level := slog.LevelInfo
		if e.Kind == Conflict || e.Kind == Unresolved {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(context.Background(), level, logPrefix(e.Addr.Is6())+e.String(), e.LogAttrs()...)
		if s.cfg.onEvent != nil {
			s.cfg.onEvent(e)
		}
		for _, h := range s.extra {
			h.fn(e)
		}
	}
}

// handler is one AddEventHandler registration; its address identifies it.
type handler struct{ fn func(Event) }

// AddEventHandler adds fn to the receivers of the Speaker's events, after
// Config.OnEvent, with the same rules: called from the Speaker's goroutines,
// one event at a time, never with internal locks held, and it must not
// block. It lets a component that is handed an existing Speaker (a
// dsr.Balancer) follow its events for as long as it needs them: remove
// takes fn off again, after which fn is not called. remove may be called
// more than once, but not from fn itself.
func (s *Speaker) AddEventHandler(fn func(Event)) (remove func()) {
	if fn == nil {
		return func() {}
	}
	h := &handler{fn: fn}
	s.evMu.Lock()
	s.extra = append(s.extra, h)
	s.evMu.Unlock()
	return sync.OnceFunc(func() {
		s.evMu.Lock()
		defer s.evMu.Unlock()
		s.extra = slices.DeleteFunc(s.extra, func(x *handler) bool { return x == h })
	})
}
