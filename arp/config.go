package arp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Default values used for zero Config fields.
const (
	// DefaultAnnounceCount gratuitous ARPs make up the burst sent when a VIP
	// starts being served: several, because a single broadcast can be lost
	// while a switch port or a peer's link is still coming up.
	DefaultAnnounceCount = 3
	// DefaultAnnounceSpacing separates the packets of a burst.
	DefaultAnnounceSpacing = time.Second
	// DefaultAnnounceInterval is the periodic refresh, well below the usual
	// 300 s switch MAC table ageing, so the switch never floods VIP traffic
	// and peers that missed the burst learn the VIP within a minute.
	DefaultAnnounceInterval = 60 * time.Second
	// DefaultResolveInterval is how often a resolved backend MAC is checked
	// again; a backend that changes its MAC is followed within this time.
	DefaultResolveInterval = 30 * time.Second
	// DefaultResolveTimeout is how long a resolver request waits for its
	// reply before it counts as lost. Replies on one segment take
	// microseconds; a second covers a busy host.
	DefaultResolveTimeout = time.Second
	// DefaultResolveAttempts consecutive lost requests make a backend
	// Unresolved.
	DefaultResolveAttempts = 3
	// DefaultConflictProbeInterval is how often each VIP is probed for other
	// owners. The probe costs one broadcast per VIP; a thief costs traffic
	// every second it goes unnoticed.
	DefaultConflictProbeInterval = 10 * time.Second
	// DefaultReplyRate is the sustained number of replies per second sent to
	// one requester. A healthy host asks once per VIP per cache lifetime.
	DefaultReplyRate = 10
	// DefaultReplyBurst is the number of replies one requester may get at
	// once, enough for a router that resolves many VIPs after a restart.
	DefaultReplyBurst = 20
	// MaxRequesters bounds the rate limiter's table, so a flood of requests
	// from forged MACs cannot grow memory without limit.
	MaxRequesters = 4096
)

// ErrInvalidConfig is wrapped by New and Listen when the configuration
// cannot work (for example a missing or multicast hardware address).
var ErrInvalidConfig = errors.New("arp: invalid configuration")

// ErrUnsupported is returned by Listen on platforms without AF_PACKET
// sockets. New works everywhere.
var ErrUnsupported = errors.New("arp: packet sockets are not supported on this platform")

// Config configures a Speaker. A nil *Config means all defaults, which only
// works with Listen (New needs HardwareAddr).
type Config struct {
	// HardwareAddr is the balancer's MAC on the segment: the address the
	// VIPs resolve to and the source of every frame sent. New requires a
	// 6-byte unicast address; Listen fills it from the interface when nil.
	HardwareAddr net.HardwareAddr
	// IP is the balancer's own IPv4 address on the segment, the sender
	// address of resolver and conflict probes, so that the hosts asked reply
	// to us. Zero means: Listen uses the interface's first IPv4 address; New
	// (and Listen on an interface without IPv4) sends probes from 0.0.0.0
	// in the RFC 5227 probe form, which hosts answer as well.
	IP netip.Addr
	// IP6 is the balancer's own IPv6 address on the segment, the source of
	// Neighbor Solicitations that resolve backends and probe VIPs, so that
	// the hosts asked answer us with a solicited advertisement. A
	// link-local address is the natural choice: it is always on-link.
	// Zero means: Listen uses the interface's link-local address (else its
	// first IPv6 address); New (and Listen on an interface without IPv6)
	// sends solicitations from the unspecified address in the duplicate
	// address detection form, which owners answer with a multicast
	// advertisement.
	IP6 netip.Addr
	// NDPConn is the socket for IPv6 neighbour discovery, carrying whole
	// Ethernet frames like the ARP socket given to New. Nil means New
	// ignores IPv6 VIPs and backends; Listen opens one itself (an
	// AF_PACKET socket for ICMPv6 neighbour discovery) when nil. The
	// Speaker owns it: Close closes it.
	NDPConn net.PacketConn

	// AnnounceCount is the number of gratuitous ARPs sent when a VIP starts
	// being served or is taken over. Zero means DefaultAnnounceCount;
	// negative means 1.
	AnnounceCount int
	// AnnounceSpacing separates the packets of a burst. Zero means
	// DefaultAnnounceSpacing.
	AnnounceSpacing time.Duration
	// AnnounceInterval is the periodic refresh of every served VIP. Zero
	// means DefaultAnnounceInterval; negative disables the refresh.
	AnnounceInterval time.Duration

	// ResolveInterval is how often each backend's MAC is checked again.
	// Zero means DefaultResolveInterval.
	ResolveInterval time.Duration
	// ResolveTimeout is how long a resolver request waits for its reply;
	// later replies are ignored. Zero means DefaultResolveTimeout.
	ResolveTimeout time.Duration
	// ResolveAttempts is the number of consecutive lost requests after
	// which a backend is reported Unresolved. Zero means
	// DefaultResolveAttempts.
	ResolveAttempts int

	// ConflictProbeInterval is how often each VIP is probed (who-has VIP)
	// to find other hosts that answer for it. It is also the minimum time
	// between two Conflict events (and two defending announcements) for the
	// same VIP and MAC. Zero means DefaultConflictProbeInterval; negative
	// disables active probes (the passive watch stays, deduplicated over
	// DefaultConflictProbeInterval).
	ConflictProbeInterval time.Duration

	// ReplyRate is the sustained replies per second sent to one requester
	// (keyed by its MAC). Zero means DefaultReplyRate; negative means no
	// limit.
	ReplyRate float64
	// ReplyBurst is how many replies one requester may get at once. Zero
	// means DefaultReplyBurst.
	ReplyBurst int

	// OnEvent receives Conflict, Resolved, MACChanged and Unresolved
	// events. It is called from the Speaker's goroutines, never
	// concurrently with itself and never with internal locks held (so it may
	// call Speaker methods), but it must not block: the socket is not read
	// while it runs. Hand events to a buffered channel or a goroutine.
	// Nil means events are only logged.
	OnEvent func(Event)
	// Logger receives conflicts, resolver changes and socket errors (never
	// one line per packet). Nil discards.
	Logger *slog.Logger
}

// settings is a Config with defaults filled in and values checked.
type settings struct {
	mac              [6]byte
	ip               netip.Addr
	ip6              netip.Addr // IPv6Unspecified when not configured
	announceCount    int
	announceSpacing  time.Duration
	announceInterval time.Duration // <=0: no refresh
	resolveInterval  time.Duration
	resolveTimeout   time.Duration
	resolveAttempts  int
	conflictInterval time.Duration // <=0: no active probes
	conflictDedup    time.Duration
	replyRate        float64 // <0: unlimited
	replyBurst       float64
	onEvent          func(Event)
	log              *slog.Logger
}

func (c *Config) settings() (settings, error) {
	if c == nil {
		c = &Config{}
	}
	var s settings
	if len(c.HardwareAddr) != 6 {
		return s, fmt.Errorf("%w: HardwareAddr %q is not a 6-byte Ethernet address", ErrInvalidConfig, c.HardwareAddr)
	}
	copy(s.mac[:], c.HardwareAddr)
	if !unicastMAC(s.mac) {
		return s, fmt.Errorf("%w: HardwareAddr %s is not a unicast address", ErrInvalidConfig, c.HardwareAddr)
	}
	s.ip = c.IP.Unmap()
	switch {
	case !s.ip.IsValid():
		s.ip = netip.IPv4Unspecified()
	case !s.ip.Is4():
		return s, fmt.Errorf("%w: IP %s is not an IPv4 address", ErrInvalidConfig, c.IP)
	}
	s.ip6 = c.IP6.Unmap().WithZone("") // the socket fixes the link
	switch {
	case !s.ip6.IsValid():
		s.ip6 = netip.IPv6Unspecified()
	case !s.ip6.Is6() || s.ip6.IsMulticast():
		return s, fmt.Errorf("%w: IP6 %s is not a unicast IPv6 address", ErrInvalidConfig, c.IP6)
	}
	s.announceCount = pick(c.AnnounceCount, DefaultAnnounceCount)
	if s.announceCount < 1 {
		s.announceCount = 1
	}
	s.announceSpacing = pick(c.AnnounceSpacing, DefaultAnnounceSpacing)
	s.announceInterval = pick(c.AnnounceInterval, DefaultAnnounceInterval)
	s.resolveInterval = pick(c.ResolveInterval, DefaultResolveInterval)
	s.resolveTimeout = pick(c.ResolveTimeout, DefaultResolveTimeout)
	s.resolveAttempts = pick(c.ResolveAttempts, DefaultResolveAttempts)
	s.conflictInterval = pick(c.ConflictProbeInterval, DefaultConflictProbeInterval)
	s.conflictDedup = s.conflictInterval
	if s.conflictDedup <= 0 {
		s.conflictDedup = DefaultConflictProbeInterval
	}
	if s.announceSpacing < 0 || s.resolveInterval < 0 || s.resolveTimeout < 0 || s.resolveAttempts < 0 || c.ReplyBurst < 0 {
		return s, fmt.Errorf("%w: negative spacing, resolver setting or burst", ErrInvalidConfig)
	}
	s.replyRate = pick(c.ReplyRate, DefaultReplyRate)
	s.replyBurst = float64(pick(c.ReplyBurst, DefaultReplyBurst))
	s.onEvent = c.OnEvent
	s.log = c.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

func pick[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
