package arp

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/mdlayher/ethernet"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// FuzzValidateND checks that neighbour discovery validation never panics
// and that whatever it accepts is, read by golang.org/x/net, an NS or NA
// with hop limit 255, code 0, a correct checksum and a unicast target, with
// the fields it reports.
func FuzzValidateND(f *testing.F) {
	f.Add(ns(f, clientMAC, clientIP6, vip6))
	f.Add(dadSpec(clientMAC, vip6).frame(f))
	f.Add(naSpec(srvMAC, srvIP6, ourMAC, ourIP6, naSolicited|naOverride, srvIP6).frame(f))
	f.Add(naSpec(srvMAC, vip6, allNodesM, allNodes, naOverride, vip6).frame(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v ndView
		r := parseND(b, &v)
		if r != 0 {
			require.Less(t, r, numDropReasons)
			return
		}
		var fr ethernet.Frame
		require.NoError(t, fr.UnmarshalBinary(b))
		require.Equal(t, ethernet.EtherTypeIPv6, fr.EtherType)
		h, err := ipv6.ParseHeader(fr.Payload)
		require.NoError(t, err)
		require.Equal(t, 6, h.Version)
		require.Equal(t, protoICMPv6, h.NextHeader)
		require.Equal(t, 255, h.HopLimit)
		require.GreaterOrEqual(t, len(fr.Payload)-ipv6HeaderLen, h.PayloadLen)
		msg := fr.Payload[ipv6HeaderLen : ipv6HeaderLen+h.PayloadLen]
		require.GreaterOrEqual(t, len(msg), ndMinLen)
		m, err := icmp.ParseMessage(protoICMPv6, msg)
		require.NoError(t, err)
		require.Contains(t, []icmp.Type{ipv6.ICMPTypeNeighborSolicitation, ipv6.ICMPTypeNeighborAdvertisement}, m.Type)
		require.Zero(t, m.Code)
		body := m.Body.(*icmp.RawBody).Data
		again, err := (&icmp.Message{Type: m.Type, Code: m.Code, Body: &icmp.RawBody{Data: body}}).Marshal(icmp.IPv6PseudoHeader(h.Src, h.Dst))
		require.NoError(t, err)
		// A sum of zero may be sent as either zero form; compare sums.
		src, _ := netip.AddrFromSlice(h.Src)
		dst, _ := netip.AddrFromSlice(h.Dst)
		ph := frame.PseudoHeaderSum(src, dst, protoICMPv6, len(msg))
		require.Equal(t, frame.Checksum(again, ph), frame.Checksum(msg, ph), "checksum")
		require.Equal(t, src, v.src)
		require.False(t, src.IsMulticast())
		target := netip.AddrFrom16([16]byte(body[4:20]))
		require.Equal(t, target, v.target)
		require.False(t, target.IsMulticast())
		require.True(t, bytes.Equal(fr.Source, v.ethSrc[:]))
		require.True(t, unicastMAC(v.sender()))
	})
}
