package health

import (
	"net"
	"net/netip"

	"github.com/mdlayher/packet"
)

// DSRPathConfig configures a DSRPathChecker. Interface is required.
type DSRPathConfig struct {
	// Interface is the balancer's interface on the segment shared with the
	// backends. NewDSRPathChecker looks it up (and opens Conn if nil) in the
	// network namespace of the calling thread.
	Interface string
	// Conn is a packet socket bound to Interface, dedicated to this checker:
	// the checker reads every frame from it and sets a BPF filter on it.
	// Callers that must create the socket elsewhere (another namespace)
	// pass it here. The checker does not close a Conn it was given. Nil means
	// the checker opens its own (needs CAP_NET_RAW) and closes it in Close.
	Conn *packet.Conn
	// Source is the probe's IPv4 source address. Zero means the first IPv4
	// address of Interface. See DSRPathChecker for the choice.
	Source netip.Addr
	// SourceMAC is the probe frames' source MAC. Nil means Interface's MAC.
	SourceMAC net.HardwareAddr
}

// CheckKey implements Keyer. Every DSR-path checker is distinct: each owns
// a socket.
func (c *DSRPathChecker) CheckKey() string {
	return "dsr-path " + c.id
}

// Support implements Supporter: a port and the VIP, which must be of the
// backend's family; the MAC is filled by the balancer once it is resolved.
// The probe is IPv4 only for now.
func (c *DSRPathChecker) Support() Support {
	return Support{Name: "dsr", Families: IPv4, NeedsPort: true, NeedsVIP: true, NeedsMAC: true}
}
