package dsr_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/dsr"
)

// A service whose servers sit in another subnet: frames are encapsulated
// in UDP + GUE from the balancer's address to each server's, through the
// gateway. (With Config.ARP set, the gateway's MAC is resolved; here the
// backend names it.)
func ExampleService_l3() {
	b, _ := dsr.New(nil)
	err := b.AddService(dsr.Service{
		VIP: netip.MustParseAddr("192.0.2.100"), Protocol: dsr.TCP, Port: 80,
		Mode:         dsr.ModeGUE,
		TunnelSource: netip.MustParseAddr("203.0.113.2"),
		Gateway:      netip.MustParseAddr("203.0.113.1"),
		Backends: []dsr.Backend{
			{Addr: netip.MustParseAddr("198.51.100.21"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x01}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	e, _ := b.ExplainFlow(dsr.Tuple{
		Src:      netip.MustParseAddrPort("198.51.100.7:40000"),
		Dst:      netip.MustParseAddrPort("192.0.2.100:80"),
		Protocol: dsr.TCP,
	})
	fmt.Println(e.Mode, e.TunnelSource, "→", e.TunnelDest, "port", e.GUEPort, "via", e.NextHop)
	fmt.Println("overhead:", dsr.ModeGUE.Overhead(4), "bytes")
	// Output:
	// gue 203.0.113.2 → 198.51.100.21 port 6080 via 203.0.113.1
	// overhead: 32 bytes
}
