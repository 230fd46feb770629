package arp

import (
	"encoding/binary"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// Sizes of the only ARP packets we accept: Ethernet hardware addresses and
// IPv4 protocol addresses.
const (
	ethHeaderLen = 14
	arpFixedLen  = 8
	arpPacketLen = arpFixedLen + 2*6 + 2*4 // 28
	hwTypeEther  = 1
)

// view is a validated ARP-over-Ethernet packet. It holds copies (arrays,
// netip.Addr), not slices into the frame, so parsing allocates nothing and
// the read buffer can be reused at once.
type view struct {
	ethDst, ethSrc [6]byte
	op             arp.Operation
	sha, tha       [6]byte
	spa, tpa       netip.Addr
}

// parseFrame validates an Ethernet frame carrying ARP and fills v. It returns
// 0 for a packet we may act on, or the reason to drop it. mdlayher/arp does
// not check the hardware type, the protocol type or the address lengths, and
// a packet that lies about them would be read at the wrong offsets, so every
// field is checked here. An 802.1Q tag, or an 802.1ad tag followed by one,
// is skipped. It never panics and never allocates, whatever b holds.
func parseFrame(b []byte, v *view) DropReason {
	et, off, r := etherHeader(b)
	if r != 0 {
		return r
	}
	copy(v.ethDst[:], b[0:6])
	copy(v.ethSrc[:], b[6:12])
	if et != ethernet.EtherTypeARP {
		return DropNotARP
	}
	p := b[off:]
	if len(p) < arpFixedLen {
		return DropMalformed
	}
	switch {
	case binary.BigEndian.Uint16(p[0:2]) != hwTypeEther:
		return DropHardwareType
	case ethernet.EtherType(binary.BigEndian.Uint16(p[2:4])) != ethernet.EtherTypeIPv4:
		return DropProtocolType
	case p[4] != 6:
		return DropHardwareLength
	case p[5] != 4:
		return DropProtocolLength
	}
	v.op = arp.Operation(binary.BigEndian.Uint16(p[6:8]))
	if v.op != arp.OperationRequest && v.op != arp.OperationReply {
		return DropOperation
	}
	if len(p) < arpPacketLen {
		return DropMalformed
	}
	copy(v.sha[:], p[8:14])
	v.spa = netip.AddrFrom4([4]byte(p[14:18]))
	copy(v.tha[:], p[18:24])
	v.tpa = netip.AddrFrom4([4]byte(p[24:28]))
	if !unicastMAC(v.sha) || v.spa.IsMulticast() || v.spa == broadcast4 {
		return DropSenderAddr
	}
	return 0
}

// etherHeader returns the EtherType of an Ethernet frame and the offset of
// its payload, skipping an 802.1Q tag, or an 802.1ad tag followed by one.
func etherHeader(b []byte) (et ethernet.EtherType, off int, r DropReason) {
	if len(b) < ethHeaderLen {
		return 0, 0, DropMalformed
	}
	off = 12
	et = ethernet.EtherType(binary.BigEndian.Uint16(b[off:]))
	if et == ethernet.EtherTypeServiceVLAN {
		// An 802.1ad S-tag is always followed by an 802.1Q C-tag.
		if !validTag(b, off) {
			return 0, 0, DropMalformed
		}
		off += 4
		if et = ethernet.EtherType(binary.BigEndian.Uint16(b[off:])); et != ethernet.EtherTypeVLAN {
			return 0, 0, DropMalformed
		}
	}
	if et == ethernet.EtherTypeVLAN {
		if !validTag(b, off) {
			return 0, 0, DropMalformed
		}
		off += 4
		et = ethernet.EtherType(binary.BigEndian.Uint16(b[off:]))
	}
	return et, off + 2, 0
}

// validTag reports whether the VLAN tag whose TPID is at b[off:] is complete
// (tag and the next EtherType present) and carries a VLAN ID other than the
// reserved 0xfff.
func validTag(b []byte, off int) bool {
	return len(b) >= off+6 && binary.BigEndian.Uint16(b[off+2:])&0x0fff != 0x0fff
}

var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// unicastMAC reports whether m can be the address of one host: not all
// zeros, not broadcast or multicast (group bit set).
func unicastMAC(m [6]byte) bool {
	return m != [6]byte{} && m[0]&1 == 0
}
