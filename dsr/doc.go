// Package dsr is an L2 Direct Server Return load balancer: a Balancer reads
// frames addressed to its service addresses (VIPs), picks a backend per
// flow, rewrites only the Ethernet addresses and sends the frame back out of
// the interface it came in on. The IP packet is never touched, so the
// backend, which holds the VIP on its loopback, answers the client directly.
//
// # Using it
//
// New makes a Balancer; AddService, SetServices, SetBackends, DrainBackend
// and the other configuration methods change its services at any time, each
// change validated whole (a *ConfigError names the field, as in
// "services[0].backends[1].mac") and applied atomically. Serve forwards
// frames from one Forwarder — a PacketForwarder from ListenPacket on Linux,
// or the in-memory segment of package dsrtest in tests — and is called once
// per forwarding goroutine. Run runs the control loops (health checks,
// address resolution through Config.ARP, drains, slow start, flow expiry).
// Stats, OnEvent and Explain say what it does and why.
//
// # VLAN trunks
//
// Service.VLAN puts a service on a VLAN of a trunk interface: frames match
// only the services of their VLAN (untagged and priority-tagged frames are
// VLAN 0), keep their tag when forwarded, and the service's backends are
// resolved and health-checked on that VLAN. The same VIP and port may be
// one service per VLAN. Config.ARP must be a VLANNeighbours (an
// *arp.Speaker is) for services on VLANs.
//
// # How a frame flows
//
// Each Serve goroutine is a worker. It reads a batch, parses every frame
// without allocating, looks its flow up in the flow table (a hit keeps the
// flow on its backend; a miss asks the service's scheduler and inserts the
// flow), rewrites the MACs and writes the batch back. ICMP errors about a
// flow go to that flow's backend; fragments follow Config.Fragments.
// Frames that are not forwarded are counted by DropReason, never logged or
// returned one by one. No lock is shared between workers on this path.
//
// # How the forwarding state is made
//
// Workers read one immutable snapshot through an atomic pointer. The
// control plane never edits it: a compile step turns the configuration,
// the runtime state of every backend (health, drain, slow start), the MACs
// address resolution learned and the time into a plan — the next snapshot,
// each service's scheduler, and the events the change causes — and a small
// apply step swaps the snapshot in and delivers the events. Configuration
// changes, health results, resolved MACs and the slow-start clock all go
// through it, so a decision a worker makes is always one the compiled plan
// describes, and Explain answers from that same plan.
//
// The flow table survives every swap: changing backends, weights or the
// scheduler never moves an established flow, unless its backend is gone,
// down or unhealthy — then the flow is rescheduled on its next packet and
// counted. A new connection on the ports of a closed flow is a new flow,
// placed by the current plan.
//
// # L3 DSR
//
// A service or backend with Mode ModeIPIP or ModeGUE is reached through
// another network: the worker wraps the client's packet in an outer header
// from Service.TunnelSource to the backend's address (plus UDP and GUE for
// ModeGUE) and sends it to the next hop (Service.Gateway, or the backend),
// whose MAC the Neighbours component resolves. A packet too big once
// encapsulated is answered with ICMP fragmentation-needed or packet-too-big
// from the VIP (rate-limited, Config.TooBigRate); GSO super-frames are cut
// into segments. The XDP data plane does not take L3 services: their
// frames pass up to the Go path. See encap.go, pmtu.go and segment.go.
//
// # Files
//
// balancer.go holds the Balancer and New; services.go the configuration
// methods; compile.go and apply.go the control plane; state.go what it
// remembers between plans; snapshot.go what workers read; worker.go the
// per-frame decision; serve.go Serve; control.go Run and its loops;
// health.go and neighbours.go the links to package health and to the ARP
// and neighbour-discovery component; explain.go Explain; stats.go and
// events.go what the Balancer reports; forwarder.go and packet*.go the
// Forwarder interface and its packet-socket implementation.
package dsr
