package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Protocol constants of RFC 5798.
const (
	// IPProtocol is the IP protocol number of VRRP.
	IPProtocol = 112
	// Version is the protocol version spoken: VRRPv3.
	Version = 3
	// TTL is the only IP TTL an advertisement may carry; any other value
	// means it crossed a router and is discarded (RFC 5798 §5.1.1.3).
	TTL = 255
	// typeAdvertisement is the only VRRP message type.
	typeAdvertisement = 1
	// headerLen is the fixed part of an advertisement.
	headerLen = 8
	// MaxAddrs is the most IPv4 addresses one advertisement can carry (the
	// count field is one byte).
	MaxAddrs = 255
)

// Group4 is the IPv4 multicast group advertisements are sent to.
var Group4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})

// Codec errors. Decode returns them wrapped; each is also a drop reason in
// Stats.
var (
	errShort    = errors.New("shorter than its header or its address list")
	errVersion  = errors.New("not a VRRPv3 advertisement")
	errChecksum = errors.New("bad checksum")
	errInterval = errors.New("zero advertisement interval")
)

// Advertisement is a decoded VRRPv3 advertisement for IPv4.
type Advertisement struct {
	// VRID is the virtual router the advertisement is for (1–255).
	VRID uint8
	// Priority is the sender's priority: 0 means it stops being master
	// now, 255 that it owns the addresses.
	Priority uint8
	// Interval is the sender's advertisement interval in centiseconds
	// (12 bits, 1–4095).
	Interval uint16
	// Addrs are the virtual router's IPv4 addresses.
	Addrs []netip.Addr
}

// Append appends the advertisement's wire form to b, with the checksum
// computed over the IPv4 pseudo-header of src → dst.
func (a *Advertisement) Append(b []byte, src, dst netip.Addr) []byte {
	start := len(b)
	b = append(b, Version<<4|typeAdvertisement, a.VRID, a.Priority, uint8(len(a.Addrs)))
	b = binary.BigEndian.AppendUint16(b, a.Interval&0x0fff)
	b = append(b, 0, 0) // checksum
	for _, ad := range a.Addrs {
		v4 := ad.As4()
		b = append(b, v4[:]...)
	}
	msg := b[start:]
	binary.BigEndian.PutUint16(msg[6:], checksum(msg, src, dst))
	return b
}

// Decode parses an advertisement received from src for dst (the
// destination address of its IP header, for the checksum). The
// advertisement's address list is appended to a.Addrs[:0], so a reused
// Advertisement does not allocate once it has grown.
func (a *Advertisement) Decode(msg []byte, src, dst netip.Addr) error {
	if len(msg) < headerLen {
		return fmt.Errorf("vrrp: %w (%d bytes)", errShort, len(msg))
	}
	if msg[0] != Version<<4|typeAdvertisement {
		return fmt.Errorf("vrrp: %w (version %d, type %d)", errVersion, msg[0]>>4, msg[0]&0x0f)
	}
	n := int(msg[3])
	if len(msg) < headerLen+4*n {
		return fmt.Errorf("vrrp: %w (%d bytes for %d addresses)", errShort, len(msg), n)
	}
	msg = msg[:headerLen+4*n] // trailing bytes are not ours to checksum
	if checksum(msg, src, dst) != 0 {
		return fmt.Errorf("vrrp: %w", errChecksum)
	}
	iv := binary.BigEndian.Uint16(msg[4:]) & 0x0fff
	if iv == 0 {
		return fmt.Errorf("vrrp: %w", errInterval)
	}
	a.VRID, a.Priority, a.Interval = msg[1], msg[2], iv
	a.Addrs = a.Addrs[:0]
	for i := range n {
		a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(msg[headerLen+4*i:])))
	}
	return nil
}

// checksum is the Internet checksum of msg preceded by the IPv4
// pseudo-header (RFC 5798 §5.2.8): over a message whose checksum field
// holds the right value, it is zero.
func checksum(msg []byte, src, dst netip.Addr) uint16 {
	var sum uint32
	s, d := src.As4(), dst.As4()
	sum += uint32(s[0])<<8 | uint32(s[1])
	sum += uint32(s[2])<<8 | uint32(s[3])
	sum += uint32(d[0])<<8 | uint32(d[1])
	sum += uint32(d[2])<<8 | uint32(d[3])
	sum += IPProtocol
	sum += uint32(len(msg))
	for i := 0; i+1 < len(msg); i += 2 {
		sum += uint32(msg[i])<<8 | uint32(msg[i+1])
	}
	if len(msg)%2 == 1 {
		sum += uint32(msg[len(msg)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
