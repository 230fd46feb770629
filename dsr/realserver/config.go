package realserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// ErrUnsupported is returned by Prepare, Check and Undo on platforms other
// than Linux: the kernel parameters they manage exist only there.
var ErrUnsupported = errors.New("realserver: only supported on Linux")

// ErrInvalidConfig wraps every configuration error, so callers (the CLI)
// can tell a usage mistake from a failure of the system.
var ErrInvalidConfig = errors.New("realserver: invalid configuration")

// ErrModified is wrapped by Undo when something it would revert was changed
// by someone else after Prepare; Undo leaves such a thing alone rather than
// destroy the other change.
var ErrModified = errors.New("realserver: changed since Prepare, left alone")

// Protocol is the transport of the service, for the listener check.
type Protocol string

// Protocols. The zero value means TCP.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// DefaultARPWindow is how long Check collects ARP replies when
// Config.ARPWindow is zero: long enough for a host on the same segment,
// short enough for an interactive command.
const DefaultARPWindow = 300 * time.Millisecond

// DefaultNDPWindow is how long Check collects neighbour advertisements
// when Config.NDPWindow is zero. Longer than DefaultARPWindow because a
// proxy or anycast responder delays its answer by a random time of up to
// one second (RFC 4861 MAX_ANYCAST_DELAY_TIME; Linux waits up to
// proxy_delay, 0.8 s by default).
const DefaultNDPWindow = time.Second

// Config describes the DSR service of this server. Prepare, Check and Undo
// take a *Config; Prepare and Check need at least one VIP.
type Config struct {
	// VIPs are the service addresses the balancer forwards to this
	// server. Required; IPv4-mapped IPv6 addresses are unmapped.
	VIPs []netip.Addr
	// Port is the service port. Zero skips the listener check.
	Port uint16
	// Protocol is the service transport. Zero means TCP.
	Protocol Protocol
	// Interface holds the VIPs. Empty means "lo". Any other name is a
	// dummy interface, which Prepare creates if it does not exist.
	Interface string
	// Segment names the interfaces that face the balancer's segment,
	// whose ARP, rp_filter, proxy_ndp and disable_ipv6 settings matter.
	// Nil means every interface that is up, does ARP and neighbour
	// discovery, and has an IPv4 address or an IPv6 address that is not
	// link-local (loopback, the VIP interface and the VIPs excluded).
	Segment []string
	// BalancerMAC is the MAC that legitimately answers ARP (IPv4) and
	// neighbour solicitations (IPv6) for the VIPs.
	// Nil means unknown: then more than one answering MAC is an error,
	// and none a warning.
	BalancerMAC net.HardwareAddr
	// ARPWindow is how long Check waits for ARP replies per segment
	// interface. Zero means DefaultARPWindow; negative skips the ARP probe.
	ARPWindow time.Duration
	// NDPWindow is how long Check waits for neighbour advertisements per
	// segment interface, for IPv6 VIPs. Zero means DefaultNDPWindow;
	// negative skips the neighbour-discovery probe.
	NDPWindow time.Duration
	// Logger receives one line per change made by Prepare. Nil
	// discards.
	Logger *slog.Logger

	// Mode is how the balancer forwards to this server (see l3.go). Zero
	// means ModeL2. In ModeIPIP and ModeGUE, Prepare sets up
	// decapsulation and lowers the advertised MSS, Check verifies both,
	// and the ARP and neighbour-discovery probes do not run (the balancer
	// is not on this segment).
	Mode Mode
	// Balancers are the balancers' own addresses, the outer source of
	// their tunnel packets. Required in L3 modes.
	Balancers []netip.Addr
	// GUEPort is the UDP port of GUE packets. Zero means DefaultGUEPort.
	GUEPort uint16
	// Underlay is the interface the tunnel packets arrive on. Empty means
	// the interface of the route to the first balancer.
	Underlay string
	// AdvMSS is the TCP MSS the server advertises on its gateway routes
	// (default route included) out of Underlay in L3 modes, so that client
	// packets fit once encapsulated. Zero means Mode.MSS of the underlay's
	// MTU; negative leaves the routes alone (clients then rely on the
	// balancer's too-big answers).
	AdvMSS int
	// Decap selects the decapsulation path. Zero means DecapAuto.
	Decap Decap
}

// config is Config with defaults applied and inputs normalised.
type config struct {
	Config
	holder string
	// v4 and v6 are the VIPs of each family, in configuration order.
	v4, v6 []netip.Addr
}

func (c *Config) resolve(needVIPs bool) (config, error) {
	var r config
	if c != nil {
		r.Config = *c
	}
	if needVIPs && len(r.VIPs) == 0 {
		return r, fmt.Errorf("%w: no VIPs", ErrInvalidConfig)
	}
	vips := make([]netip.Addr, 0, len(r.VIPs))
	for _, v := range r.VIPs {
		v = v.Unmap()
		if !v.IsValid() || v.IsUnspecified() || v.IsLoopback() || v.IsMulticast() || v.IsLinkLocalUnicast() {
			return r, fmt.Errorf("%w: unusable VIP %v", ErrInvalidConfig, v)
		}
		for _, w := range vips {
			if w == v {
				return r, fmt.Errorf("%w: duplicate VIP %v", ErrInvalidConfig, v)
			}
		}
		vips = append(vips, v)
	}
	r.VIPs = vips
	for _, v := range vips {
		if v.Is4() {
			r.v4 = append(r.v4, v)
		} else {
			r.v6 = append(r.v6, v)
		}
	}
	switch r.Protocol {
	case "":
		r.Protocol = TCP
	case TCP, UDP:
	default:
		return r, fmt.Errorf("%w: protocol %q (want tcp or udp)", ErrInvalidConfig, r.Protocol)
	}
	r.holder = r.Interface
	if r.holder == "" {
		r.holder = "lo"
	}
	if err := validIfName(r.holder); err != nil {
		return r, err
	}
	for _, s := range r.Segment {
		if err := validIfName(s); err != nil {
			return r, err
		}
		if s == r.holder {
			return r, fmt.Errorf("%w: segment interface %q also holds the VIPs", ErrInvalidConfig, s)
		}
	}
	if r.BalancerMAC != nil && len(r.BalancerMAC) != 6 {
		return r, fmt.Errorf("%w: balancer MAC %v is not an Ethernet address", ErrInvalidConfig, r.BalancerMAC)
	}
	if r.ARPWindow == 0 {
		r.ARPWindow = DefaultARPWindow
	}
	if r.NDPWindow == 0 {
		r.NDPWindow = DefaultNDPWindow
	}
	r.Balancers = append([]netip.Addr(nil), r.Balancers...)
	if err := r.l3Resolve(); err != nil {
		return r, err
	}
	return r, nil
}

// validIfName rejects names the kernel would reject, and names that would
// escape /proc/sys when used in a sysctl path.
func validIfName(name string) error {
	if name == "" || len(name) >= 16 || name == "." || name == ".." || name == "all" || name == "default" {
		return fmt.Errorf("%w: interface name %q", ErrInvalidConfig, name)
	}
	for _, r := range name {
		if r == '/' || r <= ' ' || r == ':' || r > '~' {
			return fmt.Errorf("%w: interface name %q", ErrInvalidConfig, name)
		}
	}
	return nil
}
