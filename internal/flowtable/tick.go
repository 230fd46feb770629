package flowtable

import (
	"fmt"
	"time"
)

// TickDuration is the length of one Tick. Flow timeouts are tens of seconds
// to minutes, so 100 ms is precise enough and lets a 32-bit counter run for
// more than 13 years before it wraps.
const TickDuration = 100 * time.Millisecond

// Tick is coarse time: the number of 100 ms steps since an epoch chosen by
// the caller (typically the balancer's start). The table compares ticks by
// their wrapped difference, so only differences shorter than about 6.8
// years are meaningful, and the counter may wrap.
type Tick uint32

// TickOf converts a duration since the caller's epoch to a Tick, rounding
// down. Negative durations give 0.
func TickOf(d time.Duration) Tick {
	if d <= 0 {
		return 0
	}
	return Tick(uint64(d / TickDuration))
}

// State is where a flow is in its life; it selects the flow's idle timeout.
type State uint8

const (
	// Embryonic is a flow that has seen only its first packet. It gets a
	// short timeout and may be evicted to make room, so that a flood of
	// spoofed first packets cannot push out real connections. It is the
	// zero value: every new entry starts here.
	Embryonic State = iota
	// Established is a flow that has seen a second packet (for TCP: the
	// client's ACK after its SYN). It is never evicted, only expired.
	Established
	// Closing is a TCP flow that has seen FIN or RST: it keeps its backend
	// for the closing exchange and then expires quickly.
	Closing
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case Embryonic:
		return "embryonic"
	case Established:
		return "established"
	case Closing:
		return "closing"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// TCP header flag bits, as passed to Lookup.
const (
	TCPFlagFIN uint8 = 0x01
	TCPFlagSYN uint8 = 0x02
	TCPFlagRST uint8 = 0x04
	TCPFlagACK uint8 = 0x10
)

// IP protocol numbers with their own timeouts.
const (
	protoTCP = 6
	protoUDP = 17
)
