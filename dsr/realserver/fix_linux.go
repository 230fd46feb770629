package realserver

import "net/netip"

// Fix commands only Check on Linux writes.

// fixAddrAddNoDAD is fixAddrAdd for an IPv6 VIP, which Prepare adds without
// duplicate address detection.
func fixAddrAddNoDAD(vip, holder string) string { return fixAddrAdd(vip, holder) + " nodad" }

// fixVIPAdd is the command that adds the host prefix of vip to holder.
func fixVIPAdd(vip netip.Addr, holder string) string {
	p := hostPrefix(vip).String()
	if vip.Is6() {
		return fixAddrAddNoDAD(p, holder)
	}
	return fixAddrAdd(p, holder)
}

func fixProxyDel(ip netip.Addr, dev string) string {
	return "ip -6 neigh del proxy " + ip.String() + " dev " + dev
}

func hostPrefix(ip netip.Addr) netip.Prefix { return netip.PrefixFrom(ip, ip.BitLen()) }

func fixLinkUp(dev string) string { return "ip link set " + dev + " up" }

func fixDummyAdd(dev string) string { return "ip link add " + dev + " type dummy" }
