package realserver

import (
	"fmt"
	"strconv"

	"github.com/dsrlb/dsrlb/internal/sysctl"
)

// The kernel parameters that matter for a DSR server, with the value
// Prepare writes and the values Check accepts. The kernel applies
// max(all, interface) for all three.
type param struct {
	family sysctl.Family
	name   string
	target int
	ok     func(v int) bool
	// devFirst prefers changing the interface over "all": right for
	// rp_filter, where relaxing every interface is broader than needed;
	// arp_ignore and arp_announce prefer "all", which also covers
	// interfaces added later.
	devFirst bool
	// devOnly: the kernel reads only the interface's value ("all" is
	// copied to every interface when written, nothing more), as for
	// disable_ipv6.
	devOnly bool
}

var (
	// arp_ignore 1 and 2 answer only for addresses on the receiving
	// interface, 8 never answers; 0, 3 (answers for scope global
	// addresses on lo, which a VIP is) and the reserved values answer
	// for the VIP.
	paramARPIgnore = param{family: sysctl.IPv4, name: "arp_ignore", target: 1, ok: func(v int) bool { return v == 1 || v == 2 || v == 8 }}
	// arp_announce 2 always uses the outgoing interface's own address as
	// the ARP source; the kernel treats values above 2 like 0.
	paramARPAnnounce = param{family: sysctl.IPv4, name: "arp_announce", target: 2, ok: func(v int) bool { return v == 2 }}
	// rp_filter 1 (strict) drops packets whose source is routed back via
	// another interface; 0 (off) and 2 (loose) do not.
	paramRPFilter = param{family: sysctl.IPv4, name: "rp_filter", target: 2, ok: func(v int) bool { return v != 1 }, devFirst: true}
	// proxy_ndp on "all" or the interface (the kernel ORs them) makes it
	// answer neighbour solicitations for addresses with a proxy entry,
	// while forwarding is on.
	paramProxyNDP = param{family: sysctl.IPv6, name: "proxy_ndp", target: 0, ok: func(v int) bool { return v == 0 }}
	// disable_ipv6 on an interface removes its IPv6 addresses and drops
	// the IPv6 frames it receives.
	paramDisableIPv6 = param{family: sysctl.IPv6, name: "disable_ipv6", target: 0, ok: func(v int) bool { return v == 0 }, devOnly: true}
)

// eff is the value the kernel applies on an interface for p.
func (p param) eff(all, dev int) int {
	if p.devOnly {
		return dev
	}
	return effective(all, dev)
}

// effective is the value the kernel applies on an interface.
func effective(all, dev int) int { return max(all, dev) }

// plan returns which of "all" and the interface to set to p.target so the
// effective value becomes acceptable, changing as little as possible. Both
// false means the effective value is already acceptable.
func (p param) plan(all, dev int) (setAll, setDev bool) {
	if p.ok(p.eff(all, dev)) {
		return false, false
	}
	if p.devOnly {
		return false, true
	}
	type option struct{ a, d bool }
	opts := []option{{true, false}, {false, true}, {true, true}}
	if p.devFirst {
		opts[0], opts[1] = opts[1], opts[0]
	}
	for _, o := range opts {
		if (o.a && all == p.target) || (o.d && dev == p.target) {
			continue // changing a key to the value it has changes nothing
		}
		a, d := all, dev
		if o.a {
			a = p.target
		}
		if o.d {
			d = p.target
		}
		if p.ok(effective(a, d)) {
			return o.a, o.d
		}
	}
	return true, true
}

// keys returns the "all" key and the interface key of p.
func (p param) keys(dev string) (all, d sysctl.Key, err error) {
	if all, err = sysctl.Conf(p.family, sysctl.All, p.name); err != nil {
		return all, d, fmt.Errorf("realserver: %w", err)
	}
	if d, err = sysctl.Conf(p.family, dev, p.name); err != nil {
		return all, d, fmt.Errorf("realserver: %w", err)
	}
	return all, d, nil
}

// Fix commands, as a human would type them.

func fixSysctl(key sysctl.Key, v int) string {
	return "sysctl -w " + key.String() + "=" + strconv.Itoa(v)
}

func fixAddrAdd(vip, holder string) string { return "ip addr add " + vip + " dev " + holder }

func fixAddrDel(p, dev string) string { return "ip addr del " + p + " dev " + dev }
