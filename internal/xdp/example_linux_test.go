//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame/frametest"
	"github.com/dsrlb/dsrlb/internal/xdp"
)

// Load the program, give it one service whose table names one backend, and
// run a client's SYN through it.
func ExampleLoad() {
	p, err := xdp.Load(nil)
	if err != nil {
		fmt.Println("cannot load:", err) // not root, or an old kernel
		return
	}
	defer p.Close()
	ours, _ := net.ParseMAC("02:00:00:00:00:01")
	backend, _ := net.ParseMAC("02:00:00:00:01:01")
	vip := netip.MustParseAddr("192.0.2.100")
	id := uint32(1<<xdp.IDSlotBits | 1) // slot 1, generation 1
	_ = p.SetParams(xdp.Params{Seed: 42, MAC: ours})
	_ = p.SetBackend(1, xdp.Backend{ID: id, MAC: backend, Usable: true})
	_ = p.SetService(xdp.ServiceKey{VIP: vip, Port: 80, Proto: 6}, 0, true, []uint32{id, id, id})

	syn := frametest.Build(
		frametest.Ethernet{Dst: [6]byte(ours), Src: frametest.MAC("02:00:00:00:00:99")},
		frametest.IPv4{Src: netip.MustParseAddr("203.0.113.7"), Dst: vip},
		frametest.TCP{SrcPort: 40000, DstPort: 80, Flags: 0x02},
	)
	v, out, err := p.Run(syn)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v, net.HardwareAddr(out[:6]))
	// Output: tx 02:00:00:00:01:01
}
