package dsrtest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/dsr"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// ErrBadFrame is wrapped by the errors of Frame.Marshal: the description
// cannot be serialised (addresses of different families, an unknown
// protocol, a VLAN ID out of range, ...).
var ErrBadFrame = errors.New("dsrtest: bad frame")

// TCPFlags is the TCP flag byte of a Frame. The zero value sets no flag.
type TCPFlags uint8

// TCP flags (RFC 9293 and RFC 3168), to be combined with |.
const (
	FlagFIN TCPFlags = 0x01
	FlagSYN TCPFlags = 0x02
	FlagRST TCPFlags = 0x04
	FlagPSH TCPFlags = 0x08
	FlagACK TCPFlags = 0x10
	FlagURG TCPFlags = 0x20
	FlagECE TCPFlags = 0x40
	FlagCWR TCPFlags = 0x80
)

// Frame describes an Ethernet frame carrying one TCP or UDP segment over
// IPv4 or IPv6, as a client on the segment sends it to a VIP: Marshal (or
// Bytes) turns it into the bytes to hand to Port.Send. Every length and
// checksum is filled in correctly, so the frame is one a real receiver
// would accept. The zero value describes nothing valid: From and To are
// required; every other field has a usable zero value.
type Frame struct {
	// Dst and Src are the Ethernet destination and source. Nil writes
	// 00:00:00:00:00:00; any other length than 6 is an error.
	Dst, Src net.HardwareAddr
	// VLAN is the 802.1Q VLAN ID (1–4094) of a tag inserted after the
	// Ethernet addresses. Zero means an untagged frame.
	VLAN uint16
	// From and To are the IP source and destination addresses with the
	// transport ports: both IPv4 or both IPv6 (IPv4-mapped IPv6 addresses
	// are unmapped first). Required.
	From, To netip.AddrPort
	// Protocol is dsr.TCP or dsr.UDP. Zero means dsr.TCP.
	Protocol dsr.Protocol
	// Flags are the TCP flags; they must be zero for UDP. Zero sends a
	// segment with no flag set (FlagSYN opens a connection).
	Flags TCPFlags
	// Seq and Ack are the TCP sequence and acknowledgement numbers; they
	// must be zero for UDP. (The TCP window is always 65535 and the
	// header carries no options.)
	Seq, Ack uint32
	// TTL is the IPv4 TTL or the IPv6 hop limit. Zero means 64.
	TTL uint8
	// Payload follows the transport header. Nil means none.
	Payload []byte
}

// Marshal returns the frame's bytes, or an error wrapping ErrBadFrame that
// names the field at fault.
func (f Frame) Marshal() ([]byte, error) {
	eth, err := f.ethernet()
	if err != nil {
		return nil, err
	}
	src, dst := f.From.Addr().Unmap(), f.To.Addr().Unmap()
	if !src.IsValid() || !dst.IsValid() {
		return nil, fmt.Errorf("%w: From and To are required (got %v and %v)", ErrBadFrame, f.From, f.To)
	}
	if src.Is4() != dst.Is4() {
		return nil, fmt.Errorf("%w: From %v and To %v are of different address families", ErrBadFrame, src, dst)
	}
	layers := []ft.Layer{eth}
	if f.VLAN != 0 {
		if f.VLAN > 4094 {
			return nil, fmt.Errorf("%w: VLAN %d is outside 1-4094", ErrBadFrame, f.VLAN)
		}
		layers = append(layers, ft.VLAN{TCI: f.VLAN})
	}
	hdr := 0
	if src.Is4() {
		layers = append(layers, ft.IPv4{Src: src, Dst: dst, TTL: f.TTL})
		hdr = 20
	} else {
		layers = append(layers, ft.IPv6{Src: src, Dst: dst, HopLimit: f.TTL})
	}
	switch f.Protocol {
	case 0, dsr.TCP:
		layers = append(layers, ft.TCP{SrcPort: f.From.Port(), DstPort: f.To.Port(),
			Seq: f.Seq, Ack: f.Ack, Flags: uint8(f.Flags), Window: 65535})
		hdr += 20
	case dsr.UDP:
		if f.Flags != 0 || f.Seq != 0 || f.Ack != 0 {
			return nil, fmt.Errorf("%w: Flags, Seq and Ack are TCP fields, set for UDP", ErrBadFrame)
		}
		layers = append(layers, ft.UDP{SrcPort: f.From.Port(), DstPort: f.To.Port()})
		hdr += 8
	default:
		return nil, fmt.Errorf("%w: Protocol %v is neither TCP nor UDP", ErrBadFrame, f.Protocol)
	}
	// The IPv4 total length and the IPv6 payload length are 16-bit fields.
	if hdr+len(f.Payload) > 0xffff {
		return nil, fmt.Errorf("%w: a payload of %d bytes does not fit an IP packet", ErrBadFrame, len(f.Payload))
	}
	if len(f.Payload) > 0 {
		layers = append(layers, ft.Raw(f.Payload))
	}
	return ft.Build(layers...), nil
}

// Bytes is Marshal for test code: it panics where Marshal returns an
// error, as httptest.NewRequest does, so a frame can be built inline.
func (f Frame) Bytes() []byte {
	b, err := f.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func (f Frame) ethernet() (ft.Ethernet, error) {
	var eth ft.Ethernet
	for _, m := range []struct {
		name string
		mac  net.HardwareAddr
		to   *[6]byte
	}{{"Dst", f.Dst, &eth.Dst}, {"Src", f.Src, &eth.Src}} {
		switch len(m.mac) {
		case 0:
		case 6:
			*m.to = [6]byte(m.mac)
		default:
			return eth, fmt.Errorf("%w: %s %v is not a 6-byte Ethernet address", ErrBadFrame, m.name, m.mac)
		}
	}
	return eth, nil
}
