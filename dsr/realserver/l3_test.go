package realserver

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestModeMSS(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		v6   bool
		want int
	}{
		{ModeL2, false, 1460}, {ModeL2, true, 1440},
		{ModeIPIP, false, 1440}, {ModeIPIP, true, 1400},
		{ModeGUE, false, 1428}, {ModeGUE, true, 1388},
	} {
		assert.Equal(t, tc.want, tc.mode.MSS(1500, tc.v6), "%s v6=%v", tc.mode, tc.v6)
	}
}

func TestModuleAvailable(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "sys/module/fou"), 0o755))
	mods := filepath.Join(root, "lib/modules/6.1.0-test")
	require.NoError(t, os.MkdirAll(mods, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mods, "modules.dep"),
		[]byte("kernel/net/ipv4/ipip.ko.xz: kernel/net/ipv4/ip_tunnel.ko.xz\nkernel/net/ipv4/ip_tunnel.ko.xz:\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(mods, "modules.builtin"), []byte("kernel/net/ipv6/ip6_tunnel.ko\n"), 0o644))
	assert.True(t, moduleAvailable(root, "6.1.0-test", "fou"), "loaded")
	assert.True(t, moduleAvailable(root, "6.1.0-test", "ipip"), "installed, compressed")
	assert.True(t, moduleAvailable(root, "6.1.0-test", "ip6_tunnel"), "built in")
	assert.False(t, moduleAvailable(root, "6.1.0-test", "fou6"))
	assert.False(t, moduleAvailable(root, "6.1.0-test", "ip_tunne"), "no prefix match")
	assert.False(t, moduleAvailable(root, "other", "ipip"), "another kernel's modules")
}

func TestKernelPlan(t *testing.T) {
	b4, b6 := netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("2001:db8:2::2")
	l4, l6 := netip.MustParseAddr("198.51.100.21"), netip.MustParseAddr("2001:db8:3::21")
	plan := kernelPlan(ModeGUE, []netip.Addr{b4, b6}, l4, l6, 7000, true, true)
	want := []Command{
		{Do: []string{"modprobe", "ipip"}},
		{Do: []string{"modprobe", "ip6_tunnel"}},
		{Do: []string{"modprobe", "fou"}},
		{Do: []string{"modprobe", "fou6"}},
		{Do: []string{"ip", "fou", "add", "port", "7000", "gue"}, Undo: []string{"ip", "fou", "del", "port", "7000"}},
		{Do: []string{"ip", "-6", "fou", "add", "port", "7000", "gue"}, Undo: []string{"ip", "-6", "fou", "del", "port", "7000"}},
		{Do: []string{"ip", "link", "add", "dsrlb4t0", "type", "ipip", "remote", "203.0.113.2", "local", "198.51.100.21"}, Undo: []string{"ip", "link", "del", "dsrlb4t0"}},
		{Do: []string{"ip", "link", "set", "dsrlb4t0", "up"}},
		{Do: []string{"sysctl", "-w", "net.ipv4.conf.dsrlb4t0.rp_filter=2"}},
		{Do: []string{"ip", "link", "add", "dsrlb6t0", "type", "ip6tnl", "remote", "2001:db8:2::2", "local", "2001:db8:3::21", "mode", "ip6ip6"}, Undo: []string{"ip", "link", "del", "dsrlb6t0"}},
		{Do: []string{"ip", "link", "set", "dsrlb6t0", "up"}},
	}
	assert.Equal(t, want, plan)

	// IPIP, IPv4 VIPs only: no fou, no IPv6 tunnel even for an IPv6 balancer.
	plan = kernelPlan(ModeIPIP, []netip.Addr{b4, b6}, l4, netip.Addr{}, 6080, true, false)
	assert.Equal(t, []Command{
		{Do: []string{"modprobe", "ipip"}},
		{Do: []string{"ip", "link", "add", "dsrlb4t0", "type", "ipip", "remote", "203.0.113.2", "local", "198.51.100.21"}, Undo: []string{"ip", "link", "del", "dsrlb4t0"}},
		{Do: []string{"ip", "link", "set", "dsrlb4t0", "up"}},
		{Do: []string{"sysctl", "-w", "net.ipv4.conf.dsrlb4t0.rp_filter=2"}},
	}, plan)
}

func TestL3ConfigResolve(t *testing.T) {
	vip := []netip.Addr{netip.MustParseAddr("192.0.2.100")}
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"l2 default", Config{VIPs: vip}, true},
		{"ipip", Config{VIPs: vip, Mode: ModeIPIP, Balancers: []netip.Addr{netip.MustParseAddr("203.0.113.2")}}, true},
		{"no balancer", Config{VIPs: vip, Mode: ModeGUE}, false},
		{"bad mode", Config{VIPs: vip, Mode: "vxlan"}, false},
		{"bad decap", Config{VIPs: vip, Decap: "bpf"}, false},
		{"bad balancer", Config{VIPs: vip, Mode: ModeIPIP, Balancers: []netip.Addr{netip.MustParseAddr("224.0.0.1")}}, false},
		{"bad underlay", Config{VIPs: vip, Mode: ModeIPIP, Balancers: []netip.Addr{netip.MustParseAddr("203.0.113.2")}, Underlay: "../x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.cfg.resolve(true)
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidConfig)
				return
			}
			require.NoError(t, err)
			if c.Mode.L3() {
				assert.EqualValues(t, DefaultGUEPort, c.GUEPort)
				assert.Negative(t, c.ARPWindow, "no ARP probe in L3 mode")
			} else {
				assert.Equal(t, ModeL2, c.Mode)
			}
		})
	}
}
