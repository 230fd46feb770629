//go:build !linux

package dsr

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// PacketForwarder is the Linux packet socket Forwarder. Packet sockets
// exist only on Linux, so here it cannot be opened.
type PacketForwarder struct{}

var _ Forwarder = (*PacketForwarder)(nil)

// ListenPacket returns an error wrapping ErrUnsupported: packet sockets
// exist only on Linux.
func ListenPacket(ifname string, cfg *PacketConfig) (*PacketForwarder, error) {
	return nil, fmt.Errorf("dsr: packet forwarder on %s: %w", ifname, ErrUnsupported)
}

// ReadBatch returns ErrUnsupported.
func (p *PacketForwarder) ReadBatch(frames []Frame) (int, error) { return 0, ErrUnsupported }

// WriteBatch returns ErrUnsupported.
func (p *PacketForwarder) WriteBatch(frames []Frame) (int, error) { return 0, ErrUnsupported }

// SetReadDeadline returns ErrUnsupported.
func (p *PacketForwarder) SetReadDeadline(t time.Time) error { return ErrUnsupported }

// HardwareAddr returns nil.
func (p *PacketForwarder) HardwareAddr() net.HardwareAddr { return nil }

// SetVIPs returns ErrUnsupported.
func (p *PacketForwarder) SetVIPs(vips []netip.Addr) error { return ErrUnsupported }

// Stats returns zero counters.
func (p *PacketForwarder) Stats() PacketStats { return PacketStats{} }

// Close returns ErrUnsupported.
func (p *PacketForwarder) Close() error { return ErrUnsupported }
