//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// bpffsT mounts a BPF filesystem for the test and returns a pin path
// inside it.
func bpffsT(t testing.TB) string {
	t.Helper()
	return filepath.Join(netlab.MountBPFFS(t), "dsrlb", "eth0")
}

// loadPinnedT loads the program pinned under dir; the test's cleanup
// closes it (Close is idempotent, so tests may close it earlier).
func loadPinnedT(t testing.TB, cfg Config, dir string) *Program {
	t.Helper()
	cfg.PinPath = dir
	p, err := Load(&cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

var pinCfg = Config{MaxFlows: 1024, MaxBackendSlots: 64, MaxServices: 8}

func TestIntegrationPinNotBPFFS(t *testing.T) {
	netlab.RequirePrivileged(t)
	_, err := Load(&Config{PinPath: t.TempDir()})
	require.ErrorIs(t, err, ErrNotBPFFS)
}

// TestIntegrationPinReuse loads a program pinned under a path, lets it
// create a flow, closes it and loads another on the same path: the second
// sees the flow, the service, the backend slot with its owner, and the
// settings, and its clock goes on from the first one's.
func TestIntegrationPinReuse(t *testing.T) {
	dir := bpffsT(t)
	p1 := loadPinnedT(t, pinCfg, dir)
	rs := p1.Restore()
	assert.True(t, rs.Pinned)
	assert.Empty(t, rs.Reused, "a first start reuses nothing")
	assert.ElementsMatch(t, stateMaps, rs.Created)
	require.NoError(t, p1.SetParams(Params{Seed: testSeed, MAC: net.HardwareAddr(ourMAC[:])}))
	const start = flowtable.Tick(5000)
	require.NoError(t, p1.SetNow(start))
	owner := SlotOwner{VIP: vip4, Port: 80, Proto: 1, Addr: netip.MustParseAddr("198.51.100.21")}
	beID := uint32(3)<<IDSlotBits | 7
	require.NoError(t, p1.SetBackend(7, Backend{ID: beID, MAC: net.HardwareAddr{2, 0, 0, 0, 1, 7}, Usable: true, Owner: owner}))
	// A slot used and cleared: its record keeps the ID.
	require.NoError(t, p1.SetBackend(9, Backend{ID: 9, MAC: net.HardwareAddr{2, 0, 0, 0, 1, 9}, Usable: true}))
	require.NoError(t, p1.ClearBackend(9))
	key := ServiceKey{VIP: vip4, Port: 80, Proto: frame.ProtoTCP}
	require.NoError(t, p1.SetService(key, 2, true, []uint32{beID, beID, beID}))
	// A second VIP whose service the next process will not have.
	stale := ServiceKey{VIP: vip6, Port: 80, Proto: frame.ProtoTCP}
	require.NoError(t, p1.SetService(stale, 3, true, []uint32{beID}))
	syn := tcpFrame(client4, vip4, 40000, frame.FlagSYN)
	v, _, err := p1.Run(syn)
	require.NoError(t, err)
	require.Equal(t, TX, v)
	fk := flowtable.Key{Src: client4.As16(), Dst: vip4.As16(), SrcPort: 40000, DstPort: 80, Proto: frame.ProtoTCP}
	f1, ok, err := p1.LookupFlow(fk)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, beID, f1.Backend)
	require.NoError(t, p1.Close())

	p2 := loadPinnedT(t, pinCfg, dir)
	rs = p2.Restore()
	assert.ElementsMatch(t, stateMaps, rs.Reused)
	assert.Empty(t, rs.Replaced)
	assert.False(t, rs.FlowsLost)
	assert.Equal(t, 1, rs.Flows)
	assert.Equal(t, 2, rs.Services)
	assert.Equal(t, 1, rs.Slots)
	assert.True(t, rs.Settings)
	assert.Equal(t, testSeed, rs.Seed)
	f2, ok, err := p2.LookupFlow(fk)
	require.NoError(t, err)
	require.True(t, ok, "the second program sees the first one's flow")
	assert.Equal(t, f1.Backend, f2.Backend)
	recs, err := p2.Slots()
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, SlotRecord{Slot: 7, ID: beID, Held: true, Owner: owner, MAC: net.HardwareAddr{2, 0, 0, 0, 1, 7}}, recs[0])
	assert.Equal(t, SlotRecord{Slot: 9, ID: 9, Held: false}, recs[1])
	// The clock: the new control plane starts its ticks at 10; the flow,
	// stamped at the old 5000, is as old as it was (0 ticks), not expired.
	require.NoError(t, p2.SetNow(10))
	f2, _, err = p2.LookupFlow(fk)
	require.NoError(t, err)
	assert.Equal(t, flowtable.Tick(10), f2.LastSeen)
	assert.False(t, p2.Expired(frame.ProtoTCP, f2, 10))
	per, err := p2.FlowsPerBackend(10)
	require.NoError(t, err)
	assert.Equal(t, map[uint32]int{beID: 1}, per)
	// The settings were kept: the pinned MAC still forwards the flow.
	v, _, err = p2.Run(tcpFrame(client4, vip4, 40000, frame.FlagACK))
	require.NoError(t, err)
	assert.Equal(t, TX, v)
	// The services were adopted: deleting the stale one removes its VIP
	// (its traffic is then not a VIP's).
	require.NoError(t, p2.DeleteService(stale))
	v, _, err = p2.Run(tcpFrame(client6, vip6, 40000, frame.FlagSYN))
	require.NoError(t, err)
	assert.Equal(t, Pass, v)
	c, err := p2.Counters()
	require.NoError(t, err)
	assert.EqualValues(t, 1, c.Passed[PassNotVIP], "the stale VIP is gone with its service")
	assert.EqualValues(t, 2, c.Received, "counters are not pinned: they count this program's frames")

	// One program at a time on a pin path.
	_, err = Load(&Config{MaxFlows: 1024, MaxBackendSlots: 64, MaxServices: 8, PinPath: dir})
	require.ErrorIs(t, err, ErrPinBusy)
	require.ErrorIs(t, Remove(dir), ErrPinBusy, "Remove refuses pins a running program holds")

	// Remove takes every pin and the directory away; the next Load starts
	// empty.
	require.NoError(t, p2.Close())
	require.NoError(t, Remove(dir))
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist)
	p3 := loadPinnedT(t, pinCfg, dir)
	assert.Empty(t, p3.Restore().Reused)
	_, ok, err = p3.LookupFlow(fk)
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestIntegrationPinIncompatible pins maps of another layout under the
// names Load uses: Load replaces them and says so, and that flows were
// lost when the flow table was among them.
func TestIntegrationPinIncompatible(t *testing.T) {
	dir := bpffsT(t)
	p1 := loadPinnedT(t, pinCfg, dir)
	require.NoError(t, p1.SetBackend(1, Backend{ID: 1, MAC: net.HardwareAddr{2, 0, 0, 0, 1, 1}, Usable: true}))
	require.NoError(t, p1.Close())
	// A flow table whose entries have another size, as an upgrade that
	// changed struct flow_entry would leave.
	require.NoError(t, os.Remove(filepath.Join(dir, xdpMapFlows)))
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "flows", Type: ebpf.LRUHash, KeySize: 40, ValueSize: 24, MaxEntries: 1024})
	require.NoError(t, err)
	require.NoError(t, m.Pin(filepath.Join(dir, xdpMapFlows)))
	require.NoError(t, m.Close())

	p2 := loadPinnedT(t, pinCfg, dir)
	rs := p2.Restore()
	assert.True(t, rs.FlowsLost)
	assert.ElementsMatch(t, []string{xdpMapFlows, xdpMapBackends, slotsMap}, rs.Replaced,
		"the backend slots go with the flow table whose entries name them")
	assert.Contains(t, rs.Why[xdpMapFlows], "ValueSize")
	assert.ElementsMatch(t, []string{xdpMapConfig, xdpMapServices, xdpMapVips, xdpMapTables}, rs.Reused)
	recs, err := p2.Slots()
	require.NoError(t, err)
	assert.Empty(t, recs, "the slot records were replaced with the flows")
	require.NoError(t, p2.Close())

	// A different size (Config.MaxFlows changed) is incompatible too.
	cfg := pinCfg
	cfg.MaxFlows = 2048
	p3 := loadPinnedT(t, cfg, dir)
	rs = p3.Restore()
	assert.True(t, rs.FlowsLost)
	assert.Contains(t, rs.Replaced, xdpMapFlows)
	assert.Contains(t, rs.Why[xdpMapFlows], "MaxEntries")
}

// xdpState is an interface's XDP attachment as netlink reports it.
func xdpState(t testing.TB, h *netlab.Host, name string) (attached bool, progID uint32) {
	t.Helper()
	require.NoError(t, h.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		if x := l.Attrs().Xdp; x != nil {
			attached, progID = x.Attached, x.ProgId
		}
		return nil
	}))
	return attached, progID
}

// TestIntegrationPinLinkUpdate attaches a pinned program, closes it (the
// program stays attached), attaches a second one on the same pins: the
// interface's program changes through the same link, never detached in
// between (netlink is watched the whole time), and the veth peer's
// pass-through program is replaced too. Remove detaches both.
func TestIntegrationPinLinkUpdate(t *testing.T) {
	dir := bpffsT(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 1})
	var ifindex int
	require.NoError(t, lab.Balancer.Do(func() error {
		ifi, err := net.InterfaceByName(lab.Balancer.Link)
		ifindex = ifi.Index
		return err
	}))
	attach := func(p *Program) io.Closer {
		var l io.Closer
		require.NoError(t, lab.Balancer.Do(func() error {
			var err error
			l, err = p.Attach(ifindex)
			return err
		}))
		return l
	}
	linkID := func() link.ID {
		l, err := link.LoadPinnedLink(filepath.Join(dir, linkPin), nil)
		require.NoError(t, err)
		defer l.Close()
		info, err := l.Info()
		require.NoError(t, err)
		return info.ID
	}

	p1 := loadPinnedT(t, pinCfg, dir)
	l1 := attach(p1)
	assert.False(t, p1.Restore().LinkUpdated)
	on1, prog1 := xdpState(t, lab.Balancer, lab.Balancer.Link)
	require.True(t, on1)
	peerOn1, peerProg1 := xdpState(t, lab.Switch, lab.Balancer.Name)
	require.True(t, peerOn1)
	id1 := linkID()
	require.NoError(t, l1.Close())
	require.NoError(t, p1.Close())
	on, prog := xdpState(t, lab.Balancer, lab.Balancer.Link)
	assert.True(t, on, "a pinned link stays attached when its process lets go")
	assert.Equal(t, prog1, prog)

	// Watch the interface while the second program takes over.
	var samples, gaps atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			_ = lab.Balancer.Do(func() error {
				l, err := netlink.LinkByIndex(ifindex)
				if err != nil {
					return err
				}
				samples.Add(1)
				if x := l.Attrs().Xdp; x == nil || !x.Attached {
					gaps.Add(1)
				}
				return nil
			})
		}
	})
	// Let the watcher take samples before the update.
	for deadline := time.Now().Add(10 * time.Second); samples.Load() < 20 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	p2 := loadPinnedT(t, pinCfg, dir)
	l2 := attach(p2)
	before := samples.Load()
	for deadline := time.Now().Add(10 * time.Second); samples.Load() < before+20 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	assert.GreaterOrEqual(t, samples.Load(), int64(40))
	assert.Zero(t, gaps.Load(), "the interface never ran without a program")
	rs := p2.Restore()
	assert.True(t, rs.LinkUpdated)
	assert.True(t, rs.PeerLinkUpdated)
	assert.Empty(t, rs.LinkProblem)
	on2, prog2 := xdpState(t, lab.Balancer, lab.Balancer.Link)
	require.True(t, on2)
	assert.NotEqual(t, prog1, prog2, "the program was replaced")
	assert.Equal(t, id1, linkID(), "through the same link")
	_, peerProg2 := xdpState(t, lab.Switch, lab.Balancer.Name)
	assert.NotEqual(t, peerProg1, peerProg2, "the peer's program was replaced too")

	require.NoError(t, l2.Close())
	require.NoError(t, p2.Close())
	require.NoError(t, Remove(dir))
	on, _ = xdpState(t, lab.Balancer, lab.Balancer.Link)
	assert.False(t, on, "Remove detaches the program")
	peerOn, _ := xdpState(t, lab.Switch, lab.Balancer.Name)
	assert.False(t, peerOn, "and the peer's")
	_, err := os.Stat(dir)
	assert.True(t, errors.Is(err, os.ErrNotExist))
}
