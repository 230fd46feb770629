package dsr_test

import (
	"context"
	"log"
	"log/slog"
	"net/netip"

	"github.com/dsrlb/dsrlb/dsr"
)

// Forward in the kernel with XDP, pinned so that the next process takes
// the established flows over: a restart resets none of them.
func ExampleListenXDP() {
	vips := []netip.Addr{netip.MustParseAddr("192.0.2.100")}
	x, err := dsr.ListenXDP("eth0", &dsr.XDPConfig{
		Packet:  &dsr.PacketConfig{VIPs: vips},
		PinPath: "/sys/fs/bpf/dsrlb/eth0", // in a mounted BPF filesystem
		Logger:  slog.Default(),
	})
	if err != nil {
		log.Fatal(err) // or fall back to dsr.ListenPacket
	}
	// Close leaves the pinned program attached and forwarding; use
	// x.Detach() instead to stop forwarding in XDP for good.
	defer x.Close()
	if r := x.Restored(); r.FlowsLost {
		log.Printf("the pinned maps had another layout: %v", r.Why)
	}

	b, err := dsr.New(&dsr.Config{Seed: 1}) // keep the seed across restarts
	if err != nil {
		log.Fatal(err)
	}
	// ... add services, then serve the forwarder.
	_ = b.Serve(context.Background(), x)
}
