package frametest

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// ChecksumMode selects what a transport layer writes in its checksum field.
type ChecksumMode uint8

const (
	// ChecksumFull, the zero value, writes the correct checksum.
	ChecksumFull ChecksumMode = iota
	// ChecksumPartial writes only the folded pseudo-header sum, not
	// complemented, as a Linux sender does when it leaves the checksum to
	// offload (CHECKSUM_PARTIAL); frame.CompleteChecksum completes it.
	ChecksumPartial
	// ChecksumZero writes 0 (for UDP over IPv4: no checksum).
	ChecksumZero
	// ChecksumBad writes the correct checksum with its low bit flipped.
	ChecksumBad
)

// TCP is a TCP header. DataOffset 0 computes it from Options (which must be
// a multiple of 4 bytes long); any other value is written as is.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
	DataOffset       uint8
	Options          []byte
	Checksum         ChecksumMode
}

func (l TCP) encode(c *context, payload []byte) []byte {
	src, dst := addrs(c, "TCP")
	b := frame.AppendTCP(nil, src, dst, frame.TCPHeader{
		SrcPort: l.SrcPort, DstPort: l.DstPort, Seq: l.Seq, Ack: l.Ack,
		Flags: l.Flags, Window: l.Window, Options: l.Options,
	}, payload)
	if l.DataOffset != 0 {
		b[12] = l.DataOffset << 4
	}
	writeChecksum(b, 16, l.Checksum, frame.PseudoHeaderSum(src, dst, frame.ProtoTCP, len(b)))
	return b
}

// UDP is a UDP header. Length 0 computes it, -1 writes 0 (as in a jumbogram),
// any other value is written as is.
type UDP struct {
	SrcPort, DstPort uint16
	Length           int
	Checksum         ChecksumMode
}

func (l UDP) encode(c *context, payload []byte) []byte {
	src, dst := addrs(c, "UDP")
	b := frame.AppendUDP(nil, src, dst, frame.UDPHeader{SrcPort: l.SrcPort, DstPort: l.DstPort}, payload)
	switch l.Length {
	case 0:
	case -1:
		binary.BigEndian.PutUint16(b[4:], 0)
	default:
		binary.BigEndian.PutUint16(b[4:], uint16(l.Length))
	}
	writeChecksum(b, 6, l.Checksum, frame.PseudoHeaderSum(src, dst, frame.ProtoUDP, len(b)))
	return b
}

// ICMPv4 is an ICMP header: type, code, checksum and the 4 bytes after it
// (Rest: the MTU for "fragmentation needed", identifier and sequence for
// echo). For an error, the layers after it are the quoted packet, starting
// with its IPv4 header; Truncate > 0 keeps only that many bytes of them, as
// routers quote only the start of a packet.
type ICMPv4 struct {
	Type, Code uint8
	Rest       uint32
	Truncate   int
	Checksum   ChecksumMode
}

func (l ICMPv4) encode(_ *context, payload []byte) []byte {
	b := frame.AppendICMPv4(nil, frame.ICMPHeader{Type: l.Type, Code: l.Code, Rest: l.Rest}, truncate(payload, l.Truncate))
	writeChecksum(b, 2, l.Checksum, 0)
	return b
}

// truncate cuts payload to n bytes when n is positive.
func truncate(payload []byte, n int) []byte {
	if n > 0 && n < len(payload) {
		return payload[:n]
	}
	return payload
}

// ICMPv6 is an ICMPv6 header, laid out like ICMPv4 (Rest is the MTU of a
// Packet Too Big message); its checksum covers the IPv6 pseudo-header.
type ICMPv6 struct {
	Type, Code uint8
	Rest       uint32
	Truncate   int
	Checksum   ChecksumMode
}

func (l ICMPv6) encode(c *context, payload []byte) []byte {
	src, dst := addrs(c, "ICMPv6")
	b := frame.AppendICMPv6(nil, src, dst, frame.ICMPHeader{Type: l.Type, Code: l.Code, Rest: l.Rest}, truncate(payload, l.Truncate))
	writeChecksum(b, 2, l.Checksum, frame.PseudoHeaderSum(src, dst, frame.ProtoICMPv6, len(b)))
	return b
}

// addrs returns the addresses of the nearest IP layer, as that layer writes
// them (a zero Addr as all zeros of its family), for the pseudo-header.
func addrs(c *context, name string) (src, dst netip.Addr) {
	switch ip := c.ip.(type) {
	case IPv4:
		return netip.AddrFrom4(as4(ip.Src)), netip.AddrFrom4(as4(ip.Dst))
	case IPv6:
		return netip.AddrFrom16(as16(ip.Src)), netip.AddrFrom16(as16(ip.Dst))
	}
	panic(fmt.Sprintf("frametest: %s layer without an IPv4 or IPv6 layer before it", name))
}

// writeChecksum (re)writes the checksum field at b[at:] as mode asks, over b
// as it is now (after any length or offset override) and the pseudo-header
// sum pseudo.
func writeChecksum(b []byte, at int, mode ChecksumMode, pseudo uint32) {
	binary.BigEndian.PutUint16(b[at:], 0)
	var v uint16
	switch mode {
	case ChecksumFull, ChecksumBad:
		v = frame.Checksum(b, pseudo)
		if v == 0 {
			v = 0xffff // as frame's builders and a sending kernel store it
		}
		if mode == ChecksumBad {
			v ^= 1
		}
	case ChecksumPartial:
		v = uint16(pseudo)
	case ChecksumZero:
		v = 0
	}
	binary.BigEndian.PutUint16(b[at:], v)
}
