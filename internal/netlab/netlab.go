package netlab

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
)

// ErrUnsupported is returned by every operation on platforms other than
// Linux, where network namespaces do not exist.
var ErrUnsupported = errors.New("netlab: network namespaces are not supported on this platform")

// ErrClosed is returned by operations on a Lab (or its hosts) after Close:
// the namespaces are gone and acting on them could silently act on the
// caller's own namespace instead.
var ErrClosed = errors.New("netlab: lab is closed")

// Limits of the address plan (clients at .10+i, servers at .20+i, default
// VIP at .100), enforced by New so addresses never collide.
const (
	MaxClients = 10
	MaxServers = 79
)

// Segment prefixes and fixed addresses of the lab. They are documentation
// ranges, so lab traffic can never reach a real network.
var (
	Prefix4     = netip.MustParsePrefix("192.0.2.0/24")
	Prefix6     = netip.MustParsePrefix("2001:db8:0:1::/64")
	DefaultVIP4 = netip.MustParseAddr("192.0.2.100")
	DefaultVIP6 = netip.MustParseAddr("2001:db8:0:1::100")
)

// Config describes a lab. A nil *Config means all defaults.
type Config struct {
	// Servers is the number of real servers. Zero means 3.
	Servers int
	// Clients is the number of client hosts. Zero means 1.
	Clients int
	// VIPs are the service addresses configured on the servers' lo.
	// Zero means 192.0.2.100, plus 2001:db8:0:1::100 when IPv6 is set.
	// VIPs outside the segment get an on-link route on the clients so the
	// clients send them to the segment.
	VIPs []netip.Addr
	// IPv6 adds IPv6 addresses (2001:db8:0:1::/64) to every host, with
	// duplicate address detection disabled so they are usable at once.
	// Zero means IPv4 only.
	IPv6 bool
	// HTTPPort is the TCP port of the servers' HTTP servers. Zero means 80.
	HTTPPort uint16
	// UDPPort is the port of the servers' UDP echo. Zero means 9000.
	UDPPort uint16
	// NoServerProcesses leaves the servers without child processes; tests
	// that bring their own server programs set it. Zero means every server
	// runs the HTTP server and UDP echo.
	NoServerProcesses bool
	// Server returns the options of server i, so tests can build
	// misconfigured servers on purpose. Nil means defaults for all.
	Server func(i int) ServerOptions
	// Logger receives progress and the children's lifecycle. Nil discards.
	Logger *slog.Logger
}

// ServerOptions deviate one server from the correct DSR setup.
type ServerOptions struct {
	// NoVIP leaves the VIPs off the server's lo, so the server's kernel
	// drops VIP traffic (a classic silent DSR black hole).
	NoVIP bool
	// ARPIgnore is written to net.ipv4.conf.{all,eth0}.arp_ignore.
	// Nil means 1 (the DSR setting); point to 0 to keep the kernel default.
	ARPIgnore *int
	// ARPAnnounce is written to net.ipv4.conf.{all,eth0}.arp_announce.
	// Nil means 2 (the DSR setting); point to 0 to keep the kernel default.
	ARPAnnounce *int
	// NoProcess starts no child process on this server.
	NoProcess bool
	// Listen replaces the HTTP listen addresses. Nil means every VIP and the
	// server's own addresses on Config.HTTPPort. Addresses need not be
	// local: the server binds with IP_FREEBIND.
	Listen []netip.AddrPort
}

// Lab is a running topology. Fields are read-only after New.
type Lab struct {
	// ID is the random hex suffix shared by the lab's namespace names.
	ID string
	// Switch is the namespace holding bridge br0; it has no addresses.
	Switch *Host
	// Balancer is the host the load balancer runs on (no VIP, no forwarding).
	Balancer *Host
	// Clients and Servers are the other hosts on the segment.
	Clients, Servers []*Host
	// VIPs are the service addresses held by the servers.
	VIPs []netip.Addr
	// Cfg is the configuration with defaults filled in.
	Cfg Config

	*labState
}

// Host is one namespace of a lab.
type Host struct {
	// Name is the role: "sw", "lb", "c0", "s1"...
	Name string
	// NS is the name of the network namespace (see "ip netns list").
	NS string
	// Link is the host's interface on the segment, "eth0" (empty for sw).
	Link string
	// IP and IP6 are the host's own addresses; IP6 is invalid without IPv6.
	IP, IP6 netip.Addr
	// MAC is the hardware address of Link.
	MAC net.HardwareAddr

	lab *Lab
}

// LinkStats are the kernel counters of a host's segment interface.
type LinkStats struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
	RxDropped, TxDropped uint64
}

// Sub returns s minus o, the traffic between two snapshots.
func (s LinkStats) Sub(o LinkStats) LinkStats {
	return LinkStats{
		RxPackets: s.RxPackets - o.RxPackets, TxPackets: s.TxPackets - o.TxPackets,
		RxBytes: s.RxBytes - o.RxBytes, TxBytes: s.TxBytes - o.TxBytes,
		RxDropped: s.RxDropped - o.RxDropped, TxDropped: s.TxDropped - o.TxDropped,
	}
}
