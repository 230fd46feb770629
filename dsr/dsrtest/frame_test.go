package dsrtest_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/dsr/dsrtest"
	"github.com/dsrlb/dsrlb/internal/frame"
)

var (
	macLB     = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macClient = net.HardwareAddr{2, 0, 0, 0, 0, 0x0a}
)

// The frames are read back with the module's own parser and checksum
// verifier, which are tested against independent encoders elsewhere.
func TestFrameMarshal(t *testing.T) {
	tests := []struct {
		name      string
		f         dsrtest.Frame
		version   uint8
		proto     uint8
		wantFlags uint8
		wantTTL   uint8
	}{
		{"TCP SYN over IPv4", dsrtest.Frame{
			Dst: macLB, Src: macClient,
			From: netip.MustParseAddrPort("198.51.100.7:40000"), To: netip.MustParseAddrPort("192.0.2.100:80"),
			Flags: dsrtest.FlagSYN, Seq: 1000,
		}, 4, frame.ProtoTCP, frame.FlagSYN, 64},
		{"TCP ACK with data over IPv6", dsrtest.Frame{
			Dst: macLB, Src: macClient, Protocol: dsr.TCP,
			From: netip.MustParseAddrPort("[2001:db8::7]:40001"), To: netip.MustParseAddrPort("[2001:db8::100]:443"),
			Flags: dsrtest.FlagACK | dsrtest.FlagPSH, Seq: 1, Ack: 2, TTL: 9, Payload: []byte("GET / HTTP/1.1\r\n\r\n"),
		}, 6, frame.ProtoTCP, frame.FlagACK | frame.FlagPSH, 9},
		{"UDP over IPv4 with a VLAN tag", dsrtest.Frame{
			Dst: macLB, Src: macClient, VLAN: 100, Protocol: dsr.UDP,
			From: netip.MustParseAddrPort("198.51.100.8:5353"), To: netip.MustParseAddrPort("192.0.2.100:53"),
			Payload: []byte{1, 2, 3},
		}, 4, frame.ProtoUDP, 0, 64},
		{"UDP over IPv6 with a VLAN tag, odd payload", dsrtest.Frame{
			Dst: macLB, Src: macClient, VLAN: 4094, Protocol: dsr.UDP,
			From: netip.MustParseAddrPort("[2001:db8::8]:5353"), To: netip.MustParseAddrPort("[2001:db8::100]:53"),
			Payload: []byte("odd"),
		}, 6, frame.ProtoUDP, 0, 64},
		{"IPv4-mapped addresses are unmapped", dsrtest.Frame{
			From: netip.MustParseAddrPort("[::ffff:198.51.100.9]:1"), To: netip.MustParseAddrPort("[::ffff:192.0.2.100]:2"),
		}, 4, frame.ProtoTCP, 0, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.f.Marshal()
			require.NoError(t, err)
			assert.Equal(t, b, tt.f.Bytes(), "Bytes is Marshal")
			var p frame.Packet
			require.NoError(t, frame.Parse(b, &p))
			assert.Equal(t, len(b), p.Len, "no padding, no trailer")
			wantMAC := func(m net.HardwareAddr) [6]byte {
				if m == nil {
					return [6]byte{}
				}
				return [6]byte(m)
			}
			assert.Equal(t, wantMAC(tt.f.Dst), p.EthDst)
			assert.Equal(t, wantMAC(tt.f.Src), p.EthSrc)
			assert.Equal(t, tt.f.VLAN != 0, p.Tagged)
			assert.Equal(t, tt.f.VLAN, p.VLANID())
			assert.Equal(t, tt.version, p.Version)
			assert.Equal(t, tt.f.From.Addr().Unmap(), p.Src)
			assert.Equal(t, tt.f.To.Addr().Unmap(), p.Dst)
			assert.Equal(t, tt.proto, p.Proto)
			assert.Equal(t, tt.f.From.Port(), p.SrcPort)
			assert.Equal(t, tt.f.To.Port(), p.DstPort)
			assert.Equal(t, tt.wantFlags, p.TCPFlags)
			assert.Equal(t, tt.wantTTL, p.TTL)
			assert.Equal(t, frame.NotFragment, p.Fragment)
			assert.True(t, frame.TransportChecksumOK(b, &p), "transport checksum")
			hdr := 20
			if tt.proto == frame.ProtoUDP {
				hdr = 8
			}
			assert.Equal(t, string(tt.f.Payload), string(b[p.L4Off+hdr:]), "payload after the transport header")
			if tt.proto == frame.ProtoTCP {
				seg := b[p.L4Off:]
				assert.Equal(t, tt.f.Seq, uint32(seg[4])<<24|uint32(seg[5])<<16|uint32(seg[6])<<8|uint32(seg[7]))
				assert.Equal(t, tt.f.Ack, uint32(seg[8])<<24|uint32(seg[9])<<16|uint32(seg[10])<<8|uint32(seg[11]))
			}
		})
	}
}

func TestFrameMarshalErrors(t *testing.T) {
	v4 := netip.MustParseAddrPort("198.51.100.7:40000")
	v6 := netip.MustParseAddrPort("[2001:db8::100]:80")
	vip := netip.MustParseAddrPort("192.0.2.100:80")
	tests := []struct {
		name string
		f    dsrtest.Frame
		want string
	}{
		{"zero value", dsrtest.Frame{}, "From and To are required"},
		{"no destination", dsrtest.Frame{From: v4}, "From and To are required"},
		{"mixed families", dsrtest.Frame{From: v4, To: v6}, "different address families"},
		{"short MAC", dsrtest.Frame{Dst: net.HardwareAddr{1, 2, 3}, From: v4, To: vip}, "Dst"},
		{"long MAC", dsrtest.Frame{Src: make(net.HardwareAddr, 8), From: v4, To: vip}, "Src"},
		{"VLAN out of range", dsrtest.Frame{VLAN: 4095, From: v4, To: vip}, "VLAN 4095"},
		{"unknown protocol", dsrtest.Frame{Protocol: dsr.TCPAndUDP, From: v4, To: vip}, "neither TCP nor UDP"},
		{"TCP flags on UDP", dsrtest.Frame{Protocol: dsr.UDP, Flags: dsrtest.FlagSYN, From: v4, To: vip}, "TCP fields"},
		{"sequence number on UDP", dsrtest.Frame{Protocol: dsr.UDP, Seq: 1, From: v4, To: vip}, "TCP fields"},
		{"payload too large for IPv4", dsrtest.Frame{From: v4, To: vip, Payload: make([]byte, 0xffff-40+1)}, "does not fit"},
		{"payload too large for IPv6", dsrtest.Frame{From: v6, To: v6, Protocol: dsr.UDP, Payload: make([]byte, 0xffff-8+1)}, "does not fit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.f.Marshal()
			require.ErrorIs(t, err, dsrtest.ErrBadFrame)
			assert.ErrorContains(t, err, tt.want)
			assert.Nil(t, b)
			assert.PanicsWithError(t, err.Error(), func() { tt.f.Bytes() })
		})
	}
	// The largest packets that fit are accepted.
	_, err := dsrtest.Frame{From: v4, To: vip, Payload: make([]byte, 0xffff-40)}.Marshal()
	require.NoError(t, err)
	_, err = dsrtest.Frame{From: v6, To: v6, Protocol: dsr.UDP, Payload: make([]byte, 0xffff-8)}.Marshal()
	require.NoError(t, err)
}

// A frame built here goes through a Balancer on a Fabric like a client's.
func TestFrameThroughBalancer(t *testing.T) {
	seg := dsrtest.NewFabric()
	lb := seg.NewPort(macLB)
	client := seg.NewPort(macClient)
	web := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 0x21})
	b, err := dsr.New(nil)
	require.NoError(t, err)
	// The IPv6 service is on VLAN 7, the VLAN of the tagged frame below: a
	// tagged frame matches only its VLAN's services.
	for vip, vlan := range map[string]uint16{"192.0.2.100": 0, "2001:db8::100": 7} {
		require.NoError(t, b.AddService(dsr.Service{
			VIP: netip.MustParseAddr(vip), Protocol: dsr.TCPAndUDP, Port: 80, VLAN: vlan,
			Backends: []dsr.Backend{{Addr: netip.MustParseAddr("192.0.2.21"), MAC: web.HardwareAddr()}},
		}))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx, lb) }()
	defer func() {
		cancel()
		require.NoError(t, <-served)
	}()
	for _, f := range []dsrtest.Frame{
		{From: netip.MustParseAddrPort("198.51.100.7:40000"), To: netip.MustParseAddrPort("192.0.2.100:80"), Flags: dsrtest.FlagSYN},
		{From: netip.MustParseAddrPort("[2001:db8::7]:40000"), To: netip.MustParseAddrPort("[2001:db8::100]:80"), Protocol: dsr.UDP, VLAN: 7},
	} {
		f.Dst, f.Src = lb.HardwareAddr(), client.HardwareAddr()
		sent := f.Bytes()
		require.NoError(t, client.Send(sent))
		pk, err := web.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, []byte(web.HardwareAddr()), pk.Data[0:6])
		assert.Equal(t, []byte(lb.HardwareAddr()), pk.Data[6:12])
		assert.Equal(t, sent[12:], pk.Data[12:], "everything after the MACs untouched")
	}
}
