package dsr_test

import (
	"fmt"
	"log"
	"net/netip"

	"github.com/dsrlb/dsrlb/dsr"
)

// Open a packet forwarder per core on the balancer's interface, after
// checking that the host's own kernel keeps out of the VIP traffic.
func ExampleListenPacket() {
	vips := []netip.Addr{netip.MustParseAddr("192.0.2.100")}

	problems, err := dsr.CheckHost("eth0", vips)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range problems {
		fmt.Println(p) // e.g. "error: ... (fix: sysctl -w net.ipv4.ip_forward=0)"
	}

	// The same Fanout group on every queue spreads flows over them.
	fwd, err := dsr.ListenPacket("eth0", &dsr.PacketConfig{Fanout: 1, VIPs: vips})
	if err != nil {
		log.Fatal(err)
	}
	defer fwd.Close()

	frames := make([]dsr.Frame, 64)
	for i := range frames {
		frames[i].Buf = make([]byte, dsr.MaxFrameSize)
	}
	n, err := fwd.ReadBatch(frames)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("received", n, "frames; drops so far:", fwd.Stats().KernelDrops)
}
