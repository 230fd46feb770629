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
	// Source4 is the source address of probes to IPv4 VIPs. Zero means the
	// first IPv4 address of Interface; with neither, IPv4 VIPs cannot be
	// probed. See DSRPathChecker for the choice.
	Source4 netip.Addr
	// Source6 is the source address of probes to IPv6 VIPs. Zero means the
	// first global unicast IPv6 address of Interface, else its link-local
	// address; with neither, IPv6 VIPs cannot be probed.
	Source6 netip.Addr
	// SourceMAC is the probe frames' source MAC. Nil means Interface's MAC.
	SourceMAC net.HardwareAddr
	// VLANSources are the probe source addresses for targets on VLANs of
	// a trunk (Target.VLAN): for each VLAN ID (1..4094), at most one IPv4
	// and one IPv6 address, each in the backends' subnet on that VLAN and
	// used by no host there. The host has no interface on those VLANs, so
	// the checker answers ARP and neighbour solicitations for these
	// addresses itself, with frames tagged for the VLAN, and tags its
	// probes. Nil means targets on VLANs cannot be probed (Support says so).
	VLANSources map[uint16][]netip.Addr
}

// CheckKey implements Keyer. Every DSR-path checker is distinct: each owns
// a socket.
func (c *DSRPathChecker) CheckKey() string {
	return "dsr-path " + c.id
}

// Support implements Supporter: a port and the VIP, of a family the checker
// has a source address for (both, unless its interface lacks one and none
// was configured); the MAC is filled by the balancer once it is resolved.
func (c *DSRPathChecker) Support() Support {
	if c == nil {
		// No checker yet (a configuration checked before any socket is
		// opened): what the probe can do at best.
		return Support{Name: "dsr", NeedsPort: true, NeedsVIP: true, NeedsMAC: true}
	}
	fam, why := c.families()
	vf := make(map[uint16]Families, len(c.vlanSrc))
	for vlan, s := range c.vlanSrc {
		var f Families
		if s.v4.IsValid() {
			f |= IPv4
		}
		if s.v6.IsValid() {
			f |= IPv6
		}
		vf[vlan] = f
	}
	return Support{Name: "dsr", Families: fam, FamiliesNote: why, NeedsPort: true, NeedsVIP: true, NeedsMAC: true, VLANFamilies: vf}
}
