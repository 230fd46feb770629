package frame_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
)

func TestParseDoesNotAllocate(t *testing.T) {
	frames := frameKinds()
	// Error paths too: the Error value must box without allocating.
	frames = append(frames, named{"truncated", make([]byte, 5)},
		named{"bad_ipv4", append(kind(t, "tcp4")[:14], 0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)})
	var p frame.Packet
	for _, f := range frames {
		allocs := testing.AllocsPerRun(100, func() { _ = frame.Parse(f.b, &p) })
		assert.Zero(t, allocs, f.name)
	}
	var sink error
	allocs := testing.AllocsPerRun(100, func() { sink = frame.Parse(nil, &p) })
	require.Error(t, sink)
	assert.Zero(t, allocs, "returning an Error")
}

func TestRewriteDoesNotAllocate(t *testing.T) {
	b := kind(t, "tcp4")
	assert.Zero(t, testing.AllocsPerRun(100, func() { frame.SetMACs(b, macServer, macLB) }), "SetMACs")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = frame.CompleteChecksum(b, 34, 16) }), "CompleteChecksum")
	var p frame.Packet
	require.NoError(t, frame.Parse(b, &p))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = frame.TransportChecksumOK(b, &p) }), "TransportChecksumOK")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = frame.CompleteChecksum(b, 99, 0) }), "CompleteChecksum error")
}
