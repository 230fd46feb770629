package realserver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/dsr/realserver"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

func intp(v int) *int { return &v }

// snapshot is everything Prepare may touch: every interface with its state
// and addresses, and the DSR sysctls of all, default and every interface.
func snapshot(t *testing.T, h *netlab.Host) []string {
	t.Helper()
	var out []string
	require.NoError(t, h.Do(func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		scopes := []string{"all", "default"}
		for _, l := range links {
			a := l.Attrs()
			out = append(out, fmt.Sprintf("link %s %s up=%v", a.Name, l.Type(), a.Flags&net.FlagUp != 0))
			addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
			if err != nil {
				return err
			}
			for _, ad := range addrs {
				if ad.IP.IsLinkLocalUnicast() {
					continue // the kernel adds these on its own time after link-up
				}
				out = append(out, fmt.Sprintf("addr %s %s flags=%#x", a.Name, ad.IPNet, ad.Flags&(unix.IFA_F_NODAD|unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED)))
			}
			scopes = append(scopes, a.Name)
		}
		for _, s := range scopes {
			for _, k := range []string{"ipv4.arp_ignore", "ipv4.arp_announce", "ipv4.rp_filter",
				"ipv6.disable_ipv6", "ipv6.proxy_ndp", "ipv6.forwarding", "ipv6.accept_dad"} {
				fam, name, _ := strings.Cut(k, ".")
				key := "net." + fam + ".conf." + strings.ReplaceAll(s, ".", "/") + "." + name
				v, err := readProcSys(key)
				if err != nil {
					return err
				}
				out = append(out, key+"="+v)
			}
		}
		proxies, err := netlink.NeighProxyList(0, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, p := range proxies {
			out = append(out, fmt.Sprintf("proxy %d %s", p.LinkIndex, p.IP))
		}
		return nil
	}))
	sort.Strings(out)
	return out
}

func check(t *testing.T, h *netlab.Host, cfg *realserver.Config) *realserver.Report {
	t.Helper()
	var r *realserver.Report
	require.NoError(t, h.Do(func() error {
		var err error
		r, err = realserver.Check(context.Background(), cfg)
		return err
	}))
	return r
}

func prepare(t *testing.T, h *netlab.Host, cfg *realserver.Config, st *realserver.State) {
	t.Helper()
	require.NoError(t, h.Do(func() error { return realserver.Prepare(cfg, st) }))
}

func undo(t *testing.T, h *netlab.Host, st *realserver.State) {
	t.Helper()
	require.NoError(t, h.Do(func() error { return realserver.Undo(st) }))
}

// Every misconfiguration a server can have on its own is built for real in
// a namespace, found by Check with the right code, gone after Prepare (or,
// for the listener, after a service starts), unchanged by a second Prepare,
// and Undo restores the namespace exactly.
func TestIntegrationFindingsPrepareUndo(t *testing.T) {
	vip := netlab.DefaultVIP4
	type tc struct {
		name  string
		opts  netlab.ServerOptions
		setup func(h *netlab.Host) error // extra misconfiguration
		cfg   realserver.Config
		want  []string // Error and Warning codes before Prepare
		// listen starts the missing service (Prepare cannot).
		listen string
	}
	cases := []tc{
		{name: "vip missing", opts: netlab.ServerOptions{NoVIP: true},
			want: []string{realserver.CodeVIPMissing}},
		{name: "arp_ignore 0", opts: netlab.ServerOptions{ARPIgnore: intp(0)},
			want: []string{realserver.CodeARPIgnore}},
		{name: "arp_ignore 3 on all", setup: func(h *netlab.Host) error { return h.Sysctl("net.ipv4.conf.all.arp_ignore", "3") },
			want: []string{realserver.CodeARPIgnore}},
		{name: "arp_announce 0", opts: netlab.ServerOptions{ARPAnnounce: intp(0)},
			want: []string{realserver.CodeARPAnnounce}},
		{name: "arp_announce 5 on eth0", setup: func(h *netlab.Host) error { return h.Sysctl("net.ipv4.conf.eth0.arp_announce", "5") },
			want: []string{realserver.CodeARPAnnounce}},
		{name: "rp_filter strict", setup: func(h *netlab.Host) error { return h.Sysctl("net.ipv4.conf.eth0.rp_filter", "1") },
			want: []string{realserver.CodeRPFilterStrict}},
		{name: "vip on eth0", opts: netlab.ServerOptions{NoVIP: true},
			setup: func(h *netlab.Host) error {
				return h.Do(func() error {
					l, err := netlink.LinkByName("eth0")
					if err != nil {
						return err
					}
					return netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}})
				})
			},
			want: []string{realserver.CodeVIPMissing, realserver.CodeVIPOnARPInterface}},
		{name: "tcp not listening", opts: netlab.ServerOptions{NoProcess: true},
			cfg:  realserver.Config{Port: 8080},
			want: []string{realserver.CodeNotListening}, listen: "tcp"},
		{name: "udp not listening", opts: netlab.ServerOptions{NoProcess: true},
			cfg:  realserver.Config{Port: 9999, Protocol: realserver.UDP},
			want: []string{realserver.CodeNotListening}, listen: "udp"},
		{name: "everything wrong", opts: netlab.ServerOptions{NoVIP: true, ARPIgnore: intp(0), ARPAnnounce: intp(0), NoProcess: true},
			setup: func(h *netlab.Host) error { return h.Sysctl("net.ipv4.conf.all.rp_filter", "1") },
			cfg:   realserver.Config{Port: 8080},
			want: []string{realserver.CodeVIPMissing, realserver.CodeARPIgnore, realserver.CodeARPAnnounce,
				realserver.CodeRPFilterStrict, realserver.CodeNotListening}, listen: "tcp"},
	}
	lab := netlab.NewT(t, &netlab.Config{Servers: len(cases), Server: func(i int) netlab.ServerOptions { return cases[i].opts }})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := lab.Servers[i]
			// A known baseline for what the lab does not set itself.
			for _, k := range []string{"all", "eth0"} {
				require.NoError(t, h.Sysctl("net.ipv4.conf."+k+".rp_filter", "0"))
			}
			if c.setup != nil {
				require.NoError(t, c.setup(h))
			}
			cfg := c.cfg
			cfg.VIPs = []netip.Addr{vip}
			cfg.ARPWindow = -1 // ARP ownership has its own test

			r := check(t, h, &cfg)
			assert.ElementsMatch(t, c.want, r.Codes(realserver.Warning), "findings: %v", r.Findings)
			assert.False(t, r.OK() && slices.Contains(c.want, realserver.CodeVIPMissing))
			for _, f := range r.Findings {
				if f.Severity > realserver.Info {
					assert.NotEmpty(t, f.Fix, "finding without a fix: %v", f)
				}
			}

			before := snapshot(t, h)
			var st realserver.State
			prepare(t, h, &cfg, &st)
			assert.False(t, st.Empty() && c.listen == "", "Prepare changed nothing")
			after := snapshot(t, h)

			// Idempotent: nothing changes, the record stays the same.
			st2 := st
			st2.Sysctls = slices.Clone(st.Sysctls)
			prepare(t, h, &cfg, &st)
			assert.Equal(t, st2, st)
			assert.Equal(t, after, snapshot(t, h))

			if c.listen != "" {
				ctx := context.Background()
				addr := netip.AddrPortFrom(vip, cfg.Port).String()
				if c.listen == "tcp" {
					ln, err := h.Listen(ctx, "tcp4", addr)
					require.NoError(t, err)
					defer ln.Close()
				} else {
					pc, err := h.ListenPacket(ctx, "udp4", addr)
					require.NoError(t, err)
					defer pc.Close()
				}
			}
			r = check(t, h, &cfg)
			assert.Empty(t, r.Codes(realserver.Warning), "after Prepare: %v", r.Findings)
			assert.True(t, r.OK())

			undo(t, h, &st)
			assert.True(t, st.Empty())
			assert.Equal(t, before, snapshot(t, h))
			// And the problems are back.
			r = check(t, h, &cfg)
			if c.listen != "" {
				assert.ElementsMatch(t, slices.DeleteFunc(slices.Clone(c.want), func(s string) bool { return s == realserver.CodeNotListening }), r.Codes(realserver.Warning))
			} else {
				assert.ElementsMatch(t, c.want, r.Codes(realserver.Warning))
			}
		})
	}
}

// IPv6 VIPs go on lo as /128 next to the IPv4 /32; a VIP interface that is
// down is found, brought up by Prepare and set down again by Undo.
func TestIntegrationIPv6AndInterfaceDown(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, IPv6: true, Server: func(int) netlab.ServerOptions {
		return netlab.ServerOptions{NoVIP: true, NoProcess: true}
	}})
	h := lab.Servers[0]
	require.Len(t, lab.VIPs, 2)
	cfg := &realserver.Config{VIPs: lab.VIPs, ARPWindow: -1, NDPWindow: -1}
	require.NoError(t, h.Do(func() error {
		l, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	}))

	r := check(t, h, cfg)
	assert.Equal(t, []string{realserver.CodeInterfaceDown, realserver.CodeVIPMissing, realserver.CodeVIPMissing}, r.Codes(realserver.Warning), "%v", r.Findings)
	assert.Equal(t, []string{"ip link set lo up"}, r.Findings[0].Fix)
	assert.Equal(t, []string{"ip addr add 2001:db8:0:1::100/128 dev lo nodad"}, r.Findings[2].Fix)

	before := snapshot(t, h)
	var st realserver.State
	prepare(t, h, cfg, &st)
	assert.Equal(t, []string{"lo"}, st.SetUp)
	addrs, err := h.Addrs("lo")
	require.NoError(t, err)
	assert.Subset(t, addrs, []netip.Prefix{netip.PrefixFrom(lab.VIPs[0], 32), netip.PrefixFrom(lab.VIPs[1], 128)})

	r = check(t, h, cfg)
	assert.True(t, r.OK(), "%v", r.Findings)
	assert.Empty(t, r.Codes(realserver.Warning), "%v", r.Findings)
	assert.Equal(t, []string{realserver.CodeARPUnchecked, realserver.CodeNDPUnchecked}, r.Codes(realserver.Info), "both probes off")

	undo(t, h, &st)
	assert.Equal(t, before, snapshot(t, h))
}

// A dummy VIP interface that does not exist is reported with the commands
// that create it; Prepare creates it and Undo deletes it.
func TestIntegrationDummyInterface(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, Server: func(int) netlab.ServerOptions {
		return netlab.ServerOptions{NoVIP: true}
	}})
	h := lab.Servers[0]
	cfg := &realserver.Config{VIPs: lab.VIPs, Interface: "dsr0", ARPWindow: -1, NDPWindow: -1}

	r := check(t, h, cfg)
	require.Equal(t, []string{realserver.CodeVIPMissing}, r.Codes(realserver.Warning))
	assert.Equal(t, []string{"ip link add dsr0 type dummy", "ip link set dsr0 up", "ip addr add 192.0.2.100/32 dev dsr0"}, r.Findings[0].Fix)

	before := snapshot(t, h)
	var st realserver.State
	err := h.Do(func() error { return realserver.Prepare(cfg, &st) })
	if errors.Is(err, unix.EOPNOTSUPP) {
		// A kernel without dummy interfaces (no CONFIG_DUMMY): Prepare must
		// fail cleanly, say why, and leave nothing behind.
		t.Logf("this kernel has no dummy interface support: checking the failure path (%v)", err)
		assert.ErrorContains(t, err, "dsr0")
		assert.True(t, st.Empty(), "a failed Prepare records nothing: %+v", st)
		assert.Equal(t, before, snapshot(t, h), "a failed Prepare changes nothing")
		return
	}
	require.NoError(t, err)
	assert.Equal(t, []string{"dsr0"}, st.Created)
	assert.Empty(t, st.SetUp)
	r = check(t, h, cfg)
	assert.True(t, r.OK(), "%v", r.Findings)
	undo(t, h, &st)
	assert.Equal(t, before, snapshot(t, h))
}

// Undo leaves alone what someone else changed after Prepare.
func TestIntegrationUndoRespectsLaterChanges(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, Server: func(int) netlab.ServerOptions {
		return netlab.ServerOptions{ARPIgnore: intp(0)}
	}})
	h := lab.Servers[0]
	cfg := &realserver.Config{VIPs: lab.VIPs, ARPWindow: -1, NDPWindow: -1}
	var st realserver.State
	prepare(t, h, cfg, &st)
	require.Len(t, st.Sysctls, 1)
	key := st.Sysctls[0].Key
	require.NoError(t, h.Sysctl(key, "2"))
	err := h.Do(func() error { return realserver.Undo(&st) })
	require.ErrorIs(t, err, realserver.ErrModified)
	v, err := h.ReadSysctl(key)
	require.NoError(t, err)
	assert.Equal(t, "2", v)
	assert.True(t, st.Empty())
}

// arpResponder answers who-has vip with the balancer's MAC, standing in
// for the balancer's ARP responder.
func arpResponder(t *testing.T, h *netlab.Host, vip netip.Addr) {
	t.Helper()
	var conn *packet.Conn
	require.NoError(t, h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
		return err
	}))
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 1514)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			var f ethernet.Frame
			var p arp.Packet
			if f.UnmarshalBinary(buf[:n]) != nil || p.UnmarshalBinary(f.Payload) != nil {
				continue
			}
			if p.Operation != arp.OperationRequest || p.TargetIP != vip {
				continue
			}
			rep, err := arp.NewPacket(arp.OperationReply, h.MAC, vip, p.SenderHardwareAddr, p.SenderIP)
			if err != nil {
				continue
			}
			pb, _ := rep.MarshalBinary()
			fb, _ := (&ethernet.Frame{Destination: p.SenderHardwareAddr, Source: h.MAC, EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
			_, _ = conn.WriteTo(fb, &packet.Addr{HardwareAddr: p.SenderHardwareAddr})
		}
	}()
}

func arpCodes(r *realserver.Report) []string {
	var out []string
	for _, f := range r.Findings {
		switch f.Code {
		case realserver.CodeARPConflict, realserver.CodeARPNoOwner, realserver.CodeBalancerSilent, realserver.CodeARPUnchecked:
			out = append(out, f.Code)
		}
	}
	return out
}

// Who answers ARP for the VIP, seen from a correct server s0, while s1
// (arp_ignore=0, VIP on lo) steals it and a stand-in balancer answers.
func TestIntegrationARPOwnership(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, Server: func(i int) netlab.ServerOptions {
		if i == 1 {
			return netlab.ServerOptions{ARPIgnore: intp(0)}
		}
		return netlab.ServerOptions{}
	}})
	s0, s1, lb, vip := lab.Servers[0], lab.Servers[1], lab.Balancer, lab.VIPs[0]
	// A window well above the default: on a loaded machine a responder
	// in another namespace can take longer than 300 ms to answer, and a
	// missed answer would read as a silent balancer.
	withMAC := &realserver.Config{VIPs: lab.VIPs, BalancerMAC: lb.MAC, ARPWindow: time.Second}
	noMAC := &realserver.Config{VIPs: lab.VIPs, ARPWindow: time.Second}

	r := check(t, s0, withMAC)
	assert.ElementsMatch(t, []string{realserver.CodeARPConflict, realserver.CodeBalancerSilent}, arpCodes(r), "%v", r.Findings)
	for _, f := range r.Findings {
		if f.Code == realserver.CodeARPConflict {
			assert.Contains(t, f.Message, s1.MAC.String())
			assert.Equal(t, "eth0", f.Interface)
		}
	}
	assert.False(t, r.OK())

	var st realserver.State
	prepare(t, s1, noMAC, &st)
	r = check(t, s0, noMAC)
	assert.Equal(t, []string{realserver.CodeARPNoOwner}, arpCodes(r), "%v", r.Findings)
	assert.True(t, r.OK(), "no owner is a warning")

	arpResponder(t, lb, vip)
	assert.Empty(t, arpCodes(check(t, s0, noMAC)))
	assert.Empty(t, arpCodes(check(t, s0, withMAC)))

	undo(t, s1, &st)
	r = check(t, s0, noMAC)
	assert.Equal(t, []string{realserver.CodeARPConflict}, arpCodes(r), "%v", r.Findings)
	assert.Empty(t, arpCodes(check(t, s1, withMAC)) /* s1 cannot see itself */, "")

	// A cancelled context ends the probe at once, without error.
	require.NoError(t, s0.Do(func() error {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		_, err := realserver.Check(ctx, &realserver.Config{VIPs: lab.VIPs, ARPWindow: 10 * time.Second})
		if time.Since(start) > 5*time.Second {
			return errors.New("probe ignored the context")
		}
		return err
	}))
}
