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
//     (/32, /128), raises the effective arp_ignore and arp_announce of the
//     interfaces facing the segment, relaxes strict rp_filter, and records
//     exactly what it changed in a State.
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
// IPv6 VIPs are put on the interface as /128, but the neighbour-discovery
// counterparts of the ARP checks are not implemented; Check says so with an
// Info finding. Everything needs Linux and CAP_NET_ADMIN (CAP_NET_RAW for the
// ARP probe); on other platforms the functions return ErrUnsupported.
package realserver
