package realserver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/dsr/realserver"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// addAddr6 puts p on dev in the calling thread's namespace, with or without
// duplicate address detection.
func addAddr6(dev string, p netip.Prefix, nodad bool) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
	if nodad {
		a.Flags = unix.IFA_F_NODAD
	}
	return netlink.AddrAdd(l, a)
}

func addProxy6(dev string, ip netip.Addr) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return err
	}
	return netlink.NeighAdd(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY, IP: ip.AsSlice()})
}

// addrFlags returns the IFA_F_* flags of ip on dev in h's namespace.
func addrFlags(h *netlab.Host, dev string, ip netip.Addr) (int, error) {
	flags := -1
	err := h.Do(func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		as, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.IP.Equal(ip.AsSlice()) {
				flags = a.Flags
			}
		}
		return nil
	})
	if err == nil && flags < 0 {
		err = fmt.Errorf("%v is not on %s", ip, dev)
	}
	return flags, err
}

// waitFlags polls until ip on dev carries want, with a deadline: duplicate
// address detection ends on the kernel's timers, not on an event a test
// can wait for.
func waitFlags(h *netlab.Host, dev string, ip netip.Addr, want int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := addrFlags(h, dev, ip)
		if err == nil && f&want == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v on %s: flags %#x, want %#x (%v)", ip, dev, f, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitJoined polls, with a deadline, until dev in h has joined the
// solicited-node multicast group of ip (/proc/net/igmp6 of its namespace).
func waitJoined(h *netlab.Host, dev string, ip netip.Addr) error {
	a := ip.As16()
	group := fmt.Sprintf("ff0200000000000000000001ff%02x%02x%02x", a[13], a[14], a[15])
	deadline := time.Now().Add(10 * time.Second)
	for {
		var joined bool
		err := h.Do(func() error {
			b, err := os.ReadFile("/proc/thread-self/net/igmp6")
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(b), "\n") {
				f := strings.Fields(line)
				if len(f) >= 3 && f[1] == dev && f[2] == group {
					joined = true
				}
			}
			return nil
		})
		if err != nil || joined {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not join %s", dev, group)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holderPair makes dsr0 in h, an interface that runs duplicate address
// detection, with its veth peer dsr0p in peer's namespace (nil: no peer
// namespace, the peer stays in h and down, so dsr0 has no carrier).
func holderPair(h, peer *netlab.Host) error {
	var peerNS netlink.NsFd = -1
	if peer != nil {
		ns, err := netns.GetFromName(peer.NS)
		if err != nil {
			return err
		}
		defer ns.Close()
		peerNS = netlink.NsFd(ns)
	}
	err := h.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dsr0"}, PeerName: "dsr0p"}
		if peer != nil {
			v.PeerNamespace = peerNS
		}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		l, err := netlink.LinkByName("dsr0")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		return err
	}
	// The lab turns detection off by default; this interface runs it.
	return h.Sysctl("net.ipv6.conf.dsr0.accept_dad", "1")
}

// Every IPv6 (and one dual-stack) misconfiguration built for real in a
// namespace: found by Check with the right code and a fix, gone after
// Prepare, unchanged by a second Prepare, and back after Undo, which
// restores the namespace exactly.
func TestIntegrationIPv6FindingsPrepareUndo(t *testing.T) {
	vip4, vip6 := netlab.DefaultVIP4, netlab.DefaultVIP6
	type tc struct {
		name  string
		opts  netlab.ServerOptions
		setup func(h, spare *netlab.Host) error
		// settle waits, after Undo, for a state the kernel reaches on
		// its own timers.
		settle func(h *netlab.Host) error
		cfg    realserver.Config
		want   []string // Error and Warning codes before Prepare
		errors bool     // whether any of want is an Error
	}
	noVIP := netlab.ServerOptions{NoVIP: true}
	cases := []tc{
		{name: "vip missing", opts: noVIP, want: []string{realserver.CodeVIPMissing}, errors: true},
		{name: "vip on eth0", opts: noVIP,
			setup: func(h, _ *netlab.Host) error {
				return h.Do(func() error { return addAddr6("eth0", netip.PrefixFrom(vip6, 128), true) })
			},
			want: []string{realserver.CodeVIPMissing, realserver.CodeVIPOnNDPInterface}, errors: true},
		{name: "ipv6 disabled on lo", opts: noVIP,
			setup: func(h, _ *netlab.Host) error { return h.Sysctl("net.ipv6.conf.lo.disable_ipv6", "1") },
			want:  []string{realserver.CodeIPv6Disabled, realserver.CodeVIPMissing}, errors: true},
		{name: "ipv6 disabled on eth0",
			setup: func(h, _ *netlab.Host) error { return h.Sysctl("net.ipv6.conf.eth0.disable_ipv6", "1") },
			want:  []string{realserver.CodeIPv6Disabled}, errors: true},
		{name: "proxy_ndp on eth0",
			setup: func(h, _ *netlab.Host) error { return h.Sysctl("net.ipv6.conf.eth0.proxy_ndp", "1") },
			want:  []string{realserver.CodeProxyNDP}},
		{name: "proxy_ndp on all",
			setup: func(h, _ *netlab.Host) error { return h.Sysctl("net.ipv6.conf.all.proxy_ndp", "1") },
			want:  []string{realserver.CodeProxyNDP}},
		{name: "proxy entry",
			setup: func(h, _ *netlab.Host) error { return h.Do(func() error { return addProxy6("eth0", vip6) }) },
			want:  []string{realserver.CodeProxyNeighbour}},
		{name: "proxy answering",
			setup: func(h, _ *netlab.Host) error {
				for _, k := range []string{"net.ipv6.conf.eth0.forwarding", "net.ipv6.conf.eth0.proxy_ndp"} {
					if err := h.Sysctl(k, "1"); err != nil {
						return err
					}
				}
				return h.Do(func() error { return addProxy6("eth0", vip6) })
			},
			want: []string{realserver.CodeProxyNDP, realserver.CodeProxyNeighbour}, errors: true},
		{name: "vip tentative", opts: noVIP, cfg: realserver.Config{Interface: "dsr0"},
			setup: func(h, _ *netlab.Host) error {
				if err := holderPair(h, nil); err != nil {
					return err
				}
				// No carrier: detection cannot run, the VIP stays tentative.
				return h.Do(func() error { return addAddr6("dsr0", netip.PrefixFrom(vip6, 128), false) })
			},
			want: []string{realserver.CodeVIPTentative}, errors: true},
		{name: "vip dadfailed", opts: noVIP, cfg: realserver.Config{Interface: "dsr0"},
			setup: func(h, spare *netlab.Host) error {
				if err := holderPair(h, spare); err != nil {
					return err
				}
				if err := spare.Do(func() error {
					l, err := netlink.LinkByName("dsr0p")
					if err != nil {
						return err
					}
					if err := netlink.LinkSetUp(l); err != nil {
						return err
					}
					return addAddr6("dsr0p", netip.PrefixFrom(vip6, 128), true)
				}); err != nil {
					return err
				}
				if err := h.Do(func() error { return addAddr6("dsr0", netip.PrefixFrom(vip6, 128), false) }); err != nil {
					return err
				}
				return waitFlags(h, "dsr0", vip6, unix.IFA_F_DADFAILED)
			},
			settle: func(h *netlab.Host) error { return waitFlags(h, "dsr0", vip6, unix.IFA_F_DADFAILED) },
			want:   []string{realserver.CodeVIPDADFailed}, errors: true},
		{name: "dual-stack everything wrong", opts: netlab.ServerOptions{NoVIP: true, ARPIgnore: intp(0)},
			cfg: realserver.Config{VIPs: []netip.Addr{vip4, vip6}},
			setup: func(h, _ *netlab.Host) error {
				if err := h.Sysctl("net.ipv6.conf.eth0.proxy_ndp", "1"); err != nil {
					return err
				}
				return h.Do(func() error { return addProxy6("eth0", vip6) })
			},
			want: []string{realserver.CodeVIPMissing, realserver.CodeVIPMissing, realserver.CodeARPIgnore,
				realserver.CodeProxyNDP, realserver.CodeProxyNeighbour}, errors: true},
	}
	// One spare server is the far end of the dadfailed case's holder.
	lab := netlab.NewT(t, &netlab.Config{Servers: len(cases) + 1, IPv6: true, NoServerProcesses: true,
		Server: func(i int) netlab.ServerOptions {
			if i < len(cases) {
				return cases[i].opts
			}
			return netlab.ServerOptions{}
		}})
	spare := lab.Servers[len(cases)]
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := lab.Servers[i]
			if c.setup != nil {
				require.NoError(t, c.setup(h, spare))
			}
			cfg := c.cfg
			if cfg.VIPs == nil {
				cfg.VIPs = []netip.Addr{vip6}
			}
			cfg.ARPWindow, cfg.NDPWindow = -1, -1 // ownership has its own test

			r := check(t, h, &cfg)
			assert.ElementsMatch(t, c.want, r.Codes(realserver.Warning), "findings: %v", r.Findings)
			assert.Equal(t, !c.errors, r.OK(), "findings: %v", r.Findings)
			for _, f := range r.Findings {
				if f.Severity > realserver.Info {
					assert.NotEmpty(t, f.Fix, "finding without a fix: %v", f)
				}
			}

			before := snapshot(t, h)
			var st realserver.State
			prepare(t, h, &cfg, &st)
			assert.False(t, st.Empty(), "Prepare changed nothing")
			after := snapshot(t, h)

			// Idempotent: nothing changes, the record stays the same.
			st2 := st
			st2.Sysctls = slices.Clone(st.Sysctls)
			prepare(t, h, &cfg, &st)
			assert.Equal(t, st2, st)
			assert.Equal(t, after, snapshot(t, h))

			r = check(t, h, &cfg)
			assert.Empty(t, r.Codes(realserver.Warning), "after Prepare: %v", r.Findings)
			assert.True(t, r.OK())

			undo(t, h, &st)
			assert.True(t, st.Empty())
			if c.settle != nil {
				require.NoError(t, c.settle(h))
			}
			assert.Equal(t, before, snapshot(t, h))
			r = check(t, h, &cfg)
			assert.ElementsMatch(t, c.want, r.Codes(realserver.Warning), "after Undo: %v", r.Findings)
		})
	}
}

func ndpCodes(r *realserver.Report) []string {
	var out []string
	for _, f := range r.Findings {
		switch f.Code {
		case realserver.CodeNDPConflict, realserver.CodeNDPNoOwner, realserver.CodeBalancerSilent, realserver.CodeNDPUnchecked:
			out = append(out, f.Code)
		}
	}
	return out
}

// Who answers neighbour solicitations for an IPv6 VIP, seen from a correct
// server s0. A server with the VIP on lo does not answer (Linux answers only
// for addresses on the receiving interface or proxied ones); s1 proxying
// the VIP does, and a stand-in balancer holding the VIP on its segment
// interface does.
func TestIntegrationNDPOwnership(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, IPv6: true, NoServerProcesses: true})
	s0, s1, lb := lab.Servers[0], lab.Servers[1], lab.Balancer
	vip := netlab.DefaultVIP6
	v6 := []netip.Addr{vip}
	withMAC := &realserver.Config{VIPs: v6, BalancerMAC: lb.MAC, ARPWindow: -1}
	noMAC := &realserver.Config{VIPs: v6, ARPWindow: -1}

	r := check(t, s0, noMAC)
	assert.Equal(t, []string{realserver.CodeNDPNoOwner}, ndpCodes(r), "servers with the VIP on lo answer: %v", r.Findings)

	// s1 proxies the VIP on its segment interface.
	for _, k := range []string{"net.ipv6.conf.eth0.forwarding", "net.ipv6.conf.eth0.proxy_ndp"} {
		require.NoError(t, s1.Sysctl(k, "1"))
	}
	require.NoError(t, s1.Do(func() error { return addProxy6("eth0", vip) }))
	r = check(t, s0, withMAC)
	assert.ElementsMatch(t, []string{realserver.CodeNDPConflict, realserver.CodeBalancerSilent}, ndpCodes(r), "%v", r.Findings)
	for _, f := range r.Findings {
		if f.Code == realserver.CodeNDPConflict {
			assert.Contains(t, f.Message, s1.MAC.String())
			assert.Equal(t, "eth0", f.Interface)
			assert.Equal(t, vip, f.VIP)
		}
	}
	assert.False(t, r.OK())
	// s1 sees its own mistakes without the probe.
	r1 := check(t, s1, &realserver.Config{VIPs: v6, ARPWindow: -1, NDPWindow: -1})
	assert.ElementsMatch(t, []string{realserver.CodeProxyNDP, realserver.CodeProxyNeighbour}, r1.Codes(realserver.Error), "%v", r1.Findings)

	var st realserver.State
	prepare(t, s1, noMAC, &st)
	r = check(t, s0, noMAC)
	assert.Equal(t, []string{realserver.CodeNDPNoOwner}, ndpCodes(r), "%v", r.Findings)
	assert.True(t, r.OK(), "no owner is a warning")

	// The balancer's stand-in owns the VIP on the segment.
	require.NoError(t, lb.Do(func() error { return addAddr6("eth0", netip.PrefixFrom(vip, 128), true) }))
	// The kernel joins the VIP's solicited-node group from a work queue
	// after the address is added; until then it ignores solicitations.
	require.NoError(t, waitJoined(lb, "eth0", vip))
	assert.Empty(t, ndpCodes(check(t, s0, noMAC)))
	assert.Empty(t, ndpCodes(check(t, s0, withMAC)))

	undo(t, s1, &st)
	r = check(t, s0, noMAC)
	assert.Equal(t, []string{realserver.CodeNDPConflict}, ndpCodes(r), "%v", r.Findings)
	assert.Contains(t, r.Findings[len(r.Findings)-1].Message, "2 hosts")

	// A cancelled context ends the probe at once, without error.
	require.NoError(t, s0.Do(func() error {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		_, err := realserver.Check(ctx, &realserver.Config{VIPs: v6, ARPWindow: -1, NDPWindow: 10 * time.Second})
		if time.Since(start) > 5*time.Second {
			return errors.New("probe ignored the context")
		}
		return err
	}))
}

// A server whose kernel has no IPv6 at all cannot be simulated in a
// namespace (that needs ipv6.disable=1 at boot); what can be: IPv6 turned
// off everywhere, as the IPv4-only lab does. An IPv6 VIP there is errors
// with fixes, never a clean bill of health, and Prepare makes it work.
func TestIntegrationIPv6OffEverywhere(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, NoServerProcesses: true, Server: func(int) netlab.ServerOptions {
		return netlab.ServerOptions{NoVIP: true}
	}})
	h := lab.Servers[0]
	cfg := &realserver.Config{VIPs: []netip.Addr{netlab.DefaultVIP6}, ARPWindow: -1}
	r := check(t, h, cfg)
	assert.False(t, r.OK())
	assert.ElementsMatch(t, []string{realserver.CodeIPv6Disabled, realserver.CodeVIPMissing, realserver.CodeIPv6Disabled}, r.Codes(realserver.Error), "%v", r.Findings)

	before := snapshot(t, h)
	var st realserver.State
	prepare(t, h, cfg, &st)
	r = check(t, h, cfg)
	assert.Empty(t, r.Codes(realserver.Error), "%v", r.Findings)
	undo(t, h, &st)
	assert.Equal(t, before, snapshot(t, h))
}
