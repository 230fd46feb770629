package dsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// TestReusedPortsGetTheCurrentPick checks that a bare SYN on a closed flow
// is a new connection placed by the current plan, as IPVS does with
// conn_reuse_mode: after a backend is added, clients reusing their ports
// reach it at once in its full share instead of staying on the backends
// their closed flows had.
func TestReusedPortsGetTheCurrentPick(t *testing.T) {
	svc := web4(3)
	h := newHarness(t, nil, svc)
	const n = 600
	old := h.open(n, 5000)
	for sport := range old {
		fin := tcp4(sport, frame.FlagFIN|frame.FlagACK)
		expectForward(t, fin, h.send(fin))
	}
	grown := svc
	grown.Backends = backends(4, false)
	require.NoError(t, h.b.SetBackends(svc.Key(), grown.Backends))

	// The oracle: a balancer that only ever had four backends, where every
	// one of these SYNs opens a brand-new flow.
	fresh := newHarness(t, nil, grown)
	toNew, moved := 0, 0
	for sport, was := range old {
		syn := tcp4(sport, frame.FlagSYN)
		got := expectForward(t, syn, h.send(syn))
		want := expectForward(t, syn, fresh.send(tcp4(sport, frame.FlagSYN)))
		require.Equal(t, want, got, "port %d: the reused tuple must get the current plan's pick", sport)
		if got == 3 {
			toNew++
		}
		if got != was {
			moved++
		}
		ack := tcp4(sport, frame.FlagACK)
		require.Equal(t, got, expectForward(t, ack, h.send(ack)), "the rest of the connection follows")
	}
	assert.Greater(t, toNew, n/8, "the new backend takes about a quarter of the reused tuples")
	assert.Equal(t, toNew, moved, "with Maglev only the new backend's share moves")

	st := h.b.Stats().Services[0]
	assert.Zero(t, st.Rescheduled, "new connections are not rescheduled flows")
	assert.Equal(t, uint64(2*n), st.Flows, "each reused tuple counts as a new flow")
	var active int64
	for _, be := range st.Backends {
		active += be.ActiveFlows
	}
	assert.Equal(t, int64(n), active, "the closed flows ended when the tuples were reused")
}

// TestSYNRetransmitCountedOnlyWhileEmbryonic checks the passive signal
// from the flow's previous state as the lookup reports it: a bare SYN
// repeated before the handshake completes is a retransmission; after the
// handshake it is not, and after a close it is a new connection.
func TestSYNRetransmitCountedOnlyWhileEmbryonic(t *testing.T) {
	h := newHarness(t, nil, web4(2))
	retrans := func() (n uint64) {
		for _, be := range h.b.Stats().Services[0].Backends {
			n += be.SYNRetransmits
		}
		return n
	}
	syn := func() { in := tcp4(7000, frame.FlagSYN); expectForward(t, in, h.send(in)) }
	syn()
	require.Zero(t, retrans())
	syn()
	syn()
	require.Equal(t, uint64(2), retrans(), "repeated SYNs before the handshake")
	ack := tcp4(7000, frame.FlagACK)
	expectForward(t, ack, h.send(ack))
	syn()
	require.Equal(t, uint64(2), retrans(), "a SYN on an established flow is no retransmission")
	fin := tcp4(7000, frame.FlagFIN|frame.FlagACK)
	expectForward(t, fin, h.send(fin))
	syn()
	require.Equal(t, uint64(2), retrans(), "a SYN after a close opens a new connection")
	syn()
	require.Equal(t, uint64(3), retrans(), "and that connection's own retransmission counts")
}
