//go:build !linux

package bench

import "context"

// Run returns ErrUnsupported: the benchmark needs Linux.
func Run(context.Context, *Config) (*Report, error) { return nil, ErrUnsupported }

// RunChildIfRequested does nothing: no child roles exist off Linux.
func RunChildIfRequested() {}
