package health

import (
	"context"
	"errors"
)

// Checker probes one target. It returns nil when the target is healthy and
// an error saying why when it is not; the error becomes the Reason of the
// Monitor's down Event, so it should name what failed.
//
// Check must honour ctx (the Monitor sets the per-check timeout there), must
// be safe for concurrent use (the Monitor checks many targets at once with the
// same Checker) and must release everything it opened before returning.
type Checker interface {
	Check(ctx context.Context, t Target) error
}

// CheckerFunc adapts a function to the Checker interface, for plugins that
// need no state.
type CheckerFunc func(ctx context.Context, t Target) error

// Check calls f(ctx, t).
func (f CheckerFunc) Check(ctx context.Context, t Target) error { return f(ctx, t) }

// Keyer is implemented by checkers that can describe their configuration as
// a string. The Monitor uses CheckKey to recognise two Checker values that
// probe the same way, so a backend shared by several services — each with its
// own but identical checker — is checked once. All built-in checkers
// implement it. Without it the Monitor falls back to comparing the Checker
// values themselves (pointer identity for pointer checkers).
type Keyer interface {
	CheckKey() string
}

var (
	// ErrUnsupported is returned by checkers that cannot work on this
	// platform (the DSR-path checker outside Linux).
	ErrUnsupported = errors.New("health: not supported on this platform")
	// ErrTargetIncomplete is returned when the Target lacks a field the
	// checker needs (a port for TCP, the VIP or MAC for the DSR path).
	ErrTargetIncomplete = errors.New("health: target lacks a field the checker needs")
	// ErrUnexpectedResponse is wrapped by checkers that got an answer which
	// does not match what they expect (HTTP status or body, UDP reply, DNS
	// rcode or answer, a RST instead of a SYN-ACK).
	ErrUnexpectedResponse = errors.New("health: unexpected response")
	// ErrClosed is returned by a DSR-path checker after Close.
	ErrClosed = errors.New("health: checker closed")
)
