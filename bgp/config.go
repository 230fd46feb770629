package bgp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Sentinel errors. Errors returned by this package wrap one of them where it
// applies, for errors.Is.
var (
	// ErrConfig: the configuration is invalid; the error is a *ConfigError
	// naming the field.
	ErrConfig = errors.New("bgp: invalid configuration")
	// ErrNotVIP: the address cannot be announced (not a unicast address).
	ErrNotVIP = errors.New("bgp: not an announceable address")
	// ErrStopped: the speaker has stopped (Run returned) or never ran.
	ErrStopped = errors.New("bgp: speaker stopped")
)

// ConfigError is an invalid configuration field. Field is the field's path
// in the configuration's terms (like "peers[0].hold_time"); errors.Is(err,
// ErrConfig) holds.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
	return "bgp: invalid configuration: " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns ErrConfig and the cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrConfig, e.Err} }

func fieldErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Defaults applied to zero fields.
const (
	// DefaultHoldTime is the hold time proposed to peers. It is far below
	// BGP's customary 90 s because a balancer that died must stop
	// attracting traffic quickly; BFD detects it faster still.
	DefaultHoldTime = 9 * time.Second
	// DefaultRestartTime is the graceful-restart time announced to peers:
	// how long they keep the routes of a restarting speaker.
	DefaultRestartTime = 120 * time.Second
	// DefaultBFDInterval is the BFD transmit and receive interval.
	DefaultBFDInterval = 300 * time.Millisecond
	// DefaultBFDMultiplier is the number of missed BFD packets that bring
	// the session down.
	DefaultBFDMultiplier = 3
)

// Config configures a Speaker. New rejects a nil *Config: RouterID, LocalAS
// and at least one peer have no sensible default.
type Config struct {
	// RouterID is the speaker's BGP identifier, an IPv4 address (also on an
	// IPv6-only balancer). Required.
	RouterID netip.Addr
	// LocalAS is the speaker's autonomous system number (4-byte ASNs are
	// supported). Required.
	LocalAS uint32
	// ListenPort is the TCP port the speaker accepts peers' connections on.
	// Zero means it does not listen and only connects out to its peers,
	// which is what a balancer next to a router running BGP on port 179
	// usually wants.
	ListenPort uint16
	// Peers are the routers to announce to. At least one is required.
	Peers []Peer
	// NextHop4 is the next hop announced with IPv4 VIPs. The zero value
	// means the speaker's own address on each session (next hop self).
	NextHop4 netip.Addr
	// NextHop6 is the next hop announced with IPv6 VIPs. The zero value
	// means the speaker's own address on each session.
	NextHop6 netip.Addr
	// Logger receives session changes and errors. Nil discards.
	Logger *slog.Logger
	// OnEvent is called for every session state change and every change
	// of the announced set, from the speaker's goroutines; it must not
	// block. Nil means no callback.
	OnEvent func(Event)
}

// Peer is one BGP neighbour.
type Peer struct {
	// Addr is the neighbour's address. Required.
	Addr netip.Addr
	// AS is the neighbour's AS number; equal to Config.LocalAS for iBGP.
	// Required.
	AS uint32
	// Port is the neighbour's TCP port. Zero means 179.
	Port uint16
	// LocalAddr is the source address of the session. The zero value lets
	// the kernel choose.
	LocalAddr netip.Addr
	// HoldTime is the hold time proposed in the OPEN message; the session
	// uses the smaller of both sides'. Zero means DefaultHoldTime. BGP
	// allows 3 s at least.
	HoldTime time.Duration
	// Keepalive is the keepalive interval. Zero means HoldTime/3.
	Keepalive time.Duration
	// Passive waits for the neighbour to connect (needs ListenPort). Zero
	// (false) connects out.
	Passive bool
	// GracefulRestart offers graceful restart (RFC 4724) to the neighbour.
	// Nil means it is not offered: the neighbour drops the routes as soon
	// as the session is lost.
	GracefulRestart *GracefulRestart
	// BFD runs a BFD session (RFC 5880/5881, single hop, asynchronous mode)
	// with the neighbour; when it fails, the BGP session is reset at once.
	// The neighbour must run BFD too. Nil means no BFD.
	BFD *BFD
}

// GracefulRestart configures RFC 4724 graceful restart with one peer.
type GracefulRestart struct {
	// RestartTime is how long the peer keeps this speaker's routes after
	// the session is lost without a clean stop. Zero means
	// DefaultRestartTime; at most 4095 s.
	RestartTime time.Duration
}

// BFD configures a BFD session with one peer.
type BFD struct {
	// Interval is the desired transmit and required receive interval.
	// Zero means DefaultBFDInterval.
	Interval time.Duration
	// Multiplier is the detection multiplier. Zero means
	// DefaultBFDMultiplier.
	Multiplier int
}

func (c *Config) validate() error {
	if c == nil {
		return fieldErr("config", "nil: router_id, local_as and peers are required")
	}
	if !c.RouterID.Is4() {
		return fieldErr("router_id", "want an IPv4 address, got %q", c.RouterID.String())
	}
	if c.LocalAS == 0 {
		return fieldErr("local_as", "required (a non-zero AS number)")
	}
	if len(c.Peers) == 0 {
		return fieldErr("peers", "at least one peer is required")
	}
	if c.NextHop4.IsValid() && !c.NextHop4.Unmap().Is4() {
		return fieldErr("next_hop4", "%s is not an IPv4 address", c.NextHop4)
	}
	if c.NextHop6.IsValid() && (!c.NextHop6.Is6() || c.NextHop6.Is4In6()) {
		return fieldErr("next_hop6", "%s is not an IPv6 address", c.NextHop6)
	}
	seen := map[netip.Addr]bool{}
	for i, p := range c.Peers {
		if err := p.validate(fmt.Sprintf("peers[%d].", i), c.ListenPort); err != nil {
			return err
		}
		a := p.Addr.Unmap()
		if seen[a] {
			return fieldErr(fmt.Sprintf("peers[%d].address", i), "%s is listed twice", a)
		}
		seen[a] = true
	}
	return nil
}

func (p *Peer) validate(f string, listen uint16) error {
	if !p.Addr.IsValid() || p.Addr.IsUnspecified() || p.Addr.IsMulticast() {
		return fieldErr(f+"address", "want a unicast address, got %q", p.Addr.String())
	}
	if p.AS == 0 {
		return fieldErr(f+"as", "required (a non-zero AS number)")
	}
	if p.LocalAddr.IsValid() && p.LocalAddr.Unmap().Is4() != p.Addr.Unmap().Is4() {
		return fieldErr(f+"local_address", "%s is not of the family of %s", p.LocalAddr, p.Addr)
	}
	if p.HoldTime != 0 && (p.HoldTime < 3*time.Second || p.HoldTime > 65535*time.Second) {
		return fieldErr(f+"hold_time", "%v: want 3s to 18h12m15s (or 0 for %v)", p.HoldTime, DefaultHoldTime)
	}
	hold := p.holdTime()
	if p.Keepalive < 0 || p.Keepalive >= hold || (p.Keepalive != 0 && p.Keepalive < time.Second) {
		return fieldErr(f+"keepalive", "%v: want at least 1s and less than the hold time %v", p.Keepalive, hold)
	}
	if p.Passive && listen == 0 {
		return fieldErr(f+"passive", "the speaker does not listen (listen_port is 0), so a passive peer could never connect")
	}
	if gr := p.GracefulRestart; gr != nil && (gr.RestartTime < 0 || gr.RestartTime > 4095*time.Second) {
		return fieldErr(f+"graceful_restart.restart_time", "%v: want 0s to 4095s", gr.RestartTime)
	}
	if b := p.BFD; b != nil {
		if b.Interval < 0 || (b.Interval != 0 && b.Interval < 10*time.Millisecond) || b.Interval > time.Minute {
			return fieldErr(f+"bfd.interval", "%v: want 10ms to 1m (or 0 for %v)", b.Interval, DefaultBFDInterval)
		}
		if b.Multiplier < 0 || b.Multiplier > 255 {
			return fieldErr(f+"bfd.multiplier", "%d: want 1 to 255 (or 0 for %d)", b.Multiplier, DefaultBFDMultiplier)
		}
	}
	return nil
}

func (p *Peer) holdTime() time.Duration {
	if p.HoldTime == 0 {
		return DefaultHoldTime
	}
	return p.HoldTime
}

func (p *Peer) keepalive() time.Duration {
	if p.Keepalive == 0 {
		return p.holdTime() / 3
	}
	return p.Keepalive
}
