package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// ErrUnsupported is returned by Run where the benchmark cannot run (not
// Linux).
var ErrUnsupported = errors.New("bench: data-path benchmark needs Linux")

// Candidate names one forwarding implementation under test.
type Candidate string

// The candidates. Balancer and BalancerXDP are judged; the others are
// baselines.
const (
	// Balancer is dsr.Balancer serving a dsr.PacketForwarder.
	Balancer Candidate = "balancer"
	// BalancerXDP is dsr.Balancer serving a dsr.XDPForwarder: its XDP
	// program forwards the traffic in the kernel from the Balancer's plan;
	// the Go process only runs the control plane.
	BalancerXDP Candidate = "balancer-xdp"
	// PacketReflector is a bare batched AF_PACKET MAC-swap loop on
	// internal/afpacket with the Balancer's kernel filter.
	PacketReflector Candidate = "afpacket-reflector"
	// XDPReflector is an XDP_TX MAC-swap program on the forwarder's veth.
	XDPReflector Candidate = "xdp-reflector"
	// KernelForward is the forwarder namespace's own IPv4 routing of the
	// VIP to the sink (ip_forward=1, a /32 route, a static neighbour).
	KernelForward Candidate = "kernel-forward"
)

// AllCandidates lists every candidate in the order they run in a
// repetition.
var AllCandidates = []Candidate{Balancer, BalancerXDP, PacketReflector, XDPReflector, KernelForward}

// Offsets into the generated frame (Ethernet + IPv4 without options + UDP).
const (
	offEtherType = 12
	offIPID      = 14 + 4  // IPv4 identification
	offIPSrc     = 14 + 12 // IPv4 source address
	offIPDst     = 14 + 16 // IPv4 destination address
	offUDPSport  = 14 + 20 // UDP source port
	minGenFrame  = offUDPSport + 8
)

// maxFlows is the largest Config.Flows: 7 bits of source address and 8 of
// source port.
const maxFlows = 1 << 15

// Frame size limits (Ethernet frames without FCS).
const (
	// MinFrameSize is the minimum Ethernet frame without FCS.
	MinFrameSize = 60
	// MaxFrameSize is a full 1500-byte IP packet in an Ethernet frame.
	MaxFrameSize = 1514
)

// Config configures Run. A nil *Config means all defaults.
type Config struct {
	// Reps is the number of interleaved repetitions. Zero means 5.
	Reps int
	// FrameSizes are the Ethernet frame sizes (without FCS) to measure,
	// each in MinFrameSize..MaxFrameSize. Empty means 60 and 1514.
	FrameSizes []int
	// Flows is the number of distinct UDP flows (source address and port
	// combinations) in the traffic, a power of two up to 32768. Zero means
	// 1024.
	Flows int
	// Duration is the length of each measured phase (saturation, then
	// paced). Zero means 2 seconds.
	Duration time.Duration
	// Warmup is unmeasured traffic sent to a freshly started candidate
	// before its first phase, so flow tables and caches are warm. Zero
	// means 500 ms.
	Warmup time.Duration
	// Candidates selects what runs. Empty means AllCandidates.
	Candidates []Candidate
	// PacedLoad is the offered rate of the paced phase as a fraction of
	// the candidate's capacity measured just before. Zero means 0.8.
	PacedLoad float64
	// CommonLoad is the rate of the common-rate phase, which every
	// candidate of a repetition runs at, as a fraction of the lowest
	// packet-socket capacity of that repetition (see CommonPhase). Zero
	// means 0.5: at 0.8 the forwarder CPU is already more than 90 % busy
	// (the less there is to do, the smaller the batches and the more each
	// frame costs, so the CPU fills up), and CPU time per frame then
	// approaches busy time divided by the rate, the same for every
	// candidate that keeps up, whatever its per-frame work.
	CommonLoad float64
	// MaxForeignLoad is the share of the forwarder CPU's time that other
	// work may take during a sample (see Sample.ForeignLoad) before the
	// sample is measured again. Zero means 0.05; a negative value is
	// invalid.
	MaxForeignLoad float64
	// Reruns is the most times one disturbed sample is measured again.
	// Zero means 2; negative means never (and no waiting for a quiet
	// machine before each sample either).
	Reruns int
	// Logger receives progress. Nil discards it.
	Logger *slog.Logger
}

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Reps == 0 {
		out.Reps = 5
	}
	if len(out.FrameSizes) == 0 {
		out.FrameSizes = []int{MinFrameSize, MaxFrameSize}
	} else {
		out.FrameSizes = slices.Clone(out.FrameSizes)
	}
	if out.Flows == 0 {
		out.Flows = 1024
	}
	if out.Duration == 0 {
		out.Duration = 2 * time.Second
	}
	if out.Warmup == 0 {
		out.Warmup = 500 * time.Millisecond
	}
	if out.MaxForeignLoad == 0 {
		out.MaxForeignLoad = 0.05
	}
	switch {
	case out.Reruns == 0:
		out.Reruns = 2
	case out.Reruns < 0:
		out.Reruns = 0
	}
	if len(out.Candidates) == 0 {
		out.Candidates = slices.Clone(AllCandidates)
	} else {
		out.Candidates = slices.Clone(out.Candidates)
	}
	if out.PacedLoad == 0 {
		out.PacedLoad = 0.8
	}
	if out.CommonLoad == 0 {
		out.CommonLoad = 0.5
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case out.Reps < 0 || out.Reps > 100:
		return out, fmt.Errorf("bench: Reps %d out of range 1..100", out.Reps)
	case out.Flows < 0 || out.Flows > maxFlows || out.Flows&(out.Flows-1) != 0:
		return out, fmt.Errorf("bench: Flows %d is not a power of two in 1..%d", out.Flows, maxFlows)
	case out.Duration < 0 || out.Duration > time.Minute:
		return out, fmt.Errorf("bench: Duration %v out of range (0, 1m]", out.Duration)
	case out.Warmup < 0 || out.Warmup > time.Minute:
		return out, fmt.Errorf("bench: Warmup %v out of range (0, 1m]", out.Warmup)
	case out.MaxForeignLoad < 0 || out.MaxForeignLoad > 1:
		return out, fmt.Errorf("bench: MaxForeignLoad %v out of range (0, 1]", out.MaxForeignLoad)
	case out.Reruns > 10:
		return out, fmt.Errorf("bench: Reruns %d out of range ..10", out.Reruns)
	case out.PacedLoad < 0 || out.PacedLoad > 1:
		return out, fmt.Errorf("bench: PacedLoad %v out of range (0, 1]", out.PacedLoad)
	case out.CommonLoad < 0 || out.CommonLoad > 1:
		return out, fmt.Errorf("bench: CommonLoad %v out of range (0, 1]", out.CommonLoad)
	}
	for _, s := range out.FrameSizes {
		if s < MinFrameSize || s > MaxFrameSize {
			return out, fmt.Errorf("bench: frame size %d out of range %d..%d", s, MinFrameSize, MaxFrameSize)
		}
	}
	for _, c := range out.Candidates {
		if !slices.Contains(AllCandidates, c) {
			return out, fmt.Errorf("bench: unknown candidate %q", c)
		}
	}
	return out, nil
}

// The address plan, all inside the benchmark's own namespaces.
var (
	// VIP is the destination of every generated frame.
	VIP = netip.MustParseAddr("203.0.113.10")
	// ServicePort is the generated frames' UDP destination port.
	ServicePort uint16 = 9000
	fwdAddr            = netip.MustParsePrefix("192.0.2.1/24")
	sinkAddr           = netip.MustParsePrefix("192.0.2.2/24") // the backend, on the generator's veth
	clientNet          = netip.MustParsePrefix("198.51.100.0/24")
)

// buildFrame returns the generator's template: an Ethernet/IPv4/UDP frame
// of size bytes from 198.51.100.1:4096 to VIP:ServicePort, with the
// identification's low byte at 0xff so the generator program can trade it
// against the source address without touching the checksum.
func buildFrame(size int, dst, src net.HardwareAddr) ([]byte, error) {
	if size < MinFrameSize || size > MaxFrameSize {
		return nil, fmt.Errorf("bench: frame size %d out of range %d..%d", size, MinFrameSize, MaxFrameSize)
	}
	if len(dst) != 6 || len(src) != 6 {
		return nil, fmt.Errorf("bench: MAC addresses must have 6 bytes")
	}
	ipLen := min(size-frame.EthernetHeaderLen, 1500)
	payload := make([]byte, ipLen-frame.IPv4HeaderLen-frame.UDPHeaderLen)
	for i := range payload {
		payload[i] = byte(i + frame.UDPHeaderLen)
	}
	client := clientNet.Addr().Next() // 198.51.100.1
	b := make([]byte, 0, size)
	b = frame.AppendEthernet(b, frame.EthernetHeader{Dst: [6]byte(dst), Src: [6]byte(src), EtherType: frame.EtherTypeIPv4})
	b = frame.AppendIPv4(b, frame.IPv4Header{Src: client, Dst: VIP, Proto: frame.ProtoUDP, ID: 0x12ff}, frame.UDPHeaderLen+len(payload))
	// No UDP checksum: the generator rewrites the source address, which the
	// pseudo-header would cover.
	b = frame.AppendUDP(b, client, VIP, frame.UDPHeader{SrcPort: 0x1000, DstPort: ServicePort, NoChecksum: true}, payload)
	return b[:size], nil
}

// Sample is one candidate's measurement in one repetition at one frame
// size.
type Sample struct {
	Candidate Candidate
	FrameSize int
	Rep       int
	// Capacity is the highest rate (frames/s) the sink received in any
	// phase: the capacity search, whose paced steps raise the offered
	// rate by half each until frames are lost, or the flood.
	Capacity float64
	// LossFreeRate is the highest offered rate of the capacity search
	// that lost at most 1%.
	LossFreeRate float64
	// SatOffered and SatDelivered are the frames per second the generator
	// emitted and the sink received in the unpaced phase (the generator
	// flat out, many times any packet-socket candidate's capacity). It
	// shows behaviour under overload, which is not the capacity: on veth
	// the flood itself takes the forwarder's CPU (the generator keeps
	// writing to the ring and NAPI state the forwarder reads), which a
	// real NIC would absorb in hardware.
	SatOffered, SatDelivered float64
	// SatCPUPerPacket is the forwarder-side CPU time (candidate process
	// plus the forwarder veth's NAPI thread) per delivered frame in the
	// unpaced phase, in nanoseconds.
	SatCPUPerPacket float64
	// PacedTarget is the paced phase's intended rate, PacedLoad of
	// Capacity; PacedOffered is what the generator achieved and PacedLoss
	// the fraction of its frames not delivered.
	PacedTarget, PacedOffered, PacedLoss float64
	// PacedCPUPerPacket is SatCPUPerPacket for the paced phase.
	PacedCPUPerPacket float64
	// PacedProcessCPUPerPacket is the part of PacedCPUPerPacket spent by
	// the candidate process alone (ns); NaN for in-kernel candidates. For
	// BalancerXDP it is the Go control plane's share.
	PacedProcessCPUPerPacket float64
	// CPUBusyPerPacket is the forwarder CPU's whole busy time from
	// /proc/stat per delivered frame in the paced phase: a cross-check
	// that also catches work outside the measured tasks (and other load
	// on a shared machine).
	CPUBusyPerPacket float64
	// ForeignLoad is the largest share, over both phases, of wall time
	// the forwarder CPU spent busy outside the measured tasks. On an idle
	// machine it is near zero; more means other jobs shared the CPU and
	// the candidate's numbers are suspect.
	ForeignLoad float64
	// PacedShortfall is how far the generator fell short of the paced
	// phase's target rate (0: on target). A shortfall means its CPU was
	// taken by other load, so the candidate saw less than the intended
	// load.
	PacedShortfall float64
	// Reruns is how many times the sample was measured again because an
	// attempt was disturbed (see Config.MaxForeignLoad). The sample kept
	// is the least disturbed attempt.
	Reruns int
	// SearchStarved reports that the capacity search stopped because the
	// generator fell far short of a step's rate although, unpaced, it
	// reaches more than twice that rate: other load took its CPU, and the
	// capacity is not the forwarder's. Such a sample counts as disturbed.
	SearchStarved bool
	searchLimit   float64 // rate of the step the generator fell short of
	// FloodCalls and PacedCalls describe the batching (frames per call,
	// wake-ups per frame) in the flood and the paced phase.
	FloodCalls, PacedCalls Calls
	// Common is the phase at the rate common to all candidates of the
	// repetition (see CommonPhase); zero if it did not run.
	Common CommonPhase
}

// CommonPhase is a candidate's paced phase at a rate shared by every
// candidate of a repetition: PacedLoad of the lowest packet-socket
// capacity measured in it. CPU time per frame depends strongly on the
// rate (the faster frames arrive, the more of them one wake-up handles),
// so only at a common rate do candidates compare on their per-frame work
// alone; pacing each at a share of its own capacity would reward the
// slower one with a lower, costlier rate per frame.
type CommonPhase struct {
	// Target is the intended rate, Offered what the generator achieved,
	// Loss the fraction of its frames not delivered.
	Target, Offered, Loss float64
	// CPUPerPacket, ProcessCPUPerPacket and BusyPerPacket are as
	// PacedCPUPerPacket, PacedProcessCPUPerPacket and CPUBusyPerPacket, in
	// nanoseconds.
	CPUPerPacket, ProcessCPUPerPacket, BusyPerPacket float64
	// ForeignLoad and Shortfall are as in Sample; Reruns counts repeated
	// attempts of this phase.
	ForeignLoad, Shortfall float64
	Reruns                 int
	Calls                  Calls
}

// Calls describes how a candidate moved frames in one phase. For the
// in-kernel candidates the per-call and process fields are NaN: they make
// no calls.
type Calls struct {
	// FramesPerRead and FramesPerWrite are the frames per receive and
	// per transmit call of a user-space candidate (one recvmmsg, and
	// barring a full ring one sendmmsg, each).
	FramesPerRead, FramesPerWrite float64
	// WakeupsPerPacket is the candidate process's voluntary context
	// switches (sleeps in the poller, each ended by a wake-up) per
	// delivered frame; PreemptionsPerPacket its involuntary ones.
	WakeupsPerPacket, PreemptionsPerPacket float64
	// NAPIWakeupsPerPacket is the same for the forwarder's NAPI thread.
	NAPIWakeupsPerPacket float64
	// KernelDrops and SendDrops are frames the user-space candidate's
	// socket lost in the phase: a full receive buffer, a refused
	// transmit.
	KernelDrops, SendDrops uint64
	// RingDrops are frames dropped before any socket or program of the
	// forwarder saw them: the forwarder veth's receive drops, mostly its
	// ring overflowing while the NAPI thread waited for the CPU. Counted
	// for every candidate.
	RingDrops uint64
	// XDPForwarded and XDPPassed are the frames BalancerXDP's program sent
	// back out (XDP_TX) and passed up to the Go path in the phase; zero
	// for the other candidates.
	XDPForwarded, XDPPassed uint64
}

// maxShortfall is the generator shortfall beyond which a paced phase did
// not offer the load it was meant to, and the sample counts as disturbed.
const maxShortfall = 0.10

// commonRate is the paced rate every candidate of one repetition and
// frame size runs at: load of the lowest capacity among the packet-socket
// candidates (the slowest of those sets the pace, and the in-kernel ones
// are far faster), or of the lowest capacity of all when none of them
// ran. Zero when no sample has a capacity.
func commonRate(samples []Sample, load float64) float64 {
	lowest := func(keep func(Candidate) bool) float64 {
		low := 0.0
		for _, s := range samples {
			if keep(s.Candidate) && s.Capacity > 0 && (low == 0 || s.Capacity < low) {
				low = s.Capacity
			}
		}
		return low
	}
	low := lowest(func(c Candidate) bool { return c == Balancer || c == PacketReflector })
	if low == 0 {
		low = lowest(func(Candidate) bool { return true })
	}
	return load * low
}

// disturbed reports whether s was measured under too much foreign load.
// A shortfall of the generator only counts when the target was well within
// what it reaches unpaced: pacing costs the generator time per frame, so a
// target near its own top rate (the XDP reflector's) is missed on a quiet
// machine too.
func (c *Config) disturbed(s Sample) bool {
	starved := s.PacedShortfall > maxShortfall && s.PacedTarget < s.SatOffered/2
	return s.ForeignLoad > c.MaxForeignLoad || starved || s.SearchStarved
}

// disturbance orders attempts of one sample, least disturbed first.
func disturbance(s Sample) float64 {
	d := s.ForeignLoad + s.PacedShortfall
	if s.SearchStarved {
		d++ // its capacity, and so its paced rate, is wrong
	}
	return d
}

// Report is the outcome of Run.
type Report struct {
	Config  Config
	Machine Machine
	Samples []Sample
}

// Machine describes where a report was measured.
type Machine struct {
	CPUs           int
	CPUModel       string
	Kernel         string
	GenCPU, FwdCPU int
}

// Spread is a median with the minimum and maximum it was taken from.
type Spread struct {
	Median, Min, Max float64
	N                int
}

// spreadOf summarizes xs; NaN values (undefined ratios) are left out.
func spreadOf(xs []float64) Spread {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Spread{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Spread{Median: m, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// Metric selects one number of a Sample.
type Metric struct {
	// Name is the row label; Unit the absolute values' unit.
	Name, Unit string
	// Scale multiplies the sample value for display.
	Scale float64
	Get   func(Sample) float64
	// NoRatio leaves the metric out of the ratio tables, where a ratio
	// says nothing (near-zero losses, a rate equal by construction).
	NoRatio bool
}

// Headline is the metric the requirement is judged by: CPU time per
// forwarded frame with every candidate paced at the same rate.
var Headline = Metric{Name: "CPU/packet at common paced load (headline)", Unit: "µs", Scale: 1e-3,
	Get: func(s Sample) float64 { return s.Common.CPUPerPacket }}

// OwnLoadCPU is CPU time per forwarded frame with each candidate paced at
// PacedLoad of its own capacity.
var OwnLoadCPU = Metric{Name: "CPU/packet at paced load, own capacity", Unit: "µs", Scale: 1e-3,
	Get: func(s Sample) float64 { return s.PacedCPUPerPacket }}

// CapacityRate is the highest rate a candidate delivered (Sample.Capacity).
var CapacityRate = Metric{Name: "capacity (highest delivered rate)", Unit: "kpps", Scale: 1e-3,
	Get: func(s Sample) float64 { return s.Capacity }}

// Metrics are the numbers the report tabulates, Headline first.
var Metrics = []Metric{
	Headline,
	OwnLoadCPU,
	{Name: "CPU/packet under overload (flood)", Unit: "µs", Scale: 1e-3, Get: func(s Sample) float64 { return s.SatCPUPerPacket }},
	{Name: "candidate process's share of CPU/packet, common rate", Unit: "µs", Scale: 1e-3, Get: func(s Sample) float64 { return s.Common.ProcessCPUPerPacket }},
	{Name: "candidate process's share of CPU/packet, own capacity", Unit: "µs", Scale: 1e-3, Get: func(s Sample) float64 { return s.PacedProcessCPUPerPacket }},
	CapacityRate,
	{Name: "common paced rate offered", Unit: "kpps", Scale: 1e-3, Get: func(s Sample) float64 { return s.Common.Offered }, NoRatio: true},
	{Name: "paced rate offered, own capacity", Unit: "kpps", Scale: 1e-3, Get: func(s Sample) float64 { return s.PacedOffered }, NoRatio: true},
	{Name: "delivered rate under overload (flood)", Unit: "kpps", Scale: 1e-3, Get: func(s Sample) float64 { return s.SatDelivered }},
	{Name: "frames per receive call, common rate", Unit: "frames", Scale: 1, Get: func(s Sample) float64 { return s.Common.Calls.FramesPerRead }},
	{Name: "frames per receive call, own capacity", Unit: "frames", Scale: 1, Get: func(s Sample) float64 { return s.PacedCalls.FramesPerRead }},
	{Name: "frames per receive call, flood", Unit: "frames", Scale: 1, Get: func(s Sample) float64 { return s.FloodCalls.FramesPerRead }},
	{Name: "frames per transmit call, common rate", Unit: "frames", Scale: 1, Get: func(s Sample) float64 { return s.Common.Calls.FramesPerWrite }},
	{Name: "process wake-ups per packet, common rate", Unit: "per packet", Scale: 1, Get: func(s Sample) float64 { return s.Common.Calls.WakeupsPerPacket }},
	{Name: "process wake-ups per packet, own capacity", Unit: "per packet", Scale: 1, Get: func(s Sample) float64 { return s.PacedCalls.WakeupsPerPacket }},
	{Name: "process wake-ups per packet, flood", Unit: "per packet", Scale: 1, Get: func(s Sample) float64 { return s.FloodCalls.WakeupsPerPacket }},
	{Name: "process preemptions per packet, common rate", Unit: "per packet", Scale: 1, Get: func(s Sample) float64 { return s.Common.Calls.PreemptionsPerPacket }},
	{Name: "NAPI thread wake-ups per packet, common rate", Unit: "per packet", Scale: 1, Get: func(s Sample) float64 { return s.Common.Calls.NAPIWakeupsPerPacket }},
	{Name: "loss at common paced load", Unit: "%", Scale: 100, Get: func(s Sample) float64 { return s.Common.Loss }, NoRatio: true},
	{Name: "loss at paced load, own capacity", Unit: "%", Scale: 100, Get: func(s Sample) float64 { return s.PacedLoss }, NoRatio: true},
	{Name: "forwarder CPU busy share, common rate", Unit: "%", Scale: 100, Get: func(s Sample) float64 { return s.Common.BusyPerPacket * 1e-9 * s.Common.Offered * (1 - s.Common.Loss) }, NoRatio: true},
	{Name: "forwarder CPU busy share, own capacity", Unit: "%", Scale: 100, Get: func(s Sample) float64 { return s.CPUBusyPerPacket * 1e-9 * s.PacedOffered * (1 - s.PacedLoss) }, NoRatio: true},
	{Name: "forwarder CPU busy/packet, common rate (cross-check)", Unit: "µs", Scale: 1e-3, Get: func(s Sample) float64 { return s.Common.BusyPerPacket }},
	{Name: "foreign load on forwarder CPU", Unit: "%", Scale: 100, Get: func(s Sample) float64 { return max(s.ForeignLoad, s.Common.ForeignLoad) }, NoRatio: true},
}

// Absolute summarizes metric m of candidate c at frame size size.
func (r *Report) Absolute(m Metric, c Candidate, size int) Spread {
	var xs []float64
	for _, s := range r.Samples {
		if s.Candidate == c && s.FrameSize == size {
			xs = append(xs, m.Get(s)*m.Scale)
		}
	}
	return spreadOf(xs)
}

// Ratio summarizes, over the repetitions, metric m of Balancer divided by
// that of base in the same repetition (see RatioOf).
func (r *Report) Ratio(m Metric, base Candidate, size int) Spread {
	return r.RatioOf(m, Balancer, base, size)
}

// RatioOf summarizes, over the repetitions, metric m of cand divided by
// that of base in the same repetition. Pairing within a repetition keeps
// drifts of the machine out of the ratio. Undefined ratios (a zero
// baseline) are left out.
func (r *Report) RatioOf(m Metric, cand, base Candidate, size int) Spread {
	byRep := map[int]map[Candidate]float64{}
	for _, s := range r.Samples {
		if s.FrameSize != size {
			continue
		}
		if byRep[s.Rep] == nil {
			byRep[s.Rep] = map[Candidate]float64{}
		}
		byRep[s.Rep][s.Candidate] = m.Get(s)
	}
	var xs []float64
	for _, c := range byRep {
		b, okb := c[cand]
		x, okx := c[base]
		if okb && okx && x != 0 {
			xs = append(xs, b/x)
		}
	}
	return spreadOf(xs)
}

// Target is a bound on the median ratio of a metric of Candidate to that of
// Base: at least Bound when AtLeast, else at most Bound.
type Target struct {
	Candidate, Base Candidate
	Metric          Metric
	Bound           float64
	AtLeast         bool
}

// Targets are the XDP data plane's targets, against the bare XDP_TX
// reflector (the physical limit of the veth topology): capacity at least
// 0.75 of it, and CPU per frame at PacedLoad of its own capacity at most
// 1.5 times its.
var Targets = []Target{
	{Candidate: BalancerXDP, Base: XDPReflector, Metric: CapacityRate, Bound: 0.75, AtLeast: true},
	{Candidate: BalancerXDP, Base: XDPReflector, Metric: OwnLoadCPU, Bound: 1.5},
}

// Met reports whether ratio s meets the target; false when s is undefined.
func (t Target) Met(s Spread) bool {
	if s.N == 0 || math.IsNaN(s.Median) {
		return false
	}
	if t.AtLeast {
		return s.Median >= t.Bound
	}
	return s.Median <= t.Bound
}

func (t Target) String() string {
	op := "≤"
	if t.AtLeast {
		op = "≥"
	}
	return fmt.Sprintf("%s ÷ %s, %s %s %.2f", t.Candidate, t.Base, t.Metric.Name, op, t.Bound)
}

func (s Spread) format(prec int) string {
	if s.N == 0 {
		return "n/a"
	}
	f := "%." + fmt.Sprint(prec) + "f"
	if s.N == 1 {
		return fmt.Sprintf(f, s.Median)
	}
	return fmt.Sprintf(f+" ("+f+"–"+f+")", s.Median, s.Min, s.Max)
}

// ratioTables are the ratio tables WriteMarkdown writes: each judged
// candidate against its baselines.
var ratioTables = []struct {
	cand  Candidate
	bases []Candidate
}{
	{Balancer, []Candidate{PacketReflector, XDPReflector, KernelForward}},
	{BalancerXDP, []Candidate{XDPReflector, KernelForward, Balancer}},
}

// WriteMarkdown writes the report as Markdown tables: the targets, then per
// frame size the ratios of each judged candidate to its baselines, then
// the absolute numbers.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	cands := r.Config.Candidates
	fmt.Fprintf(&b, "Machine: %d CPUs, %s, Linux %s; generator on CPU %d, forwarder on CPU %d.\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.GenCPU, r.Machine.FwdCPU)
	fmt.Fprintf(&b, "Run: %d interleaved repetitions, %d flows, %v per phase; common paced rate %.0f%% of the lower packet-socket capacity of the repetition, own paced rate %.0f%% of each candidate's capacity.\n",
		r.Config.Reps, r.Config.Flows, r.Config.Duration, r.Config.CommonLoad*100, r.Config.PacedLoad*100)
	fmt.Fprintf(&b, "A sample whose forwarder CPU was more than %.0f%% busy with other work, or whose paced phase fell more than %.0f%% short of its rate, was measured again (up to %d times; the first clean attempt, or else the least disturbed, is kept).\n",
		r.Config.MaxForeignLoad*100, maxShortfall*100, r.Config.Reruns)
	b.WriteString("Cells are median (min–max) over the repetitions.\n")
	var targets []Target
	for _, t := range Targets {
		if slices.Contains(cands, t.Candidate) && slices.Contains(cands, t.Base) {
			targets = append(targets, t)
		}
	}
	if len(targets) > 0 {
		b.WriteString("\n#### Targets (median ratio)\n\n| target |")
		for _, size := range r.Config.FrameSizes {
			fmt.Fprintf(&b, " %d B |", size)
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(r.Config.FrameSizes)) + "\n")
		for _, t := range targets {
			fmt.Fprintf(&b, "| %s |", t)
			for _, size := range r.Config.FrameSizes {
				s := r.RatioOf(t.Metric, t.Candidate, t.Base, size)
				verdict := "not met"
				if t.Met(s) {
					verdict = "met"
				}
				fmt.Fprintf(&b, " %s: %s |", s.format(2), verdict)
			}
			b.WriteString("\n")
		}
	}
	for _, size := range r.Config.FrameSizes {
		for _, rt := range ratioTables {
			if !slices.Contains(cands, rt.cand) {
				continue
			}
			var bases []Candidate
			for _, c := range rt.bases {
				if slices.Contains(cands, c) {
					bases = append(bases, c)
				}
			}
			if len(bases) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n#### %d-byte frames: %s ÷ baseline\n\n| metric |", size, rt.cand)
			for _, c := range bases {
				fmt.Fprintf(&b, " ÷ %s |", c)
			}
			b.WriteString("\n|---|" + strings.Repeat("---|", len(bases)) + "\n")
			for _, m := range Metrics {
				if m.NoRatio {
					continue
				}
				fmt.Fprintf(&b, "| %s |", m.Name)
				for _, c := range bases {
					fmt.Fprintf(&b, " %s |", r.RatioOf(m, rt.cand, c, size).format(2))
				}
				b.WriteString("\n")
			}
		}
		fmt.Fprintf(&b, "\n#### %d-byte frames: absolute\n\n| metric |", size)
		for _, c := range cands {
			fmt.Fprintf(&b, " %s |", c)
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(cands)) + "\n")
		for _, m := range Metrics {
			fmt.Fprintf(&b, "| %s (%s) |", m.Name, m.Unit)
			for _, c := range cands {
				prec := 2
				switch m.Unit {
				case "kpps":
					prec = 0
				case "frames":
					prec = 1
				}
				fmt.Fprintf(&b, " %s |", r.Absolute(m, c, size).format(prec))
			}
			b.WriteString("\n")
		}
		b.WriteString("| re-runs of disturbed samples (total) |")
		for _, c := range cands {
			n := 0
			for _, s := range r.Samples {
				if s.Candidate == c && s.FrameSize == size {
					n += s.Reruns + s.Common.Reruns
				}
			}
			fmt.Fprintf(&b, " %d |", n)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "| generator rate flat out (kpps) |")
		for _, c := range cands {
			fmt.Fprintf(&b, " %s |", r.Absolute(Metric{Scale: 1e-3, Get: func(s Sample) float64 { return s.SatOffered }}, c, size).format(0))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
