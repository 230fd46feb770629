package sysctl

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in    string
		parts []string
		str   string // String(), when it differs from in
	}{
		{in: "net.ipv4.ip_forward", parts: []string{"net", "ipv4", "ip_forward"}},
		{in: "net.ipv4.conf.eth0/100.rp_filter", parts: []string{"net", "ipv4", "conf", "eth0.100", "rp_filter"}},
		{in: "net/ipv4/conf/eth0.100/rp_filter", parts: []string{"net", "ipv4", "conf", "eth0.100", "rp_filter"}, str: "net.ipv4.conf.eth0/100.rp_filter"},
		{in: "/proc/sys/net/ipv6/conf/a.b.c/proxy_ndp", parts: []string{"net", "ipv6", "conf", "a.b.c", "proxy_ndp"}, str: "net.ipv6.conf.a/b/c.proxy_ndp"},
		{in: "kernel", parts: []string{"kernel"}},
		{in: "net.ipv6.conf.eth-0_x.accept_dad", parts: []string{"net", "ipv6", "conf", "eth-0_x", "accept_dad"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			k, err := Parse(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.parts, k.Components())
			assert.Equal(t, "/proc/sys/"+strings.Join(tc.parts, "/"), k.Path())
			want := tc.str
			if want == "" {
				want = tc.in
			}
			assert.Equal(t, want, k.String())
			back, err := Parse(k.String())
			require.NoError(t, err)
			assert.Equal(t, k, back)
		})
	}
}

func TestBadKeys(t *testing.T) {
	for _, in := range []string{
		"", ".", "..", "net..ipv4", "net.ipv4.", ".net", "net.ipv4.conf./.x", "net.ipv4.conf.//.x",
		"net/ipv4//x", "net/../etc", "/etc/passwd", "net.ipv4.conf.eth 0.x", "net.ipv4\x00.x",
		"net/ipv4/conf/../../x", "net.ipv4.conf.eth0\n.x",
	} {
		t.Run(in, func(t *testing.T) {
			k, err := Parse(in)
			require.ErrorIs(t, err, ErrBadKey)
			assert.Contains(t, err.Error(), "sysctl: bad key")
			assert.False(t, k.IsValid())
		})
	}
	_, err := New()
	require.ErrorIs(t, err, ErrBadKey)
	_, err = New("net", "a/b")
	require.ErrorIs(t, err, ErrBadKey)
	assert.Panics(t, func() { MustParse("a..b") })
}

func TestConf(t *testing.T) {
	k, err := Conf(IPv4, "eth0.100", "rp_filter")
	require.NoError(t, err)
	assert.Equal(t, "net.ipv4.conf.eth0/100.rp_filter", k.String())
	assert.Equal(t, "/proc/sys/net/ipv4/conf/eth0.100/rp_filter", k.Path())
	assert.Equal(t, MustParse("net/ipv4/conf/eth0.100/rp_filter"), k)

	k, err = Conf(IPv6, All, "proxy_ndp")
	require.NoError(t, err)
	assert.Equal(t, "net.ipv6.conf.all.proxy_ndp", k.String())

	for _, tc := range []struct {
		f           Family
		iface, name string
	}{
		{"", "eth0", "x"}, {"ipx", "eth0", "x"}, {IPv4, "", "x"}, {IPv4, "..", "x"},
		{IPv4, "a/b", "x"}, {IPv4, "eth0", ""}, {IPv6, "abcdefghijklmnop", "x"},
	} {
		_, err := Conf(tc.f, tc.iface, tc.name)
		assert.ErrorIs(t, err, ErrBadKey, "%+v", tc)
	}
}

func TestZeroKey(t *testing.T) {
	var k Key
	assert.False(t, k.IsValid())
	assert.Equal(t, "", k.String())
	assert.Nil(t, k.Components())
}

func TestKeyJSON(t *testing.T) {
	type rec struct {
		Key Key `json:"key"`
	}
	in := rec{Key: MustParse("net/ipv4/conf/eth0.100/arp_ignore")}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.JSONEq(t, `{"key":"net.ipv4.conf.eth0/100.arp_ignore"}`, string(b))
	var out rec
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in, out)
	require.ErrorIs(t, json.Unmarshal([]byte(`{"key":"net..x"}`), &out), ErrBadKey)
}

func TestParseInt(t *testing.T) {
	k := MustParse("net.ipv4.ip_forward")
	v, err := ParseInt(k, " 2\n")
	require.NoError(t, err)
	assert.Equal(t, 2, v)
	_, err = ParseInt(k, "two")
	require.ErrorContains(t, err, "net.ipv4.ip_forward")
}

// Whatever the input, Parse either fails with ErrBadKey or returns a key
// whose file stays under /proc/sys and whose String parses back to it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/x", "/proc/sys/a/b", "..", "a./b", "a/.b", "a.//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			require.ErrorIs(t, err, ErrBadKey)
			return
		}
		for _, c := range k.Components() {
			require.NotContains(t, []string{"", ".", ".."}, c)
			require.NotContains(t, c, "/")
		}
		require.True(t, strings.HasPrefix(k.Path(), "/proc/sys/"))
		back, err := Parse(k.String())
		require.NoError(t, err)
		require.Equal(t, k, back)
	})
}
