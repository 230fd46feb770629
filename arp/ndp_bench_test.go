package arp

import (
	"net/netip"
	"testing"
)

// BenchmarkHandleND measures one received neighbour discovery frame through
// validation (checksum included) and the decision: a solicitation for
// another host, which must not allocate, and one for a VIP, which builds an
// advertisement.
func BenchmarkHandleND(b *testing.B) {
	cases := []struct {
		name  string
		frame []byte
	}{
		{"not_ours", ns(b, clientMAC, clientIP6, netip.MustParseAddr("2001:db8:0:1::77"))},
		{"reply-to-vip-solicitation", ns(b, clientMAC, clientIP6, vip6)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s, err := New(newFakeConn(), &Config{HardwareAddr: ourMAC, IP6: ourIP6, NDPConn: newFakeConn(), ReplyRate: -1})
			if err != nil {
				b.Fatal(err)
			}
			s.SetVIPs([]netip.Addr{vip6})
			var bt batch
			b.ReportAllocs()
			for b.Loop() {
				bt.frames = bt.frames[:0]
				s.handle(c.frame, t0, &bt)
			}
		})
	}
}
