package arp

import (
	"fmt"
	"sync/atomic"
)

// DropReason says why a received frame was not acted upon. The zero value
// means "not dropped".
type DropReason uint8

// Drop reasons, counted in Stats.Drops.
const (
	// DropMalformed: too short for an Ethernet header and a 28-byte ARP
	// packet, or an IPv6 packet shorter than its header says.
	DropMalformed DropReason = iota + 1
	// DropNotARP: the EtherType is not ARP.
	DropNotARP
	// DropHardwareType: the ARP hardware type is not Ethernet (1).
	DropHardwareType
	// DropProtocolType: the ARP protocol type is not IPv4 (0x0800).
	DropProtocolType
	// DropHardwareLength: the hardware address length is not 6.
	DropHardwareLength
	// DropProtocolLength: the protocol address length is not 4.
	DropProtocolLength
	// DropOperation: neither request (1) nor reply (2).
	DropOperation
	// DropSenderAddr: the sender MAC (ARP sender, Ethernet source or ND
	// link-layer address option) is zero, broadcast or multicast, or the
	// sender IP is multicast or broadcast (or, for a Neighbor
	// Advertisement, unspecified): nobody could be answered there.
	DropSenderAddr
	// DropOwnFrame: a frame we sent, seen again by our own socket.
	DropOwnFrame
	// DropNotOurs: a request for an address we do not serve, the normal
	// broadcast chatter of the segment.
	DropNotOurs
	// DropRateLimited: the requester exceeded ReplyRate.
	DropRateLimited
	// DropRateTableFull: MaxRequesters distinct requesters are being
	// limited at once (a flood from forged MACs); new ones are not answered.
	DropRateTableFull
	// DropUnsolicited: a reply (ARP reply or Neighbor Advertisement) that
	// answers no outstanding request of ours
	// (unsolicited, gratuitous, late, or from the wrong address). It is never
	// trusted for forwarding.
	DropUnsolicited
	// DropNotND: an IPv6 packet that is not an ICMPv6 Neighbor
	// Solicitation or Advertisement directly after the IPv6 header (the
	// socket filter normally keeps those out).
	DropNotND
	// DropHopLimit: an ND message whose hop limit is not 255, so it may
	// come from off the link (RFC 4861 section 7.1).
	DropHopLimit
	// DropICMPCode: an ND message whose ICMPv6 code is not 0.
	DropICMPCode
	// DropChecksum: the ICMPv6 checksum (over the IPv6 pseudo-header) is
	// wrong.
	DropChecksum
	// DropNDLength: the ICMPv6 message is shorter than 24 bytes, too short
	// for the target address.
	DropNDLength
	// DropTargetAddr: the ND target address is multicast.
	DropTargetAddr
	// DropNDOption: an ND option has length zero or runs past the message,
	// a link-layer address option is not 6 bytes, or one is repeated.
	DropNDOption
	// DropDADForm: a solicitation from the unspecified address that is not
	// in the duplicate address detection form (sent to a solicited-node
	// multicast address, without a source link-layer address option).
	DropDADForm
	// DropNDFlags: a solicited advertisement sent to a multicast address.
	DropNDFlags

	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropMalformed:      "malformed",
	DropNotARP:         "not_arp",
	DropHardwareType:   "hardware_type",
	DropProtocolType:   "protocol_type",
	DropHardwareLength: "hardware_length",
	DropProtocolLength: "protocol_length",
	DropOperation:      "operation",
	DropSenderAddr:     "sender_address",
	DropOwnFrame:       "own_frame",
	DropNotOurs:        "not_ours",
	DropRateLimited:    "rate_limited",
	DropRateTableFull:  "rate_table_full",
	DropUnsolicited:    "unsolicited",
	DropNotND:          "not_nd",
	DropHopLimit:       "hop_limit",
	DropICMPCode:       "icmp_code",
	DropChecksum:       "checksum",
	DropNDLength:       "nd_length",
	DropTargetAddr:     "target_address",
	DropNDOption:       "nd_option",
	DropDADForm:        "dad_form",
	DropNDFlags:        "nd_flags",
}

// DropReasons returns every drop reason, in order, so that a metrics
// exporter can publish each label from the start.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, numDropReasons-1)
	for r := DropReason(1); r < numDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// String returns the reason's metric label in snake_case, the same
// convention as dsr.DropReason (for example "rate_limited").
func (r DropReason) String() string {
	if r > 0 && r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// Stats are the Speaker's counters since New. Conflicts and the drops count
// every packet; events are deduplicated.
type Stats struct {
	// Received is every frame read from the sockets (ARP and ND).
	Received uint64
	// Replies is the replies sent for VIPs: ARP replies and solicited
	// Neighbor Advertisements.
	Replies uint64
	// Announcements is the gratuitous ARPs and unsolicited Neighbor
	// Advertisements sent (bursts, refreshes, takeovers and defences after
	// a conflict).
	Announcements uint64
	// ResolveRequests is the ARP requests and Neighbor Solicitations sent to
	// resolve backends.
	ResolveRequests uint64
	// ConflictProbes is the who-has requests and Neighbor Solicitations
	// sent for our own VIPs.
	ConflictProbes uint64
	// Conflicts is the packets in which another MAC claimed a VIP.
	Conflicts uint64
	// ReadErrors and WriteErrors count failed socket calls.
	ReadErrors, WriteErrors uint64
	// Drops counts frames not acted upon, by reason; reasons that never
	// occurred are absent.
	Drops map[DropReason]uint64
}

// counters are updated from the read loop and the timer loop; atomics keep
// Stats lock-free.
type counters struct {
	received, replies, announcements, resolveRequests, conflictProbes, conflicts atomic.Uint64
	readErrors, writeErrors                                                      atomic.Uint64
	drops                                                                        [numDropReasons]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Received:        c.received.Load(),
		Replies:         c.replies.Load(),
		Announcements:   c.announcements.Load(),
		ResolveRequests: c.resolveRequests.Load(),
		ConflictProbes:  c.conflictProbes.Load(),
		Conflicts:       c.conflicts.Load(),
		ReadErrors:      c.readErrors.Load(),
		WriteErrors:     c.writeErrors.Load(),
		Drops:           make(map[DropReason]uint64),
	}
	for r := DropReason(1); r < numDropReasons; r++ {
		if n := c.drops[r].Load(); n > 0 {
			s.Drops[r] = n
		}
	}
	return s
}
