package arp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/afpacket"
)

// Why the Speaker's sockets are ETH_P_ALL sockets with filters rather than
// bound to ETH_P_ARP or ETH_P_IPV6: Linux moves every received VLAN tag out
// of the frame into the packet's metadata as it arrives (offloaded or not),
// and when no VLAN interface takes the frame it clears that metadata before
// it hands the frame to protocol-bound sockets. Only ETH_P_ALL sockets see
// the frame while it still knows its VLAN, through PACKET_AUXDATA. Their
// classic BPF filter sees the frame without the stripped tag, so the
// filters accept a protocol both right after the MAC addresses (tag
// stripped, or untagged) and behind one tag still in the frame.

// arpFilter passes ARP frames, untagged or behind one tag in the frame.
var arpFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 12, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_ARP, SkipTrue: 3},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: tpidVLAN, SkipTrue: 3},
	bpf.LoadAbsolute{Off: 16, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_ARP, SkipTrue: 1},
	bpf.RetConstant{Val: 1 << 16},
	bpf.RetConstant{Val: 0},
}

// vlanConn is a packet socket whose ReadFrom puts back the VLAN tag the
// kernel stripped (PACKET_AUXDATA). One goroutine reads it at a time (the
// Speaker's read loop), which owns oob.
type vlanConn struct {
	*packet.Conn
	rc     syscall.RawConn
	oob    []byte
	closed atomic.Bool
}

// Close closes the socket; a blocked ReadFrom returns net.ErrClosed.
func (c *vlanConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// listenVLAN opens an ETH_P_ALL packet socket on ifi with filter attached
// before it is bound (so no other frame is queued), PACKET_AUXDATA on and
// its own transmissions not looped back.
func listenVLAN(ifi *net.Interface, filter []bpf.Instruction) (*vlanConn, error) {
	raw, err := bpf.Assemble(filter)
	if err != nil {
		return nil, err
	}
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: raw})
	if err != nil {
		return nil, err
	}
	ignoreOutgoing(conn)
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
	}); err != nil {
		serr = err
	}
	if serr != nil {
		conn.Close()
		return nil, fmt.Errorf("PACKET_AUXDATA: %w", serr)
	}
	return &vlanConn{Conn: conn, rc: rc, oob: make([]byte, afpacket.AuxSpace)}, nil
}

// ReadFrom reads one frame into b with its VLAN tag, if it had one, back
// behind the MAC addresses. A frame with no room left in b for the tag is
// returned without it.
func (c *vlanConn) ReadFrom(b []byte) (int, net.Addr, error) {
	var n, oobn int
	var from unix.Sockaddr
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), b, c.oob, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if c.closed.Load() {
			err = net.ErrClosed
		}
		return 0, nil, &net.OpError{Op: "read", Net: "packet", Err: err}
	}
	if tpid, tci, ok := afpacket.VLANFromAux(c.oob[:oobn]); ok && n >= 12 && n+4 <= len(b) {
		copy(b[16:n+4], b[12:n])
		binary.BigEndian.PutUint16(b[12:], tpid)
		binary.BigEndian.PutUint16(b[14:], tci)
		n += 4
	}
	var addr net.Addr
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		addr = &packet.Addr{HardwareAddr: net.HardwareAddr(ll.Addr[:ll.Halen])}
	}
	return n, addr, nil
}
