package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a state of the RFC 5798 state machine, plus Fault.
type State uint8

// States. The zero value is Initialize: not taking part (before Run, after
// it, and while stopped).
const (
	// Initialize: not running; the router neither sends nor listens.
	Initialize State = iota
	// Backup: another router is master; this one watches its
	// advertisements and takes over when they stop.
	Backup
	// Master: this router owns the virtual addresses and advertises.
	Master
	// Fault: the router cannot take part (its socket or interface
	// failed); it owns nothing until it recovers.
	Fault
)

func (s State) String() string {
	switch s {
	case Initialize:
		return "initialize"
	case Backup:
		return "backup"
	case Master:
		return "master"
	case Fault:
		return "fault"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Kind says what an Event reports.
type Kind uint8

// Event kinds. The zero value is invalid.
const (
	_ Kind = iota
	// BecameMaster: the router took over the virtual addresses. Announce
	// them now (gratuitous ARP, unsolicited NA) and answer for them.
	BecameMaster
	// BecameBackup: another router is master. Stop answering for the
	// virtual addresses.
	BecameBackup
	// BecameFault: the router cannot take part. Stop answering.
	BecameFault
	// Stopped: Run is returning; as master, the router sent a priority 0
	// advertisement so that a backup takes over at once — unless Close
	// pulled the socket away under Run, which the reason then says (a
	// backup takes over after the master down interval, as after a crash).
	// Stop answering.
	Stopped
	// Reasserted: as master, the router heard a lower-priority router that
	// also claims to be master (a split brain healing). It stays master;
	// announce the addresses again, since the other router's announcements
	// may have moved them.
	Reasserted
)

func (k Kind) String() string {
	switch k {
	case BecameMaster:
		return "became master"
	case BecameBackup:
		return "became backup"
	case BecameFault:
		return "fault"
	case Stopped:
		return "stopped"
	case Reasserted:
		return "reasserted mastership"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Event reports a change of state, with its reason.
type Event struct {
	// Kind is what happened.
	Kind Kind
	// State is the state after the event; Prev the one before (equal for
	// Reasserted).
	State, Prev State
	// Peer is the router whose advertisement caused the event (invalid
	// when none did: a timer, startup, shutdown, a fault).
	Peer netip.Addr
	// PeerPriority is Peer's advertised priority (0 without Peer).
	PeerPriority uint8
	// Reason says why, in one sentence.
	Reason string
	// At is when it happened.
	At time.Time
}

func (e Event) String() string {
	return fmt.Sprintf("vrrp: %s (%s -> %s): %s", e.Kind, e.Prev, e.State, e.Reason)
}
