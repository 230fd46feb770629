package arp

import (
	"net/netip"
	"testing"
)

// BenchmarkHandle measures one received frame through validation and the
// decision: the chatter of the segment (requests for other hosts), which must
// not allocate, and a request for a VIP, which builds a reply.
func BenchmarkHandle(b *testing.B) {
	cases := []struct {
		name  string
		frame []byte
	}{
		{"not_ours", request(b, clientMAC, clientIP, netip.MustParseAddr("192.0.2.77"))},
		{"reply-to-vip-request", request(b, clientMAC, clientIP, vip)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			conn := newFakeConn()
			s, err := New(conn, &Config{HardwareAddr: ourMAC, IP: ourIP, ReplyRate: -1})
			if err != nil {
				b.Fatal(err)
			}
			s.SetVIPs([]netip.Addr{vip})
			var bt batch
			b.ReportAllocs()
			for b.Loop() {
				bt.frames = bt.frames[:0]
				s.handle(c.frame, t0, &bt)
			}
		})
	}
}
