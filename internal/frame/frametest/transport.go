package frametest

import (
	"encoding/binary"
	"fmt"
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
	hl := 20 + len(l.Options)
	b := make([]byte, hl, hl+len(payload))
	binary.BigEndian.PutUint16(b[0:], l.SrcPort)
	binary.BigEndian.PutUint16(b[2:], l.DstPort)
	binary.BigEndian.PutUint32(b[4:], l.Seq)
	binary.BigEndian.PutUint32(b[8:], l.Ack)
	doff := l.DataOffset
	if doff == 0 {
		doff = uint8(hl / 4)
	}
	b[12] = doff << 4
	b[13] = l.Flags
	binary.BigEndian.PutUint16(b[14:], l.Window)
	copy(b[20:], l.Options)
	b = append(b, payload...)
	writeChecksum(b, 16, l.Checksum, pseudo(c, "TCP", 6, len(b)))
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
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], l.SrcPort)
	binary.BigEndian.PutUint16(b[2:], l.DstPort)
	n := 8 + len(payload)
	switch l.Length {
	case 0:
	case -1:
		n = 0
	default:
		n = l.Length
	}
	binary.BigEndian.PutUint16(b[4:], uint16(n))
	b = append(b, payload...)
	writeChecksum(b, 6, l.Checksum, pseudo(c, "UDP", 17, len(b)))
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
	b := icmpMessage(l.Type, l.Code, l.Rest, l.Truncate, payload)
	writeChecksum(b, 2, l.Checksum, 0)
	return b
}

// icmpMessage lays out an ICMP or ICMPv6 message with a zero checksum: the
// 8-byte header, then payload cut to truncate bytes when that is positive.
func icmpMessage(typ, code uint8, rest uint32, truncate int, payload []byte) []byte {
	if truncate > 0 && truncate < len(payload) {
		payload = payload[:truncate]
	}
	b := make([]byte, 8, 8+len(payload))
	b[0], b[1] = typ, code
	binary.BigEndian.PutUint32(b[4:], rest)
	return append(b, payload...)
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
	b := icmpMessage(l.Type, l.Code, l.Rest, l.Truncate, payload)
	writeChecksum(b, 2, l.Checksum, pseudo(c, "ICMPv6", 58, len(b)))
	return b
}

// pseudo returns the pseudo-header sum (not folded) for a transport segment
// of length n under the nearest IP layer.
func pseudo(c *context, name string, proto uint8, n int) uint64 {
	var ph []byte
	switch ip := c.ip.(type) {
	case IPv4:
		s, d := as4(ip.Src), as4(ip.Dst)
		ph = append(append(ph, s[:]...), d[:]...)
		ph = append(ph, 0, proto, byte(n>>8), byte(n))
	case IPv6:
		s, d := as16(ip.Src), as16(ip.Dst)
		ph = append(append(ph, s[:]...), d[:]...)
		ph = append(ph, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, proto)
	default:
		panic(fmt.Sprintf("frametest: %s layer without an IPv4 or IPv6 layer before it", name))
	}
	return sum16(ph)
}

func writeChecksum(b []byte, at int, mode ChecksumMode, pseudoSum uint64) {
	var v uint16
	switch mode {
	case ChecksumFull, ChecksumBad:
		v = ^fold16(pseudoSum + sum16(b))
		if mode == ChecksumBad {
			v ^= 1
		}
	case ChecksumPartial:
		v = fold16(pseudoSum)
	case ChecksumZero:
		v = 0
	}
	binary.BigEndian.PutUint16(b[at:], v)
}

// Checksum returns the internet checksum (RFC 1071) of b, starting from the
// partial sum initial: the value to store in a zeroed checksum field. It is
// a plain byte-by-byte implementation, kept simple on purpose.
func Checksum(b []byte, initial uint32) uint16 {
	return ^fold16(uint64(initial) + sum16(b))
}

func sum16(b []byte) uint64 {
	var s uint64
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	return s
}

func fold16(s uint64) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
