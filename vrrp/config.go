package vrrp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// Defaults for zero Config fields.
const (
	// DefaultPriority is a backup's priority when none is set (as in
	// keepalived).
	DefaultPriority = 100
	// DefaultInterval is the advertisement interval when none is set (RFC
	// 5798's default).
	DefaultInterval = time.Second
	// MinInterval and MaxInterval bound the interval: the field is 12 bits
	// of centiseconds.
	MinInterval = 10 * time.Millisecond
	MaxInterval = 4095 * 10 * time.Millisecond
)

// Sentinel errors; returned errors wrap them (use errors.Is).
var (
	// ErrInvalidConfig: New rejected the configuration; the message names
	// the field.
	ErrInvalidConfig = errors.New("vrrp: invalid configuration")
	// ErrIPv6: an IPv6 virtual address was given. This package speaks
	// VRRPv3 for IPv4 only; an IPv6 VIP needs a virtual router of its own,
	// which is not implemented.
	ErrIPv6 = errors.New("vrrp: IPv6 virtual routers are not supported (IPv4 only)")
	// ErrUnsupported: the platform has no raw IP sockets for VRRP (only
	// Linux is supported).
	ErrUnsupported = errors.New("vrrp: not supported on this platform")
	// ErrRunning: Run was called while the Router is already running.
	ErrRunning = errors.New("vrrp: Router is already running")
)

// Config configures one virtual router on one interface. Fields left zero
// take the documented defaults; a nil *Config is invalid (VRID, Interface
// and VIPs have no defaults).
type Config struct {
	// Interface is the name of the interface facing the segment. Required.
	Interface string
	// VRID is the virtual router id, 1–255, the same on every router of
	// the group. Required (zero is invalid).
	VRID uint8
	// Priority is this router's priority, 1–254; the highest becomes
	// master. Zero means DefaultPriority (100). 255, the address owner's
	// priority, is refused: a balancer never holds the VIP as an address.
	Priority uint8
	// Interval is the advertisement interval, a multiple of 10 ms between
	// MinInterval and MaxInterval. Zero means DefaultInterval (1 s).
	Interval time.Duration
	// NoPreempt keeps the current master even when this router has a
	// higher priority (keepalived's nopreempt). Zero (false) means the RFC
	// default: a higher-priority backup takes over.
	NoPreempt bool
	// PreemptDelay makes a higher-priority backup wait this long, counted
	// from the first advertisement it hears from the lower-priority
	// master, before it preempts (keepalived's preempt_delay, not in the
	// RFC). Zero means preempt at once; it has no effect with NoPreempt.
	PreemptDelay time.Duration
	// VIPs are the virtual IPv4 addresses carried in the advertisements;
	// they must match the other routers' lists. At least one is required;
	// IPv6 addresses are refused with ErrIPv6.
	VIPs []netip.Addr
	// Addr is this router's primary address, the advertisements' source
	// and the tie-breaker between equal priorities. Zero means the first
	// IPv4 address of Interface.
	Addr netip.Addr
	// OnEvent receives every state change (see Kind), one at a time, from
	// the Router's goroutines; it must not block for long. Nil discards
	// events (they are still logged).
	OnEvent func(Event)
	// Logger receives transitions and socket errors. Nil discards.
	Logger *slog.Logger
}

type settings struct {
	ifname       string
	vrid         uint8
	prio         uint8
	interval     time.Duration
	preempt      bool
	preemptDelay time.Duration
	vips         []netip.Addr
	addr         netip.Addr
	onEvent      func(Event)
	log          *slog.Logger
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// settings validates c and fills in the defaults.
func (c *Config) settings() (settings, error) {
	if c == nil {
		return settings{}, invalid("Config", "nil (Interface, VRID and VIPs are required)")
	}
	s := settings{ifname: c.Interface, vrid: c.VRID, prio: c.Priority, interval: c.Interval,
		preempt: !c.NoPreempt, preemptDelay: c.PreemptDelay, addr: c.Addr.Unmap(),
		onEvent: c.OnEvent, log: c.Logger}
	if s.ifname == "" {
		return s, invalid("Interface", "required")
	}
	if s.vrid == 0 {
		return s, invalid("VRID", "required, 1-255")
	}
	switch s.prio {
	case 0:
		s.prio = DefaultPriority
	case 255:
		return s, invalid("Priority", "255 is the address owner's priority; use 1-254")
	}
	if s.interval == 0 {
		s.interval = DefaultInterval
	}
	if s.interval < MinInterval || s.interval > MaxInterval || s.interval%(10*time.Millisecond) != 0 {
		return s, invalid("Interval", "%v is not a multiple of 10ms between %v and %v", c.Interval, MinInterval, MaxInterval)
	}
	if s.preemptDelay < 0 {
		return s, invalid("PreemptDelay", "%v is negative", c.PreemptDelay)
	}
	if len(c.VIPs) == 0 {
		return s, invalid("VIPs", "at least one address is required")
	}
	if len(c.VIPs) > MaxAddrs {
		return s, invalid("VIPs", "%d addresses, at most %d fit in an advertisement", len(c.VIPs), MaxAddrs)
	}
	for _, v := range c.VIPs {
		v = v.Unmap()
		switch {
		case v.Is6():
			return s, fmt.Errorf("%w: VIPs: %s: %w", ErrInvalidConfig, v, ErrIPv6)
		case !v.IsValid() || v.IsUnspecified() || v.IsMulticast() || v.IsLoopback():
			return s, invalid("VIPs", "%v is not a unicast address", v)
		case slices.Contains(s.vips, v):
			return s, invalid("VIPs", "%v is listed twice", v)
		}
		s.vips = append(s.vips, v)
	}
	if s.addr.IsValid() && (!s.addr.Is4() || s.addr.IsUnspecified() || s.addr.IsMulticast()) {
		return s, invalid("Addr", "%v is not a unicast IPv4 address", c.Addr)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s, nil
}
