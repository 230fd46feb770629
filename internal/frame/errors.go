package frame

// Error is the reason a frame failed to parse (or a checksum could not be
// completed). It is a small integer rather than a struct or a wrapped error
// for two reasons: returning it as an error allocates nothing, and callers
// count dropped frames by reason with a plain array:
//
//	var drops [frame.NumErrors]uint64
//	if err := frame.Parse(b, &p); err != nil {
//		var e frame.Error
//		if errors.As(err, &e) {
//			drops[e]++
//		}
//	}
//
// Parse returns ErrTruncated when the frame ends before the bytes its own
// headers announce (Ethernet or VLAN header, IP header, IP total/payload
// length). Bytes that exist but contradict the headers around them are the
// malformed-header reasons, named after the header at fault.
//
// The zero Error is never returned; its String is "none".
type Error uint8

// Parse and checksum failure reasons.
const (
	// ErrTruncated: the frame ends before the end of a header or before the
	// end of the IP packet its length field announces.
	ErrTruncated Error = iota + 1
	// ErrBadIPv4Header: version not 4, IHL < 5, or total length < IHL
	// (total length 0 is accepted for GSO super-frames, see Parse).
	ErrBadIPv4Header
	// ErrBadIPv6Header: version not 6, or an extension header runs past
	// the IPv6 payload.
	ErrBadIPv6Header
	// ErrTooManyExtensionHeaders: more than MaxExtensionHeaders IPv6
	// extension headers before the upper-layer header.
	ErrTooManyExtensionHeaders
	// ErrBadTransportHeader: a TCP, UDP, ICMP or ICMPv6 header that does
	// not fit in the IP packet, a TCP data offset < 5 or past the packet,
	// or a UDP length < 8 or past the packet.
	ErrBadTransportHeader
	// ErrBadChecksumPosition: CompleteChecksum was given a checksum field
	// outside the frame, or at an odd offset from the start of the sum.
	ErrBadChecksumPosition

	errLimit // one past the last reason
)

// NumErrors is one more than the largest Error value, so that an array of
// NumErrors counters can be indexed by any Error directly.
const NumErrors = int(errLimit)

var errorNames = [NumErrors]string{
	"none",
	"truncated",
	"bad_ipv4_header",
	"bad_ipv6_header",
	"too_many_extension_headers",
	"bad_transport_header",
	"bad_checksum_position",
}

var errorMessages = [NumErrors]string{
	"frame: no error",
	"frame: truncated",
	"frame: malformed IPv4 header",
	"frame: malformed IPv6 header",
	"frame: too many IPv6 extension headers",
	"frame: malformed transport header",
	"frame: checksum field outside the frame or misaligned",
}

// Error returns a human-readable message prefixed with "frame: ".
func (e Error) Error() string {
	if int(e) < NumErrors {
		return errorMessages[e]
	}
	return "frame: unknown error"
}

// String returns a short snake_case reason, stable across releases, meant
// for metric labels (for example "truncated").
func (e Error) String() string {
	if int(e) < NumErrors {
		return errorNames[e]
	}
	return "unknown"
}
