package health

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"
)

// UDPChecker counts a target healthy when a datagram sent to
// Target.Addr:Target.Port draws a reply containing Expect. The socket is
// connected, so an ICMP port unreachable from the target fails the check at
// once instead of waiting for the timeout.
type UDPChecker struct {
	// Payload is the datagram sent. Empty means a zero-length datagram.
	Payload []byte
	// Expect must occur in the reply. Nil means any reply is healthy.
	Expect []byte
	// Timeout bounds the wait for a reply when ctx has no deadline. Zero
	// means 1 s; UDP has no connection to fail, so some bound is needed.
	Timeout time.Duration
}

// Check implements Checker.
func (c *UDPChecker) Check(ctx context.Context, t Target) error {
	if !t.Addr.IsValid() || t.Port == 0 {
		return fmt.Errorf("health: udp check of %v: %w", t, ErrTargetIncomplete)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", t.AddrPort(0).String())
	if err != nil {
		return fmt.Errorf("health: udp check of %v: %w", t, err)
	}
	defer conn.Close()
	_, err = exchange(ctx, conn, c.Payload, c.Timeout, func(b []byte) bool {
		return c.Expect == nil || bytes.Contains(b, c.Expect)
	})
	if err != nil {
		return fmt.Errorf("health: udp check of %v: %w", t, err)
	}
	return nil
}

// CheckKey implements Keyer.
func (c *UDPChecker) CheckKey() string {
	return fmt.Sprintf("udp payload=%x expect=%x timeout=%v", c.Payload, c.Expect, c.Timeout)
}

// exchange writes req on the connected conn and reads datagrams until ok
// accepts one, ctx ends or the deadline passes. Datagrams that ok rejects
// are skipped (a stray or late reply is not a failure by itself); if the
// wait ends after one was seen, the error says so.
func exchange(ctx context.Context, conn net.Conn, req []byte, timeout time.Duration, ok func([]byte) bool) ([]byte, error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	deadline, has := ctx.Deadline()
	if !has {
		deadline = time.Now().Add(timeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	var mismatched bool
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			if mismatched {
				return nil, fmt.Errorf("%w: no reply matched: %w", ErrUnexpectedResponse, err)
			}
			return nil, err
		}
		if ok(buf[:n]) {
			return buf[:n], nil
		}
		mismatched = true
	}
}
