package arp

import "golang.org/x/net/bpf"

// ndFilter is the classic BPF program for the neighbour discovery socket:
// it passes only Ethernet frames carrying IPv6, untagged or behind one
// 802.1Q tag, whose next header is ICMPv6, whose hop limit is 255 and whose
// ICMPv6 type is Neighbor Solicitation (135) or Advertisement (136).
// Everything else the segment carries over IPv6 (the load-balanced traffic
// itself) stays in the kernel instead of being copied to us. Offsets assume
// no extension headers, which neighbour discovery does not use. Linux
// strips a received frame's tag before the filter runs (it comes back
// through PACKET_AUXDATA, see vlanConn), so a tag is usually not in the
// frame the filter sees; X holds the tag's length (0 or 4) for the frames
// where it is.
var ndFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 12, Size: 2},                                // EtherType or TPID
	bpf.LoadConstant{Dst: bpf.RegX, Val: 0},                           // no tag in the frame
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: tpidVLAN, SkipTrue: 2},    // untagged
	bpf.LoadConstant{Dst: bpf.RegX, Val: 4},                           // one tag
	bpf.LoadAbsolute{Off: 16, Size: 2},                                // EtherType behind it
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x86dd, SkipTrue: 7},      // not IPv6
	bpf.LoadIndirect{Off: ethHeaderLen + 6, Size: 1},                  // next header
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 5}, // not ICMPv6
	bpf.LoadIndirect{Off: ethHeaderLen + 7, Size: 1},                  // hop limit
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: ndHopLimit, SkipTrue: 3},  // routed: not ND
	bpf.LoadIndirect{Off: ethHeaderLen + ipv6HeaderLen, Size: 1},      // ICMPv6 type
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpTypeNS, SkipTrue: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpTypeNA, SkipTrue: 1},
	bpf.RetConstant{Val: 0},
	bpf.RetConstant{Val: 1 << 16}, // whole frame
}

// assembledNDFilter returns ndFilter assembled for SO_ATTACH_FILTER.
func assembledNDFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble(ndFilter)
}
