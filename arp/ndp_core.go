package arp

import (
	"bytes"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mdlayher/ethernet"
)

// The neighbour discovery half of the core: the IPv6 counterparts of the
// ARP decisions in core.go, on the same state and under the same lock.

// isIPv6Frame reports whether fr carries IPv6 (possibly VLAN-tagged), so
// that it is judged by the neighbour discovery rules rather than ARP's.
func isIPv6Frame(fr []byte) bool {
	et, _, r := etherHeader(fr)
	return r == 0 && et == ethernet.EtherTypeIPv6
}

// handleND processes one received frame carrying IPv6.
func (s *Speaker) handleND(fr []byte, now time.Time, b *batch) {
	var v ndView
	if r := parseND(fr, &v); r != 0 {
		s.drop(r)
		return
	}
	mac := v.sender()
	if v.ethSrc == s.cfg.mac || mac == s.cfg.mac {
		s.drop(DropOwnFrame)
		return
	}
	vlan := frameVLAN(fr)
	target, src := VIP{Addr: v.target, VLAN: vlan}, VIP{Addr: v.src, VLAN: vlan}
	if v.typ == icmpTypeNA {
		if _, ok := s.vips[target]; ok {
			// Another host advertises a VIP: an answer to our probe or to
			// a client, or an announcement of its own.
			s.conflict(target, mac, now, b)
			return
		}
		if st := s.backends[target]; st != nil && st.static == nil {
			if s.answersUs(&v) && st.pending && now.Sub(st.sentAt) <= s.cfg.resolveTimeout {
				s.resolve(target, st, mac, now, b)
				return
			}
			s.hint(st, mac, now, b)
		}
		s.drop(DropUnsolicited)
		return
	}
	if _, ok := s.vips[src]; ok {
		// A solicitation sent from a VIP updates the neighbour caches of
		// the hosts that receive it, like an ARP request from the VIP.
		s.conflict(src, mac, now, b)
		return
	}
	if st := s.backends[src]; st != nil && st.static == nil && v.hasLLA {
		s.hint(st, mac, now, b)
	}
	if _, ok := s.vips[target]; !ok {
		s.drop(DropNotOurs)
		return
	}
	if r := s.limit.allow(mac, now); r != 0 {
		s.drop(r)
		return
	}
	b.frames = append(b.frames, s.ndAdvert(vlan, &v, mac))
}

// answersUs reports whether an advertisement is the answer to a
// solicitation of ours: solicited and sent to our address and MAC, or, when
// we solicit from the unspecified address (duplicate address detection
// form), the multicast advertisement that form gets (RFC 4861 section
// 7.2.4). Which target it answers is checked by the caller.
func (s *Speaker) answersUs(v *ndView) bool {
	if s.cfg.ip6.IsUnspecified() {
		return v.dst == allNodes && v.flags&naSolicited == 0
	}
	return v.flags&naSolicited != 0 && v.dst == s.cfg.ip6 && v.ethDst == s.cfg.mac
}

// ndAdvert answers solicitation v for one of our VIPs with a solicited,
// overriding advertisement to the solicitor at mac. A solicitation from the
// unspecified address is another host's duplicate address detection: the
// answer goes to all nodes and is not marked solicited (RFC 4861 section
// 7.2.4), which is how the owner defends its address.
func (s *Speaker) ndAdvert(vlan uint16, v *ndView, mac [6]byte) outFrame {
	dst, flags := v.src, uint8(naSolicited|naOverride)
	if v.src.IsUnspecified() {
		dst, flags, mac = allNodes, naOverride, multicastMAC(allNodes)
	}
	return outFrame{dst: mac, b: tagFrame(ndMessage(s.cfg.mac, mac, v.target, dst, icmpTypeNA, flags, v.target, ndOptTargetLLA), vlan), ctr: &s.stats.replies, nd: true}
}

// ndAnnouncement is an unsolicited, overriding advertisement of vip to all
// nodes: hosts that have vip in their neighbour cache move it to our MAC
// (RFC 4861 section 7.2.6), and switches learn our port.
func (s *Speaker) ndAnnouncement(vip VIP) outFrame {
	dst := multicastMAC(allNodes)
	return outFrame{dst: dst, b: tagFrame(ndMessage(s.cfg.mac, dst, vip.Addr, allNodes, icmpTypeNA, naOverride, vip.Addr, ndOptTargetLLA), vip.VLAN), ctr: &s.stats.announcements, nd: true}
}

// ndSolicit is a Neighbor Solicitation for target, sent to its
// solicited-node group from our IPv6 address with our MAC in a source
// link-layer address option, or, without an address, in the duplicate
// address detection form (unspecified source, no option).
func (s *Speaker) ndSolicit(target VIP, ctr *atomic.Uint64) outFrame {
	group := solicitedNode(target.Addr)
	dst := multicastMAC(group)
	var opt uint8
	if !s.cfg.ip6.IsUnspecified() {
		opt = ndOptSourceLLA
	}
	return outFrame{dst: dst, b: tagFrame(ndMessage(s.cfg.mac, dst, s.cfg.ip6, group, icmpTypeNS, 0, target.Addr, opt), target.VLAN), ctr: ctr, nd: true}
}

// groupMACs returns the Ethernet groups of the solicited-node addresses of
// the IPv6 VIPs, sorted and without duplicates (VIPs that share their last
// 24 bits share a group).
func (s *Speaker) groupMACs() [][6]byte {
	var out [][6]byte
	for v := range s.vips {
		if v.Addr.Is6() {
			out = append(out, multicastMAC(solicitedNode(v.Addr)))
		}
	}
	slices.SortFunc(out, func(a, b [6]byte) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// syncGroups makes the NDP socket's multicast memberships follow the VIPs.
// Failures are logged: on links that deliver all multicast (veth, bridges,
// most virtual NICs) the Speaker works without them.
func (s *Speaker) syncGroups() {
	if s.joinGroups == nil {
		return
	}
	s.groupsMu.Lock()
	defer s.groupsMu.Unlock()
	s.mu.Lock()
	macs := s.groupMACs()
	s.mu.Unlock()
	if err := s.joinGroups(macs); err != nil {
		s.log.Warn("ndp: joining solicited-node multicast groups failed", "err", err)
	}
}
