package arp

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEventLogAttrs: each kind's facts are separate fields under stable
// keys, the kind named by "event" with its family, nothing else added.
func TestEventLogAttrs(t *testing.T) {
	vip4 := netip.MustParseAddr("192.0.2.100")
	be6 := netip.MustParseAddr("2001:db8::10")
	be4 := netip.MustParseAddr("198.51.100.10")
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	old := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	tests := []struct {
		ev   Event
		want map[string]any
	}{
		{Event{Kind: Conflict, Addr: vip4, MAC: mac, Backend: be4, VLAN: 20},
			map[string]any{"event": "arp-conflict", "vip": vip4.String(), "mac": mac.String(), "claimed_by_backend": be4.String(), "vlan": 20.0}},
		{Event{Kind: Resolved, Addr: be6, MAC: mac},
			map[string]any{"event": "ndp-resolved", "backend": be6.String(), "mac": mac.String()}},
		{Event{Kind: MACChanged, Addr: be4, MAC: mac, OldMAC: old},
			map[string]any{"event": "arp-mac-changed", "backend": be4.String(), "mac": mac.String(), "old_mac": old.String()}},
		{Event{Kind: Unresolved, Addr: be4},
			map[string]any{"event": "arp-unresolved", "backend": be4.String()}},
	}
	for _, tc := range tests {
		t.Run(tc.want["event"].(string), func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, tc.ev.String(), tc.ev.LogAttrs()...)
			var got map[string]any
			require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
			for k, v := range tc.want {
				assert.Equal(t, v, got[k], k)
			}
			assert.Len(t, got, len(tc.want)+3, "time, level, msg and the facts only: %v", got)
		})
	}
}
