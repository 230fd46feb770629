package dsr

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/xdp"
	"github.com/dsrlb/dsrlb/scheduler"
)

// XDPConfig configures ListenXDP. A nil *XDPConfig means all defaults.
type XDPConfig struct {
	// Packet configures the packet socket that carries what the XDP program
	// passes up to the Balancer's Go path. Nil means its defaults.
	Packet *PacketConfig
	// MaxFlows sizes the program's flow table (an LRU hash: past it the
	// least recently used flow gives way). Zero means 262144.
	MaxFlows int
	// MaxBackendSlots bounds the backend IDs the program can hold (every
	// backend of every service has one). Zero means 4096.
	MaxBackendSlots int
	// MaxServices bounds the services the program runs. Zero means 256;
	// services beyond it are passed to the Go path.
	MaxServices int
	// PinPath is a directory in a mounted BPF filesystem (bpffs), one per
	// interface (for example /sys/fs/bpf/dsrlb/eth0), where the program's
	// flows, plan and links are pinned, so that the forwarder of the next
	// process (a restart, an upgrade) takes them over: its program replaces
	// the running one through the pinned link, without detaching it, and
	// established flows keep their backends. With it, Close leaves the
	// program attached and forwarding by the last plan; Detach (or
	// RemoveXDPPins) removes it. Maps whose layout changed (an upgrade, or
	// another MaxFlows, MaxBackendSlots or MaxServices) are replaced and
	// their content is lost: Restored and the log say so. Empty means no
	// pinning: Close detaches the program and its flows are lost.
	PinPath string
	// Logger receives what ListenXDP found under PinPath and did with it.
	// Nil discards it.
	Logger *slog.Logger
}

// XDPForwarder is a Forwarder whose common case runs in the kernel: an XDP
// program on the interface forwards TCP and UDP flows of the services whose
// scheduler it implements (mh and hrw) with XDP_TX, reading the plan the
// Balancer compiles; everything else — ARP and neighbour discovery,
// fragments, IPv6 extension headers, ICMP errors it cannot place, services
// with other schedulers, malformed frames — it passes up to a packet socket,
// and the Balancer's Go path, the reference, decides those as it always
// does. Serve it like a PacketForwarder; a Balancer that serves it keeps the
// program's maps in step with every change and sums its counters into
// Stats. Frames the program forwards never reach a packet socket (nor
// tcpdump): Stats.XDP accounts for every one of them.
//
// The program stays attached, forwarding by the last plan it was given,
// until Close: a Serve that returns does not stop it. With
// XDPConfig.PinPath it stays attached after Close too, and the next
// process's forwarder takes its flows over (docs/RESTART.md). Until a Balancer
// serves it the program has no plan and passes every frame up; serve it
// before clients arrive, or the flows that open in between keep an entry in
// the Go path's flow table as well (harmless for forwarding, since both
// pick alike, but an embryonic Go entry counts as an active flow of its
// backend until the embryonic timeout, which a drain then waits for).
type XDPForwarder struct {
	*PacketForwarder
	prog   *xdp.Program
	link   io.Closer
	mac    [6]byte
	ifname string

	pinPath  string
	restored XDPRestore
	log      *slog.Logger // nil: discard

	mu sync.Mutex
	// ids maps the Balancer's backend IDs and service turns to the maps'
	// (created by the first plan).
	ids *kernelIDs
	// What the maps hold, so that a new plan writes only what changed.
	backends map[uint32]xdp.Backend // kernel slot → entry
	services map[xdp.ServiceKey]*pushedService
	// Counter baselines (by kernel slot and service index): a slot or
	// service index that is reused starts from the counters it had when
	// its new owner took it.
	beBase  map[uint32]xdp.BackendCounters
	svcBase map[uint32]xdp.ServiceCounters
	full    bool // a service did not fit MaxServices (logged once)
	// hints are the backend MACs of the pinned maps (see macHinter).
	hints map[nbKey]net.HardwareAddr
}

type pushedService struct {
	sched   scheduler.Scheduler
	ids     []uint32
	index   uint32
	capable bool
}

var _ Forwarder = (*XDPForwarder)(nil)

// ListenXDP loads the XDP program, attaches it to the interface ifname in
// native mode and opens the packet socket for the frames it passes up. It
// needs CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF (root), and a kernel with
// native XDP for the interface's driver; where the program cannot be loaded
// or attached the error says why, and a caller can fall back to
// ListenPacket.
func ListenXDP(ifname string, cfg *XDPConfig) (*XDPForwarder, error) {
	var c XDPConfig
	if cfg != nil {
		c = *cfg
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("dsr: xdp forwarder on %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("dsr: xdp forwarder on %s: not an Ethernet interface", ifname)
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prog, err := xdp.Load(&xdp.Config{MaxFlows: c.MaxFlows, MaxBackendSlots: c.MaxBackendSlots, MaxServices: c.MaxServices, PinPath: c.PinPath})
	if err != nil {
		if errors.Is(err, xdp.ErrUnsupported) {
			err = fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("dsr: xdp forwarder on %s: %w", ifname, err)
	}
	x := &XDPForwarder{prog: prog, mac: [6]byte(ifi.HardwareAddr), ifname: ifname, pinPath: c.PinPath,
		backends: map[uint32]xdp.Backend{}, services: map[xdp.ServiceKey]*pushedService{},
		beBase: map[uint32]xdp.BackendCounters{}, svcBase: map[uint32]xdp.ServiceCounters{}}
	if err := x.initIDs(); err != nil {
		prog.Close()
		return nil, fmt.Errorf("dsr: xdp forwarder on %s: %w", ifname, err)
	}
	// Until a Balancer serves it the program knows no service and passes
	// everything: the packet socket opens first, so nothing is lost.
	if x.PacketForwarder, err = ListenPacket(ifname, c.Packet); err != nil {
		prog.Close()
		return nil, err
	}
	if x.link, err = prog.Attach(ifi.Index); err != nil {
		x.PacketForwarder.Close()
		prog.Close()
		return nil, fmt.Errorf("dsr: xdp forwarder on %s: %w", ifname, err)
	}
	x.restored = restoreOf(c.PinPath, prog.Restore())
	x.restored.log(log, ifname)
	x.log = log
	return x, nil
}

// Close closes the packet socket and lets go of the program. Without
// pinning that detaches it; with XDPConfig.PinPath the program stays
// attached, forwarding the established flows (and new ones, by the last
// plan) until the next process takes it over or Detach removes it.
func (x *XDPForwarder) Close() error {
	var errs []error
	if x.link != nil {
		errs = append(errs, x.link.Close())
	}
	if x.prog != nil {
		errs = append(errs, x.prog.Close())
	}
	if x.PacketForwarder != nil {
		errs = append(errs, x.PacketForwarder.Close())
	}
	return errors.Join(errs...)
}

// dataPlane is a forwarder that decides in the kernel from the compiled
// plan: the Balancer hands it every snapshot it applies, moves its clock and
// collects its counters.
type dataPlane interface {
	// setParams gives the data plane what does not change with the plan.
	setParams(seed uint64, flows *flowtable.Config) error
	// loadPlan writes a snapshot into the data plane.
	loadPlan(s *snapshot) error
	setNow(t flowtable.Tick) error
	// collect adds the data plane's counters to the snapshot's backends
	// and services, and returns its own.
	collect(s *snapshot) (XDPStats, error)
	// activeFlows counts, by backend ID, the data plane's flows that have
	// not expired at now.
	activeFlows(now flowtable.Tick) (map[uint32]int, error)
	// peekFlow returns the data plane's entry for a flow.
	peekFlow(k *flowtable.Key, now flowtable.Tick) (flowtable.Entry, bool)
}

var _ dataPlane = (*XDPForwarder)(nil)

func (x *XDPForwarder) setParams(seed uint64, flows *flowtable.Config) error {
	if r := &x.restored; r.seedSet && r.seed != seed && x.log != nil {
		x.log.Warn("xdp: the hash seed differs from the pinned one: established flows keep their backends, but new flows are placed by the new seed",
			"interface", x.ifname)
	}
	return x.prog.SetParams(xdp.Params{Seed: seed, MAC: net.HardwareAddr(x.mac[:]), Flows: flows})
}

func (x *XDPForwarder) setNow(t flowtable.Tick) error { return x.prog.SetNow(t) }

// loadPlan writes what changed between the maps and s. Backends go in
// before the tables that name them, and leave after: the program never
// finds a table entry whose backend is missing, and no frame reaches a
// removed backend once loadPlan returns. The maps name backends and
// services by kernel IDs (see kernelIDs).
func (x *XDPForwarder) loadPlan(s *snapshot) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ids == nil {
		if err := x.initIDsLocked(); err != nil {
			return err
		}
	}
	var errs []error
	// A slot or service index that changes owner starts from the counters
	// it has now: read those few, not every slot.
	beNow := func(slot uint32) (xdp.BackendCounters, bool) {
		c, err := x.prog.CountersOf([]uint32{slot}, nil)
		if err != nil {
			return xdp.BackendCounters{}, false
		}
		return c.Backends[slot], true
	}
	svcNow := func(idx uint32) (xdp.ServiceCounters, bool) {
		c, err := x.prog.CountersOf(nil, []uint32{idx})
		if err != nil {
			return xdp.ServiceCounters{}, false
		}
		return c.Services[idx], true
	}
	live := map[uint32]bool{}
	for i := range s.backends {
		be := &s.backends[i]
		if be.svc == nil {
			continue
		}
		owner := ownerOf(be)
		kid, ok := x.ids.backend(be.id, owner)
		if !ok {
			errs = append(errs, fmt.Errorf("backend %s of %s: no free backend slot in the XDP maps (XDPConfig.MaxBackendSlots)", owner.Addr, be.svc.key))
			continue
		}
		slot := kid & idSlotMask
		live[slot] = true
		// An L3 backend is encapsulated by the Go path only.
		want := xdp.Backend{ID: kid, Usable: be.usable && be.hasMAC && be.encap == nil, Service: uint32(be.svc.turn), Owner: owner, VLAN: be.svc.key.VLAN}
		if be.hasMAC {
			want.MAC = net.HardwareAddr(be.mac[:])
		}
		if have, ok := x.backends[slot]; ok && sameBackend(have, want) {
			continue
		}
		if have, ok := x.backends[slot]; !ok || have.ID != want.ID {
			if c, ok := beNow(slot); ok {
				x.beBase[slot] = c
			}
		}
		if err := x.prog.SetBackend(slot, want); err != nil {
			errs = append(errs, err)
			continue
		}
		x.backends[slot] = want
	}
	seen := map[xdp.ServiceKey]bool{}
	turns := map[int]bool{}
	trunk := hasVLANs(s)
	for lk, e := range s.services {
		key := xdp.ServiceKey{VIP: netip.AddrFrom16(lk.vip).Unmap(), Port: lk.port, Proto: lk.proto, VLAN: lk.vlan}
		turns[e.turn] = true
		index, ok := x.ids.service(e.turn, key)
		if !ok {
			// Past MaxServices: its traffic is passed to the Go path.
			errs = append(errs, fmt.Errorf("service %s: no free service index in the XDP maps (XDPConfig.MaxServices)", e.key))
			x.full = true
			continue
		}
		seen[key] = true
		tabled, isTabled := e.sched.(scheduler.Tabled)
		// With services on VLANs the interface is a trunk, and untagged
		// services stay on the Go path: a tag that VLAN offload moved out
		// of the frame is invisible to the program, which would take
		// that VLAN's frames for untagged ones and send them untagged.
		// L3 services are encapsulated by the Go path: the program knows
		// their key only to pass their frames up as not_capable.
		capable := isTabled && scheduler.FollowsFlow(e.sched) && !(lk.vlan == 0 && trunk) && !e.l3
		if p := x.services[key]; p != nil && p.sched == e.sched && p.index == index && p.capable == capable && slices.Equal(p.ids, e.ids) {
			continue
		}
		var table []uint32
		if capable {
			t := tabled.LookupTable()
			table = make([]uint32, len(t))
			for i, idx := range t {
				table[i] = xdp.NoBackend
				if idx >= 0 && int(idx) < len(e.ids) {
					if kid, ok := x.ids.kernelID(e.ids[idx]); ok {
						table[i] = kid
					}
				}
			}
		}
		if p := x.services[key]; p == nil || p.index != index {
			if !x.svcIndexInUse(index, key) {
				if c, ok := svcNow(index); ok {
					x.svcBase[index] = c
				}
			}
		}
		if err := x.prog.SetService(key, index, capable, table); err != nil {
			if errors.Is(err, xdp.ErrInvalid) && !x.full {
				// Past MaxServices: its traffic is passed to the Go path.
				x.full = true
			}
			errs = append(errs, fmt.Errorf("service %s: %w", e.key, err))
			continue
		}
		x.services[key] = &pushedService{sched: e.sched, ids: e.ids, index: index, capable: capable}
	}
	x.ids.releaseServices(turns)
	for key := range x.services {
		if !seen[key] {
			if err := x.prog.DeleteService(key); err != nil {
				errs = append(errs, err)
			}
			delete(x.services, key)
		}
	}
	for slot := range x.backends {
		if !live[slot] {
			if err := x.prog.ClearBackend(slot); err != nil {
				errs = append(errs, err)
			}
			delete(x.backends, slot)
			x.ids.release(slot)
		}
	}
	// Pinned backends the plan did not adopt are gone: their flows are
	// rescheduled, as the Go path reschedules a removed backend's.
	for _, slot := range x.ids.settled() {
		if err := x.prog.ClearBackend(slot); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ownerOf names a backend of the plan as the slot records remember it.
func ownerOf(be *beEntry) xdp.SlotOwner {
	o := xdp.SlotOwner{VIP: be.svc.key.VIP.Unmap(), Port: be.svc.key.Port, Proto: uint8(be.svc.key.Protocol), VLAN: be.svc.key.VLAN}
	if be.index >= 0 && be.index < len(be.svc.addrs) {
		o.Addr = be.svc.addrs[be.index].Unmap()
	}
	return o
}

func sameBackend(a, b xdp.Backend) bool {
	return a.ID == b.ID && a.Usable == b.Usable && a.Service == b.Service && a.VLAN == b.VLAN && string(a.MAC) == string(b.MAC)
}

// XDPStats are an XDP forwarder's program counters: every frame the
// program saw counts once in Received and once in Forwarded, Passed (by
// reason) or Dropped (by reason). Passed frames go on to the packet socket,
// where the Go path counts them again as it handles them.
type XDPStats struct {
	Received, Forwarded uint64
	Passed              map[string]uint64
	Dropped             map[string]uint64
	// ChecksumsCompleted counts forwarded frames whose TCP or UDP checksum
	// the program completed: frames a virtual sender (veth) left with a
	// partial checksum for its "hardware" to finish.
	ChecksumsCompleted uint64
}

// XDPPassReasons lists the labels of XDPStats.Passed, so that an exporter
// can publish each from the start.
func XDPPassReasons() []string {
	out := make([]string, 0, xdp.NumPassReasons)
	for r := range xdp.NumPassReasons {
		out = append(out, r.String())
	}
	return out
}

// XDPDropReasons lists the labels of XDPStats.Dropped.
func XDPDropReasons() []string {
	out := make([]string, 0, xdp.NumDropReasons)
	for r := range xdp.NumDropReasons {
		out = append(out, r.String())
	}
	return out
}

// svcIndexInUse reports whether another key of the maps (the other
// protocol of a TCPAndUDP service) already holds service index idx, whose
// baseline then stands. Called with x.mu held.
func (x *XDPForwarder) svcIndexInUse(idx uint32, except xdp.ServiceKey) bool {
	for k, p := range x.services {
		if k != except && p.index == idx {
			return true
		}
	}
	return false
}

// collect reads the program's counters of the slots and services in the
// maps and stores them, less their baselines, into s's entries.
func (x *XDPForwarder) collect(s *snapshot) (XDPStats, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	slots := make([]uint32, 0, len(x.backends))
	for slot := range x.backends {
		slots = append(slots, slot)
	}
	var idxs []uint32
	for _, p := range x.services {
		if !slices.Contains(idxs, p.index) {
			idxs = append(idxs, p.index)
		}
	}
	c, err := x.prog.CountersOf(slots, idxs)
	if err != nil {
		return XDPStats{}, err
	}
	st := XDPStats{Received: c.Received, Forwarded: c.Forwarded, Passed: map[string]uint64{}, Dropped: map[string]uint64{},
		ChecksumsCompleted: c.ChecksumsCompleted}
	for r, n := range c.Passed {
		st.Passed[xdp.PassReason(r).String()] = n
	}
	for r, n := range c.Dropped {
		st.Dropped[xdp.DropReason(r).String()] = n
	}
	for i := range s.backends {
		be := &s.backends[i]
		if be.svc == nil || x.ids == nil {
			continue
		}
		kid, ok := x.ids.kernelID(be.id)
		slot := kid & idSlotMask
		if !ok || int(slot) >= len(c.Backends) {
			continue // not yet in the maps
		}
		if have, ok := x.backends[slot]; !ok || have.ID != kid {
			continue // not yet in the maps
		}
		cur, base := c.Backends[slot], x.beBase[slot]
		be.stats.dp.store(cur.Packets-base.Packets, cur.Bytes-base.Bytes, cur.Flows-base.Flows, cur.SYNRetransmits-base.SYNRetransmits)
	}
	done := map[*svcEntry]bool{}
	for _, e := range s.services {
		if done[e] || x.ids == nil {
			continue
		}
		idx, ok := x.ids.svcByGo[e.turn]
		if !ok || int(idx) >= len(c.Services) {
			continue
		}
		done[e] = true
		cur, base := c.Services[idx], x.svcBase[idx]
		e.stats.dpFlows.Store(cur.Flows - base.Flows)
		e.stats.dpRescheduled.Store(cur.Rescheduled - base.Rescheduled)
	}
	return st, nil
}

func (x *XDPForwarder) activeFlows(now flowtable.Tick) (map[uint32]int, error) {
	per, err := x.prog.FlowsPerBackend(now)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[uint32]int, len(per))
	for kid, n := range per {
		if id, ok := x.goIDLocked(kid); ok {
			out[id] += n
		}
	}
	return out, nil
}

// goIDLocked returns the Balancer's ID for a kernel backend ID that is
// current. Called with x.mu held.
func (x *XDPForwarder) goIDLocked(kid uint32) (uint32, bool) {
	if x.ids == nil {
		return 0, false
	}
	return x.ids.goID(kid)
}

// goID returns the Balancer's backend ID for a backend ID read from the
// program's flow table; false if it names no current backend (a removed
// one, or a slot of a previous process not adopted).
func (x *XDPForwarder) goID(kid uint32) (uint32, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.goIDLocked(kid)
}

func (x *XDPForwarder) peekFlow(k *flowtable.Key, now flowtable.Tick) (flowtable.Entry, bool) {
	f, ok, err := x.prog.LookupFlow(*k)
	if err != nil || !ok {
		return flowtable.Entry{}, false
	}
	id, ok := x.goID(f.Backend)
	if !ok {
		id = xdp.NoBackend // names no backend of the plan: rescheduled
	}
	e := flowtable.Entry{Backend: id, State: f.State, Idle: flowtable.Tick(uint32(now) - uint32(f.LastSeen))}
	e.Expired = x.prog.Expired(k.Proto, f, now)
	return e, true
}
