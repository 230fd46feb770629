package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// halfOpen counts TCP sockets (IPv4 and IPv6) in SYN_RECV towards local
// port in host's namespace (read on a thread inside it).
func halfOpen(t *testing.T, h *netlab.Host, port uint16) int {
	var n int
	require.NoError(t, h.Do(func() error {
		for _, name := range []string{"tcp", "tcp6"} {
			f, err := os.Open("/proc/thread-self/net/" + name)
			if errors.Is(err, fs.ErrNotExist) {
				continue // IPv6 disabled
			}
			if err != nil {
				return err
			}
			sc := bufio.NewScanner(f)
			suffix := fmt.Sprintf(":%04X", port)
			for sc.Scan() {
				fs := strings.Fields(sc.Text())
				if len(fs) > 3 && strings.HasSuffix(fs[1], suffix) && fs[3] == "03" {
					n++
				}
			}
			f.Close()
			if err := sc.Err(); err != nil {
				return err
			}
		}
		return nil
	}))
	return n
}

// dsrLab holds what the DSR-path integration tests share.
type dsrLab struct {
	t   *testing.T
	lab *netlab.Lab
}

func (l dsrLab) newChecker(cfg *DSRPathConfig) *DSRPathChecker {
	var c *DSRPathChecker
	require.NoError(l.t, l.lab.Balancer.Do(func() error {
		var err error
		c, err = NewDSRPathChecker(cfg)
		return err
	}))
	l.t.Cleanup(func() { assert.NoError(l.t, c.Close()) })
	return c
}

func check(c Checker, tg Target) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Check(ctx, tg)
}

func TestIntegrationDSRPathChecker(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{
		Servers: 2,
		Server: func(i int) netlab.ServerOptions {
			return netlab.ServerOptions{NoVIP: i == 1}
		},
	})
	good, noVIP := lab.Servers[0], lab.Servers[1]
	vip, port := lab.VIPs[0], lab.Cfg.HTTPPort

	newChecker := dsrLab{t, lab}.newChecker
	dsrTarget := func(h *netlab.Host) Target {
		return Target{Addr: h.IP, Port: port, VIP: vip, MAC: h.MAC}
	}

	own := newChecker(&DSRPathConfig{Interface: lab.Balancer.Link})
	// A probe source no host owns: the balancer's kernel never RSTs the
	// SYN-ACK and the checker answers the backend's ARP for it.
	spare := newChecker(&DSRPathConfig{Interface: lab.Balancer.Link, Source4: netip.MustParseAddr("192.0.2.250")})

	t.Run("correct server passes", func(t *testing.T) {
		for _, c := range []*DSRPathChecker{own, spare} {
			for range 3 {
				require.NoError(t, check(c, dsrTarget(good)))
			}
		}
		assert.Zero(t, halfOpen(t, good, port), "the probe's RST leaves no half-open connection")
	})

	t.Run("server without loopback VIP passes TCP but fails DSR path", func(t *testing.T) {
		require.NoError(t, lab.Balancer.Do(func() error {
			return check(&TCPChecker{}, Target{Addr: noVIP.IP, Port: port})
		}), "the service listens on the server's own address")
		err := check(own, dsrTarget(noVIP))
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "VIP missing")
		assert.Error(t, check(spare, dsrTarget(noVIP)))
	})

	t.Run("stopped service is refused on the VIP", func(t *testing.T) {
		require.NoError(t, lab.StopServer(0))
		err := check(own, dsrTarget(good))
		assert.ErrorIs(t, err, ErrUnexpectedResponse)
		require.NoError(t, lab.StartServer(0))
		require.NoError(t, check(own, dsrTarget(good)), "back once the service listens again")
	})

	t.Run("concurrent probes", func(t *testing.T) {
		errs := make(chan error, 20)
		for i := range 20 {
			tg := dsrTarget(good)
			if i%2 == 1 {
				tg = dsrTarget(noVIP)
			}
			go func() { errs <- check(own, tg) }()
		}
		var ok, failed int
		for range 20 {
			if recv(t, errs, "probe result") == nil {
				ok++
			} else {
				failed++
			}
		}
		assert.Equal(t, 10, ok)
		assert.Equal(t, 10, failed)
	})

	t.Run("incomplete target", func(t *testing.T) {
		for _, tc := range []struct {
			change func(*Target)
			want   string
		}{
			{func(tg *Target) { tg.MAC = nil }, "the target has no 6-byte Ethernet MAC"},
			{func(tg *Target) { tg.Port = 0 }, "the target has no port"},
			{func(tg *Target) { tg.VIP = netip.Addr{} }, "the target has no VIP"},
		} {
			tg := dsrTarget(good)
			tc.change(&tg)
			err := check(own, tg)
			assert.ErrorIs(t, err, ErrTargetIncomplete)
			assert.ErrorContains(t, err, tc.want)
		}
	})

	t.Run("IPv6 VIP without an IPv6 source", func(t *testing.T) {
		// The lab has IPv6 off: the checker has an IPv4 source only, says
		// so in Support, and refuses an IPv6 VIP naming what is missing.
		tg := dsrTarget(good)
		tg.VIP = netip.MustParseAddr("2001:db8:0:1::100")
		const want = "no IPv6 source address on eth0 to probe IPv6 VIPs from: add one to eth0 (a link-local address will do) or set DSRPathConfig.Source6"
		err := check(own, tg)
		assert.ErrorIs(t, err, ErrUnsupportedTarget)
		assert.ErrorContains(t, err, want)
		s := own.Support()
		assert.Equal(t, IPv4, s.Families)
		err = s.Validate(tg)
		assert.ErrorIs(t, err, ErrUnsupportedTarget)
		assert.ErrorContains(t, err, "VIP 2001:db8:0:1::100 is IPv6 ("+want+")")
		assert.NoError(t, s.Validate(dsrTarget(good)))
	})

	t.Run("monitor events", func(t *testing.T) {
		events := make(chan Event, 10)
		m := NewMonitor(&MonitorConfig{Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, OnEvent: func(e Event) { events <- e }})
		kGood, err := m.Add(dsrTarget(good), own)
		require.NoError(t, err)
		kBad, err := m.Add(dsrTarget(noVIP), own)
		require.NoError(t, err)
		runMonitor(t, m)
		got := map[Key]bool{}
		for range 2 {
			ev := recv(t, events, "first state")
			got[ev.Key] = ev.Up
		}
		assert.Equal(t, map[Key]bool{kGood: true, kBad: false}, got)
	})

	t.Run("closed checker", func(t *testing.T) {
		c := newChecker(&DSRPathConfig{Interface: lab.Balancer.Link})
		require.NoError(t, c.Close())
		assert.ErrorIs(t, check(c, dsrTarget(good)), ErrClosed)
	})
}

// TestIntegrationDSRPathCheckerIPv6 runs the probe for IPv6 VIPs on a
// dual-stack lab: a server holding the VIP on lo passes and one without it
// fails with the reason; one checker probes IPv4 and IPv6 VIPs; a probe
// source the host does not own works because the checker answers neighbour
// solicitations for it; and the check works from a balancer interface with
// no IPv4 address, then with only a link-local IPv6 address.
func TestIntegrationDSRPathCheckerIPv6(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{
		IPv6:    true,
		Servers: 2,
		Server: func(i int) netlab.ServerOptions {
			return netlab.ServerOptions{NoVIP: i == 1}
		},
	})
	dl := dsrLab{t, lab}
	good, noVIP := lab.Servers[0], lab.Servers[1]
	require.Len(t, lab.VIPs, 2)
	vip4, vip6 := lab.VIPs[0], lab.VIPs[1]
	require.True(t, vip4.Is4() && vip6.Is6())
	port := lab.Cfg.HTTPPort
	target := func(h *netlab.Host, vip netip.Addr) Target {
		addr := h.IP
		if vip.Is6() {
			addr = h.IP6
		}
		return Target{Addr: addr, Port: port, VIP: vip, MAC: h.MAC}
	}

	own := dl.newChecker(&DSRPathConfig{Interface: lab.Balancer.Link})
	assert.Equal(t, BothFamilies, own.Support().Families, "dual-stack interface: both families")
	spare6 := netip.MustParseAddr("2001:db8:0:1::250")
	spare := dl.newChecker(&DSRPathConfig{Interface: lab.Balancer.Link, Source6: spare6})

	t.Run("IPv6 server with the VIP on lo passes", func(t *testing.T) {
		for _, c := range []*DSRPathChecker{own, spare} {
			for range 3 {
				require.NoError(t, check(c, target(good, vip6)))
			}
		}
		assert.Zero(t, halfOpen(t, good, port), "the probe's RST leaves no half-open connection")
	})

	t.Run("the checker answered neighbour solicitations for its own source", func(t *testing.T) {
		var state int
		require.NoError(t, good.Do(func() error {
			link, err := netlink.LinkByName(good.Link)
			if err != nil {
				return err
			}
			neighs, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V6)
			if err != nil {
				return err
			}
			for _, n := range neighs {
				if a, ok := netip.AddrFromSlice(n.IP); ok && a == spare6 {
					assert.Equal(t, net.HardwareAddr(lab.Balancer.MAC), n.HardwareAddr)
					state = n.State
				}
			}
			return nil
		}))
		assert.NotZero(t, state&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE), "the server learned the spare source from our advertisement")
	})

	t.Run("IPv6 server without the VIP on lo fails with the reason", func(t *testing.T) {
		require.NoError(t, lab.Balancer.Do(func() error {
			return check(&TCPChecker{}, Target{Addr: noVIP.IP6, Port: port})
		}), "the service listens on the server's own IPv6 address")
		for _, c := range []*DSRPathChecker{own, spare} {
			err := check(c, target(noVIP, vip6))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorContains(t, err, "VIP missing")
		}
	})

	t.Run("one checker probes IPv4 and IPv6 VIPs", func(t *testing.T) {
		errs := make(chan error, 8)
		for i := range 8 {
			vip := vip4
			if i%2 == 1 {
				vip = vip6
			}
			go func() { errs <- check(own, target(good, vip)) }()
		}
		for range 8 {
			require.NoError(t, recv(t, errs, "probe result"))
		}
		assert.Error(t, check(own, target(noVIP, vip4)))
	})

	// The rest removes balancer addresses, so it runs last.
	delAddr := func(keep func(netip.Addr) bool) {
		require.NoError(t, lab.Balancer.Do(func() error {
			link, err := netlink.LinkByName(lab.Balancer.Link)
			if err != nil {
				return err
			}
			addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				ip, _ := netip.AddrFromSlice(a.IP)
				if !keep(ip.Unmap()) {
					if err := netlink.AddrDel(link, &a); err != nil {
						return err
					}
				}
			}
			return nil
		}))
	}

	t.Run("balancer interface without IPv4", func(t *testing.T) {
		delAddr(func(a netip.Addr) bool { return a.Is6() })
		c := dl.newChecker(&DSRPathConfig{Interface: lab.Balancer.Link})
		assert.Equal(t, IPv6, c.Support().Families)
		require.NoError(t, check(c, target(good, vip6)))
		err := check(c, target(good, vip4))
		assert.ErrorIs(t, err, ErrUnsupportedTarget)
		assert.ErrorContains(t, err, "no IPv4 source address on eth0 to probe IPv4 VIPs from: add one to eth0 or set DSRPathConfig.Source4")
		assert.ErrorContains(t, c.Support().Validate(target(good, vip4)), "no IPv4 source address on eth0")
	})

	t.Run("balancer interface with only a link-local address", func(t *testing.T) {
		delAddr(func(a netip.Addr) bool { return a.IsLinkLocalUnicast() })
		c := dl.newChecker(&DSRPathConfig{Interface: lab.Balancer.Link})
		require.True(t, c.src6.IsLinkLocalUnicast(), "source %v", c.src6)
		for range 3 {
			require.NoError(t, check(c, target(good, vip6)), "the server answers a link-local source on the interface the SYN came in on")
		}
		assert.Error(t, check(c, target(noVIP, vip6)))
	})

	t.Run("balancer interface without any address", func(t *testing.T) {
		delAddr(func(netip.Addr) bool { return false })
		err := lab.Balancer.Do(func() error {
			c, err := NewDSRPathChecker(&DSRPathConfig{Interface: lab.Balancer.Link})
			if err == nil {
				_ = c.Close()
			}
			return err
		})
		assert.ErrorContains(t, err, "eth0 has no IPv4 or IPv6 address to send probes from: add one, or set DSRPathConfig.Source4 or Source6")
	})
}

// TestDSRPathSupportFamilies: a checker states the families it has a probe
// source for and, for the missing one, what to add.
func TestDSRPathSupportFamilies(t *testing.T) {
	a4, a6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("fe80::1")
	for _, tc := range []struct {
		c    *DSRPathChecker
		fam  Families
		note string
	}{
		{&DSRPathChecker{ifName: "eth0", src4: a4, src6: a6}, BothFamilies, ""},
		{&DSRPathChecker{ifName: "eth0", src4: a4}, IPv4, "no IPv6 source address on eth0 to probe IPv6 VIPs from: add one to eth0 (a link-local address will do) or set DSRPathConfig.Source6"},
		{&DSRPathChecker{ifName: "bond1", src6: a6}, IPv6, "no IPv4 source address on bond1 to probe IPv4 VIPs from: add one to bond1 or set DSRPathConfig.Source4"},
	} {
		s := tc.c.Support()
		assert.Equal(t, tc.fam, s.Families)
		assert.Equal(t, tc.note, s.FamiliesNote)
	}
}

// TestProbeFilter runs the socket's BPF program on the frames it must pass
// and on those it must keep out.
func TestProbeFilter(t *testing.T) {
	vm, err := bpf.NewVM(disassemble(t, probeFilter()))
	require.NoError(t, err)
	arpReq := ft.Build(ft.Ethernet{Src: srvMAC}, ft.ARP{SenderIP: vip4, TargetIP: lb4})
	tests := []struct {
		name string
		b    []byte
		pass bool
	}{
		{"ARP", arpReq, true},
		{"IPv4 SYN-ACK", synAck(testP, frame.FlagSYN|frame.FlagACK), true},
		{"IPv4 RST", synAck(testP, frame.FlagRST), true},
		{"IPv4 ACK", synAck(testP, frame.FlagACK), false},
		{"IPv4 SYN", synAck(testP, frame.FlagSYN), false},
		{"IPv4 options SYN-ACK", ft.Build(ft.Ethernet{}, ft.IPv4{Src: vip4, Dst: lb4, Options: make([]byte, 8)}, ft.TCP{Flags: frame.FlagSYN | frame.FlagACK}), true},
		{"IPv4 fragment", ft.Build(ft.Ethernet{}, ft.IPv4{Src: vip4, Dst: lb4, FragOffset: 3, Protocol: 6}, ft.Raw(make([]byte, 20))), false},
		{"IPv4 UDP", ft.Build(ft.Ethernet{}, ft.IPv4{Src: vip4, Dst: lb4}, ft.UDP{}, ft.Raw(make([]byte, 20))), false},
		{"IPv6 SYN-ACK", synAck(testP6, frame.FlagSYN|frame.FlagACK), true},
		{"IPv6 RST", synAck(testP6, frame.FlagRST|frame.FlagACK), true},
		{"IPv6 ACK", synAck(testP6, frame.FlagACK), false},
		{"IPv6 UDP", ft.Build(ft.Ethernet{}, ft.IPv6{Src: vip6, Dst: lb6}, ft.UDP{}, ft.Raw(make([]byte, 20))), false},
		{"IPv6 NS", ns(srv6, lb6), true},
		{"IPv6 NA", appendNeighborAdvertisement(nil, neighborSolicitation{src: srv6, target: lb6}, lbMAC), false},
		{"IPv6 echo", ft.Build(ft.Ethernet{}, ft.IPv6{Src: vip6, Dst: lb6}, ft.ICMPv6{Type: 128}), false},
		{"runt", []byte{1, 2, 3}, false},
	}
	for _, tc := range tests {
		n, err := vm.Run(tc.b)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.pass, n > 0, tc.name)
	}
}

func disassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	prog, ok := bpf.Disassemble(raw)
	require.True(t, ok)
	return prog
}
