package arp

import (
	"cmp"
	"encoding/binary"
	"net/netip"
)

// VLANs. A Speaker on a trunk port serves several VLANs on one socket: each
// VIP and backend names its VLAN, and a VLAN is a network of its own. A
// request is answered only for the VIPs of the VLAN it was tagged with, the
// answer carries that tag, announcements and probes of a VIP go out with its
// VLAN's tag, a backend is resolved with tagged requests and only by tagged
// answers of its VLAN, and a conflict names the VLAN it was seen on. The
// same address on two VLANs is two VIPs, or two backends.
//
// A frame's VLAN is the VLAN ID of its 802.1Q tag; untagged and
// priority-tagged frames (VLAN ID 0) are the untagged VLAN 0. Frames with
// two tags (802.1ad then 802.1Q) belong to no VLAN the Speaker serves. On
// Linux the kernel may strip the tag of a received frame (VLAN offload):
// Listen's sockets put it back from the packet's auxiliary data, so the
// Speaker sees frames as they were on the wire.

// MaxVLAN is the largest VLAN ID; 4095 is reserved by 802.1Q.
const MaxVLAN = 4094

// VIP is a service address on a VLAN.
type VIP struct {
	Addr netip.Addr
	// VLAN is the 802.1Q VLAN ID, 1..MaxVLAN; zero means untagged.
	VLAN uint16
}

func (v VIP) compare(o VIP) int {
	if c := cmp.Compare(v.VLAN, o.VLAN); c != 0 {
		return c
	}
	return v.Addr.Compare(o.Addr)
}

// noVLAN is the VLAN of frames that belong to none the Speaker can serve
// (two tags): above MaxVLAN, so no VIP or backend has it.
const noVLAN = 0xffff

const (
	tpidVLAN = 0x8100
	tpidQinQ = 0x88a8
)

// frameVLAN returns the VLAN of an Ethernet frame (see above). It reads only
// the header and never panics.
func frameVLAN(b []byte) uint16 {
	if len(b) < 16 {
		return 0
	}
	switch binary.BigEndian.Uint16(b[12:]) {
	case tpidVLAN:
		return binary.BigEndian.Uint16(b[14:]) & 0x0fff
	case tpidQinQ:
		return noVLAN
	}
	return 0
}

// tagFrame returns the untagged Ethernet frame b with an 802.1Q tag for vlan
// (priority 0) inserted after the addresses, or b itself when vlan is 0.
func tagFrame(b []byte, vlan uint16) []byte {
	if vlan == 0 || len(b) < 12 {
		return b
	}
	out := make([]byte, 0, len(b)+4)
	out = append(out, b[:12]...)
	out = binary.BigEndian.AppendUint16(out, tpidVLAN)
	out = binary.BigEndian.AppendUint16(out, vlan&0x0fff)
	return append(out, b[12:]...)
}
