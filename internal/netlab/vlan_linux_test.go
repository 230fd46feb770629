package netlab

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Access ports of one VLAN reach each other, not those of another VLAN or
// an untagged port; a trunk receives the VLANs' frames tagged (the tag in
// the packet's metadata, as PACKET_AUXDATA reports it) and delivers its
// tagged frames to the VLAN's access ports only.
func TestIntegrationVLANPorts(t *testing.T) {
	l := NewT(t, &Config{Servers: 3, Clients: 1})
	require.NoError(t, l.SetAccessVLAN(l.Clients[0], 10))
	require.NoError(t, l.SetAccessVLAN(l.Servers[0], 10))
	require.NoError(t, l.SetAccessVLAN(l.Servers[1], 20))
	require.NoError(t, l.SetTrunkVLANs(l.Balancer, 10, 20))
	assert.Error(t, l.SetAccessVLAN(l.Servers[2], 4095), "VLAN IDs are 1..4094")
	assert.Error(t, l.SetAccessVLAN(l.Switch, 10), "the switch has no port of its own")

	dial := func(to *Host) error {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		c, err := l.Clients[0].DialContext(ctx, "tcp", netip.AddrPortFrom(to.IP, 80).String())
		if err == nil {
			c.Close()
		}
		return err
	}
	assert.NoError(t, dial(l.Servers[0]), "same VLAN")
	assert.Error(t, dial(l.Servers[1]), "another VLAN")
	assert.Error(t, dial(l.Servers[2]), "an untagged port")

	// The trunk sees c0's ARP for an address of nobody, tagged 10.
	var conn *packet.Conn
	require.NoError(t, l.Balancer.Do(func() error {
		ifi, err := net.InterfaceByName(l.Balancer.Link)
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		if err != nil {
			return err
		}
		rc, err := conn.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
		}); err != nil {
			return err
		}
		return serr
	}))
	defer conn.Close()
	nobody := netip.MustParseAddr("192.0.2.99")
	go func() { _ = dialOnce(l.Clients[0], nobody) }()
	rc, err := conn.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf, oob := make([]byte, 2048), make([]byte, 256)
	for {
		var n, oobn int
		var rerr error
		require.NoError(t, rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		}), "no tagged ARP from c0 on the trunk within 5s")
		require.NoError(t, rerr)
		if n < 42 || buf[12] != 0x08 || buf[13] != 0x06 || netip.AddrFrom4([4]byte(buf[38:42])) != nobody {
			continue
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		require.NoError(t, err)
		var tci uint16
		var tagged bool
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 20 {
				tagged = binary.NativeEndian.Uint32(m.Data)&unix.TP_STATUS_VLAN_VALID != 0 // tp_status
				tci = binary.NativeEndian.Uint16(m.Data[16:])                              // tp_vlan_tci
			}
		}
		assert.True(t, tagged, "the frame arrives tagged")
		assert.Equal(t, uint16(10), tci&0x0fff)
		return
	}
}

// dialOnce makes h resolve addr (an ARP request on the segment).
func dialOnce(h *Host, addr netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := h.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, 80).String())
	if err == nil {
		c.Close()
	}
	return err
}
