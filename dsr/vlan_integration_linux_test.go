package dsr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// vlanLab is a lab whose bridge filters VLANs: the balancer on a trunk
// port tagged with VLANs 10 and 20, client c0 and servers s0, s1 on access
// ports of VLAN 10, client c1 and servers s2, s3 on access ports of VLAN
// 20. Every server holds both VIPs; all hosts keep their addresses in
// 192.0.2.0/24, which both VLANs use (they are separate networks).
func vlanLab(t *testing.T, server func(i int) netlab.ServerOptions) *netlab.Lab {
	t.Helper()
	vip2 := netip.MustParseAddr("192.0.2.101")
	return vlanLabWith(t, &netlab.Config{Servers: 4, Clients: 2, VIPs: []netip.Addr{netlab.DefaultVIP4, vip2}, Server: server})
}

// vlanLabWith is vlanLab with a lab configuration of four servers and two
// clients.
func vlanLabWith(t *testing.T, cfg *netlab.Config) *netlab.Lab {
	t.Helper()
	lab := netlab.NewT(t, cfg)
	require.NoError(t, lab.SetTrunkVLANs(lab.Balancer, 10, 20))
	require.NoError(t, lab.SetAccessVLAN(lab.Clients[0], 10))
	require.NoError(t, lab.SetAccessVLAN(lab.Clients[1], 20))
	for i, s := range lab.Servers {
		require.NoError(t, lab.SetAccessVLAN(s, []uint16{10, 10, 20, 20}[i]))
	}
	return lab
}

// TestIntegrationVLANTrunkIPv6: the same IPv6 VIP on VLANs 10 and 20 of the
// trunk: neighbour discovery answers, announces and resolves per VLAN with
// tagged frames (through the tags the kernel moved into metadata), and each
// client reaches its VLAN's servers.
func TestIntegrationVLANTrunkIPv6(t *testing.T) {
	vip6 := netlab.DefaultVIP6
	lab := vlanLabWith(t, &netlab.Config{Servers: 4, Clients: 2, IPv6: true, VIPs: []netip.Addr{vip6}})
	svc := func(vlan uint16, servers ...int) Service {
		s := Service{VIP: vip6, Protocol: TCP, Port: 80, VLAN: vlan}
		for _, i := range servers {
			s.Backends = append(s.Backends, Backend{Addr: lab.Servers[i].IP6})
		}
		return s
	}
	lb := startBalancerOn(t, lab, "packet", &Config{Workers: 1}, nil, svc(10, 0, 1), svc(20, 2, 3))
	mac := map[netip.Addr]string{}
	for _, s := range lab.Servers {
		mac[s.IP6] = s.MAC.String()
	}
	deadline := time.Now().Add(15 * time.Second)
	for resolved := false; !resolved; {
		resolved = true
		for _, s := range lb.Stats().Services {
			for _, be := range s.Backends {
				resolved = resolved && be.MAC.String() == mac[be.Addr]
			}
		}
		require.True(t, resolved || time.Now().Before(deadline), "backends not resolved per VLAN within 15s: %+v", lb.Stats().Services)
		if !resolved {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for client, want := range [][]string{{"s0", "s1"}, {"s2", "s3"}} {
		hc := lab.Clients[client].HTTPClient()
		hc.Timeout = 10 * time.Second
		for range 8 {
			resp, err := hc.Get("http://" + netip.AddrPortFrom(vip6, 80).String() + "/")
			require.NoError(t, err, "client c%d", client)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.Contains(t, want, string(body), "client c%d reached a server of another VLAN", client)
		}
		hc.CloseIdleConnections()
	}
}

// vlanService is a TCP service on vlan whose backends are the lab servers
// given, with their MACs left to ARP on that VLAN.
func vlanService(lab *netlab.Lab, vip netip.Addr, vlan uint16, servers ...int) Service {
	s := Service{VIP: vip, Protocol: TCP, Port: 80, VLAN: vlan}
	for _, i := range servers {
		s.Backends = append(s.Backends, Backend{Addr: lab.Servers[i].IP})
	}
	return s
}

// waitResolved waits until every backend of every service has the MAC of
// its lab server: resolved by ARP on the service's VLAN.
func waitResolved(t *testing.T, lb *liveBalancer) {
	t.Helper()
	mac := map[netip.Addr]net.HardwareAddr{}
	for _, s := range lb.lab.Servers {
		mac[s.IP] = s.MAC
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		missing := ""
		for _, s := range lb.Stats().Services {
			for _, be := range s.Backends {
				if be.MAC.String() != mac[be.Addr].String() {
					missing = fmt.Sprintf("%s backend %s: MAC %v, want %v", s.Key, be.Addr, be.MAC, mac[be.Addr])
				}
			}
		}
		if missing == "" {
			return
		}
		require.True(t, time.Now().Before(deadline), "not resolved within 15s: %s", missing)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntegrationVLANTrunk: one balancer on a trunk serves the same VIP on
// VLANs 10 and 20 (different backends), and a second VIP on VLAN 20 only.
// Each client reaches its own VLAN's backends; 20 MB go each way byte-exact
// through the default offloads, the downloads bypassing the balancer; the
// backends' MACs are learned per VLAN.
func TestIntegrationVLANTrunk(t *testing.T) {
	vip, vip2 := netlab.DefaultVIP4, netip.MustParseAddr("192.0.2.101")
	for _, plane := range dataPlanes {
		t.Run(plane, func(t *testing.T) {
			lab := vlanLab(t, nil)
			lb := startBalancerOn(t, lab, plane, &Config{Workers: 1}, nil,
				vlanService(lab, vip, 10, 0, 1), vlanService(lab, vip, 20, 2, 3), vlanService(lab, vip2, 20, 2, 3))
			waitResolved(t, lb)
			for _, tc := range []struct {
				client  int
				vip     netip.Addr
				servers []string
			}{
				{0, vip, []string{"s0", "s1"}},
				{1, vip, []string{"s2", "s3"}},
				{1, vip2, []string{"s2", "s3"}},
			} {
				name := fmt.Sprintf("%s from c%d", tc.vip, tc.client)
				hc := lab.Clients[tc.client].HTTPClient()
				hc.Timeout = time.Minute
				base := "http://" + netip.AddrPortFrom(tc.vip, 80).String()
				seen := map[string]int{}
				for range 12 {
					resp, err := hc.Get(base + "/")
					require.NoError(t, err, name)
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					require.NoError(t, err, name)
					seen[string(body)]++
				}
				hc.CloseIdleConnections()
				for s := range seen {
					assert.Contains(t, tc.servers, s, "%s: answered by a server of another VLAN", name)
				}
				vlanBulk(t, lab, hc, base, name)
			}
			st := lb.Stats()
			assert.Zero(t, st.Drops[DropMalformed])
			assert.Zero(t, st.Drops[DropTransmit])
			for _, s := range st.Services {
				assert.Positive(t, s.Flows, "service %s carried flows", s.Key)
			}
			if st.XDP != nil {
				t.Logf("XDP program: forwarded %d frames itself, passed up %v", st.XDP.Forwarded, st.XDP.Passed)
			}
		})
	}
}

// vlanBulk downloads and uploads 20 MB through base with hc, byte-exact,
// and checks that the download's bytes bypass the balancer.
func vlanBulk(t *testing.T, lab *netlab.Lab, hc *http.Client, base, name string) {
	t.Helper()
	defer hc.CloseIdleConnections()
	const size = 20 << 20
	before, err := lab.Balancer.LinkStats()
	require.NoError(t, err)
	resp, err := hc.Get(fmt.Sprintf("%s/bytes?n=%d", base, size))
	require.NoError(t, err, name)
	n, bad := readPattern(t, resp.Body, 0)
	resp.Body.Close()
	require.Equal(t, int64(size), n, name)
	require.Equal(t, -1, bad, "%s: downloaded bytes differ from the pattern at %d", name, bad)
	after, err := lab.Balancer.LinkStats()
	require.NoError(t, err)
	carried := after.Sub(before).RxBytes + after.Sub(before).TxBytes
	t.Logf("%s: download of %d bytes: the balancer's interface carried %d bytes (%.3f%%)", name, size, carried, 100*float64(carried)/size)
	assert.Less(t, float64(carried), 0.02*size, "%s: response bytes must bypass the balancer", name)

	payload := make([]byte, size)
	netlab.FillPattern(payload, 0)
	sum := sha256.Sum256(payload)
	resp, err = hc.Post(base+"/upload", "application/octet-stream", bytes.NewReader(payload))
	require.NoError(t, err, name)
	var up netlab.UploadResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&up), name)
	resp.Body.Close()
	assert.Equal(t, int64(size), up.N, name)
	assert.Equal(t, hex.EncodeToString(sum[:]), up.SHA256, name)
}

// TestIntegrationVLANConflict: a server of VLAN 20 that answers ARP for the
// VIP (arp_ignore=0) is reported as a conflict on VLAN 20, naming it; the
// same VIP on VLAN 10 has no conflict, although it is probed there too.
func TestIntegrationVLANConflict(t *testing.T) {
	zero := 0
	lab := vlanLab(t, func(i int) netlab.ServerOptions {
		if i == 3 {
			return netlab.ServerOptions{ARPIgnore: &zero, ARPAnnounce: &zero}
		}
		return netlab.ServerOptions{}
	})
	events := make(chan Event, 256)
	vip := netlab.DefaultVIP4
	svc10, svc20 := vlanService(lab, vip, 10, 0, 1), vlanService(lab, vip, 20, 2, 3)
	for i := range 2 {
		// Configured MACs: the speaker knows whose MAC claims the VIP from
		// the start, before any resolution.
		svc10.Backends[i].MAC, svc20.Backends[i].MAC = lab.Servers[i].MAC, lab.Servers[2+i].MAC
	}
	lb := startBalancerWith(t, lab, &Config{OnEvent: func(e Event) { events <- e }},
		&arp.Config{ConflictProbeInterval: 200 * time.Millisecond}, svc10, svc20)
	speaker := lb.cfg.ARP.(*arp.Speaker)
	var conflict Event
	deadline := time.After(15 * time.Second) // once: other events must not extend it
	for conflict.Kind == 0 {
		select {
		case e := <-events:
			if e.Kind == EventVIPConflict {
				conflict = e
			}
		case <-deadline:
			t.Fatal("no conflict event")
		}
	}
	assert.Equal(t, uint16(20), conflict.VLAN)
	assert.Equal(t, vip, conflict.VIP)
	assert.Equal(t, lab.Servers[3].MAC, conflict.MAC)
	assert.Equal(t, lab.Servers[3].IP, conflict.Backend, "the conflict names the misconfigured backend of VLAN 20")
	assert.ErrorContains(t, conflict.Reason, "on VLAN 20")

	// Several more probe rounds on both VLANs: still nothing on VLAN 10.
	probes := speaker.Stats().ConflictProbes
	waitUntil := time.Now().Add(15 * time.Second)
	for speaker.Stats().ConflictProbes < probes+6 {
		require.True(t, time.Now().Before(waitUntil), "the speaker stopped probing")
		time.Sleep(20 * time.Millisecond)
	}
	for {
		select {
		case e := <-events:
			if e.Kind == EventVIPConflict {
				assert.Equal(t, uint16(20), e.VLAN, "a conflict on VLAN 10: %v", e)
			}
			continue
		default:
		}
		break
	}
}

// TestIntegrationVLANDSRCheck: the DSR-path check reaches backends on the
// VLANs of the trunk with tagged probes, from the probe source it claims on
// each VLAN, and fails where the backend is not (another VLAN, untagged).
func TestIntegrationVLANDSRCheck(t *testing.T) {
	lab := vlanLab(t, nil)
	var c *health.DSRPathChecker
	require.NoError(t, lab.Balancer.Do(func() error {
		var err error
		c, err = health.NewDSRPathChecker(&health.DSRPathConfig{Interface: lab.Balancer.Link, VLANSources: map[uint16][]netip.Addr{
			10: {netip.MustParseAddr("192.0.2.250")},
			20: {netip.MustParseAddr("192.0.2.251")},
		}})
		return err
	}))
	t.Cleanup(func() { c.Close() })
	vip := netlab.DefaultVIP4
	target := func(server int, vlan uint16) health.Target {
		s := lab.Servers[server]
		return health.Target{Addr: s.IP, Port: 80, VIP: vip, MAC: s.MAC, VLAN: vlan}
	}
	for _, tc := range []struct {
		name string
		t    health.Target
		ok   bool
	}{
		{"s0 on VLAN 10", target(0, 10), true},
		{"s3 on VLAN 20", target(3, 20), true},
		{"s0 probed on VLAN 20", target(0, 20), false},
		{"s2 probed untagged", target(2, 0), false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := c.Check(ctx, tc.t)
		cancel()
		if tc.ok {
			assert.NoError(t, err, tc.name)
		} else {
			assert.Error(t, err, tc.name)
		}
	}
	sup := health.SupportOf(c)
	assert.NoError(t, sup.Validate(target(1, 10)))
	assert.ErrorIs(t, sup.Validate(target(1, 30)), health.ErrUnsupportedTarget, "no source on VLAN 30")
}
