package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/flowtable"
)

// ErrUnsupported is returned by Load where the XDP program cannot run: on
// every platform but Linux on a little-endian architecture.
var ErrUnsupported = errors.New("xdp: not supported on this platform")

// ErrInvalid is wrapped by every error about an argument out of range.
var ErrInvalid = errors.New("xdp: invalid argument")

// ErrNotBPFFS is wrapped by Load's error when Config.PinPath is not in a
// mounted BPF filesystem (mount one with `mount -t bpf bpf /sys/fs/bpf`;
// systemd mounts it at boot).
var ErrNotBPFFS = errors.New("xdp: pin path is not in a BPF filesystem (bpffs)")

// ErrPinBusy is wrapped by Load's and Remove's error when another Program
// (in this process or another one) holds Config.PinPath: one control plane
// at a time writes a set of pinned maps.
var ErrPinBusy = errors.New("xdp: the pin path is in use by another running program")

// Defaults applied to zero Config fields.
const (
	DefaultMaxFlows        = flowtable.DefaultMaxFlows
	DefaultMaxBackendSlots = 4096
	DefaultMaxServices     = 256

	// MaxBackendSlots bounds Config.MaxBackendSlots: a backend ID keeps its
	// slot in 20 bits.
	MaxBackendSlots = 1 << IDSlotBits
	// MaxTableSize is the largest service table SetService accepts, the
	// schedulers' own bound.
	MaxTableSize = 1 << 26
	// MaxChecksumLen is the longest TCP or UDP segment (header and
	// payload) whose partial checksum the program completes before
	// forwarding it: room for a 9000-byte MTU. Longer ones are passed
	// (PassCSumPartial).
	MaxChecksumLen = 18 * 512
)

// Backend IDs, as the flow table stores them: a slot in the low IDSlotBits
// bits and a generation above, so that a flow naming a removed backend
// never reaches the backend that took its slot.
const (
	IDSlotBits = 20
	IDSlotMask = 1<<IDSlotBits - 1
	// NoBackend fills a table entry that names no backend.
	NoBackend = 0xffffffff
)

// Config sizes the program's maps. The zero value (or a nil *Config) is
// valid; every field documents its default.
type Config struct {
	// MaxFlows is the size of the flow table, an LRU hash: beyond it the
	// least recently used flow gives way. Zero means DefaultMaxFlows.
	MaxFlows int
	// MaxBackendSlots is the number of backend slots (IDs' slot part must
	// be below it). Zero means DefaultMaxBackendSlots (4096); at most
	// MaxBackendSlots (2^20).
	MaxBackendSlots int
	// MaxServices bounds the service indices and the number of service
	// keys. Zero means DefaultMaxServices (256).
	MaxServices int
	// PinPath is a directory in a mounted BPF filesystem (bpffs), one per
	// interface, where Load pins the program's state maps (flows, backend
	// slots, services, tables, settings) and Attach its links. A later Load
	// with the same PinPath, in this process or the next, takes that state
	// over, and its Attach replaces the running program through the pinned
	// link without detaching it: established flows keep their backends
	// across a restart. The directory is created if missing; it must be on
	// bpffs (ErrNotBPFFS otherwise). Empty means no pinning: every Load
	// starts empty and the program is detached when its link is closed.
	// See Restore for what Load found, and Remove to undo the pins.
	PinPath string
}

type resolvedConfig struct {
	maxFlows, maxSlots, maxServices int
	pinPath                         string
}

func (c *Config) resolve() (resolvedConfig, error) {
	var cc Config
	if c != nil {
		cc = *c
	}
	r := resolvedConfig{maxFlows: cc.MaxFlows, maxSlots: cc.MaxBackendSlots, maxServices: cc.MaxServices, pinPath: cc.PinPath}
	fields := []struct {
		name string
		v    *int
		def  int
		max  int
	}{
		{"MaxFlows", &r.maxFlows, DefaultMaxFlows, flowtable.MaxMaxFlows},
		{"MaxBackendSlots", &r.maxSlots, DefaultMaxBackendSlots, MaxBackendSlots},
		{"MaxServices", &r.maxServices, DefaultMaxServices, 1 << 20},
	}
	for _, f := range fields {
		switch {
		case *f.v == 0:
			*f.v = f.def
		case *f.v < 0 || *f.v > f.max:
			return r, fmt.Errorf("%w: Config.%s %d out of range (0 < %s <= %d)", ErrInvalid, f.name, *f.v, f.name, f.max)
		}
	}
	return r, nil
}

// Params is what the program needs besides services and backends.
type Params struct {
	// Seed is the balancer's flow-hash seed (dsr.Config.Seed): the program
	// hashes flows exactly as flowtable.Key.Hashes(Seed) does.
	Seed uint64
	// MAC is the balancer's own address: frames to another destination are
	// passed, and forwarded frames leave with it as their source. Required.
	MAC net.HardwareAddr
	// Flows supplies the idle timeouts, resolved as flowtable resolves them
	// (only its timeout fields are read). Nil means flowtable's defaults.
	Flows *flowtable.Config
}

// ServiceKey identifies a service as the program looks it up.
type ServiceKey struct {
	// VIP is the service address (IPv4-mapped addresses are unmapped).
	VIP netip.Addr
	// Port is the destination port; 0 is the VIP's all-ports service,
	// consulted when no service matches the exact port.
	Port uint16
	// Proto is 6 (TCP) or 17 (UDP).
	Proto uint8
	// VLAN is the VLAN ID (up to MaxVLAN) of the frames the service
	// matches: the 802.1Q or 802.1ad tag's VLAN ID as the program sees it
	// in the frame. Zero matches untagged and priority-tagged frames. A
	// tag the kernel or the NIC moved out of the frame before the program
	// runs (VLAN offload) is not seen: such a frame looks untagged.
	VLAN uint16
}

// MaxVLAN is the largest VLAN ID of a ServiceKey; 4095 is reserved.
const MaxVLAN = 4094

func (k ServiceKey) String() string {
	if k.VLAN != 0 {
		return fmt.Sprintf("%s/%d@vlan%d", netip.AddrPortFrom(k.VIP, k.Port), k.Proto, k.VLAN)
	}
	return fmt.Sprintf("%s/%d", netip.AddrPortFrom(k.VIP, k.Port), k.Proto)
}

func (k ServiceKey) validate() error {
	if !k.VIP.IsValid() {
		return fmt.Errorf("%w: service %v: no VIP", ErrInvalid, k)
	}
	if k.Proto != 6 && k.Proto != 17 {
		return fmt.Errorf("%w: service %v: protocol %d is neither TCP (6) nor UDP (17)", ErrInvalid, k, k.Proto)
	}
	if k.VLAN > MaxVLAN {
		return fmt.Errorf("%w: service %v: VLAN %d out of range 0..%d", ErrInvalid, k, k.VLAN, MaxVLAN)
	}
	return nil
}

// Backend is one backend slot's entry.
type Backend struct {
	// ID is the backend's ID: its slot in the low IDSlotBits bits (the
	// slot SetBackend is given) and a generation above. A flow whose ID
	// differs (an older generation) is rescheduled.
	ID uint32
	// MAC is the address forwarded frames go to. Required when Usable.
	MAC net.HardwareAddr
	// Usable says the backend may carry flows (its MAC is known, it is up
	// and healthy). False: flows on it are rescheduled and table entries
	// naming it count no_backend.
	Usable bool
	// Service is the index of the backend's service, kept for the control
	// plane; the program does not read it.
	Service uint32
	// VLAN is the VLAN ID of the backend's service: a flow-table hit on
	// this backend from a frame of another VLAN is rescheduled (the same
	// 5-tuple on two VLANs), and so is an ICMP error about it. Zero is
	// untagged.
	VLAN uint16
	// Owner names the backend the slot holds, remembered beside the maps
	// (and pinned with them) so that a control plane restarted on pinned
	// maps can give each backend back the slot and ID its flows name
	// (Slots). The zero value names nobody: such a slot is never adopted.
	Owner SlotOwner
}

// SlotOwner names a backend of a service, as the control plane configures
// it: what must be equal for a restarted control plane to adopt a pinned
// backend slot with its ID.
type SlotOwner struct {
	// VIP, Port and Proto are the service's key as the control plane
	// names it (Proto is the control plane's protocol value, which may
	// stand for TCP and UDP both). The zero VIP names nobody.
	VIP   netip.Addr
	Port  uint16
	Proto uint8
	// VLAN is the service's VLAN ID; 0 is untagged.
	VLAN uint16
	// Addr is the backend's address.
	Addr netip.Addr
}

// SlotRecord is what the maps remember of one backend slot (Slots).
type SlotRecord struct {
	// Slot is the slot's index.
	Slot uint32
	// ID is the last ID written into the slot: the current one if Held,
	// else the one it held before it was cleared. A slot given to another
	// backend must take a later generation, or the flows that still name
	// ID would reach it.
	ID uint32
	// Held says the slot holds a backend now.
	Held bool
	// Owner is the backend it holds (or held last).
	Owner SlotOwner
	// MAC is the address the slot forwards to, when Held and known.
	MAC net.HardwareAddr
}

// Restore says what Load found under Config.PinPath and what Attach did
// with a pinned link.
type Restore struct {
	// Pinned says Config.PinPath was set.
	Pinned bool
	// Reused lists the maps taken over from their pins, their content
	// kept; Created those that had no pin yet (a first start); Replaced
	// those whose pin had another layout (a program upgrade changed its
	// key, value or size, or Config changed a size): their content is lost.
	Reused, Created, Replaced []string
	// Why says, for each replaced map, what differed.
	Why map[string]string
	// FlowsLost says established flows lost their entries: the flow table,
	// or the backend slots its entries name, was replaced (or FlowsLost is
	// false with Flows zero: there were none).
	FlowsLost bool
	// Flows, Services and Slots count the flow entries, service keys and
	// held backend slots taken over.
	Flows, Services, Slots int
	// LinkUpdated says Attach found the interface's pinned link and
	// replaced the program it runs, without a moment without one;
	// PeerLinkUpdated the same for a veth peer's pass-through program.
	LinkUpdated, PeerLinkUpdated bool
	// LinkProblem says why a pinned link could not be updated (it was
	// detached and a new one attached in its place), or is empty.
	LinkProblem string
	// Settings says the pinned settings were taken over; Seed is their
	// hash seed (in force until SetParams).
	Settings bool
	Seed     uint64
}

// Flow is a flow-table entry.
type Flow struct {
	// Backend is the ID of the flow's backend.
	Backend uint32
	// State is where the flow is in its life.
	State flowtable.State
	// LastSeen is the tick of the flow's last packet.
	LastSeen flowtable.Tick
}

// Verdict is an XDP action.
type Verdict uint32

// The XDP actions the program returns.
const (
	Aborted Verdict = iota
	Drop
	Pass
	TX
)

func (v Verdict) String() string {
	switch v {
	case Aborted:
		return "aborted"
	case Drop:
		return "drop"
	case Pass:
		return "pass"
	case TX:
		return "tx"
	}
	return fmt.Sprintf("Verdict(%d)", uint32(v))
}

// PassReason says why the program handed a frame to the Go path.
type PassReason int

// The reasons frames are passed, in the program's order.
const (
	// PassNotOurs: the destination MAC is not the balancer's.
	PassNotOurs PassReason = iota
	// PassNotVIP: TCP or UDP to an address that is not a VIP, or an ICMP
	// error quoting a packet that did not come from one.
	PassNotVIP
	// PassNoService: a VIP without a service for the port and protocol.
	PassNoService
	// PassNotCapable: the service's scheduler does not run in XDP.
	PassNotCapable
	// PassFragment: an IPv4 fragment.
	PassFragment
	// PassExtHeader: an IPv6 packet with an extension header.
	PassExtHeader
	// PassMalformed: a frame the Go parser counts as malformed.
	PassMalformed
	// PassICMPNoFlow: an ICMP error whose quoted flow has no live entry
	// with a usable backend, or whose quote lacks the ports.
	PassICMPNoFlow
	// PassOther: not IPv4 or IPv6 (ARP, a second VLAN tag), a protocol
	// other than TCP, UDP and ICMP errors, or a frame from our own MAC.
	PassOther
	// PassCSumPartial: a TCP or UDP segment with a partial checksum (its
	// sender left it to offload) too long for the program to complete
	// (beyond MaxChecksumLen); the Go path forwards it with its offload
	// metadata.
	PassCSumPartial
	// NumPassReasons counts the reasons.
	NumPassReasons
)

var passNames = [...]string{"not_ours", "not_vip", "no_service", "not_capable", "fragment", "ext_header",
	"malformed", "icmp_no_flow", "other", "csum_partial"}

func (r PassReason) String() string {
	if r >= 0 && int(r) < len(passNames) {
		return passNames[r]
	}
	return fmt.Sprintf("PassReason(%d)", int(r))
}

// DropReason says why the program dropped a frame.
type DropReason int

const (
	// DropNoBackend: the service's table names no usable backend for the
	// flow (as dsr.DropNoBackend).
	DropNoBackend DropReason = iota
	// NumDropReasons counts the reasons.
	NumDropReasons
)

func (r DropReason) String() string {
	if r == DropNoBackend {
		return "no_backend"
	}
	return fmt.Sprintf("DropReason(%d)", int(r))
}

// Counters are the program's counters summed over CPUs. Every frame counts
// once in Received and once in exactly one of Forwarded, Passed and
// Dropped.
type Counters struct {
	Received  uint64
	Forwarded uint64 // sent back out with XDP_TX
	// Stateless counts frames forwarded without a flow entry because the
	// flow table refused the insert (also in Forwarded).
	Stateless uint64
	// ChecksumsCompleted counts TCP and UDP frames forwarded after the
	// program completed their partial checksum (also in Forwarded).
	ChecksumsCompleted uint64
	Passed             [NumPassReasons]uint64
	Dropped            [NumDropReasons]uint64
	// Backends is indexed by slot, Services by service index.
	Backends []BackendCounters
	Services []ServiceCounters
}

// BackendCounters are one backend slot's counters.
type BackendCounters struct {
	Packets, Bytes uint64 // forwarded, whole frames
	Flows          uint64 // flows started (new, reopened or rescheduled to it)
	SYNRetransmits uint64 // bare SYNs on an embryonic flow of it
}

// ServiceCounters are one service index's counters.
type ServiceCounters struct {
	Flows       uint64 // new flows, reopened ones included
	Rescheduled uint64 // flows moved to a new backend
}
