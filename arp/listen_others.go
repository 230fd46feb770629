//go:build !linux

package arp

import (
	"fmt"
	"net"
)

// Listen returns an error wrapping ErrUnsupported: AF_PACKET sockets exist
// only on Linux. New with another net.PacketConn works everywhere.
func Listen(ifi *net.Interface, cfg *Config) (*Speaker, error) {
	name := "<nil>"
	if ifi != nil {
		name = ifi.Name
	}
	return nil, fmt.Errorf("arp: listen on %s: %w", name, ErrUnsupported)
}
