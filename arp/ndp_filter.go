package arp

import "golang.org/x/net/bpf"

// ndFilter is the classic BPF program for the neighbour discovery socket:
// it passes only untagged Ethernet frames carrying IPv6 whose next header is
// ICMPv6, whose hop limit is 255 and whose ICMPv6 type is Neighbor
// Solicitation (135) or Advertisement (136). Everything else the segment
// carries over IPv6 (the load-balanced traffic itself) stays in the kernel
// instead of being copied to us. Offsets assume no extension headers, which
// neighbour discovery does not use. VLAN tags do not reach a socket bound
// to one interface on Linux: the kernel strips them (or the frame goes to
// the VLAN interface).
var ndFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 12, Size: 2},                                // EtherType
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x86dd, SkipTrue: 7},      // not IPv6
	bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 1},                  // next header
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 5}, // not ICMPv6
	bpf.LoadAbsolute{Off: ethHeaderLen + 7, Size: 1},                  // hop limit
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: ndHopLimit, SkipTrue: 3},  // routed: not ND
	bpf.LoadAbsolute{Off: ethHeaderLen + ipv6HeaderLen, Size: 1},      // ICMPv6 type
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpTypeNS, SkipTrue: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpTypeNA, SkipTrue: 1},
	bpf.RetConstant{Val: 0},
	bpf.RetConstant{Val: 1 << 16}, // whole frame
}

// assembledNDFilter returns ndFilter assembled for SO_ATTACH_FILTER.
func assembledNDFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble(ndFilter)
}
