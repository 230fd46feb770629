package packaging

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unit is a parsed systemd unit file: each key's values in order.
type unit map[string][]string

func parseUnit(t testing.TB, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	sc := bufio.NewScanner(f)
	section := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "not key=value: %q", line)
			u[section+"."+k] = append(u[section+"."+k], v)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// one returns the single value of key.
func (u unit) one(t testing.TB, key string) string {
	t.Helper()
	require.Len(t, u[key], 1, key)
	return u[key][0]
}

// caps returns the capability names of key, lower case without CAP_, as
// setpriv takes them.
func (u unit) caps(t testing.TB, key string) []string {
	var out []string
	for _, c := range strings.Fields(u.one(t, key)) {
		out = append(out, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	return out
}

// The unit as shipped: its own user, ambient capabilities no wider than
// the bounding set, the hardening the package promises.
func TestUnitFile(t *testing.T) {
	u := parseUnit(t, "dsrlb.service")
	assert.Equal(t, "dsrlb", u.one(t, "Service.User"))
	assert.Equal(t, "notify", u.one(t, "Service.Type"))
	assert.Equal(t, u.caps(t, "Service.CapabilityBoundingSet"), u.caps(t, "Service.AmbientCapabilities"))
	assert.Subset(t, u.caps(t, "Service.AmbientCapabilities"), []string{"net_raw", "net_admin"})
	for key, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		assert.Equal(t, want, u.one(t, "Service."+key), key)
	}
	families := strings.Fields(u.one(t, "Service.RestrictAddressFamilies"))
	assert.ElementsMatch(t, []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_PACKET", "AF_NETLINK"}, families)
	assert.Contains(t, u.one(t, "Service.ExecStart"), "-config /etc/dsrlb/dsrlb.yaml")
	assert.Contains(t, u.one(t, "Service.ExecStartPre"), "-check -config /etc/dsrlb/dsrlb.yaml")
}
