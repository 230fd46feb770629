package vrrp

import "sync/atomic"

// Stats are a Router's counters since New.
type Stats struct {
	// Sent and Received count advertisements (Received: valid ones for
	// our VRID).
	Sent, Received uint64
	// MasterTransitions counts the times the router became master.
	MasterTransitions uint64
	// TTLDropped: advertisements whose IP TTL was not 255 (they crossed a
	// router).
	TTLDropped uint64
	// ChecksumDropped: bad checksums.
	ChecksumDropped uint64
	// Malformed: too short, not VRRPv3, zero interval.
	Malformed uint64
	// OtherVRID: valid advertisements of another virtual router.
	OtherVRID uint64
	// OwnDropped: our own advertisements, looped back.
	OwnDropped uint64
	// AddrMismatch: advertisements (still processed) whose address list
	// differs from ours.
	AddrMismatch uint64
	// WriteErrors: advertisements the socket failed to send.
	WriteErrors uint64
}

type counters struct {
	sent, received, masterTransitions                 atomic.Uint64
	ttlDropped, checksumDropped, malformed, otherVRID atomic.Uint64
	ownDropped, addrMismatch, writeErrors             atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Sent: c.sent.Load(), Received: c.received.Load(), MasterTransitions: c.masterTransitions.Load(),
		TTLDropped: c.ttlDropped.Load(), ChecksumDropped: c.checksumDropped.Load(),
		Malformed: c.malformed.Load(), OtherVRID: c.otherVRID.Load(), OwnDropped: c.ownDropped.Load(),
		AddrMismatch: c.addrMismatch.Load(), WriteErrors: c.writeErrors.Load(),
	}
}
