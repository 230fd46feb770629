package health

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSupportValidate(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	vip4, vip6 := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")
	dsr := Support{Name: "dsr", Families: IPv4, NeedsPort: true, NeedsVIP: true}
	for _, tc := range []struct {
		name string
		s    Support
		t    Target
		want string // substring of the error; empty: valid
	}{
		{"zero supports all v4", Support{}, Target{Addr: v4}, ""},
		{"zero supports all v6", Support{}, Target{Addr: v6}, ""},
		{"mapped counts as v4", Support{Families: IPv4}, Target{Addr: netip.AddrFrom16(v4.As16())}, ""},
		{"port needed", Support{Name: "tcp", NeedsPort: true}, Target{Addr: v4}, "the tcp check cannot work: it needs a port"},
		{"port given", Support{Name: "tcp", NeedsPort: true}, Target{Addr: v6, Port: 80}, ""},
		{"family refused", Support{Name: "x", Families: IPv4}, Target{Addr: v6, Port: 80}, "probes IPv4 only and backend 2001:db8::10 is IPv6"},
		{"vip family decides", dsr, Target{Addr: v6, VIP: vip4, Port: 80}, ""},
		{"vip family refused", dsr, Target{Addr: v4, VIP: vip6, Port: 80}, "VIP 2001:db8::100 is IPv6"},
		{"vip missing", dsr, Target{Addr: v4, Port: 80}, "needs the service's VIP"},
		{"dsr ok", dsr, Target{Addr: v4, VIP: vip4, Port: 80}, ""},
		{"no address", Support{}, Target{}, "no address"},
		{"note explains the family", Support{Name: "dsr", Families: IPv4, FamiliesNote: "no IPv6 source on eth0", NeedsVIP: true},
			Target{Addr: v6, VIP: vip6}, "VIP 2001:db8::100 is IPv6 (no IPv6 source on eth0)"},
		{"note only on family errors", Support{Name: "dsr", Families: IPv6, FamiliesNote: "n", NeedsVIP: true, NeedsPort: true},
			Target{Addr: v6, VIP: vip6}, "the dsr check cannot work: it needs a port and none is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate(tc.t)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrUnsupportedTarget)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSupportOfBuiltins(t *testing.T) {
	require.True(t, SupportOf(&TCPChecker{}).NeedsPort)
	require.True(t, SupportOf(&UDPChecker{}).NeedsPort)
	require.False(t, SupportOf(&DNSChecker{}).NeedsPort)
	require.Equal(t, "https", SupportOf(&HTTPChecker{HTTPS: true}).Name)
	require.Equal(t, Support{}, SupportOf(CheckerFunc(nil)), "a checker that states nothing supports everything")
	s := SupportOf(&DSRPathChecker{})
	require.True(t, s.NeedsVIP && s.NeedsPort && s.NeedsMAC)
	require.Equal(t, BothFamilies, s.Families, "the DSR probe works for IPv4 and IPv6 VIPs")
	require.NoError(t, s.Validate(Target{Addr: netip.MustParseAddr("2001:db8::10"), VIP: netip.MustParseAddr("2001:db8::100"), Port: 80}))
}
