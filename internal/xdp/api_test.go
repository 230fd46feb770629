package xdp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigResolve(t *testing.T) {
	r, err := (*Config)(nil).resolve()
	require.NoError(t, err)
	assert.Equal(t, resolvedConfig{maxFlows: DefaultMaxFlows, maxSlots: DefaultMaxBackendSlots, maxServices: DefaultMaxServices}, r)
	for _, c := range []Config{{MaxFlows: -1}, {MaxBackendSlots: MaxBackendSlots + 1}, {MaxServices: -3}} {
		_, err := c.resolve()
		assert.ErrorIs(t, err, ErrInvalid, "%+v", c)
	}
}

func TestServiceKeyValidate(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.1")
	assert.NoError(t, ServiceKey{VIP: vip, Port: 80, Proto: 6}.validate())
	assert.ErrorIs(t, ServiceKey{Port: 80, Proto: 6}.validate(), ErrInvalid)
	assert.ErrorIs(t, ServiceKey{VIP: vip, Proto: 1}.validate(), ErrInvalid)
	assert.NoError(t, ServiceKey{VIP: vip, Port: 80, Proto: 6, VLAN: MaxVLAN}.validate())
	assert.ErrorIs(t, ServiceKey{VIP: vip, Port: 80, Proto: 6, VLAN: MaxVLAN + 1}.validate(), ErrInvalid, "4095 is reserved")
	assert.Equal(t, "192.0.2.100:80/6@vlan10", ServiceKey{VIP: netip.MustParseAddr("192.0.2.100"), Port: 80, Proto: 6, VLAN: 10}.String())
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range NumPassReasons {
		name := r.String()
		assert.NotContains(t, name, "PassReason(", "reason %d has a name", int(r))
		assert.False(t, seen[name], "names are distinct: %s", name)
		seen[name] = true
	}
	assert.Equal(t, "no_backend", DropNoBackend.String())
	assert.Equal(t, "tx", TX.String())
}
