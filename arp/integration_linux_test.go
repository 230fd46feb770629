package arp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// startSpeaker runs a Speaker on the balancer's segment interface, with its
// events sent to the returned channel, and stops it when the test ends.
func startSpeaker(t *testing.T, lab *netlab.Lab, cfg Config) (*Speaker, <-chan Event) {
	t.Helper()
	events := make(chan Event, 256)
	cfg.OnEvent = func(e Event) {
		select {
		case events <- e:
		default:
			t.Errorf("event channel full, dropped %v", e)
		}
	}
	var s *Speaker
	require.NoError(t, lab.Balancer.Do(func() error {
		ifi, err := net.InterfaceByName(lab.Balancer.Link)
		if err != nil {
			return err
		}
		s, err = Listen(ifi, &cfg)
		return err
	}))
	assert.Equal(t, lab.Balancer.MAC, s.HardwareAddr(), "MAC taken from the interface")
	assert.Equal(t, lab.Balancer.IP, s.IP(), "IP taken from the interface")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		assert.NoError(t, s.Close())
		t.Logf("speaker stats: %+v", s.Stats())
	})
	return s, events
}

// waitEvent returns the first event for which match is true, failing after
// timeout. Other events are logged and skipped.
func waitEvent(t *testing.T, events <-chan Event, timeout time.Duration, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-events:
			if match(e) {
				return e
			}
			t.Logf("event: %v", e)
		case <-deadline:
			t.Fatalf("no matching event within %v", timeout)
		}
	}
}

// waitResolved waits for a Resolved event for every server, in any order,
// and checks the MACs.
func waitResolved(t *testing.T, lab *netlab.Lab, events <-chan Event) {
	t.Helper()
	want := make(map[netip.Addr]net.HardwareAddr)
	for _, srv := range lab.Servers {
		want[srv.IP] = srv.MAC
	}
	for len(want) > 0 {
		e := waitEvent(t, events, 5*time.Second, func(e Event) bool { return e.Kind == Resolved && want[e.Addr] != nil })
		assert.Equal(t, want[e.Addr], e.MAC, "backend %s", e.Addr)
		delete(want, e.Addr)
	}
}

func vip4(lab *netlab.Lab) netip.Addr {
	for _, v := range lab.VIPs {
		if v.Is4() {
			return v
		}
	}
	panic("lab has no IPv4 VIP")
}

// The client's own kernel resolves the VIP through our responder: no static
// neighbour entry anywhere.
func TestIntegrationClientResolvesVIP(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, NoServerProcesses: true})
	vip := vip4(lab)
	client := lab.Clients[0]

	neigh := func() (mac net.HardwareAddr, found bool) {
		require.NoError(t, client.Do(func() error {
			link, err := netlink.LinkByName(client.Link)
			if err != nil {
				return err
			}
			list, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			for _, n := range list {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == vip && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
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
	s.SetVIPs([]netip.Addr{vip})

	resolveThroughKernel(t, client, vip, lab.Cfg.UDPPort, s)
	mac, found := neigh()
	require.True(t, found)
	assert.Equal(t, lab.Balancer.MAC, mac, "the VIP resolves to the balancer")
	assert.NotZero(t, s.Stats().Replies)
	select {
	case e := <-events:
		t.Errorf("unexpected event %v: the servers are configured for DSR", e)
	default:
	}
}

// The resolver finds the servers' MACs and follows a server whose MAC
// changes within one refresh interval.
func TestIntegrationResolverFollowsMACChange(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, NoServerProcesses: true})
	const interval, timeout = 500 * time.Millisecond, 200 * time.Millisecond
	s, events := startSpeaker(t, lab, Config{ResolveInterval: interval, ResolveTimeout: timeout, ConflictProbeInterval: time.Hour})

	var backends []Backend
	for _, srv := range lab.Servers {
		backends = append(backends, Backend{Addr: srv.IP})
	}
	s.SetBackends(backends)
	waitResolved(t, lab, events)

	srv := lab.Servers[0]
	newMAC := net.HardwareAddr{0x02, 0x42, 0x00, 0x00, 0x00, 0x99}
	require.NoError(t, srv.Do(func() error {
		link, err := netlink.LinkByName(srv.Link)
		if err != nil {
			return err
		}
		return netlink.LinkSetHardwareAddr(link, newMAC)
	}))
	changed := time.Now()
	// The deadline only keeps a broken resolver from hanging the test; that
	// a change is followed within one ResolveInterval is asserted with a
	// fake clock in TestResolver, where no other process can delay it.
	e := waitEvent(t, events, 5*time.Second, func(e Event) bool { return e.Kind == MACChanged && e.Addr == srv.IP })
	t.Logf("MAC change noticed after %v (refresh interval %v)", time.Since(changed), interval)
	assert.Equal(t, newMAC, e.MAC)
	assert.Equal(t, srv.MAC, e.OldMAC)
	mac, ok := s.Lookup(srv.IP)
	require.True(t, ok)
	assert.Equal(t, newMAC, mac)
	mac, _ = s.Lookup(lab.Servers[1].IP)
	assert.Equal(t, lab.Servers[1].MAC, mac, "the other server is unchanged")
}

// A server with arp_ignore=0 answers ARP for the VIP it holds on lo: the
// conflict watch names it.
func TestIntegrationConflictNamesServer(t *testing.T) {
	zero := 0
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, NoServerProcesses: true, Server: func(i int) netlab.ServerOptions {
		if i == 1 {
			return netlab.ServerOptions{ARPIgnore: &zero}
		}
		return netlab.ServerOptions{}
	}})
	vip := vip4(lab)
	s, events := startSpeaker(t, lab, Config{ConflictProbeInterval: 300 * time.Millisecond})

	var backends []Backend
	for _, srv := range lab.Servers {
		backends = append(backends, Backend{Addr: srv.IP})
	}
	s.SetBackends(backends)
	waitResolved(t, lab, events)

	s.SetVIPs([]netip.Addr{vip})
	thief := lab.Servers[1]
	e := waitEvent(t, events, 5*time.Second, func(e Event) bool { return e.Kind == Conflict })
	assert.Equal(t, vip, e.Addr)
	assert.Equal(t, thief.MAC, e.MAC)
	assert.Equal(t, thief.IP, e.Backend, "the conflict names the misconfigured server")
	assert.NotZero(t, s.Stats().Conflicts)
	t.Log(e)
}

// resolveThroughKernel makes client's kernel resolve vip (by sending a
// datagram to it) and waits until its neighbour entry is REACHABLE: only a
// solicited answer (the speaker's reply) makes it reachable; an announcement
// that overtakes the request leaves it STALE.
func resolveThroughKernel(t *testing.T, client *netlab.Host, vip netip.Addr, port uint16, s *Speaker) {
	t.Helper()
	updates := make(chan netlink.NeighUpdate, 64)
	stop := make(chan struct{})
	defer close(stop)
	require.NoError(t, client.Do(func() error { return netlink.NeighSubscribe(updates, stop) }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.DialContext(ctx, "udp", netip.AddrPortFrom(vip, port).String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("who has the VIP?"))
	require.NoError(t, err)
	deadline := time.After(5 * time.Second)
	for resolved := false; !resolved; {
		select {
		case u := <-updates:
			ip, _ := netip.AddrFromSlice(u.IP)
			resolved = ip.Unmap() == vip && len(u.HardwareAddr) == 6 && u.State&netlink.NUD_REACHABLE != 0
		case <-deadline:
			t.Fatalf("the client's kernel did not resolve the VIP; speaker stats %+v", s.Stats())
		}
	}
}
