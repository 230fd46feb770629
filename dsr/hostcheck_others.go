//go:build !linux

package dsr

import (
	"fmt"
	"net/netip"
)

// CheckHost returns an error wrapping ErrUnsupported: the checks read Linux
// interfaces and sysctls.
func CheckHost(ifname string, vips []netip.Addr) ([]HostProblem, error) {
	return nil, fmt.Errorf("dsr: host check: %w", ErrUnsupported)
}
