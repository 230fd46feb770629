//go:build !linux

package dsr

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// PacketConfig configures ListenPacket. A nil *PacketConfig means all
// defaults. See the Linux documentation for the meaning of each field; on
// this platform ListenPacket always fails.
type PacketConfig struct {
	// Fanout is the PACKET_FANOUT group id; zero means no fanout.
	Fanout uint16
	// ReceiveBuffer is the socket receive buffer in bytes; zero keeps the
	// system default.
	ReceiveBuffer int
	// VIPs selects the traffic passed to the forwarder; empty means only
	// ARP and neighbour solicitations until SetVIPs.
	VIPs []netip.Addr
	// BatchSize is the most frames moved per system call; zero means 64.
	BatchSize int
}

// PacketStats are a PacketForwarder's counters.
type PacketStats struct {
	// Received and Sent count frames handed to and accepted from the
	// caller.
	Received, Sent uint64
	// Truncated counts frames dropped because they did not fit.
	Truncated uint64
	// OwnSource counts frames dropped because their source MAC was ours.
	OwnSource uint64
	// Invalid counts frames whose offload state could not be described.
	Invalid uint64
	// KernelDrops counts frames dropped by a full receive buffer.
	KernelDrops uint64
}

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
