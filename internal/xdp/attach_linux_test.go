//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// TestIntegrationAttachNative attaches the program in native mode to the
// balancer's veth in a lab namespace, sees it attached in driver mode (and
// a pass-through program on the veth's peer in the switch namespace, which
// XDP_TX on veth needs), and detaches both.
func TestIntegrationAttachNative(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 1})
	p := loadT(t, nil)
	var during, after *netlink.LinkXdp
	peerXDP := func() *netlink.LinkXdp {
		var x *netlink.LinkXdp
		require.NoError(t, lab.Switch.Do(func() error {
			l, err := netlink.LinkByName(lab.Balancer.Name)
			if err != nil {
				return err
			}
			x = l.Attrs().Xdp
			return nil
		}))
		return x
	}
	var peerDuring *netlink.LinkXdp
	err := lab.Balancer.Do(func() error {
		ifi, err := net.InterfaceByName(lab.Balancer.Link)
		if err != nil {
			return err
		}
		l, err := p.Attach(ifi.Index)
		if err != nil {
			return err
		}
		attached, err := netlink.LinkByIndex(ifi.Index)
		if err != nil {
			l.Close()
			return err
		}
		during = attached.Attrs().Xdp
		peerDuring = peerXDP()
		if err := l.Close(); err != nil {
			return err
		}
		detached, err := netlink.LinkByIndex(ifi.Index)
		if err != nil {
			return err
		}
		after = detached.Attrs().Xdp
		return nil
	})
	require.NoError(t, err)
	require.NotNil(t, during)
	assert.True(t, during.Attached)
	// IFLA_XDP_ATTACHED: 1 is XDP_ATTACHED_DRV (2 would be generic mode).
	assert.EqualValues(t, 1, during.AttachMode, "native (driver) mode")
	assert.False(t, after != nil && after.Attached, "detached")
	require.NotNil(t, peerDuring)
	assert.True(t, peerDuring.Attached, "the peer runs a program while ours is attached")
	peerAfter := peerXDP()
	assert.False(t, peerAfter != nil && peerAfter.Attached, "the peer's program is detached too")
}
