package vrrp_test

import (
	"context"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/vrrp"
)

// A balancer that owns its VIPs only while it is the VRRP master.
func Example() {
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Print(err)
		return
	}
	speaker, err := arp.Listen(ifi, nil)
	if err != nil {
		log.Print(err)
		return
	}
	gate := vrrp.NewGate(speaker)
	fwd, err := dsr.ListenPacket("eth0", nil)
	if err != nil {
		log.Print(err)
		return
	}
	// The same Seed on every balancer of the group: the backup picks the
	// same backends for the flows it takes over.
	bal, err := dsr.New(&dsr.Config{ARP: gate, Seed: 42})
	if err != nil {
		log.Print(err)
		return
	}
	router, err := vrrp.New(&vrrp.Config{
		Interface: "eth0",
		VRID:      51,
		Priority:  150,
		Interval:  100 * time.Millisecond,
		VIPs:      []netip.Addr{netip.MustParseAddr("192.0.2.100")},
		OnEvent:   gate.HandleEvent,
	})
	if err != nil {
		log.Print(err)
		return
	}
	ctx := context.Background()
	go func() { _ = router.Run(ctx) }()
	go func() { _ = bal.Run(ctx) }()
	_ = bal.Serve(ctx, fwd)
}
