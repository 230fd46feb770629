// Package afpacket is a raw, batched Linux packet socket (AF_PACKET) queue
// for forwarding Ethernet frames from userspace without breaking offloads.
//
// A Conn receives and transmits whole Ethernet frames in batches with one
// recvmmsg/sendmmsg system call each, integrated with Go's network poller
// so read deadlines work. Every frame carries a virtio_net_hdr (VNetHeader)
// describing its offload state: a frame that a local sender handed down with
// a partial checksum, or a TCP/UDP super-frame far larger than the MTU, is
// reported as such and can be transmitted again with the same header. The
// kernel then completes the checksum and segments the super-frame, exactly
// as it would have done for the original sender. Forwarding such frames
// without the header would put corrupt or oversized frames on the wire.
//
// The package also builds the classic BPF filter (VIPFilter) a DSR balancer
// attaches to keep unrelated traffic in the kernel. The filter builder is
// portable; the socket is Linux-only and returns ErrUnsupported elsewhere.
package afpacket

import (
	"errors"

	"golang.org/x/net/bpf"
)

// ErrUnsupported is returned by Listen on platforms without AF_PACKET.
var ErrUnsupported = errors.New("afpacket: not supported on this platform")

// VNetHeaderLen is the size of struct virtio_net_hdr, which precedes every
// frame on a socket with PACKET_VNET_HDR.
const VNetHeaderLen = 10

// VNetHeader flags (virtio_net_hdr.flags).
const (
	// VNetNeedsCsum: the transport checksum is partial; it must be computed
	// from CsumStart and stored at CsumStart+CsumOffset.
	VNetNeedsCsum = 1
	// VNetDataValid: the receiving kernel already verified the checksum.
	VNetDataValid = 2
)

// VNetHeader mirrors struct virtio_net_hdr: the offload state of one frame.
// The zero value is an ordinary frame with a complete checksum, within the
// MTU.
type VNetHeader struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Message is one frame of a batch.
type Message struct {
	// Buf is the frame buffer, owned by the caller. On receive the whole
	// capacity of Buf is offered to the kernel and the frame is Buf[:N]; on
	// transmit Buf[:N] is sent.
	Buf []byte
	// N is the frame length.
	N int
	// VNet is the frame's offload state: filled on receive, passed to the
	// kernel on transmit.
	VNet VNetHeader
}

// Config configures a Conn. A nil *Config means all defaults.
type Config struct {
	// Filter is a classic BPF program attached before the socket is bound,
	// so no unfiltered frame is ever queued. Nil accepts every frame.
	Filter []bpf.RawInstruction
	// FanoutGroup, when non-zero, joins the socket to this PACKET_FANOUT
	// group in hash mode, so several Conns on one interface (one per core)
	// share the traffic with each flow always on the same Conn. Zero means
	// no fanout.
	FanoutGroup uint16
	// ReceiveBuffer is the socket receive buffer in bytes (SO_RCVBUFFORCE,
	// falling back to SO_RCVBUF). Zero keeps the system default.
	ReceiveBuffer int
	// BatchSize is the most frames one system call moves. Zero means 64.
	BatchSize int
}

// Stats are a Conn's counters since it was opened.
type Stats struct {
	// Received is the number of frames handed to the caller.
	Received uint64
	// Sent is the number of frames the kernel accepted for transmission.
	Sent uint64
	// SendDrops counts frames WriteBatch dropped because the kernel had no
	// room for them (ENOBUFS, or EAGAIN persisting after a wait): the
	// transmit-side congestion loss, which is not returned as an error.
	SendDrops uint64
	// Truncated counts frames dropped because they did not fit their
	// buffer (or had no room left to re-insert a stripped VLAN tag).
	Truncated uint64
	// OwnSource counts frames dropped because their source MAC was the
	// interface's own: our own transmissions seen again.
	OwnSource uint64
	// Invalid counts frames the kernel could not describe (for example a
	// GSO type without a virtio_net_hdr equivalent) and dropped.
	Invalid uint64
	// KernelPackets and KernelDrops are the kernel's PACKET_STATISTICS:
	// frames that passed the filter, and those dropped because the socket
	// receive buffer was full.
	KernelPackets uint64
	KernelDrops   uint64
}

const defaultBatchSize = 64
