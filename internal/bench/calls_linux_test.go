package bench

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCallCounters(t *testing.T) {
	var c callCounters
	c.read(0) // a wake-up without frames is not a receive call
	c.read(3)
	c.read(5)
	c.wrote(0)
	c.wrote(8)
	st := c.stats(2, 1)
	assert.Equal(t, childStats{ReadCalls: 2, ReadFrames: 8, WriteCalls: 1, WriteFrames: 8, KernelDrops: 2, SendDrops: 1}, st)
	assert.Zero(t, testing.AllocsPerRun(100, func() { c.read(4); c.wrote(4) }), "counting is on the forwarding path")
}

func TestCallsBetween(t *testing.T) {
	before := counters{user: true, wakeups: 10, preempted: 5, napiWakeups: 100,
		child: childStats{ReadCalls: 10, ReadFrames: 100, WriteCalls: 10, WriteFrames: 100, KernelDrops: 1}}
	after := counters{user: true, wakeups: 60, preempted: 25, napiWakeups: 300,
		child: childStats{ReadCalls: 60, ReadFrames: 500, WriteCalls: 110, WriteFrames: 500, KernelDrops: 4, SendDrops: 2}}
	c := callsBetween(before, after, 400)
	assert.InDelta(t, 8, c.FramesPerRead, 1e-9)
	assert.InDelta(t, 4, c.FramesPerWrite, 1e-9)
	assert.InDelta(t, 0.125, c.WakeupsPerPacket, 1e-9)
	assert.InDelta(t, 0.05, c.PreemptionsPerPacket, 1e-9)
	assert.InDelta(t, 0.5, c.NAPIWakeupsPerPacket, 1e-9)
	assert.EqualValues(t, 3, c.KernelDrops)
	assert.EqualValues(t, 2, c.SendDrops)

	kernel := callsBetween(counters{napiWakeups: 1}, counters{napiWakeups: 11}, 100)
	assert.True(t, math.IsNaN(kernel.FramesPerRead), "in-kernel candidates make no calls")
	assert.True(t, math.IsNaN(kernel.WakeupsPerPacket))
	assert.InDelta(t, 0.1, kernel.NAPIWakeupsPerPacket, 1e-9)

	idle := callsBetween(before, before, 0)
	assert.True(t, math.IsNaN(idle.FramesPerRead), "nothing delivered: undefined, not zero")
	assert.True(t, math.IsNaN(idle.NAPIWakeupsPerPacket))
}
