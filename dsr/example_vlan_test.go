package dsr_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/dsr"
)

// On a trunk, the same VIP:port is one service per VLAN, each with its own
// backends; a flow is placed by the service of the VLAN it arrives on.
func ExampleService_vlan() {
	b, _ := dsr.New(nil)
	vip := netip.MustParseAddr("192.0.2.100")
	for _, s := range []struct {
		vlan    uint16
		backend string
	}{{10, "198.51.100.21"}, {20, "203.0.113.21"}} {
		err := b.AddService(dsr.Service{
			VIP: vip, Protocol: dsr.TCP, Port: 80, VLAN: s.vlan,
			Backends: []dsr.Backend{{Addr: netip.MustParseAddr(s.backend), MAC: net.HardwareAddr{2, 0, 0, 0, byte(s.vlan), 0x21}}},
		})
		if err != nil {
			fmt.Println(err)
		}
	}
	for _, vlan := range []uint16{10, 20, 30} {
		e, _ := b.ExplainFlow(dsr.Tuple{
			Src:      netip.MustParseAddrPort("198.51.100.7:40000"),
			Dst:      netip.AddrPortFrom(vip, 80),
			Protocol: dsr.TCP,
			VLAN:     vlan,
		})
		if e.Forward {
			fmt.Println(e.Tuple, "→", e.Service, e.Backend)
		} else {
			fmt.Println(e.Tuple, "→", e.Drop)
		}
	}
	// Output:
	// 198.51.100.7:40000 → 192.0.2.100:80/tcp@vlan10 → 192.0.2.100:80/tcp@vlan10 198.51.100.21
	// 198.51.100.7:40000 → 192.0.2.100:80/tcp@vlan20 → 192.0.2.100:80/tcp@vlan20 203.0.113.21
	// 198.51.100.7:40000 → 192.0.2.100:80/tcp@vlan30 → no_service
}
