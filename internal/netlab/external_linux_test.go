package netlab

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIntegrationExternalHost: a host behind a lab host acting as router
// reaches a server on the segment and back (the server routes the external
// link via the router), and goes away with the lab.
func TestIntegrationExternalHost(t *testing.T) {
	RequirePrivileged(t)
	ctx := testCtx(t)
	l, err := New(ctx, &Config{Servers: 1, Clients: 2})
	require.NoError(t, err)
	defer l.Close()
	router := l.Clients[0]

	for _, bad := range []string{"192.0.2.0/30", "10.0.0.0/30", "198.51.100.0/31", "198.51.0.0/16", "2001:db8::/64"} {
		_, err := l.AddExternal(router, netip.MustParsePrefix(bad))
		assert.Error(t, err, bad)
	}
	_, err = l.AddExternal(nil, netip.MustParsePrefix("198.51.100.0/30"))
	assert.Error(t, err, "no gateway")
	_, err = l.AddExternal(l.Switch, netip.MustParsePrefix("198.51.100.0/30"))
	assert.Error(t, err, "the switch is no gateway")

	links := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/30"), netip.MustParsePrefix("203.0.113.64/26")}
	var ext []*Host
	for _, link := range links {
		x, err := l.AddExternal(router, link)
		require.NoError(t, err)
		ext = append(ext, x)
	}
	for i, x := range ext {
		assert.Equal(t, "x"+string(rune('0'+i)), x.Name)
		assert.Equal(t, links[i].Addr().Next().Next(), x.IP, "the host gets the link's second address")
		assert.Regexp(t, nsPattern, x.NS, "leftovers of external hosts are swept like the others")
		// Before the route, the server cannot answer the external host.
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		c := x.HTTPClient()
		_, _, err := get(short, c, httpURL(l.Servers[0].IP, 80, "/"))
		cancel()
		assert.Error(t, err, "the server has no route back to %s yet", x.IP)
		require.NoError(t, l.Servers[0].AddRoute(links[i], router.IP))
		body, backend, err := get(ctx, c, httpURL(l.Servers[0].IP, 80, "/"))
		c.CloseIdleConnections()
		require.NoError(t, err, "%s -> s0 through %s", x.Name, router.Name)
		assert.Equal(t, "s0", body)
		assert.Equal(t, "s0", backend)
	}
	assert.Error(t, l.Clients[1].AddRoute(links[0], netip.MustParseAddr("2001:db8::1")), "mixed families")

	require.NoError(t, l.Close())
	assert.Empty(t, labNamespaces(t, l.ID), "Close removes the external hosts' namespaces")
	_, err = l.AddExternal(router, netip.MustParsePrefix("198.51.100.4/30"))
	assert.ErrorIs(t, err, ErrClosed)
}
