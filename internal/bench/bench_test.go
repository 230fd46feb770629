package bench

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
)

func TestMain(m *testing.M) {
	RunChildIfRequested()
	os.Exit(m.Run())
}

func TestConfigDefaults(t *testing.T) {
	c, err := (*Config)(nil).withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 5, c.Reps)
	assert.Equal(t, []int{60, 1514}, c.FrameSizes)
	assert.Equal(t, 1024, c.Flows)
	assert.Equal(t, 2*time.Second, c.Duration)
	assert.Equal(t, AllCandidates, c.Candidates)
	assert.InDelta(t, 0.8, c.PacedLoad, 1e-9)
	assert.InDelta(t, 0.5, c.CommonLoad, 1e-9)
	assert.Equal(t, 500*time.Millisecond, c.Warmup)
	assert.InDelta(t, 0.05, c.MaxForeignLoad, 1e-9)
	assert.Equal(t, 2, c.Reruns)
	assert.NotNil(t, c.Logger)
	never, err := (&Config{Reruns: -1}).withDefaults()
	require.NoError(t, err)
	assert.Zero(t, never.Reruns, "negative means no re-runs")
}

func TestConfigInvalid(t *testing.T) {
	for name, c := range map[string]Config{
		"reps":      {Reps: -1},
		"flows":     {Flows: 1000},
		"too many":  {Flows: 1 << 16},
		"size low":  {FrameSizes: []int{59}},
		"size high": {FrameSizes: []int{1515}},
		"candidate": {Candidates: []Candidate{"nginx"}},
		"load":      {PacedLoad: 1.5},
		"common":    {CommonLoad: -0.5},
		"duration":  {Duration: time.Hour},
		"foreign":   {MaxForeignLoad: -0.1},
		"reruns":    {Reruns: 11},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.withDefaults()
			assert.Error(t, err)
		})
	}
}

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		name          string
		in            []float64
		med, min, max float64
		n             int
	}{
		{"odd", []float64{3, 1, 2}, 2, 1, 3, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{"nan left out", []float64{math.NaN(), 5, math.Inf(1)}, 5, 5, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spreadOf(tc.in)
			assert.Equal(t, Spread{Median: tc.med, Min: tc.min, Max: tc.max, N: tc.n}, s)
		})
	}
	assert.True(t, math.IsNaN(spreadOf(nil).Median))
	assert.Equal(t, "n/a", spreadOf(nil).format(2))
}

func TestBuildFrame(t *testing.T) {
	dst := []byte{2, 0, 0, 0, 0, 1}
	src := []byte{2, 0, 0, 0, 0, 2}
	for _, size := range []int{MinFrameSize, 128, MaxFrameSize} {
		f, err := buildFrame(size, dst, src)
		require.NoError(t, err)
		require.Len(t, f, size)
		assert.Equal(t, dst, f[0:6])
		assert.Equal(t, src, f[6:12])
		ip := f[14:34]
		assert.Zero(t, frame.Checksum(ip, 0), "header checksum")
		assert.Zero(t, binary.BigEndian.Uint16(f[40:]), "no UDP checksum: the generator rewrites the source")
		var p frame.Packet
		require.NoError(t, frame.Parse(f, &p))
		assert.Equal(t, []any{clientNet.Addr().Next(), VIP, uint16(0x1000), ServicePort}, []any{p.Src, p.Dst, p.SrcPort, p.DstPort})
		assert.Equal(t, VIP.As4(), [4]byte(ip[16:20]))
		ipLen := int(binary.BigEndian.Uint16(ip[2:]))
		assert.LessOrEqual(t, 14+ipLen, size)
		assert.Equal(t, ipLen-20, int(binary.BigEndian.Uint16(f[38:])), "UDP length")
		assert.Equal(t, ServicePort, binary.BigEndian.Uint16(f[36:]))
	}
	_, err := buildFrame(59, dst, src)
	assert.Error(t, err)
	_, err = buildFrame(60, dst[:5], src)
	assert.Error(t, err)
}

// TestFlowRewriteKeepsChecksum checks the arithmetic the generator program
// relies on: for every flow, raising the source address's low byte by d
// and lowering the identification's low byte by d leaves the template's
// header checksum valid.
func TestFlowRewriteKeepsChecksum(t *testing.T) {
	f, err := buildFrame(MinFrameSize, make([]byte, 6), make([]byte, 6))
	require.NoError(t, err)
	for flow := range maxFlows {
		d := byte(flow & 0x7f)
		g := bytes.Clone(f)
		g[offIPSrc+3] = 1 + d
		g[offIPID+1] = 0xff - d
		g[offUDPSport+1] = byte(flow >> 7)
		if frame.Checksum(g[14:34], 0) != 0 {
			t.Fatalf("flow %d: header checksum broken", flow)
		}
		assert.True(t, clientNet.Contains(ipAt(g[offIPSrc:])))
	}
}

func TestSwapMAC(t *testing.T) {
	f := []byte{1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 8, 0}
	swapMAC(f)
	assert.Equal(t, []byte{2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 8, 0}, f)
	short := []byte{1, 2, 3}
	swapMAC(short)
	assert.Equal(t, []byte{1, 2, 3}, short)
	assert.Zero(t, testing.AllocsPerRun(100, func() { swapMAC(f) }))
}

func TestParseSchedstat(t *testing.T) {
	v, err := parseSchedstat([]byte("41392 1000 7\n"))
	require.NoError(t, err)
	assert.EqualValues(t, 41392, v)
	for _, bad := range []string{"", "  \n", "x 1 2", "-5 1 1"} {
		_, err := parseSchedstat([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

const procStat = `cpu  10 0 20 1000 5 1 2 0 0 0
cpu0 4 0 10 500 2 0 1 0 0 0
cpu1 6 1 10 500 3 1 1 3 0 0
intr 123
`

func TestParseCPUBusy(t *testing.T) {
	v, err := parseCPUBusy([]byte(procStat), 1, 10)
	require.NoError(t, err)
	assert.EqualValues(t, (6+1+10+1+1+3)*10, v)
	_, err = parseCPUBusy([]byte(procStat), 2, 10)
	assert.Error(t, err)
	_, err = parseCPUBusy([]byte("cpu1 1 2 3\n"), 1, 10)
	assert.Error(t, err)
	_, err = parseCPUBusy([]byte("cpu1 1 2 3 4 5 x 7 8\n"), 1, 10)
	assert.Error(t, err)
}

func FuzzParseCPUBusy(f *testing.F) {
	f.Add([]byte(procStat), 1)
	f.Add([]byte("cpu1 1 2 3\n"), 1)
	f.Fuzz(func(t *testing.T, b []byte, cpu int) {
		_, _ = parseCPUBusy(b, cpu, 10)
	})
}

func FuzzParseSchedstat(f *testing.F) {
	f.Add([]byte("41392 1000 7\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSchedstat(b)
	})
}

func TestDisturbed(t *testing.T) {
	c, err := (*Config)(nil).withDefaults()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		s    Sample
		want bool
	}{
		{"quiet", Sample{ForeignLoad: 0.01}, false},
		{"at the limit", Sample{ForeignLoad: 0.05, PacedShortfall: 0.10, PacedTarget: 100e3, SatOffered: 5e6}, false},
		{"foreign load", Sample{ForeignLoad: 0.2}, true},
		{"generator starved", Sample{PacedShortfall: 0.3, PacedTarget: 100e3, SatOffered: 5e6}, true},
		{"target near the generator's top rate", Sample{PacedShortfall: 0.3, PacedTarget: 2e6, SatOffered: 3e6}, false},
		{"capacity search starved", Sample{ForeignLoad: 0.01, SearchStarved: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, c.disturbed(tc.s))
		})
	}
	assert.Less(t, disturbance(Sample{ForeignLoad: 0.1}), disturbance(Sample{ForeignLoad: 0.05, PacedShortfall: 0.1}))
	assert.Less(t, disturbance(Sample{ForeignLoad: 0.5}), disturbance(Sample{SearchStarved: true}), "a wrong capacity is worse than foreign load")
}

func TestReportRatiosAndMarkdown(t *testing.T) {
	r := &Report{Config: Config{Reps: 2, Flows: 8, Duration: time.Second, PacedLoad: 0.8,
		FrameSizes: []int{60}, Candidates: AllCandidates}}
	nan := math.NaN()
	kernel := Calls{FramesPerRead: nan, FramesPerWrite: nan, WakeupsPerPacket: nan, PreemptionsPerPacket: nan, NAPIWakeupsPerPacket: 0.5}
	for rep, k := range []float64{1, 2} {
		r.Samples = append(r.Samples,
			Sample{Candidate: Balancer, FrameSize: 60, Rep: rep, PacedCPUPerPacket: 1300 * k, Capacity: 100e3, Reruns: rep, ForeignLoad: 0.01,
				Common: CommonPhase{CPUPerPacket: 1000 * k, Offered: 80e3, Reruns: 1, Calls: Calls{FramesPerRead: 4 * k, FramesPerWrite: 4 * k}}},
			Sample{Candidate: BalancerXDP, FrameSize: 60, Rep: rep, PacedCPUPerPacket: 160 * k, PacedProcessCPUPerPacket: 2 * k, Capacity: 2e6,
				Common: CommonPhase{CPUPerPacket: 300 * k, ProcessCPUPerPacket: 4 * k, Offered: 80e3, Calls: Calls{FramesPerRead: nan, FramesPerWrite: nan, NAPIWakeupsPerPacket: 0.5}}},
			Sample{Candidate: PacketReflector, FrameSize: 60, Rep: rep, PacedCPUPerPacket: 800 * k, Capacity: 125e3,
				Common: CommonPhase{CPUPerPacket: 800 * k, Offered: 80e3, Calls: Calls{FramesPerRead: 2 * k, FramesPerWrite: 2 * k}}},
			Sample{Candidate: XDPReflector, FrameSize: 60, Rep: rep, PacedCPUPerPacket: 100 * k,
				Common: CommonPhase{CPUPerPacket: 100 * k, Calls: kernel}},
			Sample{Candidate: KernelForward, FrameSize: 60, Rep: rep, PacedCPUPerPacket: 500 * k,
				Common: CommonPhase{CPUPerPacket: 500 * k, Calls: kernel}},
		)
	}
	require.Equal(t, Headline.Name, Metrics[0].Name, "the headline leads the tables")
	assert.InDelta(t, 1.25, r.Ratio(Headline, PacketReflector, 60).Median, 1e-9)
	assert.InDelta(t, 10, r.Ratio(Headline, XDPReflector, 60).Median, 1e-9)
	own := OwnLoadCPU
	assert.InDelta(t, 1.625, r.Ratio(own, PacketReflector, 60).Median, 1e-9, "the own-capacity row stays")
	capacity := CapacityRate
	assert.Equal(t, 0, r.Ratio(capacity, XDPReflector, 60).N, "zero baseline leaves the ratio undefined")
	abs := r.Absolute(Headline, Balancer, 60)
	assert.InDelta(t, 1.5, abs.Median, 1e-9)
	assert.InDelta(t, 1, abs.Min, 1e-9)
	var b strings.Builder
	require.NoError(t, r.WriteMarkdown(&b))
	out := b.String()
	assert.Contains(t, out, "| CPU/packet at common paced load (headline) | 1.25 (1.25–1.25) | 10.00 (10.00–10.00) | 2.00 (2.00–2.00) |")
	assert.Contains(t, out, "| CPU/packet at paced load, own capacity | 1.62 (1.62–1.62) |")
	assert.Contains(t, out, "| frames per receive call, common rate | 2.00 (2.00–2.00) | n/a | n/a |", "no calls in the kernel: n/a, not 0 or Inf")
	assert.Contains(t, out, "| frames per receive call, common rate (frames) | 6.0 (4.0–8.0) | n/a | 3.0 (2.0–4.0) | n/a | n/a |")
	assert.Contains(t, out, "| common paced rate offered (kpps) | 80 (80–80) | 80 (80–80) | 80 (80–80) |")
	assert.Contains(t, out, "#### 60-byte frames: balancer ÷ baseline\n\n| metric | ÷ afpacket-reflector | ÷ xdp-reflector | ÷ kernel-forward |\n",
		"the packet balancer's table keeps its baselines, without the XDP balancer")
	assert.Contains(t, out, "#### 60-byte frames: balancer-xdp ÷ baseline\n\n| metric | ÷ xdp-reflector | ÷ kernel-forward | ÷ balancer |\n")
	xdpTable := out[strings.Index(out, "balancer-xdp ÷ baseline"):]
	assert.Contains(t, xdpTable, "| CPU/packet at common paced load (headline) | 3.00 (3.00–3.00) | 0.60 (0.60–0.60) | 0.30 (0.30–0.30) |")
	assert.Contains(t, xdpTable, "| CPU/packet at paced load, own capacity | 1.60 (1.60–1.60) | 0.32 (0.32–0.32) | 0.12 (0.12–0.12) |")
	assert.Contains(t, out, "| candidate process's share of CPU/packet, common rate (µs) | 0.00 (0.00–0.00) | 0.01 (0.00–0.01) |")
	assert.Contains(t, out, "| balancer-xdp ÷ xdp-reflector, capacity (highest delivered rate) ≥ 0.75 | n/a: not met |", "an undefined ratio meets no target")
	assert.Contains(t, out, "| balancer-xdp ÷ xdp-reflector, CPU/packet at paced load, own capacity ≤ 1.50 | 1.60 (1.60–1.60): not met |")
	assert.NotContains(t, out, "| common paced rate offered |", "a rate equal by construction gets no ratio row")
	assert.Contains(t, out, "#### 60-byte frames: absolute")
	assert.Contains(t, out, "| re-runs of disturbed samples (total) | 3 | 0 | 0 | 0 |", "own and common-rate re-runs add up")
	assert.Contains(t, out, "| foreign load on forwarder CPU (%) | 1.00 (1.00–1.00) |")
}

func TestCommonRate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    float64
	}{
		{"lower packet-socket capacity", []Sample{
			{Candidate: Balancer, Capacity: 100e3}, {Candidate: PacketReflector, Capacity: 140e3},
			{Candidate: XDPReflector, Capacity: 3e6}, {Candidate: KernelForward, Capacity: 800e3}}, 80e3},
		{"the reflector may be the slower", []Sample{
			{Candidate: Balancer, Capacity: 120e3}, {Candidate: PacketReflector, Capacity: 110e3}}, 88e3},
		{"a failed capacity is ignored", []Sample{
			{Candidate: Balancer, Capacity: 0}, {Candidate: PacketReflector, Capacity: 110e3}}, 88e3},
		{"in-kernel only: their lowest", []Sample{
			{Candidate: XDPReflector, Capacity: 3e6}, {Candidate: KernelForward, Capacity: 800e3}}, 640e3},
		{"nothing", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, commonRate(tc.samples, 0.8), 1e-6)
		})
	}
}

const procStatus = `Name:	dsrbench
State:	S (sleeping)
Threads:	5
voluntary_ctxt_switches:	1234
nonvoluntary_ctxt_switches:	56
`

func TestParseSwitches(t *testing.T) {
	v, i, err := parseSwitches([]byte(procStatus))
	require.NoError(t, err)
	assert.EqualValues(t, 1234, v)
	assert.EqualValues(t, 56, i)
	for _, bad := range []string{
		"",
		"voluntary_ctxt_switches:	1\n",
		"voluntary_ctxt_switches:	x\nnonvoluntary_ctxt_switches:	2\n",
		"voluntary_ctxt_switches:	-1\nnonvoluntary_ctxt_switches:	2\n",
	} {
		_, _, err := parseSwitches([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func FuzzParseSwitches(f *testing.F) {
	f.Add([]byte(procStatus))
	f.Add([]byte("voluntary_ctxt_switches:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = parseSwitches(b)
	})
}

func TestTargetMet(t *testing.T) {
	atLeast := Target{Candidate: BalancerXDP, Base: XDPReflector, Metric: CapacityRate, Bound: 0.75, AtLeast: true}
	atMost := Target{Candidate: BalancerXDP, Base: XDPReflector, Metric: OwnLoadCPU, Bound: 1.5}
	for _, tc := range []struct {
		name   string
		target Target
		s      Spread
		want   bool
	}{
		{"above a floor", atLeast, Spread{Median: 0.8, N: 3}, true},
		{"on a floor", atLeast, Spread{Median: 0.75, N: 3}, true},
		{"below a floor", atLeast, Spread{Median: 0.7, N: 3}, false},
		{"below a ceiling", atMost, Spread{Median: 1.2, N: 3}, true},
		{"above a ceiling", atMost, Spread{Median: 1.6, N: 3}, false},
		{"undefined", atMost, spreadOf(nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.target.Met(tc.s))
		})
	}
	require.Len(t, Targets, 2)
	for _, tg := range Targets {
		assert.Equal(t, BalancerXDP, tg.Candidate)
		assert.Equal(t, XDPReflector, tg.Base, "the targets are stated against the XDP_TX reflector")
	}
}
