package dsr

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPacketAPIIsPortable uses the packet-socket types as a program would.
// It has no build constraint, so the cross-platform vet in CI compiles it
// for darwin and windows too: a type or field defined only on Linux fails
// there.
func TestPacketAPIIsPortable(t *testing.T) {
	cfg := PacketConfig{ReceiveBuffer: DefaultReceiveBuffer, BatchSize: 64}
	var st PacketStats
	require.Zero(t, st.SendDrops+st.KernelDrops+st.Received)
	require.Equal(t, 8<<20, receiveBuffer(cfg.ReceiveBuffer-DefaultReceiveBuffer))
	if runtime.GOOS != "linux" {
		_, err := ListenPacket("eth0", &cfg)
		require.True(t, errors.Is(err, ErrUnsupported))
	}
}

func TestMalformedReasonsCoverTheParser(t *testing.T) {
	rs := MalformedReasons()
	require.NotEmpty(t, rs)
	seen := map[string]bool{}
	for _, r := range rs {
		require.NotEmpty(t, r)
		require.False(t, seen[r], "labels are distinct: %s", r)
		seen[r] = true
	}
}
