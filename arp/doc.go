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
// IPv6 VIPs and backends get the same four jobs through neighbour discovery
// (RFC 4861) on a second socket: Neighbor Solicitations for a VIP are
// answered with solicited, overriding advertisements; unsolicited
// advertisements to all nodes announce a VIP; solicitations probe VIPs and
// resolve backends; and any other MAC advertising a VIP is a Conflict. The
// messages are validated as strictly as RFC 4861 section 7.1 asks (hop
// limit 255, checksum, code, lengths, options), and drops are counted by
// reason like ARP's.
//
// On a trunk carrying several VLANs, every VIP and backend names its VLAN
// (SetVLANVIPs, Backend.VLAN): each VLAN is a network of its own, served
// with frames tagged for it, and events say which VLAN they are on. See
// vlan.go.
//
// The sockets are injected as net.PacketConns carrying whole Ethernet frames
// (New, Config.NDPConn), so the package is testable without privileges;
// Listen opens the production AF_PACKET sockets on Linux. Packets are parsed and validated
// without allocation before any decision, because every host on the segment
// can send us ARP at line rate; building outgoing packets uses
// github.com/mdlayher/arp and github.com/mdlayher/ethernet.
package arp
