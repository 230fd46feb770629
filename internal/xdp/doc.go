// Package xdp holds the kernel half of the XDP data plane: a BPF program
// (bpf/xdp.c, compiled by bpf2go into the committed xdp_bpfel.o and its Go
// bindings; `go generate ./internal/xdp` or scripts/bpf-generate.sh
// regenerate them, clang is needed for nothing else) that runs the plan the
// Go control plane writes into its maps, and a typed API to load it
// (Load), fill its maps (SetParams, SetNow, SetService, SetBackend), attach
// it (Attach, native mode only), read its counters and flows, and run it on
// a frame without a network (Run, through BPF_PROG_TEST_RUN).
// bpf/bench.c holds benchmark-only programs that run the same code in a
// form BPF_PROG_TEST_RUN can repeat; its object (xdpbench_bpfel_test.o)
// is embedded only in the package's test binary (BenchmarkRun,
// docs/PERFORMANCE.md).
//
// # What the program handles
//
// It decides exactly as dsr's Go workers do, for:
//
//   - Ethernet frames to the balancer's MAC, untagged or with one 802.1Q
//     or 802.1ad tag (kept as it is);
//   - IPv4 (any header length, not fragmented) and IPv6 whose next header
//     is TCP, UDP or ICMPv6 directly;
//   - TCP and UDP to a service (exact port, then the VIP's all-ports
//     service) whose scheduler is a lookup table on the flow hash (mh and
//     hrw: scheduler.FlowTable): a flow-table hit keeps the flow's backend
//     while it is usable and of the same generation, else reschedules; a
//     miss picks table[reduce(hash, M)] with flowtable's flow hash and the
//     configured seed, and inserts the flow (a lone RST creates none). Flow
//     states, the bare-SYN rules (a retransmit on an embryonic flow is
//     counted; on a closing flow it opens a new connection with the
//     current pick) and expiry (by a tick the control plane writes) are
//     flowtable's;
//   - ICMP errors (ICMPv4 destination unreachable, time exceeded, parameter
//     problem; ICMPv6 types 1-4) quoting a TCP or UDP packet from a VIP:
//     sent to the backend of the quoted flow.
//
// Forwarding rewrites the destination MAC to the backend's and the source
// MAC to ours and returns XDP_TX; nothing else in the frame changes, but
// for a partial checksum. A table entry naming no usable backend drops the
// frame (DropNoBackend), as the Go path does.
//
// # Partial checksums
//
// A sender whose device offloads checksums (veth, by default) hands over
// TCP and UDP packets as CHECKSUM_PARTIAL: the checksum field holds only
// the pseudo-header sum (folded, not complemented; a packet socket sees
// them as TP_STATUS_CSUMNOTREADY), for the device to finish. veth runs XDP
// on such frames and XDP_TX sends them as they are, so the program finishes
// them: a TCP or UDP frame it forwards whose checksum field equals the
// pseudo-header sum leaves with the full checksum, computed as
// frame.CompleteChecksum does (bpf_csum_diff over 512-byte chunks, up to
// MaxChecksumLen bytes of segment; 0 is stored as 0xffff). A frame with a
// full checksum pays one pseudo-header sum and a compare (no measurable
// cost per frame); completing a 1500-byte packet adds about 120-150 ns
// (BenchmarkRun, hit vs hit-partial1500). A correct checksum that happens
// to equal the pseudo-header sum (one frame in 2^16) is rewritten to the
// value it had; a UDP checksum of 0 stays 0. A partial segment longer
// than MaxChecksumLen is passed (csum_partial) before it touches the flow
// table. Counters.ChecksumsCompleted counts the completed frames. Real NIC
// drivers hand XDP full checksums, so there the check never matches.
//
// # veth
//
// veth delivers XDP_TX frames only to a peer that runs NAPI (one with an
// XDP program or GRO on); to any other it drops them, counted as TX drops
// of the interface. Attach therefore puts a program that passes everything
// on the peer of a veth when the peer runs none (in the peer's namespace,
// found among the named ones), and its link removes both.
//
// # Pinning
//
// With Config.PinPath (a directory in a mounted bpffs) Load pins the state
// maps (flows, backends, services, vips, tables, config and the control
// plane's slot records) and Attach the links; a later Load on the same path
// takes over every pinned map whose layout still matches and replaces the
// others (Restore reports which, and FlowsLost when the flow table or the
// slots its entries name went), and its Attach replaces the running
// program through the pinned link (link update: never detached). Slot
// records remember, per backend slot, the backend it holds (SlotOwner) and
// the last ID it held, so that a restarted control plane gives each
// backend its pinned ID back and every other one a later generation. The
// program's clock continues from the pinned one (SetNow). Counters are not
// pinned. Remove detaches and unpins.
//
// # What it passes
//
// Everything else goes up to the Go path with XDP_PASS, unchanged, counted
// by PassReason: another destination MAC (not_ours), addresses that are not
// a VIP (not_vip), a VIP without the service (no_service), a service whose
// scheduler the program does not run (not_capable; such a service's flows
// are the Go path's, and an XDP flow entry met on it is deleted so that
// they stay so), IPv4 fragments (fragment), IPv6 extension headers
// (ext_header), anything the Go parser counts as malformed (malformed), ICMP
// errors without a live flow (icmp_no_flow), partial checksums too long to
// complete (csum_partial), and the rest — ARP, other
// EtherTypes, a second VLAN tag, other protocols, ICMP queries, frames from
// our own MAC (other).
//
// # Differences from the Go flow table
//
// The flow table is a BPF LRU hash: when full, the least recently used
// flow gives way (the Go table evicts only embryonic or expired flows and
// otherwise forwards without state). Two CPUs inserting the same new flow
// at once both write it; with a table scheduler both pick the same
// backend. Expired entries stay until a packet replaces them, LRU evicts
// them or the control plane deletes them (Flows, DeleteFlow).
//
// Counters live in per-CPU arrays, so no CPU writes a line another one
// counts in; Counters sums them.
package xdp
