package realserver_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dsrlb/dsrlb/dsr/realserver"
	"github.com/dsrlb/dsrlb/internal/decap"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// advmssOf returns the advmss of the server's route to dst via gw.
func advmssOf(t *testing.T, h *netlab.Host, dst netip.Prefix) int {
	t.Helper()
	mss := -1
	require.NoError(t, h.Do(func() error {
		rs, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Dst != nil && r.Dst.String() == dst.String() {
				mss = r.AdvMSS
			}
		}
		return nil
	}))
	require.GreaterOrEqual(t, mss, 0, "no route to %s", dst)
	return mss
}

// TestIntegrationPrepareL3 runs prepare, check and undo in both L3 modes
// on a server whose balancer is behind a gateway: the decapsulation
// program is attached and the gateway routes advertise the lowered MSS;
// check is clean; undo detaches the program, restores the routes and
// leaves an empty record; check then reports both missing.
func TestIntegrationPrepareL3(t *testing.T) {
	netlab.RequirePrivileged(t)
	balancer := netip.MustParseAddr("203.0.113.2")
	balancer6 := netip.MustParseAddr("2001:db8:0:b::2")
	to4, to6 := netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:0:b::/64")
	for _, tc := range []struct {
		mode       realserver.Mode
		mss4, mss6 int
	}{{realserver.ModeIPIP, 1440, 1400}, {realserver.ModeGUE, 1428, 1388}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			lab := netlab.NewT(t, &netlab.Config{Servers: 1, IPv6: true, NoServerProcesses: true})
			s := lab.Servers[0]
			require.NoError(t, s.AddRoute(to4, lab.Balancer.IP))
			require.NoError(t, s.AddRoute(to6, lab.Balancer.IP6))
			cfg := &realserver.Config{VIPs: lab.VIPs, Mode: tc.mode, Balancers: []netip.Addr{balancer, balancer6}, Decap: realserver.DecapProgram}
			st := &realserver.State{}
			require.NoError(t, s.Do(func() error { return realserver.Prepare(cfg, st) }))
			t.Cleanup(func() { _ = s.Do(func() error { return realserver.Undo(st) }) })

			assert.Equal(t, tc.mss4, advmssOf(t, s, to4))
			assert.Equal(t, tc.mss6, advmssOf(t, s, to6))
			var ds *decap.Status
			require.NoError(t, s.Do(func() (err error) { ds, err = decap.Get(s.Link); return err }))
			assert.Equal(t, tc.mode == realserver.ModeGUE, ds.Config.GUE)
			assert.ElementsMatch(t, []netip.Addr{balancer, balancer6}, ds.Config.Balancers)
			assert.ElementsMatch(t, []netip.Addr{s.IP, s.IP6}, ds.Config.Locals)
			assert.Equal(t, []string{s.Link}, st.Decap)
			assert.Len(t, st.Routes, 2)

			check := func() *realserver.Report {
				var rep *realserver.Report
				require.NoError(t, s.Do(func() (err error) {
					rep, err = realserver.Check(context.Background(), cfg)
					return err
				}))
				return rep
			}
			rep := check()
			assert.True(t, rep.OK(), "%v", rep.Findings)
			assert.NotContains(t, rep.Codes(realserver.Warning), realserver.CodeMSSTooLarge)
			assert.NotContains(t, rep.Codes(realserver.Warning), realserver.CodeARPNoOwner, "no ARP probe in L3 mode")

			// A second prepare changes nothing more.
			n := st.Len()
			require.NoError(t, s.Do(func() error { return realserver.Prepare(cfg, st) }))
			assert.Equal(t, n, st.Len())

			require.NoError(t, s.Do(func() error { return realserver.Undo(st) }))
			assert.True(t, st.Empty(), "%+v", st)
			assert.Zero(t, advmssOf(t, s, to4))
			assert.Zero(t, advmssOf(t, s, to6))
			err := s.Do(func() error { _, err := decap.Get(s.Link); return err })
			assert.True(t, errors.Is(err, decap.ErrNotAttached), "%v", err)

			// check now names what undo removed.
			rep = check()
			assert.Contains(t, rep.Codes(realserver.Error), realserver.CodeDecapMissing)
			assert.Contains(t, rep.Codes(realserver.Warning), realserver.CodeMSSTooLarge)
		})
	}
}
