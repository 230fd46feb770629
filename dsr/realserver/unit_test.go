package realserver

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/sysctl"
)

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name           string
		p              param
		all, dev       int
		setAll, setDev bool
	}{
		{"ignore ok on dev", paramARPIgnore, 0, 1, false, false},
		{"ignore ok on all", paramARPIgnore, 1, 0, false, false},
		{"ignore 2 ok", paramARPIgnore, 0, 2, false, false},
		{"ignore 8 ok", paramARPIgnore, 8, 0, false, false},
		{"ignore both 0", paramARPIgnore, 0, 0, true, false},
		{"ignore all 3 dev 2", paramARPIgnore, 3, 2, true, false},
		{"ignore all 2 dev 3", paramARPIgnore, 2, 3, false, true},
		{"ignore all 1 dev 3", paramARPIgnore, 1, 3, false, true},
		{"ignore reserved 5 both", paramARPIgnore, 5, 5, true, true},
		{"announce ok", paramARPAnnounce, 2, 0, false, false},
		{"announce both 0", paramARPAnnounce, 0, 0, true, false},
		{"announce dev 1", paramARPAnnounce, 0, 1, true, false},
		{"announce dev 5", paramARPAnnounce, 0, 5, false, true},
		{"announce all 5", paramARPAnnounce, 5, 0, true, false},
		{"rp off", paramRPFilter, 0, 0, false, false},
		{"rp loose", paramRPFilter, 1, 2, false, false},
		{"rp strict dev", paramRPFilter, 0, 1, false, true},
		{"rp strict all", paramRPFilter, 1, 0, false, true},
		{"rp strict both", paramRPFilter, 1, 1, false, true},
		{"proxy off", paramProxyNDP, 0, 0, false, false},
		{"proxy dev", paramProxyNDP, 0, 1, false, true},
		{"proxy all", paramProxyNDP, 1, 0, true, false},
		{"proxy both", paramProxyNDP, 1, 1, true, true},
		{"ipv6 on", paramDisableIPv6, 1, 0, false, false},
		{"ipv6 off on dev", paramDisableIPv6, 0, 1, false, true},
		{"ipv6 off on both", paramDisableIPv6, 1, 1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, d := tc.p.plan(tc.all, tc.dev)
			assert.Equal(t, tc.setAll, a, "setAll")
			assert.Equal(t, tc.setDev, d, "setDev")
			// Whatever the plan, applying it makes the effective value right.
			all, dev := tc.all, tc.dev
			if a {
				all = tc.p.target
			}
			if d {
				dev = tc.p.target
			}
			assert.True(t, tc.p.ok(tc.p.eff(all, dev)))
		})
	}
}

func TestSysctlKeys(t *testing.T) {
	all, dev, err := paramARPAnnounce.keys("eth0.100")
	require.NoError(t, err)
	assert.Equal(t, "net.ipv4.conf.all.arp_announce", all.String())
	assert.Equal(t, "net.ipv4.conf.eth0/100.arp_announce", dev.String())
	assert.Equal(t, "/proc/sys/net/ipv4/conf/eth0.100/arp_announce", dev.Path())
	_, _, err = paramRPFilter.keys("a/b")
	assert.ErrorIs(t, err, sysctl.ErrBadKey)
	assert.Equal(t, "sysctl -w net.ipv4.conf.eth0/100.arp_announce=2", fixSysctl(dev, 2))
	assert.Equal(t, "ip addr add 192.0.2.100/32 dev lo", fixAddrAdd("192.0.2.100/32", "lo"))
	assert.Equal(t, "ip addr del 192.0.2.100/24 dev eth0", fixAddrDel("192.0.2.100/24", "eth0"))
}

func TestResolveConfig(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.100")
	for _, tc := range []struct {
		name string
		cfg  *Config
		ok   bool
	}{
		{"nil", nil, false},
		{"no vips", &Config{}, false},
		{"minimal", &Config{VIPs: []netip.Addr{vip}}, true},
		{"mapped", &Config{VIPs: []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.100")}}, true},
		{"duplicate", &Config{VIPs: []netip.Addr{vip, netip.MustParseAddr("::ffff:192.0.2.100")}}, false},
		{"loopback", &Config{VIPs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}}, false},
		{"link-local", &Config{VIPs: []netip.Addr{netip.MustParseAddr("fe80::1")}}, false},
		{"bad proto", &Config{VIPs: []netip.Addr{vip}, Protocol: "sctp"}, false},
		{"udp", &Config{VIPs: []netip.Addr{vip}, Protocol: UDP}, true},
		{"bad iface", &Config{VIPs: []netip.Addr{vip}, Interface: "../x"}, false},
		{"iface all", &Config{VIPs: []netip.Addr{vip}, Interface: "all"}, false},
		{"long iface", &Config{VIPs: []netip.Addr{vip}, Interface: "abcdefghijklmnop"}, false},
		{"segment is holder", &Config{VIPs: []netip.Addr{vip}, Segment: []string{"lo"}}, false},
		{"bad mac", &Config{VIPs: []netip.Addr{vip}, BalancerMAC: net.HardwareAddr{1, 2}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.cfg.resolve(true)
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidConfig)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "lo", c.holder)
			assert.Equal(t, DefaultARPWindow, c.ARPWindow)
			assert.NotEmpty(t, c.Protocol)
			assert.True(t, c.VIPs[0].Is4())
		})
	}
}

func TestSeverityText(t *testing.T) {
	for s := Info; s <= Error; s++ {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back Severity
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, s, back)
	}
	_, err := Severity(0).MarshalText()
	assert.Error(t, err)
	assert.Error(t, new(Severity).UnmarshalText([]byte("fatal")))
	assert.Equal(t, "Severity(9)", Severity(9).String())
}

// The JSON form is part of the CLI's contract.
func TestReportJSONStable(t *testing.T) {
	r := &Report{Findings: []Finding{
		{Severity: Error, Code: CodeVIPMissing, VIP: netip.MustParseAddr("192.0.2.100"), Interface: "lo",
			Message: "m", Fix: []string{"ip addr add 192.0.2.100/32 dev lo"}},
		{Severity: Info, Code: CodeNoSegment, Message: "n"},
	}}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"findings":[
		{"severity":"error","code":"vip-missing","vip":"192.0.2.100","interface":"lo","message":"m","fix":["ip addr add 192.0.2.100/32 dev lo"]},
		{"severity":"info","code":"no-segment","message":"n"}]}`, string(b))
	var back Report
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, r, &back)
	assert.False(t, r.OK())
	assert.Equal(t, []string{CodeVIPMissing}, r.Codes(Warning))
	assert.Equal(t, "error   vip-missing: m | fix: ip addr add 192.0.2.100/32 dev lo", r.Findings[0].String())
	assert.True(t, (&Report{Findings: []Finding{{Severity: Warning}}}).OK())
}

func TestStateRecord(t *testing.T) {
	var st State
	assert.True(t, st.Empty())
	st.recordSysctl("k", "0", "1")
	st.recordSysctl("k", "1", "2") // a later write keeps the first old value
	assert.Equal(t, []SysctlChange{{Key: "k", Old: "0", New: "2"}}, st.Sysctls)
	a := Address{Interface: "lo", Prefix: netip.MustParsePrefix("192.0.2.100/32")}
	st.recordAdded(a)
	st.recordAdded(a)
	assert.Len(t, st.Added, 1)
	b, err := json.Marshal(&st)
	require.NoError(t, err)
	assert.JSONEq(t, `{"added":[{"interface":"lo","prefix":"192.0.2.100/32"}],"sysctls":[{"key":"k","old":"0","new":"2"}]}`, string(b))
}

// hexWord prints 4 address bytes the way the kernel does: as a host-order
// 32-bit number.
func hexWord(b []byte) string {
	const digits = "0123456789ABCDEF"
	v := binary.NativeEndian.Uint32(b)
	out := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		out[i] = digits[v&0xF]
		v >>= 4
	}
	return string(out)
}

func TestParseProcNet(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.100")
	v6 := netip.MustParseAddr("2001:db8::100")
	b4, b6 := v4.As4(), v6.As16()
	h6 := ""
	for i := 0; i < 16; i += 4 {
		h6 += hexWord(b6[i : i+4])
	}
	table := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: " + hexWord(b4[:]) + ":0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n" +
		"   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n" +
		"   2: " + h6 + ":2328 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0\n"
	es, err := parseProcNet([]byte(table))
	require.NoError(t, err)
	require.Equal(t, []socketEntry{
		{Local: netip.AddrPortFrom(v4, 80), State: stateListen},
		{Local: netip.AddrPortFrom(netip.IPv4Unspecified(), 8080), State: stateListen},
		{Local: netip.AddrPortFrom(v6, 9000), State: stateClose},
	}, es)

	assert.True(t, serves(es, TCP, v4, 80))
	assert.True(t, serves(es, TCP, netip.MustParseAddr("192.0.2.1"), 8080), "wildcard")
	assert.False(t, serves(es, TCP, v6, 8080), "0.0.0.0 does not cover IPv6")
	assert.False(t, serves(es, TCP, v4, 81))
	assert.True(t, serves(es, UDP, v6, 9000))
	assert.False(t, serves(es, TCP, v6, 9000), "a bound UDP socket is no TCP listener")
	dual := []socketEntry{{Local: netip.AddrPortFrom(netip.IPv6Unspecified(), 80), State: stateListen}}
	assert.True(t, serves(dual, TCP, v4, 80), ":: accepts IPv4 unless v6only")
	mapped := []socketEntry{{Local: netip.AddrPortFrom(netip.AddrFrom16(b4in6(b4)), 80), State: stateListen}}
	assert.True(t, serves(mapped, TCP, v4, 80))

	for _, bad := range []string{
		"0: 0100007F:0050",                    // too few fields
		"x 0100007F:0050 00000000:0000 0A",    // no sl colon
		"0: 0100007F0050 00000000:0000 0A",    // no port colon
		"0: 0100007F:50 00000000:0000 0A",     // short port
		"0: 0100007:0050 00000000:0000 0A",    // odd address
		"0: 0100007F00:0050 00000000:0000 0A", // 5 bytes
		"0: 0100007G:0050 00000000:0000 0A",   // not hex
		"0: 0100007F:0050 00000000:0000 1FF",  // state out of range
	} {
		_, err := parseProcNet([]byte(bad))
		assert.ErrorIs(t, err, errProcNet, bad)
	}
	es, err = parseProcNet(nil)
	require.NoError(t, err)
	assert.Empty(t, es)
}

func b4in6(b [4]byte) [16]byte {
	return netip.AddrFrom16(netip.AddrFrom4(b).As16()).As16()
}

func FuzzParseProcNet(f *testing.F) {
	f.Add([]byte("  sl  local_address rem_address   st\n   0: 0100007F:0050 00000000:0000 0A 0\n"))
	f.Add([]byte("0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 07\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseProcNet(data)
		if err != nil {
			if !errors.Is(err, errProcNet) {
				t.Fatalf("error not wrapping errProcNet: %v", err)
			}
			return
		}
		for _, e := range es {
			if !e.Local.IsValid() {
				t.Fatalf("invalid address from %q", data)
			}
		}
	})
}

func BenchmarkParseProcNet(b *testing.B) {
	line := "   0: 6402000C:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
	var data []byte
	for range 256 {
		data = append(data, line...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := parseProcNet(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestJudgeOwners(t *testing.T) {
	lb := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	third := net.HardwareAddr{2, 0, 0, 0, 0, 3}
	const conflict, noOwner, silent = "conflict", "no-owner", CodeBalancerSilent
	for _, fam := range []struct {
		vip               netip.Addr
		conflict, noOwner string
		proto             string
	}{
		{netip.MustParseAddr("192.0.2.100"), CodeARPConflict, CodeARPNoOwner, "ARP"},
		{netip.MustParseAddr("2001:db8::100"), CodeNDPConflict, CodeNDPNoOwner, "neighbour solicitations"},
	} {
		for _, tc := range []struct {
			name     string
			balancer net.HardwareAddr
			macs     []net.HardwareAddr
			want     []string
		}{
			{"unknown balancer, none", nil, nil, []string{noOwner}},
			{"unknown balancer, one", nil, []net.HardwareAddr{other}, nil},
			{"unknown balancer, two", nil, []net.HardwareAddr{lb, other}, []string{conflict}},
			{"balancer alone", lb, []net.HardwareAddr{lb}, nil},
			{"balancer and thief", lb, []net.HardwareAddr{lb, other}, []string{conflict}},
			{"thieves only", lb, []net.HardwareAddr{other, third}, []string{conflict, silent}},
			{"balancer silent", lb, nil, []string{silent}},
		} {
			t.Run(fam.vip.String()+"/"+tc.name, func(t *testing.T) {
				var want []string
				for _, w := range tc.want {
					switch w {
					case conflict:
						w = fam.conflict
					case noOwner:
						w = fam.noOwner
					}
					want = append(want, w)
				}
				r := &Report{}
				judgeOwners(r, fam.vip, "eth0", tc.balancer, tc.macs)
				assert.Equal(t, want, r.Codes(Info))
				for _, f := range r.Findings {
					assert.Equal(t, fam.vip, f.VIP)
					assert.Equal(t, "eth0", f.Interface)
					assert.NotEmpty(t, f.Fix)
					if f.Code != fam.noOwner {
						assert.Contains(t, f.Message, fam.proto)
					}
					if f.Code == fam.conflict && tc.balancer != nil {
						assert.NotContains(t, f.Message, lb.String()+",")
						assert.Contains(t, f.Message, other.String())
					}
				}
			})
		}
	}
}

func TestSolicitedNode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2001:db8:0:1::100", "ff02::1:ff00:100"},
		{"2001:db8::abcd:ef12:3456", "ff02::1:ff12:3456"},
		{"fe80::1", "ff02::1:ff00:1"},
	} {
		assert.Equal(t, tc.want, solicitedNode(netip.MustParseAddr(tc.in)).String())
	}
}

// na builds a neighbour advertisement body with the given options.
func na(target netip.Addr, opts ...[]byte) []byte {
	b := make([]byte, ndHeaderLen)
	b[0] = icmpNA
	b[4] = 0x60 // solicited, override
	t16 := target.As16()
	copy(b[8:], t16[:])
	for _, o := range opts {
		b = append(b, o...)
	}
	return b
}

func TestNSAndNA(t *testing.T) {
	vip := netip.MustParseAddr("2001:db8:0:1::100")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 7}
	ns := buildNS(vip, mac)
	require.Len(t, ns, 32)
	assert.Equal(t, byte(icmpNS), ns[0])
	assert.Equal(t, vip.AsSlice(), ns[8:24])
	assert.Equal(t, []byte{ndOptSourceLL, 1}, ns[24:26])
	assert.Equal(t, []byte(mac), ns[26:32])

	tlla := append([]byte{ndOptTargetLL, 1}, mac...)
	nonce := []byte{14, 1, 1, 2, 3, 4, 5, 6}
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"with tlla", na(vip, tlla), true},
		{"tlla after another option", na(vip, nonce, tlla), true},
		{"no tlla", na(vip), false},
		{"only other option", na(vip, nonce), false},
		{"zero-length option", na(vip, []byte{ndOptTargetLL, 0, 1, 2, 3, 4, 5, 6}), false},
		{"option overruns", na(vip, []byte{ndOptTargetLL, 2, 1, 2, 3, 4, 5, 6}), false},
		{"odd tail", na(vip, tlla, []byte{1}), false},
		{"multicast target", na(netip.MustParseAddr("ff02::1"), tlla), false},
		{"is a solicitation", ns, false},
		{"code 1", func() []byte { b := na(vip, tlla); b[1] = 1; return b }(), false},
		{"truncated", na(vip, tlla)[:20], false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, got, ok := parseNA(tc.b)
			require.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, vip, target)
				assert.Equal(t, mac, got)
			}
		})
	}
}

// Any input: parseNA never panics, and what it accepts is a well-formed
// advertisement of a unicast target with a six-byte MAC it does not alias.
func FuzzParseNA(f *testing.F) {
	vip := netip.MustParseAddr("2001:db8:0:1::100")
	mac := []byte{2, 0, 0, 0, 0, 7}
	f.Add(na(vip, append([]byte{ndOptTargetLL, 1}, mac...)))
	f.Add(na(vip, []byte{14, 1, 1, 2, 3, 4, 5, 6}, append([]byte{ndOptTargetLL, 1}, mac...)))
	f.Add(na(vip, []byte{ndOptTargetLL, 0}))
	f.Add(buildNS(vip, mac))
	f.Fuzz(func(t *testing.T, b []byte) {
		target, m, ok := parseNA(b)
		if !ok {
			return
		}
		require.GreaterOrEqual(t, len(b), ndHeaderLen)
		require.Equal(t, byte(icmpNA), b[0])
		require.False(t, target.IsMulticast())
		require.Len(t, m, 6)
		was := net.HardwareAddr(bytes.Clone(m))
		for i := range b {
			b[i] ^= 0xff
		}
		require.Equal(t, was, m, "the MAC aliases the input buffer")
	})
}
