package bgp_test

import (
	"context"
	"log"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/bgp"
	"github.com/dsrlb/dsrlb/dsr"
)

// A balancer announces its VIPs to a router while their services have
// enough healthy backends, and withdraws them first on shutdown.
func Example() {
	speaker, err := bgp.New(&bgp.Config{
		RouterID: netip.MustParseAddr("192.0.2.10"),
		LocalAS:  65001,
		Peers: []bgp.Peer{{
			Addr:            netip.MustParseAddr("192.0.2.1"),
			AS:              65000,
			GracefulRestart: &bgp.GracefulRestart{RestartTime: 120 * time.Second},
			BFD:             &bgp.BFD{}, // the router must run BFD too
		}},
		OnEvent: func(e bgp.Event) { log.Print(e) },
	})
	if err != nil {
		log.Fatal(err)
	}
	var announcer *bgp.Announcer
	b, err := dsr.New(&dsr.Config{OnEvent: func(e dsr.Event) { announcer.HandleEvent(e) }})
	if err != nil {
		log.Fatal(err)
	}
	announcer, err = bgp.NewAnnouncer(b, speaker, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go speaker.Run(ctx)
	go announcer.Run(ctx)
	// ... add services, serve traffic ...
	// On SIGTERM: withdraw first, then drain, then stop.
	_ = announcer.WithdrawAll()
}
