package dsr

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
	"github.com/dsrlb/dsrlb/internal/xdp"
)

// xdpHarness runs every frame through the XDP program (BPF_PROG_TEST_RUN,
// maps loaded from the Balancer's plan exactly as a served XDPForwarder's
// are) and through the Go worker, the reference.
type xdpHarness struct {
	*harness
	x *XDPForwarder
}

func newXDPHarness(t *testing.T, cfg *Config, services ...Service) *xdpHarness {
	t.Helper()
	prog, err := xdp.Load(&xdp.Config{MaxFlows: 1 << 16})
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("loading the XDP program needs root (CAP_BPF): %v", err)
		}
		require.NoError(t, err)
	}
	t.Cleanup(func() { prog.Close() })
	h := newHarness(t, cfg, services...)
	x := &XDPForwarder{prog: prog, mac: lbMAC, backends: map[uint32]xdp.Backend{}, services: map[xdp.ServiceKey]*pushedService{},
		beBase: map[uint32]xdp.BackendCounters{}, svcBase: map[uint32]xdp.ServiceCounters{}}
	// What registerForwarder does for a served XDPForwarder.
	h.b.fwdMu.Lock()
	ftCfg := h.b.ftCfg
	require.NoError(t, errors.Join(x.setParams(h.b.cfg.Seed, &ftCfg), x.setNow(h.b.now()), x.loadPlan(h.b.snap.Load())))
	h.b.dataPlanes = append(h.b.dataPlanes, x)
	h.b.fwdMu.Unlock()
	return &xdpHarness{harness: h, x: x}
}

// outcome is one data plane's decision on a frame.
type outcome struct {
	verdict xdp.Verdict // XDP only
	out     []byte      // the frame sent, nil if none
	drop    DropReason  // Go only, when out is nil
}

func (h *xdpHarness) both(t *testing.T, in []byte) (x, g outcome) {
	t.Helper()
	require.NoError(t, h.x.setNow(h.b.now()))
	v, out, err := h.x.prog.Run(append([]byte(nil), in...))
	require.NoError(t, err)
	x.verdict = v
	if v == xdp.TX {
		x.out = out
	}
	var before [numDropReasons]uint64
	for r := range before {
		before[r] = h.w.c.drops[r].Load()
	}
	g.out = h.send(in)
	if g.out == nil {
		for r := range before {
			if h.w.c.drops[r].Load() != before[r] {
				g.drop = DropReason(r)
			}
		}
	}
	return x, g
}

// checkXDPParity requires the XDP program to decide as the Go path does for
// every frame it does not pass up: the same frame out to the same backend,
// or a drop for the same reason.
func (h *xdpHarness) checkXDPParity(t *testing.T, in []byte, what string) xdp.Verdict {
	t.Helper()
	x, g := h.both(t, in)
	switch x.verdict {
	case xdp.TX:
		require.NotNil(t, g.out, "%s: XDP forwarded a frame the Go path drops (%s)", what, g.drop)
		require.True(t, bytes.Equal(g.out, x.out), "%s: bytes differ:\nxdp %x\ngo  %x", what, x.out, g.out)
	case xdp.Drop:
		require.Nil(t, g.out, "%s: XDP dropped a frame the Go path forwards", what)
		require.Equal(t, DropNoBackend, g.drop, "%s", what)
	case xdp.Pass:
		// The Go path decides these: nothing to compare.
	default:
		t.Fatalf("%s: verdict %s", what, x.verdict)
	}
	return x.verdict
}

// TestIntegrationXDPParity is the shared vector corpus: hand-written frames,
// the committed fuzz corpora of the Go path and the parser, and thousands
// of packets of random TCP and UDP conversations (SYN, ACK, FIN, RST, port
// reuse, IPv6, 802.1Q tags, ICMP errors, fragments) with backend changes,
// health changes and time passing between packets, each decided by the XDP
// program and by the Go path from the same plan.
func TestIntegrationXDPParity(t *testing.T) {
	web := web4(4)
	web6 := Service{VIP: vip6, Protocol: TCP, Port: 443, Backends: distinctBackends(3, 10), Scheduler: "hrw"}
	for i := range web6.Backends {
		web6.Backends[i].Addr = netip.MustParseAddr("2001:db8::" + strconv.Itoa(40+i))
	}
	dns := Service{VIP: vip4, Protocol: UDP, Port: 53, Backends: distinctBackends(3, 20)}
	rot := Service{VIP: netip.MustParseAddr("192.0.2.101"), Protocol: TCP, Port: 0, Backends: distinctBackends(3, 30), Scheduler: "rr"}
	h := newXDPHarness(t, &Config{Fragments: FragmentsHash}, web, web6, dns, rot)
	cases, verdicts := 0, map[xdp.Verdict]int{}
	run := func(in []byte, what string) {
		if len(in) < 14 {
			h.send(in) // the kernel runs no XDP program on such a frame
			return
		}
		verdicts[h.checkXDPParity(t, in, what)]++
		cases++
	}

	// The fuzz corpora.
	for _, dir := range []string{"testdata/fuzz/FuzzProcess", "../internal/frame/testdata/fuzz/FuzzParse"} {
		files, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, f := range files {
			in := readFuzzBytes(t, filepath.Join(dir, f.Name()))
			if in != nil {
				run(in, f.Name())
			}
		}
	}

	// Random conversations.
	rng := rand.New(rand.NewPCG(7, 9))
	flagSets := []uint8{frame.FlagSYN, frame.FlagACK, frame.FlagACK | frame.FlagPSH, frame.FlagFIN | frame.FlagACK, frame.FlagRST, frame.FlagSYN | frame.FlagACK}
	for i := range 4000 {
		sport := uint16(30000 + rng.IntN(400))
		flags := flagSets[rng.IntN(len(flagSets))]
		var in []byte
		switch r := rng.IntN(100); {
		case r < 45:
			in = tcpTo(vip4, 80, sport, flags)
		case r < 55:
			in = tcpTo(vip6, 443, sport, flags)
		case r < 63:
			in = udpTo(vip4, 53, sport)
		case r < 68:
			in = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.VLAN{TCI: 100}, ft.IPv4{Src: client4, Dst: vip4, TTL: 64},
				ft.TCP{SrcPort: sport, DstPort: 80, Flags: flags}, ft.Raw("tagged"))
		case r < 72:
			in = tcpTo(rot.VIP, uint16(1+rng.IntN(3)), sport, frame.FlagSYN)
		case r < 80:
			in = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: router4, Dst: vip4},
				ft.ICMPv4{Type: 3, Code: 4, Rest: 1400, Truncate: 28},
				ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: sport, Flags: frame.FlagACK})
		case r < 84:
			in = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv6{Src: router6, Dst: vip6},
				ft.ICMPv6{Type: 2, Rest: 1280, Truncate: 48},
				ft.IPv6{Src: vip6, Dst: client6}, ft.TCP{SrcPort: 443, DstPort: sport, Flags: frame.FlagACK})
		case r < 87:
			in = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4, Protocol: 6, ID: uint16(i), FragOffset: 185},
				ft.Raw("tail of a datagram"))
		case r < 90:
			in = tcpTo(vip4, 81, sport, frame.FlagSYN)
		case r < 93:
			in = tcpTo(router4, 80, sport, frame.FlagSYN)
		case r < 96:
			in = ft.Build(ft.Ethernet{Dst: otherMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: sport, DstPort: 80, Flags: flags})
		default:
			in = in0(rng)
		}
		run(in, "packet "+strconv.Itoa(i))
		switch i % 500 {
		case 100:
			require.NoError(t, h.b.DrainBackend(web.Key(), web.Backends[1].Addr))
		case 150:
			require.NoError(t, h.b.SetBackendState(web.Key(), web.Backends[2].Addr, BackendDown))
		case 200:
			require.NoError(t, h.b.RemoveBackend(web6.Key(), web6.Backends[0].Addr))
		case 250:
			h.b.onHealthEventForTest(web.Key(), web.Backends[3].Addr, errors.New("connection refused"))
		case 300:
			h.clock.Advance(20 * time.Second) // closed and embryonic flows expire
		case 350:
			require.NoError(t, h.b.AddBackend(web.Key(), distinctBackends(1, 40)[0]))
		case 420:
			// No backend left for the UDP service: new flows are dropped.
			for _, be := range dns.Backends {
				require.NoError(t, h.b.SetBackendState(dns.Key(), be.Addr, BackendDown))
			}
		case 499:
			require.NoError(t, h.b.SetServices([]Service{web, web6, dns, rot}))
			h.b.onHealthEventForTest(web.Key(), web.Backends[3].Addr, nil)
		}
	}
	t.Logf("%d cases: %d forwarded, %d dropped, %d passed up by XDP", cases, verdicts[xdp.TX], verdicts[xdp.Drop], verdicts[xdp.Pass])
	require.GreaterOrEqual(t, cases, 2000)
	assert.Greater(t, verdicts[xdp.TX], cases/3, "XDP decides most of the corpus itself")
	assert.Positive(t, verdicts[xdp.Drop])
	assert.Positive(t, verdicts[xdp.Pass])

	// The counters tell the same story in Stats.
	st := h.b.Stats()
	require.NotNil(t, st.XDP)
	assert.Equal(t, uint64(verdicts[xdp.TX]), st.XDP.Forwarded)
	var passed uint64
	for _, n := range st.XDP.Passed {
		passed += n
	}
	assert.Equal(t, uint64(verdicts[xdp.Pass]), passed, "every passed frame is counted by reason")
}

// readFuzzBytes reads a "go test fuzz v1" file holding one []byte value.
func readFuzzBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	require.NoError(t, err, path)
	return []byte(s)
}

// TestIntegrationXDPExplainSeesKernelFlows: a flow that only the XDP
// program has seen is explained from the program's flow table.
func TestIntegrationXDPExplainSeesKernelFlows(t *testing.T) {
	h := newXDPHarness(t, nil, web4(3))
	syn := tcp4(41000, frame.FlagSYN)
	v, out, err := h.x.prog.Run(syn)
	require.NoError(t, err)
	require.Equal(t, xdp.TX, v)
	e, err := h.b.ExplainFlow(Tuple{Src: netip.AddrPortFrom(client4, 41000), Dst: netip.AddrPortFrom(vip4, 80), Protocol: TCP})
	require.NoError(t, err)
	require.Equal(t, WhyFlowHit, e.Why, "%s", e.String())
	require.NotNil(t, e.Flow)
	assert.Equal(t, "embryonic", e.Flow.State)
	assert.Equal(t, out[0:6], []byte(e.BackendMAC), "the backend the program chose")
	require.Zero(t, h.b.flows.Len(), "the Go path never saw it")
}

// TestIntegrationXDPAtomicUpdates changes a service's backends every 100 ms
// for 30 s while 10k live flows keep sending through the program on
// another goroutine: once SetBackends returns, no frame reaches a backend
// it removed, and flows on the backends that stay never move.
func TestIntegrationXDPAtomicUpdates(t *testing.T) {
	const live, steps = 8, 300
	next := 0
	newBackend := func() Backend {
		next++
		return Backend{Addr: netip.AddrFrom4([4]byte{198, 18, byte(next >> 8), byte(next)}),
			MAC: []byte{0x02, 0xbe, 0, 0, byte(next >> 8), byte(next)}}
	}
	svc := Service{VIP: vip4, Protocol: TCP, Port: 80}
	for range live {
		svc.Backends = append(svc.Backends, newBackend())
	}
	h := newXDPHarness(t, &Config{MaxFlows: 1 << 16}, svc)
	const flows = 10000
	frames := make([][]byte, flows)
	for i := range frames {
		src := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 250)})
		frames[i] = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: src, Dst: vip4, TTL: 64},
			ft.TCP{SrcPort: uint16(10000 + i/250), DstPort: 80, Flags: frame.FlagACK})
		v, _, err := h.x.prog.Run(append([]byte(nil), frames[i]...))
		require.NoError(t, err)
		require.Equal(t, xdp.TX, v)
	}

	// removedAt[mac] is the epoch from which a frame to mac is a violation;
	// leaving holds the backends being removed by a call in progress, whose
	// flows may move from the moment the call starts.
	var mu sync.Mutex
	removedAt := map[string]uint64{}
	leaving := map[string]bool{}
	var epoch atomic.Uint64
	stop := make(chan struct{})
	var sent, violations atomic.Uint64
	var firstViolation atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(3, 4))
		last := make([]string, flows) // each flow's backend MAC so far
		for {
			select {
			case <-stop:
				return
			default:
			}
			e := epoch.Load()
			f := rng.IntN(flows)
			v, out, err := h.x.prog.Run(append([]byte(nil), frames[f]...))
			if err != nil || v != xdp.TX {
				continue
			}
			sent.Add(1)
			mac := string(out[0:6])
			mu.Lock()
			at, gone := removedAt[mac]
			prevGone := leaving[last[f]]
			mu.Unlock()
			switch {
			case gone && at <= e:
				violations.Add(1)
				firstViolation.CompareAndSwap(nil, fmt.Sprintf("a frame started in epoch %d reached %x, removed in epoch %d", e, out[0:6], at))
			case last[f] != "" && mac != last[f] && !prevGone:
				violations.Add(1)
				firstViolation.CompareAndSwap(nil, fmt.Sprintf("flow %d moved from %x, which is still a backend, to %x", f, last[f], mac))
			}
			last[f] = mac
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := range steps {
		<-tick.C
		out := svc.Backends[i%live]
		svc.Backends[i%live] = newBackend()
		mu.Lock()
		leaving[string(out.MAC)] = true
		mu.Unlock()
		require.NoError(t, h.b.SetBackends(svc.Key(), slices.Clone(svc.Backends)))
		// SetBackends returned: from the next epoch on, out is gone.
		mu.Lock()
		removedAt[string(out.MAC)] = epoch.Load() + 1
		mu.Unlock()
		epoch.Add(1)
	}
	close(stop)
	<-done
	t.Logf("%d frames forwarded across %d backend changes", sent.Load(), steps)
	if c, err := h.x.prog.Counters(); err == nil {
		n := 0
		_ = h.x.prog.Flows(func(flowtable.Key, xdp.Flow) bool { n++; return true })
		t.Logf("program: %d flows in its table; service flows %d rescheduled %d; stateless %d", n, c.Services[0].Flows, c.Services[0].Rescheduled, c.Stateless)
	}
	require.Positive(t, sent.Load())
	if v := violations.Load(); v > 0 {
		t.Fatalf("%d frames reached removed backends; first: %v", v, firstViolation.Load())
	}
}
