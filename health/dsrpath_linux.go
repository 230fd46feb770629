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
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// DSRPathChecker proves that a backend will serve the traffic the balancer
// forwards to it. It sends a TCP SYN for VIP:port in an Ethernet frame
// addressed to the backend's MAC — exactly how the L2 DSR data path delivers
// client packets — and counts the backend healthy only when a SYN-ACK comes
// back from VIP:port to the probe's source port. That proves the backend
// holds the VIP (on loopback), accepts it and listens on it, with no
// namespace, mark or kernel-module tricks on either side. A RST from the VIP
// means the VIP is held but nothing listens; silence means the backend drops
// VIP traffic (the VIP is missing) or is down. Targets must be IPv4 and carry
// VIP, Port and MAC.
//
// After the SYN-ACK the checker sends a RST (sequence ISN+1, which the
// backend accepts) so no half-open connection is left on the backend.
//
// Probe source address. The SYN-ACK is addressed to the probe source, and a
// kernel that owns that address but has no socket for the flow answers with a
// RST of its own. By default the probe is sourced from the balancer's own
// interface address and that kernel RST is accepted: it is a second, valid
// cleanup of the same half-open connection (its sequence number is the
// SYN-ACK's acknowledgment number), and it is harmless because the checker
// has already seen the SYN-ACK on its packet socket, which receives frames
// before the kernel's TCP stack. This needs nothing on the segment beyond
// what the host already has: the backend resolves the balancer's address
// with ordinary ARP answered by the balancer's kernel. Setting
// DSRPathConfig.Source to an address that is not configured on the host
// avoids the kernel RST instead (the kernel drops frames for addresses it
// does not own when it does not forward); the checker then answers ARP for
// that address itself on its packet socket, so the backend can reach it.
//
// Source ports are random in 32768–60999 and never reused while a probe is
// in flight. Close releases the reader goroutine and, if the checker opened
// it, the socket.
type DSRPathChecker struct {
	id        string
	conn      *packet.Conn
	owned     bool
	src       netip.Addr
	srcMAC    net.HardwareAddr
	answerARP bool

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
}

// NewDSRPathChecker returns a checker using cfg.Interface, looked up in the
// calling thread's network namespace, and starts its reader goroutine.
func NewDSRPathChecker(cfg *DSRPathConfig) (*DSRPathChecker, error) {
	if cfg == nil || cfg.Interface == "" {
		return nil, errors.New("health: dsr-path checker: DSRPathConfig.Interface is required")
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("health: dsr-path checker: %w", err)
	}
	own, err := interfaceIPv4s(ifi)
	if err != nil {
		return nil, fmt.Errorf("health: dsr-path checker: addresses of %s: %w", ifi.Name, err)
	}
	c := &DSRPathChecker{
		conn:    cfg.Conn,
		src:     cfg.Source.Unmap(),
		srcMAC:  cfg.SourceMAC,
		waiters: make(map[dsrWaitKey]chan segment),
		done:    make(chan struct{}),
	}
	if len(c.srcMAC) == 0 {
		c.srcMAC = ifi.HardwareAddr
	}
	if len(c.srcMAC) != 6 {
		return nil, fmt.Errorf("health: dsr-path checker: %s has no Ethernet address", ifi.Name)
	}
	if !c.src.IsValid() {
		if len(own) == 0 {
			return nil, fmt.Errorf("health: dsr-path checker: %s has no IPv4 address; set DSRPathConfig.Source", ifi.Name)
		}
		c.src = own[0]
	}
	if !c.src.Is4() {
		return nil, fmt.Errorf("health: dsr-path checker: source %v is not IPv4", c.src)
	}
	c.answerARP = true
	for _, a := range own {
		if a == c.src {
			c.answerARP = false
		}
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
	c.id = fmt.Sprintf("%s/%v/%p", ifi.Name, c.src, c)
	go c.read()
	return c, nil
}

func interfaceIPv4s(ifi *net.Interface) ([]netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap().Is4() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// probeFilter passes ARP, and IPv4 TCP segments with RST or SYN+ACK set:
// the checker's socket then sees none of the data traffic a busy balancer
// interface carries.
func probeFilter() []bpf.RawInstruction {
	const (
		accept = 0x40000
	)
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},                                    // 0 ethertype
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherARP, SkipTrue: 10},          // 1 → accept
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherIPv4, SkipTrue: 10},      // 2 → drop
		bpf.LoadAbsolute{Off: ethHdrLen + 9, Size: 1},                         // 3 protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 8},               // 4 → drop
		bpf.LoadAbsolute{Off: ethHdrLen + 6, Size: 2},                         // 5 fragment
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 6},           // 6 → drop
		bpf.LoadMemShift{Off: ethHdrLen},                                      // 7 X = IHL*4
		bpf.LoadIndirect{Off: ethHdrLen + 13, Size: 1},                        // 8 TCP flags
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: tcpRST, SkipTrue: 2},           // 9 → accept
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: tcpSYN | tcpACK},             // 10
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: tcpSYN | tcpACK, SkipTrue: 1}, // 11 → drop
		bpf.RetConstant{Val: accept},                                          // 12
		bpf.RetConstant{Val: 0},                                               // 13
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
		n, _, err := c.conn.ReadFrom(buf)
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
		if c.answerARP {
			if req, err := parseARPRequest(f); err == nil {
				if req.targetIP == c.src {
					out = appendARPReply(out[:0], req, c.src, c.srcMAC)
					_, _ = c.conn.WriteTo(out, &packet.Addr{HardwareAddr: req.senderMAC})
				}
				continue
			}
		}
		s, err := parseSegment(f)
		if err != nil || s.dst != c.src {
			continue
		}
		c.mu.Lock()
		ch := c.waiters[dsrWaitKey{vip: s.src, vport: s.sport, sport: s.dport}]
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

// Check implements Checker.
func (c *DSRPathChecker) Check(ctx context.Context, t Target) error {
	vip := t.VIP.Unmap()
	if !vip.Is4() || t.Port == 0 || len(t.MAC) != 6 {
		return fmt.Errorf("health: dsr-path check of %v: needs an IPv4 VIP, a port and a MAC: %w", t, ErrTargetIncomplete)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	p := probe{
		srcMAC: c.srcMAC, dstMAC: t.MAC, src: c.src, dst: vip, dport: t.Port,
		seq: binary.BigEndian.Uint32(rnd[0:]), ipID: binary.BigEndian.Uint16(rnd[4:]),
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
		k := dsrWaitKey{vip: vip, vport: t.Port, sport: sport}
		if c.waiters[k] == nil {
			c.waiters[k] = ch
			break
		}
		sport = 32768 + (sport-32768+1)%(61000-32768)
	}
	key := dsrWaitKey{vip: vip, vport: t.Port, sport: sport}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, key)
		c.mu.Unlock()
	}()
	p.sport = sport

	to := &packet.Addr{HardwareAddr: t.MAC}
	syn := p.appendSYN(make([]byte, 0, 64))
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
			case s.flags&tcpRST != 0:
				return fmt.Errorf("health: dsr-path check of %v: VIP refused the connection (nothing listens on VIP:port): %w", t, ErrUnexpectedResponse)
			case s.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
				rst := p.appendRST(make([]byte, 0, 64))
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
