// Package realserver configures a Linux real server for L2 Direct Server
// Return and checks that it is configured correctly (the "doctor").
//
// In L2 DSR the balancer rewrites only the destination MAC of a request, so
// the frame reaches the server still addressed to the VIP. The server's
// kernel accepts it only if the VIP is a local address, and the server must
// never answer ARP for the VIP or announce it, otherwise it steals the VIP
// from the balancer. A server that gets either half wrong is a silent black
// hole: the balancer never sees the replies, so nothing on the balancer can
// tell. This package does the setup and names every misconfiguration it can
// observe from the server:
//
//   - Prepare puts each VIP on lo (or a dummy interface) as a host route
//     (/32, /128). For IPv4 VIPs it raises the effective arp_ignore and
//     arp_announce of the interfaces facing the segment and relaxes strict
//     rp_filter. For IPv6 VIPs it adds the VIP without duplicate address
//     detection (IFA_F_NODAD: usable at once, never "dadfailed" although
//     the balancer holds the same address), enables IPv6 where it is
//     disabled on the VIP or segment interfaces, turns proxy_ndp off on the
//     segment interfaces and deletes proxy neighbour entries for the VIPs.
//     It records exactly what it changed in a State.
//   - Undo reverts exactly what a State records, and nothing else; the
//     State is JSON so that Undo can run in another process.
//   - Check returns a Report of Findings, each with a severity, a stable
//     code, and the exact command a human would type to fix it.
//
// The kernel applies the maximum of net.ipv4.conf.all.X and
// net.ipv4.conf.IFACE.X for arp_ignore, arp_announce and rp_filter, so both
// are read and the effective value is judged per segment interface.
//
// # Namespaces
//
// Every function acts on the network namespace of the calling OS thread:
// addresses and links through netlink sockets opened on that thread, sysctls
// through /proc/sys/net (which follows the opening thread), and listening
// sockets through /proc/thread-self/net (not /proc/net, which is the
// namespace of the thread-group leader). A caller that moved a thread into
// another namespace must keep the goroutine locked to it
// (runtime.LockOSThread) for the whole call. The package starts no
// goroutines of its own that touch the namespace.
//
// # IPv6
//
// Neighbour discovery plays the part of ARP. Linux answers a neighbour
// solicitation only for an address on the receiving interface, an anycast
// address joined there, or an address with a proxy entry (with proxy_ndp
// and forwarding on), so an IPv6 VIP on lo needs no counterpart of
// arp_ignore; what steals the VIP is the VIP on a segment interface or
// proxy NDP for it, and Check names both. Loopback and dummy interfaces
// never run duplicate address detection, so a tentative or dadfailed VIP
// is found only on a VIP interface that does (and fixed by re-adding it
// with nodad). Check also sends a neighbour solicitation for each IPv6 VIP
// from the server's link-local address on each segment interface and names
// every MAC that answers, as the ARP probe does for IPv4. A kernel without
// IPv6 is an Error finding for every IPv6 VIP: a family that cannot be
// checked never passes silently. IPv6 forwarding is left alone: it matters
// only together with proxy NDP, which Prepare turns off.
//
// # L3 DSR and Windows
//
// With Config.Mode ModeIPIP or ModeGUE the balancer is in another network
// and encapsulates; Prepare also sets up decapsulation (kernel tunnel
// devices where the modules exist, else the XDP program of internal/decap,
// attached through netlink so it outlives the process) and lowers the MSS
// advertised on the gateway routes; Check reports missing decapsulation,
// its counters and drops, and a too-large MSS; Undo reverts both. See
// l3.go. WindowsScript prints the PowerShell of a Windows L2 DSR server;
// Windows cannot do L3 DSR.
//
// Everything needs Linux and CAP_NET_ADMIN (CAP_NET_RAW for the probes); on
// other platforms the functions return ErrUnsupported.
package realserver
