package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/afpacket"
	"github.com/dsrlb/dsrlb/internal/frame"
)

// DSRPathChecker proves that a backend will serve the traffic the balancer
// forwards to it. It sends a TCP SYN for VIP:port in an Ethernet frame
// addressed to the backend's MAC — exactly how the L2 DSR data path delivers
// client packets — and counts the backend healthy only when a SYN-ACK comes
// back from VIP:port to the probe's source port. That proves the backend
// holds the VIP (on loopback), accepts it and listens on it, with no
// namespace, mark or kernel-module tricks on either side. A RST from the VIP
// means the VIP is held but nothing listens; silence means the backend drops
// VIP traffic (the VIP is missing) or is down. Targets carry VIP, Port and
// MAC; the VIP may be IPv4 or IPv6 (the probe is then an IPv6 frame), and
// one checker serves both families, so a dual-stack service needs one.
//
// After the SYN-ACK the checker sends a RST (sequence ISN+1, which the
// backend accepts) so no half-open connection is left on the backend.
//
// Probe source addresses. The SYN-ACK is addressed to the probe source, so
// each family needs one: DSRPathConfig.Source4 and Source6, by default the
// interface's first IPv4 address and its first global IPv6 address, else its
// IPv6 link-local address. A link-local source works because a Linux backend
// answers a SYN from a link-local address through the interface the SYN
// came in on, whatever the VIP's scope. A checker without a source for a
// family refuses targets of that family, saying which address is missing
// (Support reports it too, so a balancer refuses such a service when it is
// configured).
//
// A kernel that owns the probe source but has no socket for the flow answers
// the SYN-ACK with a RST of its own. With a source of the host's that kernel
// RST is accepted: it is a second, valid cleanup of the same half-open
// connection (its sequence number is the SYN-ACK's acknowledgment number),
// and it is harmless because the checker has already seen the SYN-ACK on its
// packet socket, which receives frames before the kernel's TCP stack. This
// needs nothing on the segment beyond what the host already has: the backend
// resolves the balancer's address with ordinary ARP or neighbour discovery
// answered by the balancer's kernel. A source that is not configured on the
// host avoids the kernel RST instead (the kernel drops frames for addresses
// it does not own when it does not forward); the checker then answers ARP
// requests (IPv4) and neighbour solicitations (IPv6) for that address itself
// on its packet socket, so the backend can reach it.
//
// Source ports are random in 32768–60999 and never reused while a probe is
// in flight. Close releases the reader goroutine and, if the checker opened
// it, the socket.
type DSRPathChecker struct {
	id     string
	ifName string
	conn   *packet.Conn
	owned  bool
	// src4 and src6 are the probe sources; an invalid one means the family
	// cannot be probed. answerARP and answerND are set when the host does
	// not own src4 or src6, so the checker must answer for it.
	src4, src6          netip.Addr
	srcMAC              [6]byte
	answerARP, answerND bool
	// vlanSrc are the probe sources on VLANs of a trunk, which the
	// checker always answers ARP and neighbour solicitations for.
	vlanSrc map[uint16]vlanSource
	// rc reads frames with their PACKET_AUXDATA, for the VLAN tag the
	// kernel took out of received frames; oob is the reader's buffer.
	rc  syscall.RawConn
	oob []byte

	mu      sync.Mutex
	waiters map[dsrWaitKey]chan segment
	closed  bool
	readErr error
	done    chan struct{}
	once    sync.Once
}

type dsrWaitKey struct {
	vip   netip.Addr
	vport uint16
	sport uint16
	vlan  uint16
}

// NewDSRPathChecker returns a checker using cfg.Interface, looked up in the
// calling thread's network namespace, and starts its reader goroutine. It
// fails when the interface has no Ethernet address, or no source address of
// either family can be found or was given.
func NewDSRPathChecker(cfg *DSRPathConfig) (*DSRPathChecker, error) {
	if cfg == nil || cfg.Interface == "" {
		return nil, errors.New("health: dsr-path checker: DSRPathConfig.Interface is required")
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("health: dsr-path checker: %w", err)
	}
	own, err := interfaceAddrs(ifi)
	if err != nil {
		return nil, fmt.Errorf("health: dsr-path checker: addresses of %s: %w", ifi.Name, err)
	}
	c := &DSRPathChecker{
		ifName:  ifi.Name,
		conn:    cfg.Conn,
		src4:    cfg.Source4.Unmap(),
		src6:    cfg.Source6,
		waiters: make(map[dsrWaitKey]chan segment),
		done:    make(chan struct{}),
	}
	mac := cfg.SourceMAC
	if len(mac) == 0 {
		mac = ifi.HardwareAddr
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("health: dsr-path checker: %s has no Ethernet address; set DSRPathConfig.SourceMAC", ifi.Name)
	}
	c.srcMAC = [6]byte(mac)
	switch {
	case c.src4.IsValid() && (!c.src4.Is4() || c.src4.IsMulticast() || c.src4.IsUnspecified() || c.src4.IsLoopback() || c.src4 == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		return nil, fmt.Errorf("health: dsr-path checker: DSRPathConfig.Source4 %v is not an IPv4 unicast address", cfg.Source4)
	case c.src6.IsValid() && (!c.src6.Is6() || c.src6.Is4In6() || c.src6.IsMulticast() || c.src6.IsUnspecified() || c.src6.IsLoopback()):
		return nil, fmt.Errorf("health: dsr-path checker: DSRPathConfig.Source6 %v is not an IPv6 unicast address", cfg.Source6)
	}
	if !c.src4.IsValid() {
		c.src4 = pick(own, func(a netip.Addr) bool { return a.Is4() })
	} else {
		c.answerARP = !slices.Contains(own, c.src4)
	}
	if !c.src6.IsValid() {
		c.src6 = pick(own, func(a netip.Addr) bool { return a.Is6() && a.IsGlobalUnicast() })
		if !c.src6.IsValid() {
			c.src6 = pick(own, func(a netip.Addr) bool { return a.Is6() && a.IsLinkLocalUnicast() })
		}
	} else {
		c.answerND = !slices.Contains(own, c.src6.WithZone(""))
	}
	c.src6 = c.src6.WithZone("") // the zone is the interface, implied
	if !c.src4.IsValid() && !c.src6.IsValid() {
		return nil, fmt.Errorf("health: dsr-path checker: %s has no IPv4 or IPv6 address to send probes from: add one, or set DSRPathConfig.Source4 or Source6", ifi.Name)
	}
	if c.vlanSrc, err = parseVLANSources(cfg.VLANSources); err != nil {
		return nil, fmt.Errorf("health: dsr-path checker: %w", err)
	}
	if c.conn == nil {
		c.conn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		if err != nil {
			return nil, fmt.Errorf("health: dsr-path checker: %w", err)
		}
		c.owned = true
	}
	if err := c.conn.SetBPF(probeFilter()); err != nil {
		c.closeConn()
		return nil, fmt.Errorf("health: dsr-path checker: setting filter: %w", err)
	}
	if c.answerND {
		// A NIC with a multicast filter passes the solicitations for src6
		// only once someone joined its solicited-node group.
		if err := joinGroup(c.conn, ifi.Index, solicitedNodeMAC(c.src6)); err != nil {
			c.closeConn()
			return nil, fmt.Errorf("health: dsr-path checker: joining the solicited-node group of %v: %w", c.src6, err)
		}
	}
	for _, s := range c.vlanSrc {
		if s.v6.IsValid() {
			if err := joinGroup(c.conn, ifi.Index, solicitedNodeMAC(s.v6)); err != nil {
				c.closeConn()
				return nil, fmt.Errorf("health: dsr-path checker: joining the solicited-node group of %v: %w", s.v6, err)
			}
		}
	}
	if len(c.vlanSrc) > 0 {
		// Received tags come back through PACKET_AUXDATA: the kernel
		// takes them out of the frame.
		if c.rc, err = c.conn.SyscallConn(); err == nil {
			var serr error
			if err = c.rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
			}); err == nil {
				err = serr
			}
		}
		if err != nil {
			c.closeConn()
			return nil, fmt.Errorf("health: dsr-path checker: PACKET_AUXDATA for VLAN tags: %w", err)
		}
		c.oob = make([]byte, afpacket.AuxSpace)
	}
	c.id = fmt.Sprintf("%s/%v/%v/%p", ifi.Name, c.src4, c.src6, c)
	go c.read()
	return c, nil
}

// interfaceAddrs returns the unicast addresses of ifi, IPv4 ones unmapped.
func interfaceAddrs(ifi *net.Interface) ([]netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(p.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

func pick(addrs []netip.Addr, ok func(netip.Addr) bool) netip.Addr {
	for _, a := range addrs {
		if ok(a) {
			return a
		}
	}
	return netip.Addr{}
}

// joinGroup adds the Ethernet multicast group mac to the packet socket's
// memberships on interface ifindex; the kernel drops it with the socket.
func joinGroup(conn *packet.Conn, ifindex int, mac net.HardwareAddr) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: 6}
	copy(mreq.Address[:], mac)
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq)
	}); err != nil {
		return err
	}
	return serr
}

// families reports the families the checker has a probe source for and,
// when one is missing, what to do about it. A checker that was never
// constructed states nothing (both).
func (c *DSRPathChecker) families() (Families, string) {
	switch {
	case c.src4.IsValid() && c.src6.IsValid(), !c.src4.IsValid() && !c.src6.IsValid():
		return BothFamilies, ""
	case c.src4.IsValid():
		return IPv4, c.missingSource(6)
	default:
		return IPv6, c.missingSource(4)
	}
}

// missingSource says which source address is missing for IP version v and
// how to provide it.
func (c *DSRPathChecker) missingSource(v int) string {
	if v == 4 {
		return fmt.Sprintf("no IPv4 source address on %s to probe IPv4 VIPs from: add one to %s or set DSRPathConfig.Source4", c.ifName, c.ifName)
	}
	return fmt.Sprintf("no IPv6 source address on %s to probe IPv6 VIPs from: add one to %s (a link-local address will do) or set DSRPathConfig.Source6", c.ifName, c.ifName)
}

// Byte offsets for the probe filter.
const (
	ethLen   = frame.EthernetHeaderLen
	ipv6Len  = frame.IPv6HeaderLen
	tcpFlags = 13 // offset of the flag byte in the TCP header
)

// probeFilter passes ARP; IPv4 and IPv6 TCP segments with RST or SYN+ACK
// set; and ICMPv6 neighbour solicitations: the checker's socket then sees
// none of the data traffic a busy balancer interface carries. IPv6 segments
// are recognised without extension headers, which a SYN-ACK never has.
func probeFilter() []bpf.RawInstruction {
	const (
		accept = 0x40000
		synAck = frame.FlagSYN | frame.FlagACK
	)
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},                                         // 0 EtherType
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: frame.EtherTypeARP, SkipTrue: 16},     // 1 → 18 accept
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: frame.EtherTypeIPv6, SkipTrue: 8},     // 2 → 11 IPv6
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: frame.EtherTypeIPv4, SkipTrue: 18}, // 3 → 22 drop
		bpf.LoadAbsolute{Off: ethLen + 9, Size: 1},                                 // 4 protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: frame.ProtoTCP, SkipTrue: 16},      // 5 → 22 drop
		bpf.LoadAbsolute{Off: ethLen + 6, Size: 2},                                 // 6 fragment
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 14},               // 7 → 22 drop
		bpf.LoadMemShift{Off: ethLen},                                              // 8 X = IHL*4
		bpf.LoadIndirect{Off: ethLen + tcpFlags, Size: 1},                          // 9 TCP flags
		bpf.Jump{Skip: 4},                          // 10 → 15 flags
		bpf.LoadAbsolute{Off: ethLen + 6, Size: 1}, // 11 next header
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: frame.ProtoICMPv6, SkipTrue: 6},                   // 12 → 19 ICMPv6
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: frame.ProtoTCP, SkipTrue: 8},                   // 13 → 22 drop
		bpf.LoadAbsolute{Off: ethLen + ipv6Len + tcpFlags, Size: 1},                            // 14 TCP flags
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: frame.FlagRST, SkipTrue: 2},                     // 15 → 18 accept
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: synAck},                                       // 16
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: synAck, SkipTrue: 4},                           // 17 → 22 drop
		bpf.RetConstant{Val: accept},                                                           // 18
		bpf.LoadAbsolute{Off: ethLen + ipv6Len, Size: 1},                                       // 19 ICMPv6 type
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: frame.ICMPv6NeighborSolicitation, SkipTrue: 1}, // 20 → 22 drop
		bpf.RetConstant{Val: accept},                                                           // 21
		bpf.RetConstant{Val: 0},                                                                // 22
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic("health: probe filter does not assemble: " + err.Error()) // a constant program
	}
	return raw
}

func (c *DSRPathChecker) read() {
	defer close(c.done)
	buf := make([]byte, 1<<16)
	var out []byte
	for {
		n, vlan, err := c.readFrame(buf)
		if err != nil {
			c.mu.Lock()
			closed := c.closed
			if !closed && !isTimeout(err) {
				c.readErr = err
			}
			c.mu.Unlock()
			if closed || !isTimeout(err) {
				return
			}
			continue
		}
		f := buf[:n]
		if vlan == 0 {
			vlan = frameVLAN(f)
		}
		src4, src6 := c.src4, c.src6
		answerARP, answerND := c.answerARP, c.answerND
		if vlan != 0 {
			vs := c.vlanSrc[vlan]
			src4, src6, answerARP, answerND = vs.v4, vs.v6, vs.v4.IsValid(), vs.v6.IsValid()
		}
		if answerARP {
			if req, err := parseARPRequest(f); err == nil {
				if req.targetIP == src4 {
					out = appendARPReply(out[:0], req, src4, c.srcMAC)
					_, _ = c.conn.WriteTo(tagFrame(out, vlan), &packet.Addr{HardwareAddr: req.senderMAC[:]})
				}
				continue
			}
		}
		if answerND {
			if ns, err := parseNeighborSolicitation(f); err == nil {
				if ns.target == src6 {
					out = appendNeighborAdvertisement(out[:0], ns, c.srcMAC)
					_, _ = c.conn.WriteTo(tagFrame(out, vlan), &packet.Addr{HardwareAddr: out[0:6]})
				}
				continue
			}
		}
		s, err := parseSegment(f)
		if err != nil || !s.dst.IsValid() || (s.dst != src4 && s.dst != src6) {
			continue
		}
		c.mu.Lock()
		ch := c.waiters[dsrWaitKey{vip: s.src, vport: s.sport, sport: s.dport, vlan: vlan}]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- s:
			default:
			}
		}
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// readFrame reads one frame into buf and returns, when the checker serves
// VLANs, the VLAN ID of the tag the kernel took out of it (0 when there
// was none; a tag still in the frame is read from the frame).
func (c *DSRPathChecker) readFrame(buf []byte) (n int, vlan uint16, err error) {
	if c.rc == nil {
		n, _, err = c.conn.ReadFrom(buf)
		return n, 0, err
	}
	var oobn int
	var rerr error
	err = c.rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, c.oob, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, 0, err
	}
	if _, tci, ok := afpacket.VLANFromAux(c.oob[:oobn]); ok {
		vlan = tci & 0x0fff
	}
	return n, vlan, nil
}

// Check implements Checker.
func (c *DSRPathChecker) Check(ctx context.Context, t Target) error {
	vip := t.VIP.Unmap()
	switch {
	case !vip.IsValid():
		return fmt.Errorf("health: dsr-path check of %v: the target has no VIP: the probe is a SYN to the service address: %w", t, ErrTargetIncomplete)
	case t.Port == 0:
		return fmt.Errorf("health: dsr-path check of %v: the target has no port: the probe is a SYN to the service port, so a service that balances every port needs a port on its check: %w", t, ErrTargetIncomplete)
	case len(t.MAC) != 6:
		return fmt.Errorf("health: dsr-path check of %v: the target has no 6-byte Ethernet MAC (the probe is sent to the backend's MAC, which the balancer fills in once it has resolved it): %w", t, ErrTargetIncomplete)
	}
	src, v := c.src4, 4
	if vip.Is6() {
		src, v = c.src6, 6
	}
	if t.VLAN != 0 {
		vs := c.vlanSrc[t.VLAN]
		src = vs.v4
		if vip.Is6() {
			src = vs.v6
		}
		if !src.IsValid() {
			return fmt.Errorf("health: dsr-path check of %v: no IPv%d probe source address on VLAN %d (set DSRPathConfig.VLANSources): %w", t, v, t.VLAN, ErrUnsupportedTarget)
		}
	}
	if !src.IsValid() {
		return fmt.Errorf("health: dsr-path check of %v: %s: %w", t, c.missingSource(v), ErrUnsupportedTarget)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	p := probe{
		srcMAC: c.srcMAC, dstMAC: [6]byte(t.MAC), src: src, dst: vip, dport: t.Port,
		seq: binary.BigEndian.Uint32(rnd[0:]), ipID: binary.BigEndian.Uint16(rnd[4:]), tun: t.Tunnel, vlan: t.VLAN,
	}
	ch := make(chan segment, 4)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.readErr != nil {
		err := c.readErr
		c.mu.Unlock()
		return fmt.Errorf("health: dsr-path check of %v: socket failed: %w", t, err)
	}
	sport := 32768 + binary.BigEndian.Uint16(rnd[6:])%(61000-32768)
	for {
		k := dsrWaitKey{vip: vip, vport: t.Port, sport: sport, vlan: t.VLAN}
		if c.waiters[k] == nil {
			c.waiters[k] = ch
			break
		}
		sport = 32768 + (sport-32768+1)%(61000-32768)
	}
	key := dsrWaitKey{vip: vip, vport: t.Port, sport: sport, vlan: t.VLAN}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, key)
		c.mu.Unlock()
	}()
	p.sport = sport

	to := &packet.Addr{HardwareAddr: t.MAC}
	syn := p.appendSYN(make([]byte, 0, 96))
	if _, err := c.conn.WriteTo(syn, to); err != nil {
		return fmt.Errorf("health: dsr-path check of %v: sending SYN: %w", t, err)
	}
	// Resend the SYN now and then, as TCP would: the first one may be lost
	// while the backend resolves the probe source's MAC.
	resend := time.NewTicker(250 * time.Millisecond)
	defer resend.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("health: dsr-path check of %v: no SYN-ACK from the VIP (backend down, or VIP missing on its loopback): %w", t, ctx.Err())
		case <-c.done:
			return ErrClosed
		case <-resend.C:
			_, _ = c.conn.WriteTo(syn, to)
		case s := <-ch:
			if s.ack != p.seq+1 {
				continue
			}
			switch {
			case s.flags&frame.FlagRST != 0:
				return fmt.Errorf("health: dsr-path check of %v: VIP refused the connection (nothing listens on VIP:port): %w", t, ErrUnexpectedResponse)
			case s.flags&(frame.FlagSYN|frame.FlagACK) == frame.FlagSYN|frame.FlagACK:
				rst := p.appendRST(make([]byte, 0, 96))
				if _, err := c.conn.WriteTo(rst, to); err != nil {
					return fmt.Errorf("health: dsr-path check of %v: sending RST: %w", t, err)
				}
				return nil
			}
		}
	}
}

// Close stops the reader goroutine, waits for it, and closes the socket if
// the checker opened it. Checks in flight return ErrClosed.
func (c *DSRPathChecker) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		if c.owned {
			err = c.conn.Close()
		} else {
			// Wake the reader without closing a socket we do not own.
			err = c.conn.SetReadDeadline(time.Unix(1, 0))
		}
		<-c.done
	})
	return err
}

func (c *DSRPathChecker) closeConn() {
	if c.owned {
		_ = c.conn.Close()
	}
}
