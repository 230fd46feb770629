//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// packetSocket opens an AF_PACKET socket on host's segment interface, with
// PACKET_AUXDATA, closed when the test ends.
func packetSocket(t *testing.T, h *netlab.Host) (fd, ifindex int) {
	t.Helper()
	require.NoError(t, h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex}); err != nil {
			unix.Close(fd)
			return err
		}
		return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
	}))
	t.Cleanup(func() { unix.Close(fd) })
	return fd, ifindex
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// captured is a frame as the balancer's kernel received it.
type captured struct {
	frame    []byte
	notReady bool // TP_STATUS_CSUMNOTREADY: a CHECKSUM_PARTIAL skb
}

// TestIntegrationPartialChecksumsFromKernel captures, on the balancer's
// veth, the TCP and UDP frames a client's kernel sends with default
// offloads (PACKET_AUXDATA marks them TP_STATUS_CSUMNOTREADY) and frames
// injected with full checksums, then runs each through the program: it
// takes for partial exactly the frames the kernel marked, completes their
// checksums and leaves the others' alone. It also pins down the form the
// kernel stores: the Go side's PseudoHeaderSum, not complemented.
func TestIntegrationPartialChecksumsFromKernel(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, IPv6: true, NoServerProcesses: true})
	client := lab.Clients[0]
	vips := lab.VIPs
	require.Len(t, vips, 2)
	for _, vip := range vips {
		require.NoError(t, client.SetNeighbor(vip, lab.Balancer.MAC))
	}
	capFD, _ := packetSocket(t, lab.Balancer)
	injFD, injIndex := packetSocket(t, client)

	// What the client sends, by destination port.
	want := map[netip.AddrPort]bool{} // → sent by the kernel (partial expected)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, vip := range vips {
		network := "udp4"
		max := 1472
		src := client.IP
		if vip.Is6() {
			network, max, src = "udp6", 1452, client.IP6
		}
		pc, err := client.ListenPacket(ctx, network, ":0")
		require.NoError(t, err)
		for i, n := range []int{0, 1, 2, 3, 100, 1001, max} {
			dst := netip.AddrPortFrom(vip, uint16(9000+i))
			_, err := pc.WriteTo(payloadOf(n), net.UDPAddrFromAddrPort(dst))
			require.NoError(t, err)
			want[dst] = true
		}
		pc.Close()
		// A SYN nobody answers.
		dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if c, err := client.DialContext(dctx, "tcp", netip.AddrPortFrom(vip, 81).String()); err == nil {
			c.Close()
		}
		dcancel()
		want[netip.AddrPortFrom(vip, 81)] = true
		// Frames with full checksums, injected below the client's stack.
		eth := ft.Ethernet{Dst: [6]byte(lab.Balancer.MAC), Src: [6]byte(client.MAC)}
		for i, l4 := range []ft.Layer{
			ft.UDP{SrcPort: 4000, DstPort: 7000}, ft.UDP{SrcPort: 4000, DstPort: 7001},
			ft.TCP{SrcPort: 4000, DstPort: 7002, Flags: frame.FlagSYN, Window: 100},
		} {
			f := ft.Build(eth, ipLayer(src, vip), l4, payloadOf(i))
			require.NoError(t, unix.Sendto(injFD, f, 0, &unix.SockaddrLinklayer{Ifindex: injIndex, Halen: 6,
				Protocol: htons(binary.BigEndian.Uint16(f[12:]))}))
			want[netip.AddrPortFrom(vip, uint16(7000+i))] = false
		}
	}

	// Capture until every destination has been seen once.
	got := map[netip.AddrPort]captured{}
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(capFD), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 200); err != nil || n == 0 {
			continue
		}
		n, oobn, _, _, err := unix.Recvmsg(capFD, buf, oob, unix.MSG_DONTWAIT)
		if err != nil {
			continue
		}
		var p frame.Packet
		if frame.Parse(buf[:n], &p) != nil || (p.Proto != frame.ProtoTCP && p.Proto != frame.ProtoUDP) {
			continue
		}
		dst := netip.AddrPortFrom(p.Dst, p.DstPort)
		if _, ok := want[dst]; !ok {
			continue
		}
		c := captured{frame: append([]byte(nil), buf[:n]...)}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		require.NoError(t, err)
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA &&
				len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
				aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
				c.notReady = aux.Status&unix.TP_STATUS_CSUMNOTREADY != 0
			}
		}
		got[dst] = c
	}
	require.Len(t, got, len(want), "every frame sent was captured")

	pl := newPlan(t)
	for i, vip := range vips {
		for _, proto := range []uint8{frame.ProtoTCP, frame.ProtoUDP} {
			require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip, Port: 0, Proto: proto}, uint32(2+i), true, []uint32{pl.backends[0].id}))
		}
	}
	for dst, c := range got {
		t.Run(fmt.Sprintf("%v", dst), func(t *testing.T) {
			assert.Equal(t, want[dst], c.notReady, "the kernel marks what its own stack sent CSUMNOTREADY")
			assert.Equal(t, c.notReady, isPartial(c.frame), "the checksum field holds the pseudo-header sum exactly when the kernel marks it")
			in := append([]byte(nil), c.frame...)
			copy(in[0:6], ourMAC[:]) // the plan's balancer
			before := pl.counters()
			v, out, err := pl.p.Run(in)
			require.NoError(t, err)
			require.Equal(t, TX, v)
			after := pl.counters()
			if c.notReady {
				assert.EqualValues(t, 1, after.ChecksumsCompleted-before.ChecksumsCompleted, "taken for partial")
				assert.Equal(t, completed(t, in, pl.backends[0]), out)
			} else {
				assert.Zero(t, after.ChecksumsCompleted-before.ChecksumsCompleted, "not taken for partial")
				assert.Equal(t, in[12:], out[12:])
			}
			assert.True(t, checksumOK(t, out), "the checksum verifies")
		})
	}
}
