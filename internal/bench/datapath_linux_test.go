package bench

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smokeConfig is one short repetition of everything: enough to prove the
// benchmark still works, in a few seconds.
func smokeConfig() *Config {
	return &Config{
		Reps:       1,
		FrameSizes: []int{MinFrameSize},
		Flows:      64,
		Duration:   300 * time.Millisecond,
		Warmup:     100 * time.Millisecond,
		Reruns:     -1, // a smoke test checks function, not numbers
	}
}

// TestIntegrationDataPathSmoke runs the data-path benchmark once, briefly,
// so it cannot rot: every candidate must forward the generated traffic to
// the sink.
func TestIntegrationDataPathSmoke(t *testing.T) {
	netlab.RequirePrivileged(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, smokeConfig())
	require.NoError(t, err)
	require.Len(t, rep.Samples, len(AllCandidates))
	for _, s := range rep.Samples {
		assert.Positive(t, s.Capacity, "%s delivered nothing", s.Candidate)
		assert.GreaterOrEqual(t, s.Capacity, s.SatDelivered, "%s: capacity is the highest delivered rate", s.Candidate)
		assert.Positive(t, s.SatCPUPerPacket, "%s: no CPU time measured", s.Candidate)
		assert.GreaterOrEqual(t, s.SatOffered, s.SatDelivered*0.99, "%s: more delivered than sent", s.Candidate)
		assert.InDelta(t, 0.5, s.PacedLoss, 0.5, "%s: loss is a fraction", s.Candidate)
		assert.Positive(t, s.Common.Target, "%s: no common-rate phase", s.Candidate)
		assert.Positive(t, s.Common.CPUPerPacket, "%s: no CPU time measured at the common rate", s.Candidate)
		assert.LessOrEqual(t, s.Common.Target, 0.8*s.Capacity*1.0001, "%s: the common rate is at most 80%% of every capacity", s.Candidate)
		switch s.Candidate {
		case Balancer, PacketReflector:
			for name, v := range map[string]float64{
				"flood": s.FloodCalls.FramesPerRead, "paced": s.PacedCalls.FramesPerRead, "common": s.Common.Calls.FramesPerRead,
			} {
				assert.True(t, v >= 1 && v <= batchSize, "%s: %s frames per receive call %v outside 1..%d", s.Candidate, name, v, batchSize)
			}
			assert.False(t, math.IsNaN(s.Common.Calls.WakeupsPerPacket), "%s: wake-ups not measured", s.Candidate)
		default:
			// The XDP balancer's Go path reads nothing: its program
			// forwards every generated frame.
			assert.True(t, math.IsNaN(s.Common.Calls.FramesPerRead), "%s makes no receive calls", s.Candidate)
		}
		switch s.Candidate {
		case Balancer, BalancerXDP, PacketReflector:
			assert.False(t, math.IsNaN(s.Common.ProcessCPUPerPacket), "%s: its process's CPU not measured", s.Candidate)
			assert.LessOrEqual(t, s.Common.ProcessCPUPerPacket, s.Common.CPUPerPacket, "%s: the process's share exceeds the whole", s.Candidate)
		default:
			assert.True(t, math.IsNaN(s.Common.ProcessCPUPerPacket), "%s has no process", s.Candidate)
		}
		if s.Candidate == BalancerXDP {
			// Run fails the sample when the program passes most frames
			// up; here its counters must show it forwarded the phase's
			// traffic itself: at least every frame the sink got.
			delivered := s.Common.Offered * (1 - s.Common.Loss) * smokeConfig().Duration.Seconds()
			assert.GreaterOrEqual(t, float64(s.Common.Calls.XDPForwarded), 0.9*delivered, "the XDP program forwarded the traffic")
			assert.Less(t, s.Common.Calls.XDPPassed, s.Common.Calls.XDPForwarded/100+10, "the XDP program passed frames up")
		} else {
			assert.Zero(t, s.Common.Calls.XDPForwarded, "%s has no XDP balancer counters", s.Candidate)
		}
		if s.Candidate == KernelForward {
			// Kernel forwarding rewrites headers in the generator's
			// recycled pages; unless the generator restores them, almost
			// every frame after the first trips is dropped as foreign.
			assert.Less(t, s.PacedLoss, 0.5, "kernel forwarding loses most frames at 80%% load")
		}
	}
}

// BenchmarkDataPath runs one short interleaved repetition and reports the
// Balancer's CPU time per packet against the bare AF_PACKET reflector's.
// The full run with medians is cmd/dsrbench.
func BenchmarkDataPath(b *testing.B) {
	netlab.RequirePrivileged(b)
	cfg := smokeConfig()
	cfg.Candidates = []Candidate{Balancer, PacketReflector}
	for b.Loop() {
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.Ratio(Headline, PacketReflector, MinFrameSize).Median, "cpu-ratio-vs-afpacket")
	}
}
