package arp

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

func vip6Of(lab *netlab.Lab) netip.Addr {
	for _, v := range lab.VIPs {
		if v.Is6() {
			return v
		}
	}
	panic("lab has no IPv6 VIP")
}

// balancerGroups returns the link-layer multicast groups of the balancer's
// segment interface, as the kernel lists them.
func balancerGroups(t *testing.T, lab *netlab.Lab) []string {
	t.Helper()
	var groups []string
	require.NoError(t, lab.Balancer.Do(func() error {
		// thread-self: the namespace of this (locked) thread.
		b, err := os.ReadFile("/proc/thread-self/net/dev_mcast")
		if err != nil {
			return err
		}
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) == 5 && f[1] == lab.Balancer.Link {
				groups = append(groups, f[4])
			}
		}
		return nil
	}))
	return groups
}

// The client's own kernel resolves the IPv6 VIP through our responder: no
// static neighbour entry anywhere. The servers hold the VIP on lo but Linux
// answers solicitations only for addresses of the receiving interface, so
// no conflict is raised.
func TestIntegrationNDClientResolvesVIP(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, NoServerProcesses: true, IPv6: true})
	vip := vip6Of(lab)
	client := lab.Clients[0]

	neigh := func() (mac net.HardwareAddr, found bool) {
		require.NoError(t, client.Do(func() error {
			link, err := netlink.LinkByName(client.Link)
			if err != nil {
				return err
			}
			list, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V6)
			if err != nil {
				return err
			}
			for _, n := range list {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip == vip && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
					mac, found = n.HardwareAddr, true
				}
			}
			return nil
		}))
		return mac, found
	}
	_, found := neigh()
	require.False(t, found, "the client starts without a neighbour entry for the VIP")

	s, events := startSpeaker(t, lab, Config{ConflictProbeInterval: time.Hour})
	require.True(t, s.NDP())
	assert.True(t, s.IP6().IsLinkLocalUnicast(), "solicitations come from the link-local address, got %v", s.IP6())
	g := multicastMAC(solicitedNode(vip))
	group := strings.ReplaceAll(net.HardwareAddr(g[:]).String(), ":", "") // as /proc lists it
	assert.NotContains(t, balancerGroups(t, lab), group)
	s.SetVIPs([]netip.Addr{vip4(lab), vip})
	assert.Contains(t, balancerGroups(t, lab), group, "the socket joined the VIP's solicited-node group")

	resolveThroughKernel(t, client, vip, lab.Cfg.UDPPort, s)
	mac, found := neigh()
	require.True(t, found)
	assert.Equal(t, lab.Balancer.MAC, mac, "the VIP resolves to the balancer")
	st := s.Stats()
	assert.NotZero(t, st.Replies)
	assert.NotZero(t, st.ConflictProbes, "the VIPs were probed")
	assert.Zero(t, st.Drops[DropChecksum]+st.Drops[DropHopLimit]+st.Drops[DropNotND], "the kernel filter passes only valid ND: %v", st.Drops)
	select {
	case e := <-events:
		t.Errorf("unexpected event %v: the servers are configured for DSR", e)
	default:
	}

	s.SetVIPs([]netip.Addr{vip4(lab)})
	assert.NotContains(t, balancerGroups(t, lab), group, "the group is left when the VIP is withdrawn")
}

// The resolver finds the IPv6 servers' MACs through their kernels.
func TestIntegrationNDResolvesBackends(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, NoServerProcesses: true, IPv6: true})
	s, events := startSpeaker(t, lab, Config{ResolveTimeout: 200 * time.Millisecond, ConflictProbeInterval: time.Hour})

	want := make(map[netip.Addr]net.HardwareAddr)
	var backends []Backend
	for _, srv := range lab.Servers {
		backends = append(backends, Backend{Addr: srv.IP6})
		want[srv.IP6] = srv.MAC
	}
	s.SetBackends(backends)
	for len(want) > 0 {
		e := waitEvent(t, events, 5*time.Second, func(e Event) bool { return e.Kind == Resolved && want[e.Addr] != nil })
		assert.Equal(t, want[e.Addr], e.MAC, "backend %s", e.Addr)
		delete(want, e.Addr)
	}
	for _, srv := range lab.Servers {
		mac, ok := s.Lookup(srv.IP6)
		require.True(t, ok)
		assert.Equal(t, srv.MAC, mac)
	}
	assert.NotZero(t, s.Stats().ResolveRequests)
}
