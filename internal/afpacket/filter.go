package afpacket

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// MaxFilterInstructions is the kernel's limit on the length of a classic BPF
// program (BPF_MAXINSNS). VIPFilter refuses to build longer programs because
// the kernel would reject them at attach time with a less helpful error.
//
// A filter costs a fixed overhead of about 30 instructions, plus 2 per IPv4
// VIP and 9 per IPv6 VIP, so it holds roughly 2000 IPv4 VIPs or 450 IPv6 VIPs.
const MaxFilterInstructions = 4096

// Snaplen is the number of bytes an accepting filter returns: more than any
// GSO/GRO super-frame, so accepted frames are never cut by the filter.
const Snaplen = 0x40000

// ErrFilterTooLarge is returned by VIPFilter when the VIP set needs more than
// MaxFilterInstructions instructions.
var ErrFilterTooLarge = errors.New("afpacket: filter exceeds the classic BPF limit of 4096 instructions")

const (
	etherTypeVLAN = 0x8100
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	offEtherType = 12
	offIPv4Dst   = 14 + 16
	offIPv6Next  = 14 + 6
	offIPv6Dst   = 14 + 24
	offICMPv6    = 14 + 40

	protoICMPv6           = 58
	icmpv6NeighborSolicit = 135
)

// VIPFilter builds a classic BPF program for a packet socket that keeps only
// the traffic a DSR balancer must see, so everything else is dropped in the
// kernel instead of being copied to userspace:
//
//   - ARP (VIP ownership, backend MAC resolution);
//   - IPv4 and IPv6 packets whose destination is one of vips;
//   - ICMPv6 neighbour solicitations to a solicited-node multicast address
//     (ff02::1:ff00:0/104), for neighbour discovery of IPv6 VIPs.
//
// Each is accepted untagged or behind one 802.1Q tag. Note that on ingress
// Linux usually strips the outermost tag before the filter runs, so such
// frames match as untagged. Accepted frames are returned whole (Snaplen).
// An empty vips accepts only ARP and neighbour solicitations.
//
// IPv4-mapped IPv6 addresses are treated as IPv4; duplicates are ignored. An
// invalid or zoned address is an error, and so is a VIP set that does not fit
// MaxFilterInstructions (ErrFilterTooLarge).
func VIPFilter(vips []netip.Addr) ([]bpf.Instruction, error) {
	var v4, v6 []netip.Addr
	seen := make(map[netip.Addr]struct{}, len(vips))
	for _, a := range vips {
		if !a.IsValid() {
			return nil, errors.New("afpacket: invalid VIP address")
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("afpacket: VIP %s has a zone", a)
		}
		a = a.Unmap()
		if _, dup := seen[a]; dup {
			continue
		}
		seen[a] = struct{}{}
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}

	const fixed = 30
	if n := fixed + 2*len(v4) + 9*len(v6); n > MaxFilterInstructions {
		return nil, fmt.Errorf("%w: %d IPv4 and %d IPv6 VIPs need about %d", ErrFilterTooLarge, len(v4), len(v6), n)
	}

	accept := bpf.RetConstant{Val: Snaplen}
	reject := bpf.RetConstant{Val: 0}

	// X holds the offset added by an 802.1Q tag (0 or 4); every later load
	// is relative to it, so one copy of the matching code serves both cases.
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: offEtherType, Size: 2},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeVLAN, SkipTrue: 2},
		/* 2 */ bpf.LoadConstant{Dst: bpf.RegX, Val: 0},
		/* 3 */ bpf.Jump{Skip: 1},
		/* 4 */ bpf.LoadConstant{Dst: bpf.RegX, Val: 4},
		/* 5 */ bpf.LoadIndirect{Off: offEtherType, Size: 2},
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeARP, SkipTrue: 1},
		/* 7 */ accept,
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeIPv4, SkipTrue: 3},
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: 1},
		/* 10 */ bpf.Jump{}, // to the IPv6 block, patched below
		/* 11 */ reject,
	}
	// Conditional jumps reach at most 255 instructions ahead, so the IPv6
	// block, which follows all IPv4 VIPs, is reached by a long jump.
	const ipv6JumpIdx = 10

	// IPv4 block.
	prog = append(prog, bpf.LoadIndirect{Off: offIPv4Dst, Size: 4})
	for _, a := range v4 {
		b := a.As4()
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: be32(b[:]), SkipTrue: 1},
			accept,
		)
	}
	prog = append(prog, reject)

	// IPv6 block.
	prog[ipv6JumpIdx] = bpf.Jump{Skip: uint32(len(prog) - ipv6JumpIdx - 1)}
	for _, a := range v6 {
		b := a.As16()
		prog = append(prog,
			bpf.LoadIndirect{Off: offIPv6Dst, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: be32(b[0:4]), SkipTrue: 7},
			bpf.LoadIndirect{Off: offIPv6Dst + 4, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: be32(b[4:8]), SkipTrue: 5},
			bpf.LoadIndirect{Off: offIPv6Dst + 8, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: be32(b[8:12]), SkipTrue: 3},
			bpf.LoadIndirect{Off: offIPv6Dst + 12, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: be32(b[12:16]), SkipTrue: 1},
			accept,
		)
	}
	// Neighbour solicitation to ff02::1:ffXX:XXXX (no extension headers:
	// the kernel never sends NS with any, and RFC 4861 receivers may drop
	// them).
	prog = append(prog,
		bpf.LoadIndirect{Off: offIPv6Next, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 12},
		bpf.LoadIndirect{Off: offICMPv6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpv6NeighborSolicit, SkipTrue: 10},
		bpf.LoadIndirect{Off: offIPv6Dst, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0xff020000, SkipTrue: 8},
		bpf.LoadIndirect{Off: offIPv6Dst + 4, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 6},
		bpf.LoadIndirect{Off: offIPv6Dst + 8, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 1, SkipTrue: 4},
		bpf.LoadIndirect{Off: offIPv6Dst + 12, Size: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xff000000},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0xff000000, SkipTrue: 1},
		accept,
		reject,
	)
	if len(prog) > MaxFilterInstructions {
		return nil, fmt.Errorf("%w: %d instructions", ErrFilterTooLarge, len(prog))
	}
	return prog, nil
}

// VIPFilterRaw is VIPFilter assembled for attaching to a socket.
func VIPFilterRaw(vips []netip.Addr) ([]bpf.RawInstruction, error) {
	prog, err := VIPFilter(vips)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("afpacket: assembling filter: %w", err)
	}
	return raw, nil
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
