// Package decap is the real server's half of L3 Direct Server Return: an
// XDP program, loaded by a pure Go loader, that strips the outer headers a
// dsrlb balancer puts around a client packet in ModeIPIP (IPv4 in IPv4,
// IPv6 in IPv6) and ModeGUE (IPv4 or IPv6 in UDP with a 4-byte GUE variant
// 0 header; variant 1, the bare inner IP header, is accepted too), so that
// the server's stack receives the client's packet to the VIP as in L2 DSR.
//
// It is what dsr/realserver installs where the kernel has no ipip,
// ip6_tunnel or fou module. It needs a kernel with XDP (4.18 or later for
// bpf_xdp_adjust_head in generic mode; native mode where the driver has
// it) and CAP_NET_ADMIN and CAP_BPF (or root). No BPF filesystem is
// needed: the program is attached through netlink, so it stays on the
// interface after the loading process exits, and Status finds it (and its
// counters) again from the interface.
//
// The program decapsulates only packets addressed to one of Config.Locals
// from one of Config.Balancers. A tunnel packet from any other source, one
// whose outer IPv4 header checksum is wrong, one truncated, fragmented or
// with an unknown GUE version or inner IP version is dropped and counted
// (per-CPU counters, summed by Status). Everything else (ordinary traffic,
// UDP to other ports, packets for other hosts) passes untouched. The outer
// UDP checksum is not verified; the inner packet's own transport checksum
// is, by the stack.
package decap
