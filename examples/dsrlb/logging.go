package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/dsrlb/dsrlb/bgp"
	"github.com/dsrlb/dsrlb/vrrp"
)

// Every line the daemon logs about something that happened carries the key
// "event" with a stable kind name, and its facts as separate attributes, so
// that a log pipeline can index and alert on them. The Balancer's events
// (backend-down, mac-resolved, …) come from dsr.Event.LogAttrs; the
// daemon's own kinds are these:
const (
	evStarted        = "started"         // forwarding; interface, services, workers, dataplane, version, revision
	evDataPlane      = "dataplane"       // which data plane and why
	evHostProblem    = "host-problem"    // the host's kernel would also handle VIP traffic; problem, fix
	evStartFailed    = "start-failed"    // the daemon could not start; err (and the config-error attributes)
	evConfigError    = "config-error"    // the configuration was refused at start or by -check
	evReloaded       = "reloaded"        // SIGHUP applied; services
	evReloadRejected = "reload-rejected" // SIGHUP refused, the running configuration stays; file, line, field, problem
	evDraining       = "draining"        // SIGTERM: forwarding until quiet or timeout
	evDrained        = "drained"         // no traffic for the quiet period
	evDrainTimeout   = "drain-timeout"   // the drain deadline passed with flows active
	evStopping       = "stopping"        // interrupted: immediate stop
	evStopped        = "stopped"         // the daemon exited; err when it failed
	evBGPWithdrawAll = "bgp-withdraw-all"
	evHTTPFailed     = "http-failed"
	evVRRPFailed     = "ha-failed"
	// VRRP state changes are "ha-" and the vrrp.Kind with dashes
	// (vrrpEventName); BGP ones "bgp-" and the bgp.EventKind.
)

// Log formats of -log-format.
const (
	logJSON = "json"
	logText = "text"
)

// newLogger returns the daemon's logger: JSON lines (one object per line,
// for log pipelines) or slog's text form (key=value, for people and
// journalctl).
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case logJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case logText:
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (want %s or %s)", format, logText, logJSON)
}

// errAttrs returns err as attributes: "err" with the whole message and, for
// a *ConfigError, "file", "line", "field" and "problem" separately.
func errAttrs(err error) []slog.Attr {
	attrs := []slog.Attr{slog.String("err", err.Error())}
	var ce *ConfigError
	if errors.As(err, &ce) {
		attrs = append(attrs, slog.String("file", ce.File))
		if ce.Line > 0 {
			attrs = append(attrs, slog.Int("line", ce.Line))
		}
		if ce.Field != "" {
			attrs = append(attrs, slog.String("field", ce.Field))
		}
		attrs = append(attrs, slog.String("problem", ce.Err.Error()))
	}
	return attrs
}

// logEvent logs one line with the event key first.
func logEvent(log *slog.Logger, level slog.Level, msg, event string, attrs ...slog.Attr) {
	log.LogAttrs(context.Background(), level, msg, append([]slog.Attr{slog.String("event", event)}, attrs...)...)
}

// vrrpEventName is the event key of a VRRP state change: "ha-" and the
// kind ("ha-became-master", "ha-became-backup", …).
func vrrpEventName(k vrrp.Kind) string {
	return "ha-" + strings.ReplaceAll(k.String(), " ", "-")
}

// vrrpAttrs returns a VRRP event's facts; vips are the addresses whose
// owner on the segment changes with it.
func vrrpAttrs(e vrrp.Event, vips []string) []slog.Attr {
	attrs := []slog.Attr{slog.String("state", e.State.String()), slog.String("prev", e.Prev.String())}
	if e.Peer.IsValid() {
		attrs = append(attrs, slog.String("peer", e.Peer.String()), slog.Int("peer_priority", int(e.PeerPriority)))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if len(vips) > 0 {
		owner := "peer"
		if e.State == vrrp.Master {
			owner = "this balancer"
		}
		attrs = append(attrs, slog.String("vips", strings.Join(vips, ",")), slog.String("vip_owner", owner))
	}
	return attrs
}

// bgpAttrs returns a BGP event's facts.
func bgpAttrs(e bgp.Event) []slog.Attr {
	var attrs []slog.Attr
	if e.Peer.IsValid() {
		attrs = append(attrs, slog.String("peer", e.Peer.String()))
	}
	if e.Prefix.IsValid() {
		attrs = append(attrs, slog.String("prefix", e.Prefix.String()))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	return attrs
}
