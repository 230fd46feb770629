// Package frametest builds Ethernet frames for tests: Ethernet, 802.1Q,
// ARP, IPv4, IPv6 with extension headers, TCP, UDP, ICMP and ICMPv6,
// including ICMP errors that quote an inner packet, fragments, GSO-style
// length-0 headers and offload-style partial checksums.
//
// A frame is a list of layers, outermost first; Build serialises them and
// fills in what a real stack would: EtherTypes, protocol numbers, lengths,
// and IPv4 header and transport checksums (over the right pseudo-header).
//
//	b := frametest.Build(
//		frametest.Ethernet{Dst: frametest.MAC("02:00:00:00:00:01"), Src: frametest.MAC("02:00:00:00:00:02")},
//		frametest.IPv4{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.10")},
//		frametest.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagSYN},
//	)
//
// The headers are laid out and checksummed by package frame's builders, so
// test frames and the frames the module sends are written by the same code;
// package frame's own tests check its checksum against an independent
// reference. The package is for tests: Build panics on a layer stack
// it cannot serialise (a transport layer with no IP layer before it).
package frametest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// Layer is one header (or payload) of a frame. The layer types of this
// package implement it; use Raw for anything else.
type Layer interface {
	// encode returns the layer's bytes followed by payload, the already
	// encoded layers after it.
	encode(c *context, payload []byte) []byte
}

// context is what a layer may need to know about its neighbours.
type context struct {
	next Layer // the layer after this one, nil at the end
	ip   Layer // the nearest IPv4 or IPv6 layer before this one, nil if none
}

// Build serialises layers, outermost first, into a new frame (or packet, if
// the first layer is not Ethernet). It panics if a TCP, UDP, ICMPv6 or
// IPv6 extension layer has no IP layer before it.
func Build(layers ...Layer) []byte {
	var out []byte
	for i := len(layers) - 1; i >= 0; i-- {
		c := &context{}
		if i+1 < len(layers) {
			c.next = layers[i+1]
		}
		for j := i - 1; j >= 0; j-- {
			switch layers[j].(type) {
			case IPv4, IPv6:
				c.ip = layers[j]
			}
			if c.ip != nil {
				break
			}
		}
		out = layers[i].encode(c, out)
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

// MAC parses a colon-separated Ethernet address and panics on bad input,
// for use in test tables.
func MAC(s string) [6]byte {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		panic(fmt.Sprintf("frametest: bad MAC %q", s))
	}
	return [6]byte(hw)
}

// etherTypeOf returns the EtherType announcing layer l (0 if unknown).
func etherTypeOf(l Layer) uint16 {
	switch l := l.(type) {
	case VLAN:
		if l.QinQ {
			return frame.EtherTypeQinQ
		}
		return frame.EtherTypeVLAN
	case IPv4:
		return frame.EtherTypeIPv4
	case IPv6:
		return frame.EtherTypeIPv6
	case ARP:
		return frame.EtherTypeARP
	}
	return 0
}

// protoOf returns the IP protocol number announcing layer l (255, "reserved",
// if unknown).
func protoOf(l Layer) uint8 {
	switch l := l.(type) {
	case TCP:
		return frame.ProtoTCP
	case UDP:
		return frame.ProtoUDP
	case ICMPv4:
		return frame.ProtoICMP
	case ICMPv6:
		return frame.ProtoICMPv6
	case IPv4:
		return 4
	case IPv6:
		return 41
	case IPv6Ext:
		return l.Header
	case IPv6Fragment:
		return 44
	case nil:
		return 59 // No Next Header
	}
	return 255
}

// Ethernet is an Ethernet II header. EtherType 0 is derived from the next
// layer (VLAN, IPv4, IPv6, ARP). Trailer is appended after everything else
// and covered by no length field: Ethernet padding or an FCS.
type Ethernet struct {
	Dst, Src  [6]byte
	EtherType uint16
	Trailer   []byte
}

func (l Ethernet) encode(c *context, payload []byte) []byte {
	et := l.EtherType
	if et == 0 {
		et = etherTypeOf(c.next)
	}
	b := frame.AppendEthernet(make([]byte, 0, 14+len(payload)+len(l.Trailer)), frame.EthernetHeader{Dst: l.Dst, Src: l.Src, EtherType: et})
	b = append(b, payload...)
	return append(b, l.Trailer...)
}

// PadTo returns the Trailer that pads a frame of n bytes to the Ethernet
// minimum of 60 bytes (without FCS), nil if none is needed.
func PadTo(n int) []byte {
	if n >= 60 {
		return nil
	}
	return make([]byte, 60-n)
}

// VLAN is one 802.1Q tag (802.1ad when QinQ). TCI is the full Tag Control
// Information (priority, DEI, VLAN ID). EtherType 0 is derived from the next
// layer.
type VLAN struct {
	TCI       uint16
	QinQ      bool
	EtherType uint16
}

func (l VLAN) encode(c *context, payload []byte) []byte {
	et := l.EtherType
	if et == 0 {
		et = etherTypeOf(c.next)
	}
	b := make([]byte, 4, 4+len(payload))
	binary.BigEndian.PutUint16(b[0:], l.TCI)
	binary.BigEndian.PutUint16(b[2:], et)
	return append(b, payload...)
}

// ARP is an Ethernet/IPv4 ARP packet. Op 0 means request (1); zero
// addresses are written as zeros.
type ARP struct {
	Op                   uint16
	SenderMAC, TargetMAC [6]byte
	SenderIP, TargetIP   netip.Addr
}

func (l ARP) encode(_ *context, payload []byte) []byte {
	op := l.Op
	if op == 0 {
		op = 1
	}
	b := make([]byte, 28, 28+len(payload))
	binary.BigEndian.PutUint16(b[0:], 1) // Ethernet
	binary.BigEndian.PutUint16(b[2:], frame.EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:14], l.SenderMAC[:])
	s, t := as4(l.SenderIP), as4(l.TargetIP)
	copy(b[14:18], s[:])
	copy(b[18:24], l.TargetMAC[:])
	copy(b[24:28], t[:])
	return append(b, payload...)
}

// Raw is opaque bytes: a payload, or a header this package does not model.
// As a next layer it announces protocol 255 / EtherType 0, so set the
// Protocol or EtherType field of the layer before it.
type Raw []byte

func (l Raw) encode(_ *context, payload []byte) []byte {
	return append(append([]byte{}, l...), payload...)
}

// as4 and as16 let a zero netip.Addr stand for the all-zero address, so
// that tests only set the fields they care about.
func as4(a netip.Addr) [4]byte {
	if !a.IsValid() {
		return [4]byte{}
	}
	return a.As4()
}

func as16(a netip.Addr) [16]byte {
	if !a.IsValid() {
		return [16]byte{}
	}
	return a.As16()
}
