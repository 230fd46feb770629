package dsr

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

var (
	tunSrc4 = netip.MustParseAddr("203.0.113.2")
	tunSrc6 = netip.MustParseAddr("2001:db8:2::2")
	remote4 = netip.MustParseAddr("198.51.100.21")
	remote6 = netip.MustParseAddr("2001:db8:3::21")
	gwMAC   = ft.MAC("02:00:00:00:00:fe")
)

// l3Service is a one-backend service in mode m whose backend sits behind
// a gateway whose MAC is configured on the backend.
func l3Service(m Mode, v6 bool) Service {
	s := Service{VIP: vip4, Protocol: TCP, Port: 80, Mode: m, TunnelSource: tunSrc4,
		Backends: []Backend{{Addr: remote4, MAC: net.HardwareAddr(gwMAC[:])}}}
	if v6 {
		s.VIP, s.Port, s.TunnelSource = vip6, 443, tunSrc6
		s.Backends[0].Addr = remote6
	}
	return s
}

// bigTCP builds a client frame with payload bytes of data and DF set.
func bigTCP(v6 bool, sport uint16, payload int, df bool) []byte {
	data := bytes.Repeat([]byte{0xab}, payload)
	if v6 {
		return ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv6{Src: client6, Dst: vip6, HopLimit: 57},
			ft.TCP{SrcPort: sport, DstPort: 443, Flags: frame.FlagACK}, ft.Raw(data))
	}
	return ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4, TTL: 57, DF: df},
		ft.TCP{SrcPort: sport, DstPort: 80, Flags: frame.FlagACK}, ft.Raw(data))
}

// decap checks the outer headers of an encapsulated frame and returns the
// inner IP packet and, for GUE, the UDP source port.
func unwrapOuter(t *testing.T, out []byte, m Mode, v6 bool) (inner []byte, sport uint16) {
	t.Helper()
	require.NotNil(t, out, "not forwarded")
	assert.Equal(t, gwMAC[:], out[0:6], "to the next hop")
	assert.Equal(t, lbMAC[:], out[6:12])
	var p frame.Packet
	require.NoError(t, frame.Parse(out, &p))
	require.Equal(t, len(out), p.Len)
	l3 := p.L3Off
	var next int
	if v6 {
		require.EqualValues(t, 6, p.Version)
		assert.Equal(t, tunSrc6, p.Src)
		assert.Equal(t, remote6, p.Dst)
		assert.EqualValues(t, 64, p.TTL)
		next = l3 + 40
	} else {
		require.EqualValues(t, 4, p.Version)
		assert.Equal(t, tunSrc4, p.Src)
		assert.Equal(t, remote4, p.Dst)
		assert.EqualValues(t, 64, p.TTL)
		assert.True(t, frame.IPv4HeaderChecksumOK(out, &p), "outer header checksum")
		assert.EqualValues(t, 0x40, out[l3+6]&0x40, "DF set")
		next = l3 + 20
	}
	switch m {
	case ModeIPIP:
		want := uint8(4)
		if v6 {
			want = 41
		}
		assert.Equal(t, want, p.Proto)
		return out[next:], 0
	case ModeGUE:
		require.EqualValues(t, frame.ProtoUDP, p.Proto)
		assert.True(t, frame.TransportChecksumOK(out, &p), "outer UDP checksum")
		assert.EqualValues(t, DefaultGUEPort, p.DstPort)
		assert.GreaterOrEqual(t, p.SrcPort, uint16(49152))
		g := out[next+8 : next+12]
		want := byte(4)
		if v6 {
			want = 41
		}
		assert.Equal(t, []byte{0, want, 0, 0}, g, "GUE variant 0 header")
		return out[next+12:], p.SrcPort
	}
	t.Fatalf("mode %v", m)
	return nil, 0
}

func TestEncapsulate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode Mode
		v6   bool
	}{{"ipip4", ModeIPIP, false}, {"ipip6", ModeIPIP, true}, {"gue4", ModeGUE, false}, {"gue6", ModeGUE, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, l3Service(tc.mode, tc.v6))
			in := bigTCP(tc.v6, 1000, 100, true)
			out := h.sendEncap(in)
			inner, sport := unwrapOuter(t, out, tc.mode, tc.v6)
			assert.Equal(t, in[14:], inner, "the client's packet travels unchanged")
			// The same flow keeps its outer source port; another flow
			// may get another.
			_, again := unwrapOuter(t, h.sendEncap(in), tc.mode, tc.v6)
			assert.Equal(t, sport, again)
			st := h.b.Stats()
			assert.EqualValues(t, 2, st.L3.Encapsulated)
			assert.EqualValues(t, 2, st.Services[0].Backends[0].Packets)
		})
	}
}

func TestEncapGUESourcePortsSpread(t *testing.T) {
	h := newHarness(t, nil, l3Service(ModeGUE, false))
	ports := map[uint16]bool{}
	for i := range 64 {
		_, p := unwrapOuter(t, h.sendEncap(bigTCP(false, uint16(2000+i), 10, true)), ModeGUE, false)
		ports[p] = true
	}
	assert.Greater(t, len(ports), 32, "64 flows should get many different outer source ports")
}

// sendEncap is send without the harness's check that offload metadata
// passes through (encapsulation clears it).
func (h *harness) sendEncap(in []byte) []byte {
	out := h.sendBatch(in, Offload{})
	if len(out) == 0 {
		return nil
	}
	require.Len(h.t, out, 1)
	return out[0]
}

func (h *harness) sendBatch(in []byte, off Offload) [][]byte {
	f := []Frame{{Buf: make([]byte, MaxFrameSize), Offload: off}}
	f[0].N = copy(f[0].Buf, in)
	out := h.w.processBatch(f, nil)
	var res [][]byte
	for _, o := range out {
		assert.Equal(h.t, Offload{}, o.Offload, "encapsulated frames leave without offload state")
		res = append(res, bytes.Clone(o.Bytes()))
	}
	return res
}

func TestEncapCompletesPartialChecksum(t *testing.T) {
	h := newHarness(t, nil, l3Service(ModeIPIP, false))
	in := bigTCP(false, 1000, 200, true)
	var p frame.Packet
	require.NoError(t, frame.Parse(in, &p))
	want := bytes.Clone(in)
	// What an offloading sender hands over: the pseudo-header sum only.
	binary.BigEndian.PutUint16(in[p.L4Off+16:], ^frame.Checksum(nil, frame.PseudoHeaderSum(p.Src, p.Dst, frame.ProtoTCP, p.Len-p.L4Off)))
	require.NotEqual(t, want, in)
	out := h.sendBatch(in, Offload{Flags: OffloadChecksumPartial, ChecksumStart: uint16(p.L4Off), ChecksumOffset: 16})
	require.Len(t, out, 1)
	inner, _ := unwrapOuter(t, out[0], ModeIPIP, false)
	assert.Equal(t, want[14:], inner, "checksum completed before encapsulation")
}

func TestEncapTooBig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     Mode
		v6, df   bool
		answered bool
	}{
		{"ipip4-df", ModeIPIP, false, true, true},
		{"gue4-df", ModeGUE, false, true, true},
		{"ipip4-no-df", ModeIPIP, false, false, false},
		{"ipip6", ModeIPIP, true, false, true},
		{"gue6", ModeGUE, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, &Config{MTU: 1500}, l3Service(tc.mode, tc.v6))
			ipHdr := 20
			if tc.v6 {
				ipHdr = 40
			}
			overhead := tc.mode.Overhead(map[bool]int{false: 4, true: 6}[tc.v6])
			// Exactly fits, then one byte more.
			fits := bigTCP(tc.v6, 1000, 1500-overhead-ipHdr-20, tc.df)
			out := h.sendEncap(fits)
			require.NotNil(t, out, "a packet that fits once encapsulated is forwarded")
			assert.Len(t, out, 14+1500)
			in := bigTCP(tc.v6, 1000, 1500-overhead-ipHdr-20+1, tc.df)
			out = h.sendEncap(in)
			st := h.b.Stats()
			assert.EqualValues(t, 1, st.Drops[DropTooBig])
			if !tc.answered {
				assert.Nil(t, out)
				assert.EqualValues(t, 1, st.L3.TooBigUnanswered)
				return
			}
			require.NotNil(t, out)
			assert.EqualValues(t, 1, st.L3.TooBigAnswered)
			assert.Equal(t, clientMAC[:], out[0:6], "back to where the packet came from")
			var p frame.Packet
			require.NoError(t, frame.Parse(out, &p))
			require.True(t, p.ICMPError)
			assert.True(t, frame.TransportChecksumOK(out, &p))
			quote := out[p.L4Off+8:]
			assert.Equal(t, in[14:14+len(quote)], quote, "quotes the packet from its IP header")
			mtu := 1500 - overhead
			if tc.v6 {
				assert.Equal(t, vip6, p.Src)
				assert.Equal(t, client6, p.Dst)
				assert.EqualValues(t, frame.ICMPv6PacketTooBig, p.ICMPType)
				assert.EqualValues(t, mtu, binary.BigEndian.Uint32(out[p.L4Off+4:]))
				assert.LessOrEqual(t, p.Len-p.L3Off, 1280)
			} else {
				assert.Equal(t, vip4, p.Src)
				assert.Equal(t, client4, p.Dst)
				assert.True(t, frame.IPv4HeaderChecksumOK(out, &p))
				assert.EqualValues(t, 3, p.ICMPType)
				assert.EqualValues(t, 4, p.ICMPCode)
				assert.EqualValues(t, mtu, binary.BigEndian.Uint16(out[p.L4Off+6:]))
				assert.LessOrEqual(t, p.Len-p.L3Off, 576)
			}
			assert.Equal(t, p.Inner.Src, p.Dst, "the quoted packet came from the client")
		})
	}
}

func TestEncapTooBigRateLimited(t *testing.T) {
	h := newHarness(t, &Config{MTU: 1500, TooBigRate: 3}, l3Service(ModeIPIP, false))
	in := bigTCP(false, 1000, 1480, true)
	answered := 0
	for range 10 {
		if h.sendEncap(in) != nil {
			answered++
		}
	}
	st := h.b.Stats()
	assert.Equal(t, 3, answered, "the burst")
	assert.EqualValues(t, 7, st.L3.TooBigLimited)
	// A second later the bucket holds 3 again.
	h.clock.Advance(1e9)
	answered = 0
	for range 10 {
		if h.sendEncap(in) != nil {
			answered++
		}
	}
	assert.Equal(t, 3, answered)
}

func TestEncapSegmentsSuperFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode Mode
		v6   bool
	}{{"ipip4", ModeIPIP, false}, {"gue6", ModeGUE, true}, {"gue4", ModeGUE, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, &Config{MTU: 1500}, l3Service(tc.mode, tc.v6))
			const mss, total = 1000, 4500
			payload := make([]byte, total)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			var in []byte
			gt := GSOTCPv4
			if tc.v6 {
				gt = GSOTCPv6
				in = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv6{Src: client6, Dst: vip6},
					ft.TCP{SrcPort: 7, DstPort: 443, Seq: 0xfffff000, Flags: frame.FlagACK | frame.FlagPSH | frame.FlagCWR}, ft.Raw(payload))
			} else {
				in = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4, DF: true, ID: 100},
					ft.TCP{SrcPort: 7, DstPort: 80, Seq: 0xfffff000, Flags: frame.FlagACK | frame.FlagPSH | frame.FlagCWR}, ft.Raw(payload))
			}
			out := h.sendBatch(in, Offload{GSOType: gt, GSOSize: mss, Flags: OffloadChecksumPartial})
			require.Len(t, out, 5)
			var got []byte
			for i, o := range out {
				inner, _ := unwrapOuter(t, o, tc.mode, tc.v6)
				f := append(bytes.Clone(o[:14]), inner...)
				var p frame.Packet
				require.NoError(t, frame.Parse(f, &p))
				assert.True(t, frame.TransportChecksumOK(f, &p), "segment %d TCP checksum", i)
				if !tc.v6 {
					assert.True(t, frame.IPv4HeaderChecksumOK(f, &p))
					assert.EqualValues(t, 100+i, binary.BigEndian.Uint16(f[p.L3Off+4:]))
				}
				assert.Equal(t, uint32(0xfffff000)+uint32(i*mss), binary.BigEndian.Uint32(f[p.L4Off+4:]))
				wantFlags := uint8(frame.FlagACK)
				if i == 0 {
					wantFlags |= frame.FlagCWR
				}
				if i == 4 {
					wantFlags |= frame.FlagPSH
				}
				assert.Equal(t, wantFlags, p.TCPFlags, "segment %d flags", i)
				got = append(got, f[p.L4Off+20:p.Len]...)
				assert.LessOrEqual(t, len(o)-14, 1500)
			}
			assert.Equal(t, payload, got, "the segments carry the payload in order")
			st := h.b.Stats()
			assert.EqualValues(t, 1, st.L3.Segmented)
			assert.EqualValues(t, 1, st.L3.Encapsulated)
		})
	}
}

func TestEncapSuperFrameTooBig(t *testing.T) {
	h := newHarness(t, &Config{MTU: 1500}, l3Service(ModeIPIP, false))
	in := bigTCP(false, 9, 4000, true)
	out := h.sendBatch(in, Offload{GSOType: GSOTCPv4, GSOSize: 1448})
	require.Len(t, out, 1, "the too-big answer")
	var p frame.Packet
	require.NoError(t, frame.Parse(out[0], &p))
	assert.EqualValues(t, 1480, binary.BigEndian.Uint16(out[0][p.L4Off+6:]))
}

func TestEncapNextHopResolved(t *testing.T) {
	gw := netip.MustParseAddr("203.0.113.1")
	s := l3Service(ModeGUE, false)
	s.Gateway = gw
	s.Backends[0].MAC = nil
	h := newHarness(t, nil, s)
	require.Nil(t, h.sendEncap(bigTCP(false, 1, 10, true)), "no next hop MAC yet")
	require.NoError(t, h.b.SetBackendMAC(gw, net.HardwareAddr(gwMAC[:])), "the gateway is a next hop to resolve")
	inner, _ := unwrapOuter(t, h.sendEncap(bigTCP(false, 1, 10, true)), ModeGUE, false)
	assert.NotEmpty(t, inner)
	assert.Equal(t, net.HardwareAddr(gwMAC[:]), h.b.Stats().Services[0].Backends[0].MAC)
}

func TestEncapPerBackendMode(t *testing.T) {
	s := l3Service(ModeIPIP, false)
	s.Backends = append(s.Backends, Backend{Addr: netip.MustParseAddr("192.0.2.21"), MAC: backendMAC(0), Mode: ModeL2})
	s.Backends[0].Mode = ModeGUE
	b, err := New(nil)
	require.NoError(t, err)
	require.NoError(t, b.AddService(s))
	snap := b.snap.Load()
	svc := snap.service(vip4, frame.ProtoTCP, 80, 0)
	require.NotNil(t, svc)
	assert.Equal(t, ModeGUE, snap.backend(svc.ids[0]).encap.mode)
	assert.Nil(t, snap.backend(svc.ids[1]).encap, "an L2 backend is not encapsulated")
}

func TestEncapValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Service)
		field string
	}{
		{"no source", func(s *Service) { s.TunnelSource = netip.Addr{} }, "source"},
		{"source of other family", func(s *Service) { s.TunnelSource = tunSrc6 }, "source"},
		{"mixed families", func(s *Service) { s.Backends[0].Addr = remote6 }, "backends[0].addr"},
		{"gateway of other family", func(s *Service) { s.Gateway = router6 }, "gateway"},
		{"unknown mode", func(s *Service) { s.Mode = 9 }, "mode"},
		{"unknown backend mode", func(s *Service) { s.Backends[0].Mode = 9 }, "backends[0].mode"},
		{"L3 backend in an L2 service", func(s *Service) { s.Mode = ModeL2; s.Backends[0].Mode = ModeIPIP; s.TunnelSource = netip.Addr{} }, "source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := l3Service(ModeIPIP, false)
			tc.edit(&s)
			b, err := New(nil)
			require.NoError(t, err)
			err = b.AddService(s)
			require.ErrorIs(t, err, ErrInvalidConfig)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, ce.Field, tc.field)
		})
	}
	_, err := ParseMode("vxlan")
	assert.Error(t, err)
	for _, m := range []Mode{ModeL2, ModeIPIP, ModeGUE} {
		got, err := ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
}

func TestEncapAllocatesNothing(t *testing.T) {
	h := newHarness(t, &Config{MTU: 1500, TooBigRate: -1}, l3Service(ModeGUE, false), l3Service(ModeIPIP, true))
	inputs := []struct {
		b   []byte
		off Offload
	}{
		{bigTCP(false, 1, 100, true), Offload{}},
		{bigTCP(true, 2, 100, false), Offload{}},
		{bigTCP(false, 3, 3000, true), Offload{GSOType: GSOTCPv4, GSOSize: 1000}},
		{bigTCP(false, 4, 1480, true), Offload{}}, // too big
	}
	frames := make([]Frame, len(inputs))
	for i := range frames {
		frames[i].Buf = make([]byte, MaxFrameSize)
	}
	out := make([]Frame, 0, 16)
	run := func() {
		for i := range frames {
			frames[i].N = copy(frames[i].Buf, inputs[i].b)
			frames[i].Offload = inputs[i].off
		}
		out = h.w.processBatch(frames, out[:0])
	}
	run() // the worker's segment buffers are made once
	require.Len(t, out, 2+3)
	assert.Zero(t, testing.AllocsPerRun(500, run))

	// The too-big answer itself, written in place, allocates nothing
	// either.
	h.b.cfg.TooBigRate = 1 << 30
	run()
	require.Len(t, out, 2+3+1)
	assert.Zero(t, testing.AllocsPerRun(500, run))
}

// BenchmarkEncapsulate measures the whole per-frame path (parse, flow hit,
// encapsulation) of one 1400-byte client frame and of one 65000-byte
// super-frame cut into 47 segments of 1400 bytes (gue, IPv4).
func BenchmarkEncapsulate(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
		off  Offload
	}{
		{"frame", bigTCP(false, 1, 1400, true), Offload{}},
		{"superframe", bigTCP(false, 1, 65000, true), Offload{GSOType: GSOTCPv4, GSOSize: 1400}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHarness(b, &Config{MTU: 9000}, l3Service(ModeGUE, false))
			fs := []Frame{{Buf: make([]byte, MaxFrameSize)}}
			out := make([]Frame, 0, 64)
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				fs[0].N = copy(fs[0].Buf, bc.in)
				fs[0].Offload = bc.off
				out = h.w.processBatch(fs, out[:0])
			}
			if len(out) == 0 {
				b.Fatal("nothing forwarded")
			}
		})
	}
}

func TestExplainL3(t *testing.T) {
	s := l3Service(ModeGUE, false)
	s.Gateway = netip.MustParseAddr("203.0.113.1")
	s.GUEPort = 7000
	h := newHarness(t, nil, s)
	e, err := h.b.ExplainFlow(Tuple{Src: netip.AddrPortFrom(client4, 999), Dst: netip.AddrPortFrom(vip4, 80), Protocol: TCP})
	require.NoError(t, err)
	require.True(t, e.Forward, e.String())
	assert.Equal(t, ModeGUE, e.Mode)
	assert.Equal(t, tunSrc4, e.TunnelSource)
	assert.Equal(t, remote4, e.TunnelDest)
	assert.Equal(t, s.Gateway, e.NextHop)
	assert.EqualValues(t, 7000, e.GUEPort)
	assert.Contains(t, e.String(), "encapsulated (gue)")

	h2 := newHarness(t, nil, web4(1))
	e, err = h2.b.ExplainFlow(Tuple{Src: netip.AddrPortFrom(client4, 999), Dst: netip.AddrPortFrom(vip4, 80), Protocol: TCP})
	require.NoError(t, err)
	require.True(t, e.Forward)
	assert.Equal(t, ModeL2, e.Mode)
	assert.False(t, e.TunnelDest.IsValid())
}

// FuzzEncap feeds arbitrary frames with arbitrary offload metadata to L3
// services: nothing panics, every output parses as an encapsulated packet
// to the backend or a too-big answer to the sender, and a frame that
// produced nothing is counted as exactly one drop.
func FuzzEncap(f *testing.F) {
	f.Add(bigTCP(false, 1, 100, true), uint8(0), uint16(0), uint16(0), uint16(0))
	// Small seeds: the fuzzer minimises every new input it finds, which
	// takes long for large ones.
	f.Add(bigTCP(true, 2, 300, false), uint8(GSOTCPv6), uint16(100), uint16(54), uint16(16))
	f.Add(bigTCP(false, 3, 300, true), uint8(GSOTCPv4), uint16(100), uint16(34), uint16(16))
	f.Add(bigTCP(false, 4, 1480, true), uint8(0), uint16(0), uint16(34), uint16(16))
	h := newHarness(f, &Config{MTU: 1500}, l3Service(ModeGUE, false), l3Service(ModeIPIP, true))
	f.Fuzz(func(t *testing.T, in []byte, gso uint8, gsoSize, csumStart, csumOff uint16) {
		if len(in) > 9000 {
			// Larger super-frames only take longer to cut: a tiny GSO
			// size makes thousands of segments, and minimising such
			// an input would take the fuzzer hours.
			return
		}
		h.t = t
		off := Offload{GSOType: GSOType(gso), GSOSize: gsoSize, ChecksumStart: csumStart, ChecksumOffset: csumOff}
		if csumStart != 0 {
			off.Flags = OffloadChecksumPartial
		}
		before := h.b.Stats()
		fs := []Frame{{Buf: make([]byte, MaxFrameSize), Offload: off}}
		fs[0].N = copy(fs[0].Buf, in)
		out := h.w.processBatch(fs, nil)
		after := h.b.Stats()
		for _, o := range out {
			var p frame.Packet
			if err := frame.Parse(o.Bytes(), &p); err != nil {
				t.Fatalf("output does not parse: %v\n%x", err, o.Bytes())
			}
			toBackend := p.Dst == remote4 || p.Dst == remote6
			answer := p.ICMPError && (p.Src == vip4 || p.Src == vip6)
			if !toBackend && !answer {
				t.Fatalf("output is neither encapsulated to the backend nor a too-big answer: %x", o.Bytes())
			}
			if o.N > 14+1500 {
				t.Fatalf("output of %d bytes exceeds the MTU", o.N)
			}
		}
		var dropped uint64
		for r, n := range after.Drops {
			dropped += n - before.Drops[r]
		}
		if len(out) == 0 && dropped != 1 {
			t.Fatalf("a frame that was not forwarded counted %d drops", dropped)
		}
	})
}

// TestEncapOnVLAN: an L3 service on a VLAN wraps the client's packet after
// the tag: the frame leaves tagged for the next hop on that VLAN (priority
// bits kept), and a too-big answer goes back to the client on it too.
func TestEncapOnVLAN(t *testing.T) {
	for _, mode := range []Mode{ModeIPIP, ModeGUE} {
		t.Run(mode.String(), func(t *testing.T) {
			s := l3Service(mode, false)
			s.VLAN = 30
			h := newHarness(t, nil, s)
			const tci = 5<<13 | 30 // priority 5, VLAN 30
			tagged := func(payload int) []byte {
				return ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.VLAN{TCI: tci},
					ft.IPv4{Src: client4, Dst: vip4, TTL: 57, DF: true},
					ft.TCP{SrcPort: 1000, DstPort: 80, Flags: frame.FlagACK}, ft.Raw(bytes.Repeat([]byte{0xab}, payload)))
			}
			in := tagged(100)
			out := h.sendEncap(in)
			require.NotNil(t, out, "forwarded")
			var p frame.Packet
			require.NoError(t, frame.Parse(out, &p))
			require.True(t, p.Tagged, "the tag stays")
			assert.EqualValues(t, tci, p.VLAN, "VLAN and priority kept")
			assert.Equal(t, gwMAC[:], out[0:6], "to the next hop")
			assert.Equal(t, tunSrc4, p.Src)
			assert.Equal(t, remote4, p.Dst)
			assert.True(t, frame.IPv4HeaderChecksumOK(out, &p), "outer header checksum")
			overhead := frame.IPv4HeaderLen
			if mode == ModeGUE {
				overhead += frame.UDPHeaderLen + 4
			}
			assert.Equal(t, in[18:], out[18+overhead:], "the client's packet travels unchanged after the outer headers")

			// The untagged twin of the frame is another VLAN's: no service.
			assert.Nil(t, h.sendEncap(append(ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC},
				ft.IPv4{Src: client4, Dst: vip4, TTL: 57, DF: true},
				ft.TCP{SrcPort: 1000, DstPort: 80, Flags: frame.FlagACK}), make([]byte, 100)...)), "untagged: not this service")

			// Too big once wrapped: the answer goes to the client, tagged.
			big := tagged(1500 - 40)
			ans := h.sendEncap(big)
			require.NotNil(t, ans, "answered")
			require.NoError(t, frame.Parse(ans, &p))
			require.True(t, p.Tagged)
			assert.EqualValues(t, 30, p.VLANID())
			assert.Equal(t, clientMAC[:], ans[0:6], "back to the client")
			assert.Equal(t, vip4, p.Src, "from the VIP")
			assert.EqualValues(t, frame.ProtoICMP, p.Proto)
		})
	}
}
