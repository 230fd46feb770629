package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// The daemon speaks systemd's readiness protocol when its service manager
// asks for it (a Type=notify unit sets $NOTIFY_SOCKET): READY=1 once it
// forwards, RELOADING=1 … READY=1 around a SIGHUP reload, and on SIGTERM
// STOPPING=1 with EXTEND_TIMEOUT_USEC set to the configured drain_timeout
// plus stopMargin. systemd cannot read the YAML file, so this is how the
// unit's stop timeout follows drain_timeout: the packaged unit's
// TimeoutStopSec covers the default drain, and a longer drain extends it.
// Without $NOTIFY_SOCKET nothing is sent.

// stopMargin is the time after the drain that closing the sockets and the
// BGP sessions may take.
const stopMargin = 10 * time.Second

// defaultDrainTimeout is the drain of a configuration without
// drain_timeout.
const defaultDrainTimeout = 30 * time.Second

// drainTimeoutOf is the drain a SIGTERM starts under cfg.
func drainTimeoutOf(cfg *Loaded) time.Duration {
	if t := time.Duration(cfg.File.DrainTimeout); t > 0 {
		return t
	}
	return defaultDrainTimeout
}

// stopTimeoutOf is the longest a stop takes under cfg: the drain plus the
// margin; what the daemon asks systemd for with EXTEND_TIMEOUT_USEC.
func stopTimeoutOf(cfg *Loaded) time.Duration {
	return drainTimeoutOf(cfg) + stopMargin
}

// sdNotify sends the newline-separated assignments in state to the
// service manager's socket named by $NOTIFY_SOCKET; it does nothing
// without one.
func sdNotify(state ...string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		// An abstract socket.
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(state, "\n"))); err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	return nil
}

// notify is sdNotify for the daemon: a failure is logged, never fatal.
func (d *daemon) notify(state ...string) {
	if err := sdNotify(state...); err != nil {
		d.log.Warn("service manager notification failed", "err", err)
	}
}

// extendTimeout is the EXTEND_TIMEOUT_USEC assignment asking for t more.
func extendTimeout(t time.Duration) string {
	return fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", t.Microseconds())
}
