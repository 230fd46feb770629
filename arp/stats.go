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
	// packet.
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
	// DropSenderAddr: the sender MAC is zero, broadcast or multicast, or the
	// sender IP is multicast or broadcast: nobody could be answered there.
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
	// DropUnsolicited: a reply that answers no outstanding request of ours
	// (unsolicited, gratuitous, late, or from the wrong address). It is never
	// trusted for forwarding.
	DropUnsolicited

	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropMalformed:      "malformed",
	DropNotARP:         "not-arp",
	DropHardwareType:   "hardware-type",
	DropProtocolType:   "protocol-type",
	DropHardwareLength: "hardware-length",
	DropProtocolLength: "protocol-length",
	DropOperation:      "operation",
	DropSenderAddr:     "sender-address",
	DropOwnFrame:       "own-frame",
	DropNotOurs:        "not-ours",
	DropRateLimited:    "rate-limited",
	DropRateTableFull:  "rate-table-full",
	DropUnsolicited:    "unsolicited",
}

// String returns the reason's name, for logs and metrics labels.
func (r DropReason) String() string {
	if r > 0 && r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// Stats are the Speaker's counters since New. Conflicts and the drops count
// every packet; events are deduplicated.
type Stats struct {
	// Received is every frame read from the socket.
	Received uint64
	// Replies is the replies sent for VIPs.
	Replies uint64
	// Announcements is the gratuitous ARPs sent (bursts, refreshes,
	// takeovers and defences after a conflict).
	Announcements uint64
	// ResolveRequests is the requests sent to resolve backends.
	ResolveRequests uint64
	// ConflictProbes is the who-has requests sent for our own VIPs.
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
