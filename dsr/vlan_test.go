package dsr

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// vlanServices are the same VIP:port three times: untagged (backends 0, 1),
// on VLAN 10 (backends 2, 3) and on VLAN 20 (backends 4, 5). The backends
// of VLAN 10 and 20 have the same addresses: they are other hosts.
func vlanServices() []Service {
	mk := func(vlan uint16, first int) Service {
		s := web4(2)
		s.VLAN = vlan
		for i := range s.Backends {
			s.Backends[i].MAC = backendMAC(first + i)
			if vlan != 0 {
				s.Backends[i].Addr = netip.AddrFrom4([4]byte{192, 0, 2, byte(50 + i)})
			}
		}
		return s
	}
	return []Service{mk(0, 0), mk(10, 2), mk(20, 4)}
}

func tcp4Tagged(sport uint16, flags uint8, qinq bool, tci uint16) []byte {
	return ft.Build(
		ft.Ethernet{Dst: lbMAC, Src: clientMAC},
		ft.VLAN{QinQ: qinq, TCI: tci},
		ft.IPv4{Src: client4, Dst: vip4, TTL: 57, ID: 7},
		ft.TCP{SrcPort: sport, DstPort: 80, Flags: flags, Seq: 1000},
		ft.Raw("hello"),
	)
}

// A frame matches only the service of its VLAN, and leaves with its tag
// (priority and DEI bits included) to a backend of that service.
func TestVLANMatching(t *testing.T) {
	h := newHarness(t, nil, vlanServices()...)
	tests := []struct {
		name     string
		in       []byte
		backends []int // nil: dropped as no_service
	}{
		{"untagged", tcp4(1000, frame.FlagSYN), []int{0, 1}},
		{"priority-tagged (VLAN 0) is untagged", tcp4Tagged(1001, frame.FlagSYN, false, 5<<13), []int{0, 1}},
		{"VLAN 10", tcp4Tagged(1002, frame.FlagSYN, false, 10), []int{2, 3}},
		{"VLAN 10 with priority and DEI", tcp4Tagged(1003, frame.FlagSYN, false, 7<<13|1<<12|10), []int{2, 3}},
		{"VLAN 20", tcp4Tagged(1004, frame.FlagSYN, false, 20), []int{4, 5}},
		{"VLAN 20 behind an 802.1ad tag", tcp4Tagged(1005, frame.FlagSYN, true, 20), []int{4, 5}},
		{"VLAN 30 has no service", tcp4Tagged(1006, frame.FlagSYN, false, 30), nil},
	}
	for _, tt := range tests {
		before := h.drops(DropNoService)
		out := h.send(tt.in)
		if tt.backends == nil {
			assert.Nil(t, out, tt.name)
			assert.Equal(t, before+1, h.drops(DropNoService), tt.name)
			continue
		}
		be := expectForward(t, tt.in, out) // the tag is in the untouched part
		assert.Contains(t, tt.backends, be, tt.name)
	}
}

// An untagged service is not reachable with tagged frames, and a tagged
// one not with untagged frames.
func TestVLANNoCrossing(t *testing.T) {
	svc := web4(2)
	svc.VLAN = 10
	h := newHarness(t, nil, svc)
	assert.Nil(t, h.send(tcp4(1000, frame.FlagSYN)))
	assert.Nil(t, h.send(tcp4Tagged(1000, frame.FlagSYN, false, 11)))
	assert.EqualValues(t, 2, h.drops(DropNoService))
	expectForward(t, tcp4Tagged(1000, frame.FlagSYN, false, 10), h.send(tcp4Tagged(1000, frame.FlagSYN, false, 10)))

	h = newHarness(t, nil, web4(2))
	assert.Nil(t, h.send(tcp4Tagged(1000, frame.FlagSYN, false, 10)))
	assert.EqualValues(t, 1, h.drops(DropNoService))
}

// The same 5-tuple on another VLAN is not sent to the first VLAN's backend
// by the flow table: it is scheduled by its own VLAN's service.
func TestVLANFlowDoesNotCross(t *testing.T) {
	h := newHarness(t, nil, vlanServices()...)
	first := expectForward(t, tcp4Tagged(2000, frame.FlagSYN, false, 10), h.send(tcp4Tagged(2000, frame.FlagSYN, false, 10)))
	require.Contains(t, []int{2, 3}, first)
	in := tcp4Tagged(2000, frame.FlagACK, false, 20)
	be := expectForward(t, in, h.send(in))
	assert.Contains(t, []int{4, 5}, be)
	in = tcp4Tagged(2000, frame.FlagACK, false, 20)
	assert.Equal(t, be, expectForward(t, in, h.send(in)), "and stays there")
}

func TestVLANValidation(t *testing.T) {
	b, err := New(nil)
	require.NoError(t, err)
	bad := web4(1)
	bad.VLAN = 4095
	err = b.AddService(bad)
	require.ErrorIs(t, err, ErrInvalidConfig)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "services[0].vlan", ce.Field)

	require.NoError(t, b.SetServices(vlanServices()), "the same VIP:port on three VLANs")
	dup := vlanServices()[1]
	require.ErrorIs(t, b.AddService(dup), ErrExists, "but once per VLAN")
	keys := []string{}
	for _, s := range b.Stats().Services {
		keys = append(keys, s.Key.String())
	}
	assert.Equal(t, []string{"192.0.2.100:80/tcp", "192.0.2.100:80/tcp@vlan10", "192.0.2.100:80/tcp@vlan20"}, keys)
	require.NoError(t, b.RemoveService(ServiceKey{VIP: vip4, Protocol: TCP, Port: 80, VLAN: 10}))
	require.ErrorIs(t, b.RemoveService(ServiceKey{VIP: vip4, Protocol: TCP, Port: 80, VLAN: 10}), ErrNotFound)
}

// Checks through the host's IP stack cannot reach a VLAN of the trunk; the
// DSR-path check can.
func TestVLANHealthSupport(t *testing.T) {
	svc := web4(1)
	svc.VLAN = 10
	svc.Checks = []HealthCheck{{Checker: &health.TCPChecker{}}}
	err := ValidateServices([]Service{svc})
	require.ErrorIs(t, err, health.ErrUnsupportedTarget)
	assert.ErrorContains(t, err, "services[0].checks[0]")
	assert.ErrorContains(t, err, "VLAN 10")
	svc.VLAN = 0
	require.NoError(t, ValidateServices([]Service{svc}), "untagged: fine")
}

func TestVLANExplain(t *testing.T) {
	h := newHarness(t, nil, vlanServices()...)
	e := h.b.Explain(tcp4Tagged(3000, frame.FlagSYN, false, 3<<13|20))
	require.True(t, e.Forward, e.String())
	assert.Equal(t, uint16(20), e.Tuple.VLAN)
	assert.Equal(t, uint16(20), e.Service.VLAN)
	assert.Contains(t, e.String(), "@vlan20")
	assert.Contains(t, []string{backendMAC(4).String(), backendMAC(5).String()}, e.BackendMAC.String())

	e, err := h.b.ExplainFlow(Tuple{Src: netip.AddrPortFrom(client4, 3000), Dst: netip.AddrPortFrom(vip4, 80), Protocol: TCP, VLAN: 10})
	require.NoError(t, err)
	require.True(t, e.Forward)
	assert.Equal(t, uint16(10), e.Service.VLAN)
	assert.Contains(t, []string{backendMAC(2).String(), backendMAC(3).String()}, e.BackendMAC.String())

	e, err = h.b.ExplainFlow(Tuple{Src: netip.AddrPortFrom(client4, 3000), Dst: netip.AddrPortFrom(vip4, 80), Protocol: TCP, VLAN: 30})
	require.NoError(t, err)
	assert.Equal(t, DropNoService, e.Drop)
	_, err = h.b.ExplainFlow(Tuple{Src: netip.AddrPortFrom(client4, 3000), Dst: netip.AddrPortFrom(vip4, 80), Protocol: TCP, VLAN: 4095})
	require.ErrorIs(t, err, ErrNotAFlow)
}

func TestVLANProcessAllocatesNothing(t *testing.T) {
	h := newHarness(t, nil, vlanServices()...)
	inputs := [][]byte{tcp4Tagged(500, frame.FlagSYN, false, 10), tcp4Tagged(501, frame.FlagACK, false, 20), tcp4Tagged(502, frame.FlagSYN, false, 30)}
	frames := make([]Frame, len(inputs))
	for i := range frames {
		frames[i].Buf = make([]byte, MaxFrameSize)
	}
	out := make([]Frame, 0, len(frames))
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		for i := range frames {
			frames[i].N = copy(frames[i].Buf, inputs[i])
		}
		out = h.w.processBatch(frames, out[:0])
	}))
	assert.Len(t, out, 2)
}

// fakeVLANNeighbours adds SetVLANVIPs to fakeNeighbours.
type fakeVLANNeighbours struct {
	fakeNeighbours
	vlanVIPs []arp.VIP
}

func (f *fakeVLANNeighbours) SetVLANVIPs(v []arp.VIP) {
	f.mu.Lock()
	f.vlanVIPs = slices.Clone(v)
	f.mu.Unlock()
}

// With a VLAN-capable speaker, VIPs and backends go over with their VLANs,
// and a MAC resolved on one VLAN is used by that VLAN's service only.
func TestVLANNeighbours(t *testing.T) {
	nb := &fakeVLANNeighbours{fakeNeighbours: fakeNeighbours{running: make(chan struct{})}}
	var events []Event
	evCh := make(chan Event, 16)
	b, err := New(&Config{ARP: nb, OnEvent: func(e Event) { evCh <- e }})
	require.NoError(t, err)
	svcs := vlanServices()
	for i := range svcs {
		svcs[i].Backends[0].MAC = nil // resolved
	}
	require.NoError(t, b.SetServices(svcs))
	nb.mu.Lock()
	assert.Equal(t, []arp.VIP{{Addr: vip4}, {Addr: vip4, VLAN: 10}, {Addr: vip4, VLAN: 20}}, nb.vlanVIPs)
	assert.Nil(t, nb.vips, "SetVIPs is not used with a VLAN-capable speaker")
	var got []arp.Backend
	for _, be := range nb.backends {
		got = append(got, arp.Backend{Addr: be.Addr, VLAN: be.VLAN})
	}
	nb.mu.Unlock()
	assert.Contains(t, got, arp.Backend{Addr: svcs[1].Backends[0].Addr, VLAN: 10})
	assert.Contains(t, got, arp.Backend{Addr: svcs[2].Backends[0].Addr, VLAN: 20})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-nb.running:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start the neighbour component")
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x42}
	nb.deliver(arp.Event{Kind: arp.Resolved, Addr: svcs[1].Backends[0].Addr, VLAN: 10, MAC: mac})
	st := b.Stats()
	assert.Equal(t, mac, st.Services[1].Backends[0].MAC, "VLAN 10's backend has it")
	assert.Nil(t, st.Services[2].Backends[0].MAC, "the same address on VLAN 20 does not")

	nb.deliver(arp.Event{Kind: arp.Conflict, Addr: vip4, VLAN: 20, MAC: mac})
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-evCh:
			events = append(events, e)
		case <-deadline:
			t.Fatalf("no conflict event; got %v", events)
		}
		if e := events[len(events)-1]; e.Kind == EventVIPConflict {
			assert.Equal(t, uint16(20), e.VLAN)
			assert.ErrorContains(t, e.Reason, "on VLAN 20")
			assert.Contains(t, e.String(), "vlan=20")
			return
		}
	}
}

// A Neighbours that knows nothing of VLANs cannot serve a VLAN service.
func TestVLANNeedsVLANNeighbours(t *testing.T) {
	b, err := New(&Config{ARP: &fakeNeighbours{}})
	require.NoError(t, err)
	err = b.SetServices(vlanServices())
	var ce *ConfigError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, "services[1].vlan", ce.Field)
}
