// Package arp makes the load balancer the one owner of its VIPs on the
// Ethernet segment, and keeps the balancer's view of the backends' hardware
// addresses correct.
//
// In L2 Direct Server Return every real server holds the VIP too (on lo), so
// the only thing that sends client traffic to the balancer rather than to a
// server is who answers ARP for the VIP. A server that answers as well (Linux
// arp_ignore=0, or a second balancer) silently steals part of the traffic:
// the most common DSR outage, and one no packet counter on the balancer ever
// shows. A Speaker therefore does four jobs over one packet socket:
//
//   - Responder: it answers valid ARP requests for the VIPs it serves,
//     rate-limited per requester. The VIP set changes at runtime (SetVIPs).
//   - Announcer: it sends gratuitous ARP when a VIP starts being served (a
//     short burst), refreshes it periodically (below common switch and host
//     table ageing) and on explicit takeover, and stops when the VIP is
//     withdrawn.
//   - Resolver: it resolves backend IPv4 addresses to MACs with its own ARP
//     requests, accepts only replies to those requests, refreshes them, and
//     reports MAC changes and unreachable backends as events, so the
//     Balancer can update forwarding or stop giving a backend new flows.
//   - Conflict watch: it probes each VIP periodically and watches every ARP
//     packet on the segment; any other MAC claiming a VIP raises a Conflict
//     event naming the VIP, the MAC and, when the MAC is a known backend's,
//     that backend.
//
// ARP is IPv4 only; IPv6 VIPs need neighbour discovery and are ignored here.
//
// The socket is injected as a net.PacketConn carrying whole Ethernet frames
// (New), so the package is testable without privileges; Listen opens the
// production AF_PACKET socket on Linux. Packets are parsed and validated
// without allocation before any decision, because every host on the segment
// can send us ARP at line rate; building outgoing packets uses
// github.com/mdlayher/arp and github.com/mdlayher/ethernet.
package arp
