package dsr

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/dsrlb/dsrlb/internal/xdp"
)

// mountBPFFS mounts a BPF filesystem for the test and returns a pin path
// inside it.
func mountBPFFS(t testing.TB) string {
	t.Helper()
	return filepath.Join(netlab.MountBPFFS(t), "dsrlb", "lb0")
}

// newPinnedXDPHarness is newXDPHarness on a program pinned under dir: a
// Balancer and a forwarder as a process started on those pins has them.
func newPinnedXDPHarness(t *testing.T, dir string, services ...Service) *xdpHarness {
	t.Helper()
	prog, err := xdp.Load(&xdp.Config{MaxFlows: 1 << 12, MaxBackendSlots: 64, MaxServices: 8, PinPath: dir})
	require.NoError(t, err)
	t.Cleanup(func() { prog.Close() })
	h := newHarness(t, &Config{Seed: 77}, services...)
	x := &XDPForwarder{prog: prog, mac: lbMAC, pinPath: dir, backends: map[uint32]xdp.Backend{}, services: map[xdp.ServiceKey]*pushedService{},
		beBase: map[uint32]xdp.BackendCounters{}, svcBase: map[uint32]xdp.ServiceCounters{}}
	require.NoError(t, x.initIDs())
	x.restored = restoreOf(dir, prog.Restore())
	h.b.adoptMACHints(x.macHints())
	h.b.fwdMu.Lock()
	ftCfg := h.b.ftCfg
	require.NoError(t, errors.Join(x.setParams(h.b.cfg.Seed, &ftCfg), x.setNow(h.b.now()), x.loadPlan(h.b.snap.Load())))
	h.b.dataPlanes = append(h.b.dataPlanes, x)
	h.b.fwdMu.Unlock()
	return &xdpHarness{harness: h, x: x}
}

// xdpWhere runs a frame through the program and returns the index of the
// backend (by its MAC) it was sent to.
func (h *xdpHarness) xdpWhere(t *testing.T, in []byte) int {
	t.Helper()
	v, out, err := h.x.prog.Run(append([]byte(nil), in...))
	require.NoError(t, err)
	require.Equal(t, xdp.TX, v, "forwarded in the kernel")
	return expectForward(t, in, out[:len(in)])
}

// TestIntegrationXDPRestartAdoptsSlots restarts the control plane on
// pinned maps (a new Balancer and forwarder, the program's maps kept) with
// a changed backend set: flows of the backends that stay keep them, flows
// of the removed backend are rescheduled exactly as the Go path schedules
// them, a flow that names the removed backend's slot is never sent to a
// backend that takes the slot later, and services the new configuration
// lacks are gone.
func TestIntegrationXDPRestartAdoptsSlots(t *testing.T) {
	dir := mountBPFFS(t)
	old := Service{VIP: vip4, Protocol: TCP, Port: 80, Backends: distinctBackends(4, 0)}
	gone := Service{VIP: vip6, Protocol: TCP, Port: 443, Backends: backends(2, true)}
	h1 := newPinnedXDPHarness(t, dir, old, gone)
	assert.Empty(t, h1.x.Restored().Reused)
	const n = 400
	before := map[uint16]int{}
	for i := range n {
		sport := uint16(20000 + i)
		before[sport] = h1.xdpWhere(t, tcp4(sport, frame.FlagSYN))
		require.Equal(t, before[sport], h1.xdpWhere(t, tcp4(sport, frame.FlagACK)))
	}
	require.NoError(t, h1.x.prog.Close())

	// The next configuration: backend 1 removed, backend 9 added, the
	// order changed (the new Balancer numbers its IDs afresh), the IPv6
	// service dropped.
	next := old
	next.Backends = []Backend{distinctBackends(1, 9)[0], old.Backends[3], old.Backends[0], old.Backends[2]}
	h2 := newPinnedXDPHarness(t, dir, next)
	rs := h2.x.Restored()
	assert.False(t, rs.FlowsLost)
	assert.Equal(t, n, rs.Flows)
	assert.Equal(t, 6, rs.Backends)
	assert.Equal(t, 2, rs.Services)
	// The seed is the configuration's: the same one says nothing, another
	// one is logged.
	var logs bytes.Buffer
	h2.x.log = slog.New(slog.NewTextHandler(&logs, nil))
	ftCfg := h2.b.ftCfg
	require.NoError(t, h2.x.setParams(77, &ftCfg))
	assert.Empty(t, logs.String())
	require.NoError(t, h2.x.setParams(78, &ftCfg))
	assert.Contains(t, logs.String(), "the hash seed differs from the pinned one")
	require.NoError(t, h2.x.setParams(77, &ftCfg))
	// Half of the removed backend's flows stay untouched until after the
	// next change, which may give its old slot to another backend.
	var untouched []uint16
	moved, kept := 0, 0
	for sport, was := range before {
		if was == 1 && len(untouched) < 20 {
			untouched = append(untouched, sport)
			continue
		}
		in := tcp4(sport, frame.FlagACK)
		now := h2.xdpWhere(t, in)
		if was != 1 {
			assert.Equal(t, was, now, "flow %d keeps its backend across the restart", sport)
			kept++
			continue
		}
		moved++
		assert.True(t, bytes.Equal(h2.send(in)[0:6], backendMAC(now)), "flow %d of the removed backend goes where the Go path sends it", sport)
	}
	require.Positive(t, moved)
	require.Positive(t, kept)
	require.NotEmpty(t, untouched)
	// The IPv6 service is gone: its VIP is not a VIP any more.
	v, _, err := h2.x.prog.Run(tcp6(40000, frame.FlagSYN))
	require.NoError(t, err)
	assert.Equal(t, xdp.Pass, v)

	// Another change adds backends; one of them may take the removed
	// backend's slot, with a later generation.
	next.Backends = append(next.Backends, distinctBackends(3, 10)...)
	require.NoError(t, h2.b.SetBackends(next.Key(), next.Backends))
	for _, sport := range untouched {
		in := tcp4(sport, frame.FlagACK)
		now := h2.xdpWhere(t, in)
		assert.NotEqual(t, 1, now)
		assert.True(t, bytes.Equal(h2.send(in)[0:6], backendMAC(now)), "flow %d of the removed backend is rescheduled as the Go path schedules it, whatever took its slot", sport)
	}
}
