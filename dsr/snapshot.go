package dsr

import (
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame"
	"github.com/dsrlb/dsrlb/scheduler"
)

// Backend IDs stored in the flow table are a slot index (low bits) and a
// generation (high bits). A slot is reused only with a new generation, so a
// flow that still names a removed backend can never reach the backend that
// took its slot.
//
// With 20 slot bits and 12 generation bits, a slot must be reused 4096 times
// within one flow's lifetime before an ID could alias.
const (
	idSlotBits = 20
	idSlotMask = 1<<idSlotBits - 1
	maxSlots   = 1 << idSlotBits
	genMask    = 1<<(32-idSlotBits) - 1
)

// svcLookup is the hot-path key of a service. Addresses are kept as 16
// bytes (IPv4 mapped) so the map key is plain comparable data.
type svcLookup struct {
	vip   [16]byte
	port  uint16
	proto uint8
	vlan  uint16
}

type fragLookup struct {
	vip   [16]byte
	proto uint8
	vlan  uint16
}

// svcEntry is the forwarding view of one service.
type svcEntry struct {
	key   ServiceKey
	sched scheduler.Scheduler
	// schedName names sched, and schedGen is the generation of the plan
	// that built it (for Explain).
	schedName string
	schedGen  uint64
	obs       scheduler.FlowObserver // nil unless sched implements it
	// frag places fragments under FragmentsHash: sched itself when its
	// picks depend only on the flow (mh, sh, hrw), else a Maglev table over
	// the same weighted set, so that every fragment of a datagram reaches
	// one backend whatever the service's scheduler.
	frag  scheduler.Scheduler
	turn  int          // the service's index into each worker's turn counters
	l3    bool         // a backend is encapsulated (ModeIPIP, ModeGUE): not offloaded to XDP
	ids   []uint32     // scheduler index → backend ID
	addrs []netip.Addr // scheduler index → backend address
	stats *serviceStats
}

// beEntry is the forwarding view of one backend of one service.
type beEntry struct {
	id     uint32
	mac    [6]byte
	usable bool // MAC known, not down, healthy: may carry flows
	state  BackendState
	index  int // position in svc.ids, for FlowObserver
	svc    *svcEntry
	stats  *backendStats
	encap  *encapInfo // nil in L2 mode; mac is then the next hop's

	// Why the entry is as it is, for Explain and tests; workers read only
	// the fields above.
	hasMAC    bool    // mac is known (configured or resolved)
	healthy   bool    // every check passes, or fail-open keeps it
	failOpen  bool    // healthy only because the service fails open
	healthErr error   // a failing check's reason, or nil
	weight    uint32  // the scheduler weight compiled; 0: no new flows
	rampFrac  float64 // in slow start: the fraction of its weight; else 0
}

// snapshot is the immutable forwarding state. The control plane builds a new
// one for every change and swaps it in atomically; workers only read it.
type snapshot struct {
	gen      uint64 // counts plans: every compile makes a new generation
	services map[svcLookup]*svcEntry
	frag     map[fragLookup]*svcEntry // nil value: ambiguous, fragments dropped
	vips     map[[16]byte]struct{}
	backends []beEntry // indexed by id & idSlotMask
	vipList  []netip.Addr
	turns    int // every svcEntry.turn is below it
}

func (s *snapshot) backend(id uint32) *beEntry {
	i := id & idSlotMask
	if int(i) >= len(s.backends) {
		return nil
	}
	be := &s.backends[i]
	if be.id != id || be.svc == nil {
		return nil
	}
	return be
}

func protoNumbers(p Protocol) []uint8 {
	switch p {
	case TCP:
		return []uint8{frame.ProtoTCP}
	case UDP:
		return []uint8{frame.ProtoUDP}
	case TCPAndUDP:
		return []uint8{frame.ProtoTCP, frame.ProtoUDP}
	}
	return nil
}

// service finds the service for a destination on a VLAN (0: untagged): the
// exact port first, then the VIP's all-ports service.
func (s *snapshot) service(dst netip.Addr, proto uint8, port, vlan uint16) *svcEntry {
	k := svcLookup{vip: dst.As16(), port: port, proto: proto, vlan: vlan}
	if e := s.services[k]; e != nil {
		return e
	}
	k.port = 0
	return s.services[k]
}

func (s *snapshot) isVIP(a netip.Addr) bool {
	_, ok := s.vips[a.As16()]
	return ok
}
