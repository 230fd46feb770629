package arp

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/stretchr/testify/require"
)

// FuzzValidateFrame checks that validation never panics and that whatever it
// accepts is exactly what mdlayher's parsers read from the same bytes, with
// the fields mdlayher/arp does not check (types, lengths, operation) valid.
func FuzzValidateFrame(f *testing.F) {
	f.Add(request(f, clientMAC, clientIP, vip))
	f.Add(reply(f, srvMAC, srvIP, ourMAC, ourIP))
	f.Add(request(f, clientMAC, netip.IPv4Unspecified(), vip))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v view
		r := parseFrame(b, &v)
		if r != 0 {
			require.Less(t, r, numDropReasons)
			return
		}
		var fr ethernet.Frame
		require.NoError(t, fr.UnmarshalBinary(b), "accepted frame is Ethernet")
		require.Equal(t, ethernet.EtherTypeARP, fr.EtherType)
		var p arp.Packet
		require.NoError(t, p.UnmarshalBinary(fr.Payload), "accepted payload is ARP")
		require.EqualValues(t, 1, p.HardwareType)
		require.Equal(t, uint16(ethernet.EtherTypeIPv4), p.ProtocolType)
		require.EqualValues(t, 6, p.HardwareAddrLength)
		require.EqualValues(t, 4, p.IPLength)
		require.Contains(t, []arp.Operation{arp.OperationRequest, arp.OperationReply}, p.Operation)
		require.Equal(t, p.Operation, v.op)
		require.True(t, bytes.Equal(p.SenderHardwareAddr, v.sha[:]))
		require.True(t, bytes.Equal(p.TargetHardwareAddr, v.tha[:]))
		require.Equal(t, p.SenderIP, v.spa)
		require.Equal(t, p.TargetIP, v.tpa)
		require.True(t, bytes.Equal(fr.Source, v.ethSrc[:]))
		require.True(t, unicastMAC(v.sha))
	})
}
