// Package netlab builds throw-away L2 Direct Server Return topologies out of
// Linux network namespaces, for tests, benchmarks and the demo program.
//
// A lab is one Ethernet segment (a Linux bridge in its own "switch"
// namespace) joining clients, one balancer host and N real servers, each in
// its own named namespace (dsrlb-<6 hex>-<role>, visible to
// "ip netns exec" for debugging). Servers are configured the way L2 DSR needs
// them: the VIPs on lo, arp_ignore=1 and arp_announce=2. Each server runs a
// child process (the current binary re-executed inside the namespace) that
// serves HTTP on the VIPs and its own address and echoes UDP on the VIPs, so a
// client can tell which server answered and whether the reply came from the
// VIP.
//
// Lab.AddExternal adds hosts off the segment ("x0", "x1"...), each on a
// point-to-point link of its own behind a lab host that routes for it, for
// topologies where clients reach the VIP through a router (ECMP in front of
// several balancers); Host.AddRoute gives the servers their way back.
//
// Lab.SetAccessVLAN and Lab.SetTrunkVLANs make the bridge VLAN-aware (access
// and trunk ports) for VLAN trunk tests; see vlan_linux.go for how, on
// kernels without the bridge's own VLAN filtering.
//
// Programs and test binaries that use netlab must call RunChildIfRequested
// first thing in main or TestMain, because that is where the child roles run.
//
// Namespaces belong to OS threads, not goroutines. netlab never switches the
// namespace of a caller's thread: every operation inside a namespace runs on a
// fresh goroutine locked to its own OS thread, which is discarded afterwards
// (Host.Do). Sockets keep the namespace they were created in, so connections
// returned by Host.DialContext can be used from any goroutine.
//
// Everything needs root (CAP_NET_ADMIN, CAP_NET_RAW) and Linux; elsewhere the
// constructors return ErrUnsupported.
package netlab
