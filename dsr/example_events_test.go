package dsr_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"

	"github.com/dsrlb/dsrlb/dsr"
)

// An embedder that logs events itself (Config.OnEvent) gets the same
// structured fields the Balancer logs: the kind under "event", then the
// facts that apply to it.
func ExampleEvent_LogAttrs() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable example
			}
			return a
		},
	}))
	onEvent := func(e dsr.Event) {
		log.LogAttrs(context.Background(), e.LogLevel(), "balancer event", e.LogAttrs()...)
	}
	onEvent(dsr.Event{
		Kind:    dsr.EventBackendDown,
		Service: dsr.ServiceKey{VIP: netip.MustParseAddr("192.0.2.100"), Protocol: dsr.TCP, Port: 80},
		Backend: netip.MustParseAddr("192.0.2.21"),
		Reason:  errors.New("tcp 192.0.2.21:80: connection refused"),
	})
	// Output:
	// level=WARN msg="balancer event" event=backend-down service=192.0.2.100:80/tcp backend=192.0.2.21 reason="tcp 192.0.2.21:80: connection refused"
}
