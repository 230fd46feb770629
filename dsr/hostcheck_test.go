//go:build linux

package dsr

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dsrlb/dsrlb/internal/afpacket/nstest"
)

func TestHostProblemString(t *testing.T) {
	tests := []struct {
		p    HostProblem
		want string
	}{
		{HostProblem{HostError, "VIP on eth0", "ip addr del 192.0.2.100/32 dev eth0"},
			"error: VIP on eth0 (fix: ip addr del 192.0.2.100/32 dev eth0)"},
		{HostProblem{HostWarning, "odd", "true"}, "warning: odd (fix: true)"},
		{HostProblem{Problem: "p", Fix: "f"}, "HostSeverity(0): p (fix: f)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.p.String())
	}
}

func TestIntegrationCheckHost(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hca"), nstest.New(t, "hcb")
	nstest.Veth(t, a, "va", netip.MustParsePrefix("198.51.100.1/24"), b, "vb", netip.MustParsePrefix("198.51.100.2/24"))
	vips := []netip.Addr{netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")}

	check := func(ifname string) []HostProblem {
		t.Helper()
		var got []HostProblem
		b.MustDo(t, func() error {
			var err error
			got, err = CheckHost(ifname, vips)
			return err
		})
		return got
	}
	fixes := func(ps []HostProblem) []string {
		var out []string
		for _, p := range ps {
			assert.Equal(t, HostError, p.Severity)
			assert.NotEmpty(t, p.Problem)
			out = append(out, p.Fix)
		}
		return out
	}

	assert.Empty(t, check("vb"), "a clean namespace has no problems")

	b.MustDo(t, func() error {
		l, err := netlink.LinkByName("vb")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("192.0.2.100").To4(), Mask: net.CIDRMask(32, 32)}})
	})
	b.Sysctl(t, "net.ipv4.ip_forward", "1")
	b.Sysctl(t, "net.ipv6.conf.all.forwarding", "1")
	assert.ElementsMatch(t, []string{
		"ip addr del 192.0.2.100/32 dev vb",
		"sysctl -w net.ipv4.ip_forward=0",
		"sysctl -w net.ipv6.conf.all.forwarding=0",
	}, fixes(check("vb")))

	// Forwarding enabled only on the balancer's interface is found too.
	b.Sysctl(t, "net.ipv4.ip_forward", "0")
	b.Sysctl(t, "net.ipv6.conf.all.forwarding", "0")
	b.Sysctl(t, "net.ipv4.conf.vb.forwarding", "1")
	assert.ElementsMatch(t, []string{
		"ip addr del 192.0.2.100/32 dev vb",
		"sysctl -w net.ipv4.conf.vb.forwarding=0",
	}, fixes(check("vb")))

	var err error
	b.MustDo(t, func() error {
		_, err = CheckHost("nonexistent0", vips)
		return nil
	})
	require.Error(t, err)
}
