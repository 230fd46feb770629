package dsr

import "net/netip"

// PacketConfig configures ListenPacket. A nil *PacketConfig means all
// defaults. Packet sockets exist only on Linux; elsewhere the types exist so
// that a program builds everywhere, and ListenPacket fails.
type PacketConfig struct {
	// Fanout, when non-zero, joins a PACKET_FANOUT group with this id in
	// hash mode: open one PacketForwarder per core with the same Fanout and
	// the kernel spreads the traffic over them, each flow always to the
	// same one. Zero means no fanout (a single queue sees everything).
	Fanout uint16
	// ReceiveBuffer is the socket receive buffer in bytes. A larger buffer
	// absorbs longer bursts before the kernel drops (see
	// PacketStats.KernelDrops). Zero means DefaultReceiveBuffer: the
	// system default (about 200 KiB) holds only three GSO super-frames,
	// so a single fast upload overflows it. Negative keeps the system
	// default.
	ReceiveBuffer int
	// VIPs selects the traffic the kernel passes to the forwarder: ARP,
	// IPv6 neighbour solicitations and packets to these addresses. Empty
	// means only ARP and neighbour solicitations until SetVIPs is called
	// (a Balancer calls it when it serves the forwarder); VIP traffic that
	// arrives before then is dropped, so pass the VIPs here when they are
	// known.
	VIPs []netip.Addr
	// BatchSize is the most frames moved per system call. Zero means 64.
	BatchSize int
}

// DefaultReceiveBuffer is the receive buffer a PacketForwarder asks for when
// PacketConfig.ReceiveBuffer is zero. With CAP_NET_ADMIN it is granted past
// net.core.rmem_max; without, the kernel caps it there.
const DefaultReceiveBuffer = 8 << 20

func receiveBuffer(n int) int {
	switch {
	case n == 0:
		return DefaultReceiveBuffer
	case n < 0:
		return 0
	}
	return n
}

// PacketStats are a PacketForwarder's counters since it was opened.
type PacketStats struct {
	// Received and Sent count frames handed to and accepted from the
	// caller.
	Received, Sent uint64
	// Truncated counts frames dropped because they did not fit their
	// Frame.Buf.
	Truncated uint64
	// OwnSource counts frames dropped because their source MAC was the
	// interface's own.
	OwnSource uint64
	// Invalid counts frames whose offload state the kernel could not
	// describe, dropped.
	Invalid uint64
	// KernelDrops counts frames the kernel dropped because the receive
	// buffer was full: the forwarder did not keep up.
	KernelDrops uint64
	// SendDrops counts frames dropped on transmit because the kernel had no
	// room for them (a full transmit queue).
	SendDrops uint64
}
