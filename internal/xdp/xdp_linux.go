//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/flowtable"
)

// Program is the loaded XDP program and its maps. Its methods are safe for
// concurrent use.
type Program struct {
	cfg   resolvedConfig
	objs  xdpObjects
	slots *ebpf.Map // slot records (slotValue), the control plane's own
	lock  *os.File  // the pin directory, locked (nil without pinning)

	mu       sync.Mutex
	settings xdpSettings
	services map[ServiceKey]uint32 // service key → index
	vips     map[[16]byte]int      // VIP → number of its service keys
	restore  Restore
	// The program's clock continues the pinned one: kernel ticks are the
	// caller's plus clockOffset, fixed by the first SetNow after a load
	// that reused the settings (clockPending).
	clockOffset  uint32
	clockPending bool
}

// Load loads the program and creates its maps, sized by cfg (nil: the
// defaults). It does not attach it. The balancer MAC is unset until
// SetParams: until then every frame is passed.
//
// With cfg.PinPath, Load takes over the maps pinned there whose layout
// still matches (with the flows, services, tables, backend slots and
// settings they hold: the program forwards by the pinned plan until it is
// given a new one), creates and pins the missing ones, and replaces those
// of another layout; Restore says which, and whether flows were lost.
func Load(cfg *Config) (*Program, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	spec, err := loadXdp()
	if err != nil {
		return nil, fmt.Errorf("xdp: %w", err)
	}
	sizes := map[string]int{
		xdpMapFlows:       r.maxFlows,
		xdpMapBackends:    r.maxSlots,
		xdpMapBeCounters:  r.maxSlots,
		xdpMapServices:    r.maxServices,
		xdpMapVips:        r.maxServices,
		xdpMapTables:      r.maxServices,
		xdpMapSvcCounters: r.maxServices,
	}
	for name, n := range sizes {
		spec.Maps[name].MaxEntries = uint32(n)
	}
	p := &Program{cfg: r, services: map[ServiceKey]uint32{}, vips: map[[16]byte]int{}}
	sspec := slotSpec(r.maxSlots)
	var opts ebpf.CollectionOptions
	if r.pinPath != "" {
		p.restore.Pinned = true
		if err := checkBPFFS(r.pinPath); err != nil {
			return nil, err
		}
		if p.lock, err = lockPinDir(r.pinPath); err != nil {
			return nil, err
		}
		if err := preparePins(r.pinPath, spec, sspec, &p.restore); err != nil {
			p.lock.Close()
			return nil, err
		}
		for _, name := range stateMaps {
			if ms := spec.Maps[name]; ms != nil {
				ms.Pinning = ebpf.PinByName
			}
		}
		sspec.Pinning = ebpf.PinByName
		opts.Maps.PinPath = r.pinPath
	}
	if err := spec.LoadAndAssign(&p.objs, &opts); err != nil {
		var ve *ebpf.VerifierError
		p.unlock()
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("xdp: the verifier refused the program: %+v", ve)
		}
		return nil, fmt.Errorf("xdp: load: %w", err)
	}
	if p.slots, err = ebpf.NewMapWithOptions(sspec, opts.Maps); err != nil {
		p.objs.Close()
		p.unlock()
		return nil, fmt.Errorf("xdp: create the slots map: %w", err)
	}
	if slices.Contains(p.restore.Reused, xdpMapConfig) {
		// The pinned settings stay in force (the program keeps forwarding
		// with them) until SetParams; the clock continues from theirs.
		if err := p.objs.Config.Lookup(uint32(0), &p.settings); err != nil {
			p.Close()
			return nil, fmt.Errorf("xdp: read the pinned settings: %w", err)
		}
		p.clockPending = true
		p.restore.Seed, p.restore.Settings = p.settings.Seed, true
	} else {
		timeouts, _ := flowtable.TimeoutTicks(nil)
		p.settings.Timeouts = timeouts
		p.settings.Mac = [6]byte{}
	}
	p.settings.CsumMax = MaxChecksumLen
	// Until SetParams the MAC is all zeros (without pinned settings), which
	// no Ethernet sender uses as a destination: every frame passes.
	if err := p.writeSettings(); err != nil {
		p.Close()
		return nil, err
	}
	if len(p.restore.Reused) > 0 {
		if err := p.adoptPinned(); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// Close releases the program and its maps. It detaches nothing: close the
// link Attach returned first (a pinned link stays attached, running the
// program, and pinned maps stay with their content).
func (p *Program) Close() error {
	var err error
	if p.slots != nil {
		err = p.slots.Close()
	}
	err = errors.Join(p.objs.Close(), err)
	p.unlock()
	return err
}

// unlock releases the pin directory's lock.
func (p *Program) unlock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lock != nil {
		p.lock.Close()
		p.lock = nil
	}
}

// Attach attaches the program to the interface in native (driver) mode:
// veth and most physical NICs' drivers support it; generic mode is never
// used silently. Closing the returned link detaches it, unless it is
// pinned.
//
// On a veth, frames sent with XDP_TX reach the peer only if the peer runs
// NAPI, which veth turns on for a peer with an XDP program or GRO enabled;
// otherwise the kernel drops them (counted as TX drops of the interface).
// So Attach also attaches a program that passes every frame to the peer
// when the peer has none, in the peer's namespace if that namespace is
// named (in /run/netns) or is the current one, and detaches it on Close. A
// peer it cannot reach or attach to is an error.
//
// With Config.PinPath, Attach pins both links there; when links of the
// interface (and its peer) are pinned already, it replaces the programs
// they run with this one (link update: the interface never runs without a
// program, and flows keep flowing through the pinned maps). Closing the
// returned link then detaches nothing: Remove does.
func (p *Program) Attach(ifindex int) (io.Closer, error) {
	attach := func() (link.Link, error) {
		l, err := link.AttachXDP(link.XDPOptions{
			Program:   p.objs.XdpDsr,
			Interface: ifindex,
			Flags:     link.XDPDriverMode,
		})
		if err != nil {
			return nil, fmt.Errorf("xdp: attach to interface %d in native mode: %w", ifindex, err)
		}
		return l, nil
	}
	dir := p.cfg.pinPath
	if dir == "" {
		l, err := attach()
		if err != nil {
			return nil, err
		}
		peer, err := p.attachVethPeer(ifindex)
		if err != nil {
			l.Close()
			return nil, err
		}
		if peer == nil {
			return l, nil
		}
		return &links{l, peer}, nil
	}
	l, updated, problem, err := attachPinned(dir, linkPin, ifindex, p.objs.XdpDsr, attach)
	p.mu.Lock()
	p.restore.LinkUpdated, p.restore.LinkProblem = updated, problem
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	peerIndex, err := vethPeerIndex(ifindex)
	if err != nil {
		l.Close()
		return nil, err
	}
	if peerIndex == 0 {
		// Not a veth (any more): a pinned peer link is stale.
		_ = os.Remove(filepath.Join(dir, peerLinkPin))
		return l, nil
	}
	peer, updated, problem, err := attachPinned(dir, peerLinkPin, peerIndex, p.objs.XdpPass, func() (link.Link, error) {
		return p.attachVethPeer(ifindex)
	})
	p.mu.Lock()
	p.restore.PeerLinkUpdated = updated
	if problem != "" {
		p.restore.LinkProblem = strings.TrimPrefix(p.restore.LinkProblem+"; "+problem, "; ")
	}
	p.mu.Unlock()
	if err != nil {
		l.Close()
		return nil, err
	}
	if peer == nil {
		return l, nil
	}
	return &links{l, peer}, nil
}

// links closes several links.
type links []io.Closer

func (ls *links) Close() error {
	var errs []error
	for _, l := range *ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
func (p *Program) writeSettings() error {
	if err := p.objs.Config.Update(uint32(0), &p.settings, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("xdp: write settings: %w", err)
	}
	return nil
}

// SetParams sets the seed, the balancer's MAC and the flow timeouts.
func (p *Program) SetParams(pr Params) error {
	if len(pr.MAC) != 6 {
		return fmt.Errorf("%w: MAC %q is not a 6-byte Ethernet address", ErrInvalid, pr.MAC)
	}
	timeouts, err := flowtable.TimeoutTicks(pr.Flows)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settings.Seed = pr.Seed
	p.settings.Mac = [6]byte(pr.MAC)
	p.settings.Timeouts = timeouts
	return p.writeSettings()
}

// SetNow sets the program's clock: the tick flows are stamped with and
// expire by. The control plane advances it (every flowtable.TickDuration);
// the program never reads a clock of its own, so tests control time.
//
// After a Load that took over pinned settings, the program's clock goes on
// from the pinned one: the first SetNow fixes the offset between the
// caller's ticks and the program's, and every method that takes or
// returns a tick (FlowsPerBackend, Expired, Flow.LastSeen) speaks the
// caller's. The time the maps spent without a control plane is not
// counted: flows idle across a restart live that much longer.
func (p *Program) SetNow(now flowtable.Tick) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clockPending {
		p.clockOffset = p.settings.Now - uint32(now)
		p.clockPending = false
	}
	p.settings.Now = uint32(now) + p.clockOffset
	return p.writeSettings()
}

// offset returns the clock offset (see SetNow).
func (p *Program) offset() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clockOffset
}

func serviceKeyOf(k ServiceKey) xdpServiceKey {
	return xdpServiceKey{Vip: k.VIP.Unmap().As16(), Port: k.Port, Proto: k.Proto, Vlan: k.VLAN}
}

// SetService adds or replaces a service. index selects its table and
// counters (below Config.MaxServices; services may share none). capable
// false makes the program pass the service's new flows to the Go path (its
// scheduler is not a table the program can run). table is the service's
// lookup table of backend IDs, as scheduler.FlowTable gives it translated
// to IDs (NoBackend for none); an empty table drops new flows as
// no_backend.
//
// The table is written into a new map that replaces the old one in one
// step: the program sees the old table or the new one, never a mix.
func (p *Program) SetService(key ServiceKey, index uint32, capable bool, table []uint32) error {
	key.VIP = key.VIP.Unmap()
	if err := key.validate(); err != nil {
		return err
	}
	if int(index) >= p.cfg.maxServices {
		return fmt.Errorf("%w: service %v: index %d beyond MaxServices %d", ErrInvalid, key, index, p.cfg.maxServices)
	}
	if len(table) > MaxTableSize {
		return fmt.Errorf("%w: service %v: table of %d entries exceeds %d", ErrInvalid, key, len(table), MaxTableSize)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.services[key]; !ok && len(p.services) >= p.cfg.maxServices {
		return fmt.Errorf("%w: service %v: already %d services (MaxServices)", ErrInvalid, key, len(p.services))
	}
	inner, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "dsrlb_table",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: uint32(len(table) + 1),
		Flags:      unix.BPF_F_INNER_MAP,
	})
	if err != nil {
		return fmt.Errorf("xdp: service %v: create table: %w", key, err)
	}
	defer inner.Close() // the outer map keeps its own reference
	// Element 0 is the size; entries follow.
	vals := make([]uint32, len(table)+1)
	vals[0] = uint32(len(table))
	copy(vals[1:], table)
	keys := make([]uint32, len(vals))
	for i := range keys {
		keys[i] = uint32(i)
	}
	if _, err := inner.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("xdp: service %v: fill table: %w", key, err)
	}
	if err := p.objs.Tables.Update(index, inner, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("xdp: service %v: swap table %d: %w", key, index, err)
	}
	flags := uint32(0)
	if capable {
		flags = 1
	}
	if err := p.objs.Services.Update(serviceKeyOf(key), xdpServiceEntry{Index: index, Flags: flags}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("xdp: service %v: %w", key, err)
	}
	if _, ok := p.services[key]; !ok {
		vip := key.VIP.As16()
		if p.vips[vip] == 0 {
			if err := p.objs.Vips.Update(vip, uint8(1), ebpf.UpdateAny); err != nil {
				p.objs.Services.Delete(serviceKeyOf(key))
				return fmt.Errorf("xdp: service %v: add VIP: %w", key, err)
			}
		}
		p.vips[vip]++
	}
	p.services[key] = index
	return nil
}

// DeleteService removes a service. Its table goes too unless another
// service key uses the same index; its counters stay. Deleting a service
// that is not there is not an error.
func (p *Program) DeleteService(key ServiceKey) error {
	key.VIP = key.VIP.Unmap()
	p.mu.Lock()
	defer p.mu.Unlock()
	index, ok := p.services[key]
	if !ok {
		return nil
	}
	if err := p.objs.Services.Delete(serviceKeyOf(key)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xdp: delete service %v: %w", key, err)
	}
	delete(p.services, key)
	vip := key.VIP.As16()
	if p.vips[vip]--; p.vips[vip] <= 0 {
		delete(p.vips, vip)
		if err := p.objs.Vips.Delete(vip); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("xdp: delete service %v: VIP: %w", key, err)
		}
	}
	for _, i := range p.services {
		if i == index {
			return nil
		}
	}
	if err := p.objs.Tables.Delete(index); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xdp: delete service %v: table %d: %w", key, index, err)
	}
	return nil
}

// SetBackend writes one backend slot. b.ID's slot bits must equal slot.
func (p *Program) SetBackend(slot uint32, b Backend) error {
	if int(slot) >= p.cfg.maxSlots {
		return fmt.Errorf("%w: backend slot %d beyond MaxBackendSlots %d", ErrInvalid, slot, p.cfg.maxSlots)
	}
	if b.ID&IDSlotMask != slot {
		return fmt.Errorf("%w: backend ID %#x is not of slot %d", ErrInvalid, b.ID, slot)
	}
	e := xdpBackendEntry{Id: b.ID, Service: b.Service, Vlan: b.VLAN}
	switch {
	case len(b.MAC) == 6:
		e.Mac = [6]byte(b.MAC)
	case len(b.MAC) != 0 || b.Usable:
		return fmt.Errorf("%w: backend %#x: MAC %q is not a 6-byte Ethernet address", ErrInvalid, b.ID, b.MAC)
	}
	if b.Usable {
		e.Flags = 1
	}
	// The record first: a slot the maps use is always recorded with its
	// latest ID, whatever happens to this process after.
	rec := encodeSlot(b.ID, true, b.Owner)
	if err := p.slots.Update(slot, &rec, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("xdp: backend slot %d: record: %w", slot, err)
	}
	if err := p.objs.Backends.Update(slot, &e, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("xdp: backend slot %d: %w", slot, err)
	}
	return nil
}

// ClearBackend empties a backend slot: flows naming it are rescheduled.
func (p *Program) ClearBackend(slot uint32) error {
	if int(slot) >= p.cfg.maxSlots {
		return fmt.Errorf("%w: backend slot %d beyond MaxBackendSlots %d", ErrInvalid, slot, p.cfg.maxSlots)
	}
	if err := p.objs.Backends.Update(slot, &xdpBackendEntry{Id: NoBackend}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("xdp: backend slot %d: %w", slot, err)
	}
	// The record keeps the last ID, so that the slot's next backend
	// takes a later generation, and says the slot is free.
	var rec slotValue
	if err := p.slots.Lookup(slot, &rec); err != nil {
		return fmt.Errorf("xdp: backend slot %d: record: %w", slot, err)
	}
	if rec.Flags&slotHeld != 0 {
		rec.Flags &^= slotHeld
		if err := p.slots.Update(slot, &rec, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("xdp: backend slot %d: record: %w", slot, err)
		}
	}
	return nil
}

// Counters returns the counters summed over CPUs.
func (p *Program) Counters() (Counters, error) {
	var c Counters
	var g []xdpGlobalCounters
	if err := p.objs.Counters.Lookup(uint32(0), &g); err != nil {
		return c, fmt.Errorf("xdp: read counters: %w", err)
	}
	addGlobal(&c, g)
	c.Backends = make([]BackendCounters, p.cfg.maxSlots)
	var slot uint32
	var bv []xdpBackendCounters
	it := p.objs.BeCounters.Iterate()
	for it.Next(&slot, &bv) {
		addBackend(&c.Backends[slot], bv)
	}
	if err := it.Err(); err != nil {
		return c, fmt.Errorf("xdp: read backend counters: %w", err)
	}
	c.Services = make([]ServiceCounters, p.cfg.maxServices)
	var idx uint32
	var sv []xdpServiceCounters
	it = p.objs.SvcCounters.Iterate()
	for it.Next(&idx, &sv) {
		addService(&c.Services[idx], sv)
	}
	if err := it.Err(); err != nil {
		return c, fmt.Errorf("xdp: read service counters: %w", err)
	}
	return c, nil
}

// CountersOf is Counters reading only the given backend slots and service
// indices (the others stay zero): a control plane that knows which slots it
// uses reads those few instead of every slot of the maps.
func (p *Program) CountersOf(slots, services []uint32) (Counters, error) {
	var c Counters
	var g []xdpGlobalCounters
	if err := p.objs.Counters.Lookup(uint32(0), &g); err != nil {
		return c, fmt.Errorf("xdp: read counters: %w", err)
	}
	addGlobal(&c, g)
	c.Backends = make([]BackendCounters, p.cfg.maxSlots)
	var bv []xdpBackendCounters
	for _, slot := range slots {
		if int(slot) >= len(c.Backends) {
			return c, fmt.Errorf("%w: backend slot %d", ErrInvalid, slot)
		}
		if err := p.objs.BeCounters.Lookup(slot, &bv); err != nil {
			return c, fmt.Errorf("xdp: read backend counters: %w", err)
		}
		addBackend(&c.Backends[slot], bv)
	}
	c.Services = make([]ServiceCounters, p.cfg.maxServices)
	var sv []xdpServiceCounters
	for _, idx := range services {
		if int(idx) >= len(c.Services) {
			return c, fmt.Errorf("%w: service index %d", ErrInvalid, idx)
		}
		if err := p.objs.SvcCounters.Lookup(idx, &sv); err != nil {
			return c, fmt.Errorf("xdp: read service counters: %w", err)
		}
		addService(&c.Services[idx], sv)
	}
	return c, nil
}

func addGlobal(c *Counters, g []xdpGlobalCounters) {
	for _, v := range g {
		c.Received += v.Received
		c.Forwarded += v.Tx
		c.Stateless += v.Stateless
		c.ChecksumsCompleted += v.CsumCompleted
		for i := range c.Passed {
			c.Passed[i] += v.Pass[i]
		}
		for i := range c.Dropped {
			c.Dropped[i] += v.Drop[i]
		}
	}
}

func addBackend(b *BackendCounters, per []xdpBackendCounters) {
	for _, v := range per {
		b.Packets += v.Packets
		b.Bytes += v.Bytes
		b.Flows += v.Flows
		b.SYNRetransmits += v.SynRetransmits
	}
}

func addService(s *ServiceCounters, per []xdpServiceCounters) {
	for _, v := range per {
		s.Flows += v.Flows
		s.Rescheduled += v.Rescheduled
	}
}

// Run runs the program once on frame through BPF_PROG_TEST_RUN (nothing is
// sent) and returns its verdict and the frame as it left the program. The
// maps are the live ones: flows are created and counters counted. The
// kernel runs XDP programs only on frames of at least an Ethernet header
// (14 bytes): a shorter frame is an error wrapping ErrInvalid.
func (p *Program) Run(frame []byte) (Verdict, []byte, error) {
	if len(frame) < 14 {
		return 0, nil, fmt.Errorf("%w: a frame of %d bytes is shorter than an Ethernet header", ErrInvalid, len(frame))
	}
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	ret, err := p.objs.XdpDsr.Run(&opts)
	if err != nil {
		return 0, nil, fmt.Errorf("xdp: run: %w", err)
	}
	return Verdict(ret), opts.DataOut, nil
}

// runTimed runs the program once on frame and returns the kernel's
// measure of the run's duration (which includes the cost of reading the
// clock).
func (p *Program) runTimed(prog *ebpf.Program, frame []byte) (Verdict, time.Duration, error) {
	ret, d, err := prog.Benchmark(frame, 1, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("xdp: run: %w", err)
	}
	return Verdict(ret), d, nil
}

func flowKeyOf(k *flowtable.Key) xdpFlowKey {
	return xdpFlowKey{Src: k.Src, Dst: k.Dst, Sport: k.SrcPort, Dport: k.DstPort, Proto: k.Proto}
}

func flowOf(e *xdpFlowEntry, offset uint32) Flow {
	return Flow{Backend: e.Backend, State: flowtable.State(e.State), LastSeen: flowtable.Tick(e.LastSeen - offset)}
}

// LookupFlow returns the entry of flow k, expired or not (the program
// treats an entry idle beyond its timeout as absent). Reading it does not
// refresh it.
func (p *Program) LookupFlow(k flowtable.Key) (Flow, bool, error) {
	var e xdpFlowEntry
	err := p.objs.Flows.Lookup(flowKeyOf(&k), &e)
	switch {
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return Flow{}, false, nil
	case err != nil:
		return Flow{}, false, fmt.Errorf("xdp: look up flow: %w", err)
	}
	return flowOf(&e, p.offset()), true, nil
}

// DeleteFlow removes flow k and reports whether it was there.
func (p *Program) DeleteFlow(k flowtable.Key) (bool, error) {
	err := p.objs.Flows.Delete(flowKeyOf(&k))
	switch {
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("xdp: delete flow: %w", err)
	}
	return true, nil
}

// Flows calls fn for each entry of the flow table until fn returns false.
// The program keeps running meanwhile: an entry added or removed during the
// walk may or may not be seen.
func (p *Program) Flows(fn func(k flowtable.Key, f Flow) bool) error {
	var xk xdpFlowKey
	var e xdpFlowEntry
	off := p.offset()
	it := p.objs.Flows.Iterate()
	for it.Next(&xk, &e) {
		k := flowtable.Key{Src: xk.Src, Dst: xk.Dst, SrcPort: xk.Sport, DstPort: xk.Dport, Proto: xk.Proto}
		if !fn(k, flowOf(&e, off)) {
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("xdp: walk flows: %w", err)
	}
	return nil
}

// FlowsPerBackend counts the entries whose flow has not expired at now, by
// backend ID, with the timeouts of the last SetParams.
func (p *Program) FlowsPerBackend(now flowtable.Tick) (map[uint32]int, error) {
	p.mu.Lock()
	timeouts := p.settings.Timeouts
	p.mu.Unlock()
	counts := map[uint32]int{}
	err := p.Flows(func(k flowtable.Key, f Flow) bool {
		if !expired(&timeouts, k.Proto, f, now) {
			counts[f.Backend]++
		}
		return true
	})
	return counts, err
}

// expired is the program's (and flowtable's) expiry rule.
func expired(timeouts *[3][4]int32, proto uint8, f Flow, now flowtable.Tick) bool {
	class := 2
	switch proto {
	case 6:
		class = 0
	case 17:
		class = 1
	}
	idle := int32(uint32(now) - uint32(f.LastSeen))
	return idle > timeouts[class][f.State&3]
}

// Expired reports whether flow f, of protocol proto, has expired at now by
// the timeouts of the last SetParams: the program's rule, for a control
// plane reading entries with LookupFlow.
func (p *Program) Expired(proto uint8, f Flow, now flowtable.Tick) bool {
	p.mu.Lock()
	timeouts := p.settings.Timeouts
	p.mu.Unlock()
	return expired(&timeouts, proto, f, now)
}
