package dsr

import (
	"testing"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// BenchmarkProcessSYN is BenchmarkProcess with bare SYNs only, every one
// on a flow the table holds: the path of clients retransmitting their
// first packet (a SYN flood on known tuples looks the same). It shows what
// the SYN path costs beyond a plain hit; the flow's previous state comes
// with the lookup, so no SYN takes the flow table's shard lock.
func BenchmarkProcessSYN(b *testing.B) { benchProcess(b, frame.FlagSYN) }
