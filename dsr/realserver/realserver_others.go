//go:build !linux

package realserver

import "context"

// Prepare configures the server for DSR; see the Linux documentation. It
// returns ErrUnsupported here.
func Prepare(*Config, *State) error { return ErrUnsupported }

// Undo reverts a Prepare; it returns ErrUnsupported here.
func Undo(*State) error { return ErrUnsupported }

// Check inspects the server; it returns ErrUnsupported here.
func Check(context.Context, *Config) (*Report, error) { return nil, ErrUnsupported }
