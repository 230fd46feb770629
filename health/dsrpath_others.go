//go:build !linux

package health

import (
	"context"
	"fmt"
)

// DSRPathChecker is only available on Linux; elsewhere NewDSRPathChecker
// returns ErrUnsupported.
type DSRPathChecker struct {
	id      string
	vlanSrc map[uint16]vlanSource
}

// NewDSRPathChecker returns ErrUnsupported outside Linux.
func NewDSRPathChecker(cfg *DSRPathConfig) (*DSRPathChecker, error) {
	return nil, fmt.Errorf("health: dsr-path checker: %w", ErrUnsupported)
}

// Check returns ErrUnsupported.
func (c *DSRPathChecker) Check(ctx context.Context, t Target) error { return ErrUnsupported }

// Close does nothing.
func (c *DSRPathChecker) Close() error { return nil }

// families: the checker cannot run here; what it would probe does not
// matter.
func (c *DSRPathChecker) families() (Families, string) { return BothFamilies, "" }
