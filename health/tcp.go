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
//
// On Linux, with neither Dialer nor Graceful set, a check is four system
// calls (socket, connect, poll, close) instead of a net.Conn's life cycle:
// it is the cost that matters when a balancer checks thousands of backends
// every second. The check's thread then waits in poll for at most the
// check's timeout rather than in the network poller, so cancelling ctx takes
// effect at that timeout.
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
	if c.Dialer == nil && !c.Graceful && haveConnectProbe {
		if err := connectProbe(ctx, t.AddrPort(0)); err != nil {
			return fmt.Errorf("health: tcp check of %v: %w", t, err)
		}
		return nil
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
