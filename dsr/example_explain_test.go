package dsr_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/dsr"
)

// Explain answers "which backend, and why" from the plan the data path
// runs, without root and without touching any flow.
func ExampleBalancer_ExplainFlow() {
	b, _ := dsr.New(nil)
	_ = b.AddService(dsr.Service{
		VIP: netip.MustParseAddr("192.0.2.100"), Protocol: dsr.TCP, Port: 80,
		Backends: []dsr.Backend{
			{Addr: netip.MustParseAddr("192.0.2.21"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x21}},
			{Addr: netip.MustParseAddr("192.0.2.22"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x22}, State: dsr.BackendDown},
		},
	})
	e, _ := b.ExplainFlow(dsr.Tuple{
		Src:      netip.MustParseAddrPort("198.51.100.7:40000"),
		Dst:      netip.MustParseAddrPort("192.0.2.100:80"),
		Protocol: dsr.TCP,
	})
	fmt.Println(e.Why, "→", e.Backend)
	// Output: new flow → 192.0.2.21
}
