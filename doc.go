// Package dsrlb is an embeddable L2 Direct Server Return (DSR) load balancer
// written in pure Go.
//
// In L2 DSR only the requests pass through the balancer. It owns a service
// address (the VIP) on an Ethernet segment, picks a real server for each
// flow, and forwards the client's frame to that server by rewriting only the
// Ethernet addresses: the IP packet, still addressed to the VIP, is not
// touched. Each server holds the VIP on a loopback interface, accepts the
// packet and answers the client directly, so the (usually much larger)
// responses never cross the balancer.
//
//	client ──request──► balancer ──same IP packet, new dst MAC──► server
//	   ▲                                                            │
//	   └──────────────────── response, from the VIP ────────────────┘
//
// This root package holds no code. The pieces are:
//
//   - [github.com/dsrlb/dsrlb/dsr]: the Balancer (services, backends, flow
//     affinity, statistics), the Forwarder interface and its AF_PACKET
//     implementation for Linux.
//   - [github.com/dsrlb/dsrlb/dsr/dsrtest]: an in-memory Ethernet segment
//     that implements Forwarder and a builder of client frames, to test code
//     embedding a Balancer without root.
//   - [github.com/dsrlb/dsrlb/dsr/realserver]: prepare, check and undo the
//     server side of DSR for IPv4 and IPv6 VIPs (VIP on loopback, ARP
//     sysctls, no duplicate address detection or proxy NDP for the VIP),
//     naming every misconfiguration with its fix.
//   - [github.com/dsrlb/dsrlb/scheduler]: the Scheduler interface, the
//     built-in schedulers named as in IPVS (rr, wrr, lc, wlc, sh, mh),
//     rendezvous hashing and a registry for plugins;
//     scheduler/schedulertest is a conformance suite.
//   - [github.com/dsrlb/dsrlb/health]: health checkers (TCP, HTTP(S), UDP,
//     DNS, ICMP and the DSR-path check) and the Monitor that runs them.
//   - [github.com/dsrlb/dsrlb/arp]: VIP ownership on the segment: ARP
//     answers, announcements, backend MAC resolution, conflict detection.
//   - [github.com/dsrlb/dsrlb/vrrp]: active/standby balancers with VRRPv3,
//     wire-compatible with keepalived.
//   - [github.com/dsrlb/dsrlb/bgp]: VIP announcement to routers by BGP (an
//     embedded GoBGP speaker with graceful restart and BFD) while the
//     services have enough healthy backends. Only programs that import it
//     link GoBGP in.
//
// A minimal embedding on Linux (see the README for one with ARP ownership
// and health checks):
//
//	b, _ := dsr.New(nil)
//	_ = b.AddService(dsr.Service{
//		VIP: netip.MustParseAddr("192.0.2.100"), Protocol: dsr.TCP, Port: 80,
//		Backends: []dsr.Backend{{Addr: netip.MustParseAddr("192.0.2.21"), MAC: mac1}},
//	})
//	fwd, _ := dsr.ListenPacket("eth0", nil)
//	go b.Run(ctx)
//	_ = b.Serve(ctx, fwd)
package dsrlb
