package health

import (
	"context"
	"fmt"
	"net"
)

// TCPChecker counts a target healthy when a TCP connection to
// Target.Addr:Target.Port completes. It proves the server's kernel is up and
// something listens; it does not prove the server accepts VIP traffic (see
// DSRPathChecker). The zero value is ready to use.
type TCPChecker struct {
	// Dialer dials the connections. Nil means a net.Dialer with keep-alive
	// off (the connection lives for microseconds, so the keep-alive
	// setsockopt calls would be pure cost); set one to choose a source
	// address or control the socket.
	Dialer *net.Dialer
	// Graceful closes with a FIN. False (the default) closes with a RST
	// (SO_LINGER 0), as most load balancers do: a health check that leaves a
	// TIME_WAIT socket behind every interval fills the balancer's port space
	// when it checks thousands of backends.
	Graceful bool
}

var defaultTCPDialer = net.Dialer{KeepAlive: -1}

// Check implements Checker.
func (c *TCPChecker) Check(ctx context.Context, t Target) error {
	if !t.Addr.IsValid() || t.Port == 0 {
		return fmt.Errorf("health: tcp check of %v: %w", t, ErrTargetIncomplete)
	}
	d := c.Dialer
	if d == nil {
		d = &defaultTCPDialer
	}
	conn, err := d.DialContext(ctx, "tcp", t.AddrPort(0).String())
	if err != nil {
		return fmt.Errorf("health: tcp check of %v: %w", t, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok && !c.Graceful {
		_ = tc.SetLinger(0)
	}
	return conn.Close()
}

// CheckKey implements Keyer.
func (c *TCPChecker) CheckKey() string {
	if c.Graceful {
		return "tcp graceful"
	}
	return "tcp"
}
