package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ICMPChecker counts a target healthy when it answers an ICMP echo request.
// It proves only that the host's kernel is up; pair it with a service check.
//
// It first tries an unprivileged ICMP datagram socket ("udp4"/"udp6"; on
// Linux allowed by net.ipv4.ping_group_range), where the kernel owns the echo
// identifier, and falls back to a raw socket, which needs CAP_NET_RAW (root
// on most systems; Administrator on Windows).
type ICMPChecker struct {
	// Payload is carried in the echo and must come back unchanged. Nil
	// means a fixed 16-byte marker.
	Payload []byte
	// Timeout bounds the wait when ctx has no deadline. Zero means 1 s.
	Timeout time.Duration
}

var defaultPing = []byte("dsrlb-health-pin")

// Check implements Checker.
func (c *ICMPChecker) Check(ctx context.Context, t Target) error {
	if !t.Addr.IsValid() {
		return fmt.Errorf("health: icmp check of %v: %w", t, ErrTargetIncomplete)
	}
	a := t.Addr.Unmap()
	dgram, raw, proto := "udp4", "ip4:icmp", 1
	var echo, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if a.Is6() {
		dgram, raw, proto = "udp6", "ip6:ipv6-icmp", 58
		echo, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	var dst net.Addr
	conn, err := icmp.ListenPacket(dgram, "")
	if err == nil {
		dst = &net.UDPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	} else {
		conn, err = icmp.ListenPacket(raw, "")
		if err != nil {
			return fmt.Errorf("health: icmp check of %v: %w", t, err)
		}
		dst = &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	}
	defer conn.Close()

	var rb [4]byte
	_, _ = rand.Read(rb[:])
	id, seq := int(binary.BigEndian.Uint16(rb[:2])), int(binary.BigEndian.Uint16(rb[2:]))
	payload := c.Payload
	if payload == nil {
		payload = defaultPing
	}
	msg := icmp.Message{Type: echo, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}
	b, err := msg.Marshal(nil) // the kernel computes the ICMPv6 checksum
	if err != nil {
		return fmt.Errorf("health: icmp check of %v: %w", t, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	deadline, has := ctx.Deadline()
	if !has {
		deadline = time.Now().Add(timeout)
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.WriteTo(b, dst); err != nil {
		return fmt.Errorf("health: icmp check of %v: %w", t, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else if os.IsTimeout(err) {
				err = fmt.Errorf("no echo reply: %w", err)
			}
			return fmt.Errorf("health: icmp check of %v: %w", t, err)
		}
		if !sameIP(from, a.AsSlice()) {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		// Datagram sockets rewrite the identifier, so only the sequence
		// number and payload identify our reply there.
		if !ok || e.Seq != seq || string(e.Data) != string(payload) {
			continue
		}
		return nil
	}
}

func sameIP(a net.Addr, ip net.IP) bool {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.IP.Equal(ip)
	case *net.IPAddr:
		return v.IP.Equal(ip)
	}
	return false
}

// CheckKey implements Keyer.
func (c *ICMPChecker) CheckKey() string {
	return fmt.Sprintf("icmp payload=%x timeout=%v", c.Payload, c.Timeout)
}
