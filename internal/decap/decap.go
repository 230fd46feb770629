package decap

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrUnsupported is returned where the program cannot run: outside Linux
// and on big-endian processors.
var ErrUnsupported = errors.New("decap: not supported on this platform")

// ErrOtherProgram is returned by Attach when the interface already runs an
// XDP program that is not this package's: it is left alone.
var ErrOtherProgram = errors.New("decap: the interface runs another XDP program")

// ErrNotAttached is returned by Detach and Status when the interface runs
// no decapsulation program.
var ErrNotAttached = errors.New("decap: no decapsulation program on the interface")

// DefaultGUEPort is the GUE port when Config.GUEPort is zero; the balancer
// (dsr.DefaultGUEPort) uses the same.
const DefaultGUEPort = 6080

// Config says what the program decapsulates.
type Config struct {
	// Balancers are the outer source addresses of the balancers allowed to
	// send tunnel packets. Required; at most 64.
	Balancers []netip.Addr
	// Locals are this server's own addresses the balancers send to (the
	// outer destination). Required; at most 64.
	Locals []netip.Addr
	// GUE enables GUE decapsulation on GUEPort. False decapsulates IPIP
	// only and passes UDP untouched.
	GUE bool
	// GUEPort is the UDP port of GUE packets. Zero means DefaultGUEPort.
	GUEPort uint16
}

func (c *Config) check() error {
	if c == nil || len(c.Balancers) == 0 || len(c.Locals) == 0 {
		return errors.New("decap: the balancers' and the server's addresses are required")
	}
	if len(c.Balancers) > maxAddrs || len(c.Locals) > maxAddrs {
		return fmt.Errorf("decap: at most %d balancers and %d local addresses", maxAddrs, maxAddrs)
	}
	for _, a := range append(append([]netip.Addr(nil), c.Balancers...), c.Locals...) {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("decap: %v is not a unicast address", a)
		}
	}
	return nil
}

func (c *Config) port() uint16 {
	if c.GUEPort == 0 {
		return DefaultGUEPort
	}
	return c.GUEPort
}

const maxAddrs = 64

// Stats are the program's counters, summed over CPUs.
type Stats struct {
	// Passed counts packets that were not tunnel packets to this server,
	// passed untouched.
	Passed uint64
	// Decapsulated packets, by kind.
	IPIP4, IPIP6, GUE4, GUE6 uint64
	// Dropped tunnel packets, by reason: shorter than their headers say;
	// a GUE version or inner IP version that does not fit; a wrong outer
	// IPv4 header checksum; a source not among Config.Balancers; outer
	// IPv4 options or a fragment, or a GUE control message or unknown
	// protocol.
	Truncated, BadVersion, BadChecksum, NotBalancer, BadHeader uint64
}

// Decapsulated returns the packets decapsulated.
func (s Stats) Decapsulated() uint64 { return s.IPIP4 + s.IPIP6 + s.GUE4 + s.GUE6 }

// Dropped returns the tunnel packets dropped.
func (s Stats) Dropped() uint64 {
	return s.Truncated + s.BadVersion + s.BadChecksum + s.NotBalancer + s.BadHeader
}

// Status is what runs on an interface.
type Status struct {
	// ProgramID is the kernel's ID of the attached program.
	ProgramID uint32
	// Native is true in driver mode, false in generic (skb) mode.
	Native bool
	// Config is read back from the program's maps.
	Config Config
	// Stats are its counters.
	Stats Stats
}

// counter indexes (enum counter in bpf/decap.c).
const (
	cPassed = iota
	cIPIP4
	cIPIP6
	cGUE4
	cGUE6
	cTruncated
	cBadVersion
	cBadChecksum
	cNotBalancer
	cBadHeader
	cMax
)

func statsFrom(v [cMax]uint64) Stats {
	return Stats{Passed: v[cPassed], IPIP4: v[cIPIP4], IPIP6: v[cIPIP6], GUE4: v[cGUE4], GUE6: v[cGUE6],
		Truncated: v[cTruncated], BadVersion: v[cBadVersion], BadChecksum: v[cBadChecksum],
		NotBalancer: v[cNotBalancer], BadHeader: v[cBadHeader]}
}
