package dsr

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every kind logs its facts as separate fields, the kind under "event".
func TestEventLogAttrs(t *testing.T) {
	svc := ServiceKey{VIP: netip.MustParseAddr("192.0.2.100"), Port: 80, Protocol: TCP}
	be := netip.MustParseAddr("198.51.100.10")
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	tests := []struct {
		ev    Event
		want  map[string]any
		level slog.Level
	}{
		{Event{Kind: EventBackendDown, Service: svc, Backend: be, Reason: errors.New("connection refused")},
			map[string]any{"service": svc.String(), "backend": be.String(), "reason": "connection refused"}, slog.LevelWarn},
		{Event{Kind: EventBackendUp, Service: svc, Backend: be},
			map[string]any{"service": svc.String(), "backend": be.String()}, slog.LevelInfo},
		{Event{Kind: EventBackendDrained, Service: svc, Backend: be, Reason: errors.New("deadline")},
			map[string]any{"service": svc.String(), "backend": be.String(), "reason": "deadline"}, slog.LevelInfo},
		{Event{Kind: EventBelowMinHealthy, Service: svc, Count: 1},
			map[string]any{"service": svc.String(), "count": 1.0}, slog.LevelWarn},
		{Event{Kind: EventMinHealthyRestored, Service: svc, Count: 2},
			map[string]any{"service": svc.String(), "count": 2.0}, slog.LevelInfo},
		{Event{Kind: EventFailOpen, Service: svc},
			map[string]any{"service": svc.String()}, slog.LevelWarn},
		{Event{Kind: EventSYNRetransmits, Service: svc, Backend: be, Count: 17},
			map[string]any{"service": svc.String(), "backend": be.String(), "count": 17.0}, slog.LevelWarn},
		{Event{Kind: EventMACResolved, Backend: be, MAC: mac},
			map[string]any{"backend": be.String(), "mac": mac.String()}, slog.LevelInfo},
		{Event{Kind: EventUnresolved, Backend: be},
			map[string]any{"backend": be.String()}, slog.LevelWarn},
		{Event{Kind: EventVIPConflict, VIP: svc.VIP, MAC: mac, Backend: be},
			map[string]any{"vip": svc.VIP.String(), "mac": mac.String(), "backend": be.String()}, slog.LevelWarn},
		{Event{Kind: EventVIPConflict, VIP: svc.VIP, MAC: mac, VLAN: 20},
			map[string]any{"vip": svc.VIP.String(), "mac": mac.String(), "vlan": 20.0}, slog.LevelWarn},
	}
	seen := map[EventKind]bool{}
	for _, tc := range tests {
		t.Run(tc.ev.Kind.String(), func(t *testing.T) {
			seen[tc.ev.Kind] = true
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			log.LogAttrs(t.Context(), tc.ev.LogLevel(), tc.ev.Kind.String(), tc.ev.LogAttrs()...)
			var got map[string]any
			require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
			assert.Equal(t, tc.ev.Kind.String(), got["event"])
			assert.Equal(t, tc.level.String(), got["level"])
			for k, v := range tc.want {
				assert.Equal(t, v, got[k], k)
			}
			// Nothing but the kind's facts: no zero-valued extras.
			assert.Len(t, got, len(tc.want)+4, "time, level, msg, event and the facts: %v", got)
		})
	}
	assert.Len(t, seen, len(eventNames), "every kind is covered")
}

// The text form stays readable: key=value pairs, the kind first.
func TestEventLogAttrsText(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	e := Event{Kind: EventBackendDown, Service: ServiceKey{VIP: netip.MustParseAddr("192.0.2.100"), Port: 80, Protocol: TCP},
		Backend: netip.MustParseAddr("198.51.100.10"), Reason: errors.New("connection refused")}
	log.LogAttrs(t.Context(), e.LogLevel(), e.Kind.String(), e.LogAttrs()...)
	want := "level=WARN msg=backend-down event=backend-down service=" + e.Service.String() +
		" backend=" + e.Backend.String() + ` reason="connection refused"` + "\n"
	assert.Equal(t, want, buf.String())
}
