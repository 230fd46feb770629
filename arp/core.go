package arp

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// The core: what one received frame (handle) and one timer step (tick) do to
// the state, with the effects collected in a batch. Both run with s.mu held
// and take the time as an argument, so tests drive them with any clock.

// handle processes one received frame.
func (s *Speaker) handle(fr []byte, now time.Time, b *batch) {
	s.stats.received.Add(1)
	if s.ndpConn != nil && isIPv6Frame(fr) {
		s.handleND(fr, now, b)
		return
	}
	var v view
	if r := parseFrame(fr, &v); r != 0 {
		s.drop(r)
		return
	}
	if v.ethSrc == s.cfg.mac || v.sha == s.cfg.mac {
		s.drop(DropOwnFrame)
		return
	}
	// Every address below is looked up on the frame's VLAN: a VLAN is a
	// network of its own, whose hosts may reuse another VLAN's addresses.
	vlan := frameVLAN(fr)
	spa, tpa := VIP{Addr: v.spa, VLAN: vlan}, VIP{Addr: v.tpa, VLAN: vlan}
	if _, ok := s.vips[spa]; ok {
		// Another host speaks for a VIP: a reply (to our probe or to a
		// client), an announcement, or a request sent from the VIP (a
		// server with arp_announce=0), which also updates peers' caches.
		s.conflict(spa, v.sha, now, b)
		return
	}
	if st := s.backends[spa]; st != nil && st.static == nil {
		if v.op == arp.OperationReply && v.tpa == s.cfg.ip && v.tha == s.cfg.mac &&
			st.pending && now.Sub(st.sentAt) <= s.cfg.resolveTimeout {
			s.resolve(spa, st, v.sha, now, b)
			return
		}
		s.hint(st, v.sha, now, b)
	}
	if v.op == arp.OperationReply {
		s.drop(DropUnsolicited)
		return
	}
	if _, ok := s.vips[tpa]; !ok {
		s.drop(DropNotOurs)
		return
	}
	if r := s.limit.allow(v.sha, now); r != 0 {
		s.drop(r)
		return
	}
	// Unicast reply to the asker, also for RFC 5227 probes (sender IP
	// 0.0.0.0): answering those is how an owner defends its address.
	b.frames = append(b.frames, s.frame(vlan, v.sha, arp.OperationReply, v.tpa, v.sha, v.spa, &s.stats.replies))
}

func (s *Speaker) drop(r DropReason) { s.stats.drops[r].Add(1) }

// conflict counts a foreign claim on a VIP and, at most once per dedup
// window for the same VIP and MAC, raises an event and defends the VIP with
// one announcement so that hosts which just learned the other MAC move back.
func (s *Speaker) conflict(vip VIP, mac [6]byte, now time.Time, b *batch) {
	s.stats.conflicts.Add(1)
	key := conflictKey{vip: vip, mac: mac}
	if last, ok := s.conflicts[key]; ok && now.Sub(last) < s.cfg.conflictDedup {
		return
	}
	s.conflicts[key] = now
	b.events = append(b.events, Event{
		Kind:    Conflict,
		Addr:    vip.Addr,
		VLAN:    vip.VLAN,
		MAC:     slices.Clone(mac[:]),
		Backend: s.backendByMAC(vip.VLAN, mac),
		At:      now,
	})
	b.frames = append(b.frames, s.announcement(vip))
}

// backendByMAC returns the backend on vlan (lowest address, for a stable
// answer when one host has several) whose static or resolved MAC is mac.
func (s *Speaker) backendByMAC(vlan uint16, mac [6]byte) netip.Addr {
	var found netip.Addr
	for a, st := range s.backends {
		if a.VLAN != vlan {
			continue
		}
		m := st.static
		if m == nil {
			m = st.mac
		}
		if bytes.Equal(m, mac[:]) && (!found.IsValid() || a.Addr.Less(found)) {
			found = a.Addr
		}
	}
	return found
}

// resolve accepts the answer to our outstanding request for addr.
func (s *Speaker) resolve(addr VIP, st *backendState, mac [6]byte, now time.Time, b *batch) {
	st.pending = false
	st.misses = 0
	st.next = now.Add(s.cfg.resolveInterval)
	old := st.mac
	switch {
	case !st.resolved:
		st.mac, st.resolved, st.reported = slices.Clone(mac[:]), true, false
		b.events = append(b.events, Event{Kind: Resolved, Addr: addr.Addr, VLAN: addr.VLAN, MAC: slices.Clone(mac[:]), OldMAC: slices.Clone(old), At: now})
	case !bytes.Equal(old, mac[:]):
		st.mac = slices.Clone(mac[:])
		b.events = append(b.events, Event{Kind: MACChanged, Addr: addr.Addr, VLAN: addr.VLAN, MAC: slices.Clone(mac[:]), OldMAC: slices.Clone(old), At: now})
	}
}

// hint reacts to unsolicited ARP from a resolved backend's address: it is
// never trusted (anyone can send it), but when it shows a MAC other than the
// one we hold it moves our next request forward, so a real change is
// confirmed at once. Hints are honoured at most once per ResolveTimeout, so
// forged ones cost one request per timeout at worst.
func (s *Speaker) hint(st *backendState, mac [6]byte, now time.Time, b *batch) {
	if st.pending || (st.resolved && bytes.Equal(st.mac, mac[:])) {
		return
	}
	if !st.lastHint.IsZero() && now.Sub(st.lastHint) < s.cfg.resolveTimeout {
		return
	}
	if st.next.After(now) {
		st.lastHint = now
		st.next = now
		b.wake = true
	}
}

// tick does every announcement, probe and timeout due at now and returns
// when it wants to run next.
func (s *Speaker) tick(now time.Time, b *batch) time.Time {
	next := now.Add(time.Hour)
	soon := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	for vip, st := range s.vips {
		if !st.nextAnnounce.IsZero() && !now.Before(st.nextAnnounce) {
			b.frames = append(b.frames, s.announcement(vip))
			if st.burstLeft > 0 {
				st.burstLeft--
			}
			switch {
			case st.burstLeft > 0:
				st.nextAnnounce = now.Add(s.cfg.announceSpacing)
			case s.cfg.announceInterval > 0:
				st.nextAnnounce = now.Add(s.cfg.announceInterval)
			default:
				st.nextAnnounce = time.Time{}
			}
		}
		if !st.nextAnnounce.IsZero() {
			soon(st.nextAnnounce)
		}
		if s.cfg.conflictInterval > 0 {
			if !now.Before(st.nextProbe) {
				b.frames = append(b.frames, s.probe(vip))
				st.nextProbe = now.Add(s.cfg.conflictInterval)
			}
			soon(st.nextProbe)
		}
	}
	for addr, st := range s.backends {
		if st.static != nil {
			continue
		}
		if st.pending && now.Sub(st.sentAt) >= s.cfg.resolveTimeout {
			st.pending = false
			st.misses++
			if st.misses < s.cfg.resolveAttempts {
				st.next = now // retry at once
			} else {
				st.next = now.Add(s.cfg.resolveInterval)
				if !st.reported {
					st.reported, st.resolved = true, false
					b.events = append(b.events, Event{Kind: Unresolved, Addr: addr.Addr, VLAN: addr.VLAN, OldMAC: slices.Clone(st.mac), At: now})
				}
			}
		}
		if !st.pending && !now.Before(st.next) {
			b.frames = append(b.frames, s.resolveRequest(addr))
			st.pending, st.sentAt = true, now
		}
		if st.pending {
			soon(st.sentAt.Add(s.cfg.resolveTimeout))
		} else {
			soon(st.next)
		}
	}
	for k, t := range s.conflicts {
		if now.Sub(t) >= s.cfg.conflictDedup {
			delete(s.conflicts, k)
		}
	}
	return next
}

var (
	bcast   = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC [6]byte
)

// announcement is a gratuitous ARP for vip in request form (RFC 5227
// announcement), which every Linux and BSD host and every switch accepts
// as an update of an existing cache entry; for an IPv6 VIP it is an
// unsolicited Neighbor Advertisement.
func (s *Speaker) announcement(vip VIP) outFrame {
	if vip.Addr.Is6() {
		return s.ndAnnouncement(vip)
	}
	return s.frame(vip.VLAN, bcast, arp.OperationRequest, vip.Addr, zeroMAC, vip.Addr, &s.stats.announcements)
}

// probe asks who holds vip, from our own address, so that any other owner
// answers us.
func (s *Speaker) probe(vip VIP) outFrame {
	if vip.Addr.Is6() {
		return s.ndSolicit(vip, &s.stats.conflictProbes)
	}
	return s.frame(vip.VLAN, bcast, arp.OperationRequest, s.cfg.ip, zeroMAC, vip.Addr, &s.stats.conflictProbes)
}

// resolveRequest asks backend addr for its MAC.
func (s *Speaker) resolveRequest(addr VIP) outFrame {
	if addr.Addr.Is6() {
		return s.ndSolicit(addr, &s.stats.resolveRequests)
	}
	return s.frame(addr.VLAN, bcast, arp.OperationRequest, s.cfg.ip, zeroMAC, addr.Addr, &s.stats.resolveRequests)
}

// frame builds an Ethernet frame from our MAC carrying an ARP packet from
// our MAC and senderIP, tagged with vlan unless it is 0.
func (s *Speaker) frame(vlan uint16, dst [6]byte, op arp.Operation, senderIP netip.Addr, targetMAC [6]byte, targetIP netip.Addr, ctr *atomic.Uint64) outFrame {
	p := arp.Packet{
		HardwareType:       hwTypeEther,
		ProtocolType:       uint16(ethernet.EtherTypeIPv4),
		HardwareAddrLength: 6,
		IPLength:           4,
		Operation:          op,
		SenderHardwareAddr: s.cfg.mac[:],
		SenderIP:           senderIP,
		TargetHardwareAddr: targetMAC[:],
		TargetIP:           targetIP,
	}
	payload, _ := p.MarshalBinary() // never fails
	f := ethernet.Frame{Destination: dst[:], Source: s.cfg.mac[:], EtherType: ethernet.EtherTypeARP, Payload: payload}
	fb, _ := f.MarshalBinary() // cannot fail: addresses are 6 bytes, no VLAN
	return outFrame{dst: dst, b: tagFrame(fb, vlan), ctr: ctr}
}

// hwAddr is the destination address packet.Conn.WriteTo expects.
func hwAddr(dst [6]byte) net.Addr {
	return &packet.Addr{HardwareAddr: net.HardwareAddr(dst[:])}
}
