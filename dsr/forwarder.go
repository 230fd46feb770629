package dsr

import (
	"errors"
	"net"
	"time"
)

// MaxFrameSize is the largest frame a Forwarder hands to the Balancer. It
// covers GSO/GRO super-frames (up to 64 KiB of IP payload) plus link headers.
const MaxFrameSize = 65536 + 64

// ErrUnsupported is returned on platforms without a forwarding
// implementation (everything but Linux).
var ErrUnsupported = errors.New("dsr: not supported on this platform")

// Frame is one Ethernet frame in a batch. Buf is owned by the caller of
// ReadBatch/WriteBatch and is reused across calls; the frame is Buf[:N].
type Frame struct {
	Buf []byte
	N   int
	// Offload carries the offload state the kernel reported for the frame
	// (checksum not yet computed, GSO super-frame). The Balancer leaves it
	// untouched so the transmit side can hand the same state back, letting
	// the kernel or NIC finish the checksum and segment as the original
	// sender intended.
	Offload Offload
}

// Bytes returns the frame's bytes.
func (f *Frame) Bytes() []byte { return f.Buf[:f.N] }

// OffloadFlags describe an Offload.
type OffloadFlags uint8

const (
	// OffloadChecksumPartial: the transport checksum has not been computed.
	// It must be computed over the bytes from ChecksumStart, and stored at
	// ChecksumStart+ChecksumOffset, before the frame leaves the host.
	OffloadChecksumPartial OffloadFlags = 1 << iota
	// OffloadChecksumValid: the kernel already verified the checksum.
	OffloadChecksumValid
)

// GSOType is the kind of segmentation a super-frame needs.
type GSOType uint8

// GSO types, matching the kernel's virtio_net_hdr gso_type values.
const (
	GSONone  GSOType = 0
	GSOTCPv4 GSOType = 1
	GSOUDP   GSOType = 3
	GSOTCPv6 GSOType = 4
	GSOUDPL4 GSOType = 5
	// GSOECN is or-ed into the type when the flow uses ECN (CWR handling).
	GSOECN GSOType = 0x80
)

// Offload mirrors the kernel's per-packet offload metadata (virtio_net_hdr).
// The zero value means an ordinary, fully checksummed frame within the MTU.
type Offload struct {
	Flags          OffloadFlags
	GSOType        GSOType
	HeaderLen      uint16 // length of all headers of a GSO frame
	GSOSize        uint16 // payload bytes per segment of a GSO frame
	ChecksumStart  uint16 // offset in the frame where checksumming starts
	ChecksumOffset uint16 // offset of the checksum field after ChecksumStart
}

// Forwarder moves batches of frames between the wire and the Balancer. One
// Forwarder is one queue: it is used by one goroutine at a time. Run several
// (each from its own goroutine, see Balancer.Serve) to forward on several
// cores.
type Forwarder interface {
	// ReadBatch fills frames[:n] with received frames, blocking until at
	// least one frame arrived or the read deadline passed. Frames whose
	// Buf is too small for a received frame are never truncated silently:
	// implementations count and drop them.
	ReadBatch(frames []Frame) (n int, err error)
	// WriteBatch transmits frames and returns how many were sent. A frame
	// the host has no room for (a full transmit queue) may be dropped
	// without an error while the rest are still sent, so n < len(frames)
	// with a nil error counts congestion drops. After a non-nil error, the
	// frames from the failing one on were not sent.
	WriteBatch(frames []Frame) (n int, err error)
	// SetReadDeadline makes a blocked or future ReadBatch return an error
	// wrapping os.ErrDeadlineExceeded once t has passed. The zero time
	// means no deadline.
	SetReadDeadline(t time.Time) error
	// HardwareAddr is the MAC address the forwarder transmits from; the
	// Balancer uses it as the source MAC of every forwarded frame and
	// ignores frames that carry it as their source.
	HardwareAddr() net.HardwareAddr
}
