//go:build linux

package bench

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// XDP return codes.
const (
	xdpDrop = 1
	xdpPass = 2
	xdpTX   = 3
)

// counterMap is a one-slot per-CPU array of packet counters. Per-CPU slots
// mean the programs count without atomics, so counting costs next to nothing
// on the paths being measured.
func counterMap(name string) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       name,
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: create counter map %s: %w", name, err)
	}
	return m, nil
}

// readCounter sums a counterMap over all CPUs.
func readCounter(m *ebpf.Map) (uint64, error) {
	var vals []uint64
	if err := m.Lookup(uint32(0), &vals); err != nil {
		return 0, fmt.Errorf("bench: read counter: %w", err)
	}
	var sum uint64
	for _, v := range vals {
		sum += v
	}
	return sum, nil
}

// countInsns increments slot 0 of the per-CPU counter map m. It clobbers
// R0-R5; the packet pointers must live in R6-R9.
func countInsns(m *ebpf.Map, skip string) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, skip),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	}
}

// loadPacket puts data in R7 and data_end in R8 (R6 keeps the context) and
// returns with ret unless the packet has at least n bytes.
func loadPacket(n int32, ret int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, 0, asm.Word),
		asm.LoadMem(asm.R8, asm.R6, 4, asm.Word),
		asm.Mov.Reg(asm.R0, asm.R7),
		asm.Add.Imm(asm.R0, n),
		asm.JGT.Reg(asm.R0, asm.R8, "short"),
		asm.Ja.Label("long"),
		asm.Mov.Imm(asm.R0, ret).WithSymbol("short"),
		asm.Return(),
		asm.Mov.Reg(asm.R0, asm.R0).WithSymbol("long"), // no-op jump target
	}
}

func loadXDP(name string, insns asm.Instructions) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: insns,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: load XDP program %s: %w", name, err)
	}
	return p, nil
}

// paceMap holds the generator's state: one genState.
func paceMap() (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "dsrbench_pace",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  uint32(genStateSize),
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: create pace map: %w", err)
	}
	return m, nil
}

// genHeaderLen is how much of the template the generator restores before
// every transmission: the Ethernet, IPv4 and UDP headers, rounded up to
// whole 8-byte words.
const genHeaderLen = (minGenFrame + 7) &^ 7

// genStateSize is the size of genState in the map.
const genStateSize = 24 + genHeaderLen

// genState is the generator's token schedule, in CLOCK_MONOTONIC
// nanoseconds, and the template's headers. Interval zero means unpaced.
type genState struct {
	Interval uint64 // between two transmitted frames
	Next     uint64 // earliest time of the next transmission
	Window   uint64 // how far behind schedule the generator may catch up
	// Header is the start of the template frame (its first minGenFrame
	// bytes are used), written back into every frame before it is sent.
	Header [genHeaderLen]byte
}

// generatorProgram is run with BPF_F_TEST_XDP_LIVE_FRAMES on the template
// frame built by buildFrame. Each run restores the template's headers,
// turns the frame into one of flows flows (flows is a power of two, at
// most maxFlows) and transmits it:
//
//   - the headers (Ethernet, IPv4, UDP) are copied from the state map on
//     every run: live-frame mode recycles its pages with whatever a
//     receiver wrote into them, and a candidate that works in place on the
//     same memory (the kernel's IP forwarding rewrites the MAC addresses,
//     the TTL and the checksum; the XDP reflector swaps the MACs) would
//     otherwise change the template (frames to a foreign MAC address, the
//     TTL running out after 64 trips);
//   - flow bits 0-6 pick the source address 198.51.100.1-128 and bits 7-14
//     the low byte of the UDP source port;
//   - the IPv4 identification's low byte goes down by what the source
//     address's low byte goes up, so the one's-complement sum, and with it
//     the template's header checksum, stays right without recomputing it;
//   - the UDP checksum is zero (none), which IPv4 allows.
//
// When the state holds a non-zero interval, a frame whose time has not
// come yet is dropped instead (cheaply, before it reaches any device): the
// kernel loop runs flat out and the schedule lets through an evenly spaced
// stream, with no bursts beyond Window. A sleeping user-space pacer could
// not do that: its timer granularity here is about a millisecond, which
// would mean bursts larger than the veth ring. Every transmitted frame is
// counted in sent.
func generatorProgram(flows int, sent, state *ebpf.Map) (*ebpf.Program, error) {
	if flows <= 0 || flows > maxFlows || flows&(flows-1) != 0 {
		return nil, fmt.Errorf("bench: flows %d is not a power of two in 1..%d", flows, maxFlows)
	}
	insns := loadPacket(minGenFrame, xdpDrop)
	// R6 (the context) is not needed any more: it keeps the state.
	insns = append(insns,
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, state.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "early"),
		asm.Mov.Reg(asm.R6, asm.R0),
	)
	// Restore the headers: whole words, then the rest.
	off := int16(0)
	for ; off+8 <= minGenFrame; off += 8 {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R6, 24+off, asm.DWord),
			asm.StoreMem(asm.R7, off, asm.R1, asm.DWord))
	}
	for ; off+2 <= minGenFrame; off += 2 {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R6, 24+off, asm.Half),
			asm.StoreMem(asm.R7, off, asm.R1, asm.Half))
	}
	insns = append(insns,
		asm.FnGetPrandomU32.Call(),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.And.Imm(asm.R9, int32(flows-1)),
		// source address low byte and identification compensation
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.And.Imm(asm.R1, 0x7f),
		asm.Mov.Reg(asm.R2, asm.R1),
		asm.Add.Imm(asm.R2, 1),
		asm.StoreMem(asm.R7, offIPSrc+3, asm.R2, asm.Byte),
		asm.Mov.Imm(asm.R3, 0xff),
		asm.Sub.Reg(asm.R3, asm.R1),
		asm.StoreMem(asm.R7, offIPID+1, asm.R3, asm.Byte),
		// source port low byte
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.RSh.Imm(asm.R1, 7),
		asm.And.Imm(asm.R1, 0xff),
		asm.StoreMem(asm.R7, offUDPSport+1, asm.R1, asm.Byte),
		// pacing
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord), // interval
		asm.JEq.Imm(asm.R1, 0, "count"),
		asm.Mov.Reg(asm.R9, asm.R1),
		asm.FnKtimeGetNs.Call(),
		asm.LoadMem(asm.R2, asm.R6, 8, asm.DWord), // next
		asm.JGT.Reg(asm.R2, asm.R0, "early"),
		asm.Add.Reg(asm.R2, asm.R9),
		asm.LoadMem(asm.R3, asm.R6, 16, asm.DWord), // window
		asm.Add.Reg(asm.R3, asm.R2),
		asm.JGE.Reg(asm.R3, asm.R0, "store"),
		asm.Mov.Reg(asm.R2, asm.R0), // too far behind: restart the schedule now
		asm.StoreMem(asm.R6, 8, asm.R2, asm.DWord).WithSymbol("store"),
	)
	count := countInsns(sent, "out")
	count[0] = count[0].WithSymbol("count")
	insns = append(insns, count...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, xdpTX).WithSymbol("out"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("early"),
		asm.Return(),
	)
	return loadXDP("dsrbench_gen", insns)
}

// reflectorProgram is the bare XDP baseline: it swaps the Ethernet
// addresses of every IPv4 frame and sends it back out (XDP_TX). Other
// frames go to the stack.
func reflectorProgram() (*ebpf.Program, error) {
	insns := loadPacket(14, xdpPass)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.R7, offEtherType, asm.Half),
		asm.JNE.Imm(asm.R1, 0x0008, "pass"), // 0x0800 in network order, loaded little-endian
		asm.LoadMem(asm.R1, asm.R7, 0, asm.Word),
		asm.LoadMem(asm.R2, asm.R7, 4, asm.Half),
		asm.LoadMem(asm.R3, asm.R7, 6, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, 10, asm.Half),
		asm.StoreMem(asm.R7, 0, asm.R3, asm.Word),
		asm.StoreMem(asm.R7, 4, asm.R4, asm.Half),
		asm.StoreMem(asm.R7, 6, asm.R1, asm.Word),
		asm.StoreMem(asm.R7, 10, asm.R2, asm.Half),
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	return loadXDP("dsrbench_refl", insns)
}

// sinkProgram counts and drops IPv4 frames to vip (given in network byte
// order as four bytes) and passes everything else (ARP, for instance) to
// the stack. It is the delivery counter every candidate is judged by.
func sinkProgram(vip [4]byte, delivered *ebpf.Map) (*ebpf.Program, error) {
	// A 32-bit load on a little-endian machine sees the bytes reversed.
	le := int32(uint32(vip[0]) | uint32(vip[1])<<8 | uint32(vip[2])<<16 | uint32(vip[3])<<24)
	insns := loadPacket(offIPDst+4, xdpPass)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.R7, offEtherType, asm.Half),
		asm.JNE.Imm(asm.R1, 0x0008, "pass"),
		asm.LoadMem(asm.R1, asm.R7, offIPDst, asm.Word),
		asm.JNE.Imm32(asm.R1, le, "pass"),
	)
	insns = append(insns, countInsns(delivered, "drop")...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	return loadXDP("dsrbench_sink", insns)
}
