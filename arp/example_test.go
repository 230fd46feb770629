package arp_test

import (
	"context"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/mdlayher/packet"
)

// A balancer owns its VIPs on eth0, resolves its backends and reacts to
// events. The events are handed to another goroutine, because OnEvent must
// not block the Speaker.
func ExampleListen() {
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	events := make(chan arp.Event, 64)
	s, err := arp.Listen(ifi, &arp.Config{
		AnnounceInterval: 30 * time.Second, // below this segment's switch ageing
		OnEvent: func(e arp.Event) {
			select {
			case events <- e:
			default: // the consumer is stuck; the next refresh repeats changes
			}
		},
		Logger: slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	s.SetVIPs([]netip.Addr{netip.MustParseAddr("192.0.2.100")})
	s.SetBackends([]arp.Backend{
		{Addr: netip.MustParseAddr("192.0.2.20")},                                                // resolved by ARP
		{Addr: netip.MustParseAddr("192.0.2.21"), MAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x21}}, // static
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		for e := range events {
			switch e.Kind {
			case arp.Resolved, arp.MACChanged:
				log.Printf("forward %s to %s", e.Addr, e.MAC) // e.g. Balancer.SetBackendMAC
			case arp.Unresolved:
				log.Printf("no new flows to %s", e.Addr)
			case arp.Conflict:
				log.Printf("VIP %s stolen by %s (backend %s): check its arp_ignore", e.Addr, e.MAC, e.Backend)
			}
		}
	}()
	if err := s.Run(ctx); err != nil {
		log.Print(err)
	}
}

// New takes any socket carrying Ethernet frames, for example a packet socket
// the caller opened itself (with its own BPF filter or options).
func ExampleNew() {
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	const etherTypeARP = 0x0806
	conn, err := packet.Listen(ifi, packet.Raw, etherTypeARP, nil)
	if err != nil {
		log.Fatal(err) // not Linux, or no CAP_NET_RAW
	}
	s, err := arp.New(conn, &arp.Config{HardwareAddr: ifi.HardwareAddr, IP: netip.MustParseAddr("192.0.2.2")})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // closes conn
	s.SetVIPs([]netip.Addr{netip.MustParseAddr("192.0.2.100")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Run(ctx)
}

// Stats counts drops by reason, so a flood or a misconfigured host shows up
// without per-packet logging.
func ExampleSpeaker_Stats() {
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	s, err := arp.Listen(ifi, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	// ... SetVIPs, Run ...
	st := s.Stats()
	for reason, n := range st.Drops {
		log.Printf("dropped %d ARP packets: %s", n, reason)
	}
	log.Printf("answered %d requests, %d conflicts seen", st.Replies, st.Conflicts)
}

// IPv6 VIPs and backends are served through neighbour discovery on a second
// socket. Listen opens it itself; with New the caller passes it as
// Config.NDPConn (without it, IPv6 addresses are ignored).
func ExampleConfig_ipv6() {
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	const etherTypeARP, etherTypeIPv6 = 0x0806, 0x86dd
	arpConn, err := packet.Listen(ifi, packet.Raw, etherTypeARP, nil)
	if err != nil {
		log.Fatal(err)
	}
	ndConn, err := packet.Listen(ifi, packet.Raw, etherTypeIPv6, nil)
	if err != nil {
		log.Fatal(err)
	}
	s, err := arp.New(arpConn, &arp.Config{
		HardwareAddr: ifi.HardwareAddr,
		IP6:          netip.MustParseAddr("fe80::2"), // source of our solicitations
		NDPConn:      ndConn,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // closes both sockets
	s.SetVIPs([]netip.Addr{netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")})
	s.SetBackends([]arp.Backend{{Addr: netip.MustParseAddr("2001:db8::20")}}) // resolved by neighbour discovery
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Run(ctx)
}

// On a trunk carrying several VLANs, each VIP and backend names its VLAN: the
// same address on two VLANs is answered, announced and resolved separately,
// with frames tagged for each.
func ExampleSpeaker_SetVLANVIPs() {
	ifi, err := net.InterfaceByName("trunk0")
	if err != nil {
		log.Fatal(err)
	}
	s, err := arp.Listen(ifi, &arp.Config{
		OnEvent: func(e arp.Event) {
			if e.Kind == arp.Conflict {
				log.Printf("VIP %s claimed by %s on VLAN %d", e.Addr, e.MAC, e.VLAN)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	vip := netip.MustParseAddr("192.0.2.100")
	s.SetVLANVIPs([]arp.VIP{{Addr: vip, VLAN: 10}, {Addr: vip, VLAN: 20}})
	s.SetBackends([]arp.Backend{
		{Addr: netip.MustParseAddr("192.0.2.21"), VLAN: 10},
		{Addr: netip.MustParseAddr("192.0.2.21"), VLAN: 20}, // another host
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		log.Print(err)
	}
}
