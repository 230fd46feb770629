package dsr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	"github.com/dsrlb/dsrlb/scheduler"
)

// Balancer is an L2 DSR load balancer: it reads frames addressed to its VIPs
// from one or more Forwarders, picks a backend per flow, rewrites only the
// Ethernet addresses and sends the frame back out. The IP packet is never
// touched, so the backend answers the client directly.
//
// Configuration methods (AddService, SetBackends, …) may be called at any
// time from any goroutine; each change is validated whole and applied
// atomically. Serve runs one forwarding worker; Run runs the control loops.
type Balancer struct {
	cfg   Config
	log   *slog.Logger
	flows *flowtable.Table
	epoch time.Time

	snap atomic.Pointer[snapshot]

	workers     []workerCounters
	nextWorker  atomic.Uint32
	liveWorkers atomic.Int32

	mu       sync.Mutex // serialises configuration changes
	services map[ServiceKey]*svcState
	order    []ServiceKey
	slotGen  []uint16
	free     []uint32

	turnsUsed int   // turn indices handed out (see allocTurn)
	freeTurns []int // turn indices of removed services, for reuse

	fwdMu        sync.Mutex
	forwarders   map[Forwarder]struct{}
	filteredVIPs []netip.Addr // the VIP set the forwarders' filters hold

	// Runtime state, guarded by mu.
	resolved     map[netip.Addr]net.HardwareAddr // MACs learned by address resolution
	monitor      *health.Monitor
	orphanChecks []health.Key // registrations of removed backends, to remove
	pending      []Event      // events to deliver once mu is released
	ramping      bool         // a backend is in slow start: rebuild periodically
	synThreshold int
}

// New returns a Balancer with no services. cfg may be nil.
func New(cfg *Config) (*Balancer, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	var b *Balancer // for OnEvict, which the table calls only once b is set
	ft, err := flowtable.New(&flowtable.Config{
		// Flows Insert gives up to make room, or replaces because they
		// expired before the sweep removed them (a client reusing its
		// ports soon after a close does that all the time), end like
		// swept ones: without this their backends would count them as
		// active for ever, and a draining backend would never drain.
		OnEvict:             func(_ flowtable.Key, id uint32) { b.flowEnded(b.snap.Load(), id) },
		MaxFlows:            c.MaxFlows,
		TCPTimeout:          c.TCPTimeout,
		TCPEmbryonicTimeout: c.EmbryonicTimeout,
		TCPClosingTimeout:   c.TCPClosingTimeout,
		UDPTimeout:          c.UDPTimeout,
		UDPEmbryonicTimeout: c.EmbryonicTimeout,
		OtherTimeout:        c.UDPTimeout,
	})
	if err != nil {
		return nil, &ConfigError{Field: "flow table", Err: err}
	}
	b = &Balancer{
		cfg:          c,
		log:          c.Logger,
		flows:        ft,
		epoch:        c.Clock(),
		workers:      make([]workerCounters, c.Workers),
		services:     map[ServiceKey]*svcState{},
		forwarders:   map[Forwarder]struct{}{},
		resolved:     map[netip.Addr]net.HardwareAddr{},
		synThreshold: c.SYNRetransmitThreshold,
	}
	var hc health.MonitorConfig
	if c.Health != nil {
		hc = *c.Health
	}
	if hc.Logger == nil {
		hc.Logger = c.Logger
	}
	hc.OnEvent = b.onHealthEvent
	b.monitor = health.NewMonitor(&hc)
	if c.ARP != nil {
		b.attachARP(c.ARP)
	}
	b.snap.Store(&snapshot{
		services: map[svcLookup]*svcEntry{},
		frag:     map[fragLookup]*svcEntry{},
		vips:     map[[16]byte]struct{}{},
	})
	return b, nil
}

func (b *Balancer) now() flowtable.Tick {
	return flowtable.TickOf(b.cfg.Clock().Sub(b.epoch))
}

// vipSetter is implemented by forwarders that filter traffic in the kernel
// (PacketForwarder): the Balancer keeps their filter in step with its VIPs.
type vipSetter interface {
	SetVIPs([]netip.Addr) error
}

// Serve forwards frames from fwd until ctx is cancelled (then it returns
// nil) or fwd fails to read (then it returns the error). Call Serve from
// several goroutines, each with its own Forwarder, to use several cores.
// Serve never closes fwd.
func (b *Balancer) Serve(ctx context.Context, fwd Forwarder) error {
	mac := fwd.HardwareAddr()
	if len(mac) != 6 {
		return fmt.Errorf("dsr: forwarder hardware address %q is not Ethernet", mac)
	}
	if err := b.registerForwarder(fwd); err != nil {
		return err
	}
	defer b.unregisterForwarder(fwd)

	w := &worker{b: b, mac: [6]byte(mac)}
	w.slot = int(b.nextWorker.Add(1)-1) % len(b.workers)
	w.c = &b.workers[w.slot]
	b.liveWorkers.Add(1)
	defer b.liveWorkers.Add(-1)

	frames := make([]Frame, b.cfg.BatchSize)
	for i := range frames {
		frames[i].Buf = make([]byte, MaxFrameSize)
	}
	w.parsed = make([]parsed, len(frames))
	out := make([]Frame, 0, len(frames))

	stop := context.AfterFunc(ctx, func() { _ = fwd.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if ctx.Err() != nil {
		return nil
	}
	for {
		n, err := fwd.ReadBatch(frames)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return fmt.Errorf("dsr: read: %w", err)
		}
		out = w.processBatch(frames[:n], out[:0])
		if len(out) == 0 {
			continue
		}
		sent, err := fwd.WriteBatch(out)
		w.c.forwarded.Add(uint64(sent))
		if sent < len(out) {
			lost := uint64(len(out) - sent)
			w.c.drops[DropTransmit].Add(lost)
			if err != nil {
				b.log.Debug("transmit failed", "err", err, "frames", lost)
			}
		}
	}
}

// processBatch runs the forwarding decision on each frame and appends the
// frames to transmit to out.
func (w *worker) processBatch(in []Frame, out []Frame) []Frame {
	s := w.b.snap.Load()
	now := w.b.now()
	w.c.received.Add(uint64(len(in)))
	if len(w.parsed) < len(in) {
		// Once per worker, sized for its batches (Serve allocates it).
		w.parsed = make([]parsed, len(in))
	}
	// Two passes. The first parses every frame and, for flow packets,
	// hashes the flow key and starts loading its flow-table memory; the
	// second decides. With a large table every lookup misses the cache,
	// and this way the misses of a whole batch overlap rather than follow
	// one another.
	for i := range in {
		w.parse(&in[i], &w.parsed[i])
	}
	// A tight loop of its own: the processor keeps its many loads in
	// flight at once only while they fit its reorder window, which the
	// parser's instructions would fill.
	for i := range in {
		if ps := &w.parsed[i]; ps.flow {
			w.b.flows.Prefetch(ps.hash)
		}
	}
	for i := range in {
		if w.process(&in[i], &w.parsed[i], s, now) {
			out = append(out, in[i])
		}
	}
	w.flushCounts()
	return out
}

// parsed is what the first pass over a batch learns of one frame.
type parsed struct {
	pkt  frame.Packet
	err  error         // from frame.Parse
	flow bool          // a TCP or UDP packet for us: key and hash are set
	key  flowtable.Key // the flow's key,
	hash uint64        // and its flow-table hash
}

// parse is the first pass for one frame: it parses it and, for a TCP or
// UDP packet addressed to us that is neither an ICMP error nor a
// fragment, computes its flow key and hash.
func (w *worker) parse(f *Frame, ps *parsed) {
	p := &ps.pkt
	ps.err = frame.Parse(f.Buf[:f.N], p)
	// Proto is TCP or UDP only for IP packets, and never for ICMP errors.
	ps.flow = ps.err == nil && p.EthDst == w.mac && p.Fragment == frame.NotFragment &&
		(p.Proto == frame.ProtoTCP || p.Proto == frame.ProtoUDP)
	if ps.flow {
		ps.key = flowtable.MakeKey(p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto)
		ps.hash = w.b.flows.Hash(&ps.key)
	}
}

// pendingCount accumulates one backend's traffic within a batch, so that a
// batch costs a few atomic additions per backend rather than four per frame.
type pendingCount struct {
	be             *beEntry
	packets, bytes uint64
}

// count adds one forwarded frame of n bytes to be's batch totals.
func (w *worker) count(be *beEntry, n int) {
	for i := range w.npend {
		if p := &w.pend[i]; p.be == be {
			p.packets++
			p.bytes += uint64(n)
			return
		}
	}
	if w.npend == len(w.pend) {
		w.flushCounts()
	}
	w.pend[w.npend] = pendingCount{be: be, packets: 1, bytes: uint64(n)}
	w.npend++
}

// flushCounts publishes the batch totals to the shared counters.
func (w *worker) flushCounts() {
	for i := range w.npend {
		p := &w.pend[i]
		p.be.stats.traffic.addN(w.slot, p.packets, p.bytes)
		p.be.svc.stats.traffic.addN(w.slot, p.packets, p.bytes)
		p.be = nil
	}
	w.npend = 0
}

// worker is one forwarding goroutine's private state.
type worker struct {
	b     *Balancer
	mac   [6]byte
	slot  int
	c     *workerCounters
	pend  [8]pendingCount
	npend int
	// parsed holds the first pass's results for the frames of a batch.
	parsed []parsed
	// turns numbers this worker's new flows per service (indexed by
	// svcEntry.turn) for rotating schedulers. Only this worker writes it,
	// so a rotation costs no write shared between workers.
	turns []uint64
}

func (w *worker) drop(r DropReason) bool {
	w.c.drops[r].Add(1)
	return false
}

// process decides the fate of one frame: rewrite it in place and return true
// to forward it, or count why not and return false.
func (w *worker) process(f *Frame, ps *parsed, s *snapshot, now flowtable.Tick) bool {
	data := f.Buf[:f.N]
	p := &ps.pkt
	if err := ps.err; err != nil {
		// A type assertion, not errors.As: As makes its target escape.
		if fe, ok := err.(frame.Error); ok && int(fe) < len(w.c.malformed) {
			w.c.malformed[fe].Add(1)
		}
		return w.drop(DropMalformed)
	}
	if p.EthSrc == w.mac {
		return w.drop(DropOwnSource)
	}
	if p.EtherType == frame.EtherTypeARP {
		return w.drop(DropARP)
	}
	if p.Version == 0 {
		return w.drop(DropNotIP)
	}
	if p.EthDst != w.mac {
		return w.drop(DropForeignMAC)
	}
	var be *beEntry
	switch {
	case p.ICMPError:
		be = w.icmpError(p, s, now)
	case p.Fragment != frame.NotFragment:
		be = w.fragment(p, s)
	default:
		be = w.flow(ps, s, now)
	}
	if be == nil {
		return false
	}
	frame.SetMACs(data, be.mac, w.mac)
	w.count(be, f.N)
	return true
}

// missReason counts why a destination had no service.
func (w *worker) missReason(s *snapshot, dst netip.Addr) *beEntry {
	if s.isVIP(dst) {
		w.drop(DropNoService)
	} else {
		w.drop(DropNotVIP)
	}
	return nil
}

func (w *worker) flow(ps *parsed, s *snapshot, now flowtable.Tick) *beEntry {
	p := &ps.pkt
	if !ps.flow {
		// Neither TCP nor UDP.
		return w.missReason(s, p.Dst)
	}
	var flags uint8
	if p.Proto == frame.ProtoTCP {
		flags = p.TCPFlags
	}
	// The first pass computed the key and its hash. The table hashes with
	// its own seed (it rehashes keys when it moves them); schedulers get a
	// hash with the configured seed, so balancers sharing a seed pick
	// alike.
	k, h := &ps.key, ps.hash
	// A bare SYN on a flow still waiting for its handshake is a client
	// retrying because it got no answer; on a flow that closed it is a new
	// connection reusing the port. Only the first counts: the control loop
	// watches its rate. Asked before Lookup, which moves the state on.
	retransmit, reopened := false, false
	if flags&(frame.FlagSYN|frame.FlagACK) == frame.FlagSYN {
		st, held := w.b.flows.State(k, h)
		retransmit = held && st == flowtable.Embryonic
		reopened = held && st == flowtable.Closing
	}
	if id, ok := w.b.flows.Lookup(k, h, now, flags); ok {
		if be := s.backend(id); be != nil && be.usable {
			if reopened && be.state != BackendActive {
				// A new connection reusing the ports of a closed one:
				// a draining backend takes no new connections, so it is
				// scheduled like any new flow (clients that open many
				// short connections reuse ports all the time, and would
				// otherwise keep a draining backend busy for ever).
				return w.reschedule(p, s, k, h, id)
			}
			if retransmit {
				be.stats.synRetrans.Add(1)
			}
			return be
		}
		return w.reschedule(p, s, k, h, id)
	}
	svc, idx, be := w.schedule(p, s, k)
	if be == nil {
		return nil
	}
	if p.Proto == frame.ProtoTCP && flags&frame.FlagRST != 0 {
		// A lone RST for an unknown flow creates no state.
		return be
	}
	got, inserted, err := w.b.flows.Insert(k, h, now, be.id)
	switch {
	case err != nil:
		// Table full of established flows: forward without state.
		w.c.stateless.Add(1)
	case inserted:
		be.stats.flows.Add(1)
		be.stats.active.Add(1)
		svc.stats.flows.Add(1)
		if svc.obs != nil {
			svc.obs.FlowStarted(idx)
		}
	default:
		// Another worker inserted the same flow first: follow it.
		if other := s.backend(got); other != nil && other.usable {
			return other
		}
		return w.reschedule(p, s, k, h, got)
	}
	return be
}

// schedule finds the service of a flow and picks a backend for it, or
// counts why it cannot (not a VIP, no service, no backend) and returns a nil
// backend.
func (w *worker) schedule(p *frame.Packet, s *snapshot, k *flowtable.Key) (*svcEntry, int, *beEntry) {
	svc := s.service(p.Dst, p.Proto, p.DstPort)
	if svc == nil {
		w.missReason(s, p.Dst)
		return nil, 0, nil
	}
	h, src := k.Hashes(w.b.cfg.Seed)
	// SrcHash is never zero: zero means "not computed" to a scheduler.
	fl := scheduler.Flow{Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort, Proto: p.Proto,
		Hash: h, SrcHash: src | 1, Turn: w.nextTurn(s, svc)}
	idx, be := w.pick(s, svc, svc.sched, &fl)
	return svc, idx, be
}

// nextTurn advances and returns the worker's turn counter for svc. Each
// worker starts its counters at a different point, so that W workers do not
// all begin their rotation at the same backend.
func (w *worker) nextTurn(s *snapshot, svc *svcEntry) uint64 {
	if svc.turn >= len(w.turns) {
		w.growTurns(s.turns)
	}
	t := w.turns[svc.turn] + 1
	if t == 0 {
		t = 1 // zero means "no turn" to a scheduler
	}
	w.turns[svc.turn] = t
	return t
}

// growTurns makes room for n services' turn counters. It allocates, but
// only when a configuration change added services beyond any this worker
// has seen.
func (w *worker) growTurns(n int) {
	grown := make([]uint64, n)
	copy(grown, w.turns)
	for i := len(w.turns); i < n; i++ {
		grown[i] = (uint64(w.slot)*workerTurnStride + uint64(i)) * 0x9e3779b97f4a7c15
	}
	w.turns = grown
}

// workerTurnStride separates the workers' starting turns.
const workerTurnStride = 1 << 20

// pick asks the service's scheduler for a backend and returns its index and
// entry, or counts DropNoBackend and returns nil.
func (w *worker) pick(s *snapshot, svc *svcEntry, sched scheduler.Scheduler, fl *scheduler.Flow) (int, *beEntry) {
	idx, ok := sched.Pick(fl)
	if !ok || idx < 0 || idx >= len(svc.ids) {
		w.drop(DropNoBackend)
		return 0, nil
	}
	be := s.backend(svc.ids[idx])
	if be == nil || !be.usable {
		w.drop(DropNoBackend)
		return 0, nil
	}
	return idx, be
}

// reschedule moves a flow whose backend is down or gone to a new backend.
func (w *worker) reschedule(p *frame.Packet, s *snapshot, k *flowtable.Key, h uint64, oldID uint32) *beEntry {
	svc, idx, be := w.schedule(p, s, k)
	if be == nil {
		return nil
	}
	if !w.b.flows.Reassign(k, h, be.id) {
		// The flow expired meanwhile; forward this packet, the next one
		// creates a fresh flow.
		return be
	}
	if old := s.backend(oldID); old != nil {
		old.stats.active.Add(-1)
		if old.svc.obs != nil {
			old.svc.obs.FlowEnded(old.index)
		}
	}
	be.stats.flows.Add(1)
	be.stats.active.Add(1)
	if svc.obs != nil {
		svc.obs.FlowStarted(idx)
	}
	svc.stats.rescheduled.Add(1)
	return be
}

// icmpError sends an ICMP error to the backend of the flow it is about. The
// embedded packet is one the backend sent (source VIP) to the client, so the
// flow key is the embedded tuple reversed.
func (w *worker) icmpError(p *frame.Packet, s *snapshot, now flowtable.Tick) *beEntry {
	in := &p.Inner
	if !s.isVIP(in.Src) {
		w.drop(DropNotVIP)
		return nil
	}
	if !in.HasPorts || (in.Proto != frame.ProtoTCP && in.Proto != frame.ProtoUDP) {
		w.drop(DropICMPNoFlow)
		return nil
	}
	k := flowtable.MakeKey(in.Dst, in.Src, in.DstPort, in.SrcPort, in.Proto)
	id, ok := w.b.flows.Lookup(&k, w.b.flows.Hash(&k), now, 0)
	if !ok {
		w.drop(DropICMPNoFlow)
		return nil
	}
	be := s.backend(id)
	if be == nil || !be.usable {
		w.drop(DropICMPNoFlow)
		return nil
	}
	return be
}

// fragment applies the fragment policy: hash on addresses and protocol so
// every fragment of a datagram reaches the same backend, without state.
func (w *worker) fragment(p *frame.Packet, s *snapshot) *beEntry {
	if w.b.cfg.Fragments != FragmentsHash {
		w.drop(DropFragment)
		return nil
	}
	svc, ok := s.frag[fragLookup{vip: p.Dst.As16(), proto: p.Proto}]
	if !ok {
		return w.missReason(s, p.Dst)
	}
	if svc == nil {
		w.drop(DropFragment)
		return nil
	}
	k := flowtable.MakeKey(p.Src, p.Dst, 0, 0, p.Proto)
	h, src := k.Hashes(w.b.cfg.Seed)
	fl := scheduler.Flow{Src: p.Src, Dst: p.Dst, Proto: p.Proto, Hash: h, SrcHash: src | 1}
	_, be := w.pick(s, svc, svc.frag, &fl)
	return be
}

func (b *Balancer) registerForwarder(fwd Forwarder) error {
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	if _, dup := b.forwarders[fwd]; dup {
		return errors.New("dsr: forwarder is already being served")
	}
	b.forwarders[fwd] = struct{}{}
	if vs, ok := fwd.(vipSetter); ok {
		if err := vs.SetVIPs(b.snap.Load().vipList); err != nil {
			delete(b.forwarders, fwd)
			return fmt.Errorf("dsr: install VIP filter: %w", err)
		}
	}
	return nil
}

func (b *Balancer) unregisterForwarder(fwd Forwarder) {
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	delete(b.forwarders, fwd)
}

// syncVIPs pushes the VIP set to forwarders that filter in the kernel. It
// runs after a new snapshot is live, so a VIP is never filtered out while
// it is served; a change that leaves the VIP set as it was (weights,
// backends, health) rebuilds no filter. Called with b.mu held.
func (b *Balancer) syncVIPs(vips []netip.Addr) {
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	if slices.Equal(vips, b.filteredVIPs) {
		return
	}
	b.filteredVIPs = vips
	for fwd := range b.forwarders {
		if vs, ok := fwd.(vipSetter); ok {
			if err := vs.SetVIPs(vips); err != nil {
				b.log.Error("updating forwarder VIP filter failed; it keeps its previous filter", "err", err)
			}
		}
	}
}

// Run runs the control loops — flow expiry, health checks, drain and slow
// start tracking, and the ARP speaker if configured — until ctx is cancelled, and returns only when all of them
// have stopped. Call it once.
func (b *Balancer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.expireLoop(ctx) })
	wg.Go(func() { b.controlLoop(ctx) })
	var monErr, arpErr error
	wg.Go(func() { monErr = b.monitor.Run(ctx) })
	if b.cfg.ARP != nil {
		wg.Go(func() { arpErr = b.cfg.ARP.Run(ctx) })
	}
	wg.Wait()
	if monErr != nil && !errors.Is(monErr, context.Canceled) {
		return fmt.Errorf("dsr: health monitor: %w", monErr)
	}
	if arpErr != nil && !errors.Is(arpErr, context.Canceled) {
		return fmt.Errorf("dsr: arp: %w", arpErr)
	}
	return nil
}

// SweepInterval is how often Run expires idle flows; each sweep visits a
// tenth of the table, so every flow is looked at about once a second.
const SweepInterval = 100 * time.Millisecond

func (b *Balancer) expireLoop(ctx context.Context) {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.ExpireFlows(b.flows.Cap()/10 + 1)
		}
	}
}

// ExpireFlows removes idle flows, visiting at most maxSlots flow-table slots,
// and returns how many it removed. Run calls it periodically; it is exported
// for applications that drive their own loops and for tests with a fake
// clock.
func (b *Balancer) ExpireFlows(maxSlots int) int {
	// One pass over the table is the most that can find anything.
	if limit := 2 * b.flows.Cap(); maxSlots > limit {
		maxSlots = limit
	}
	s := b.snap.Load()
	return b.flows.Sweep(b.now(), maxSlots, func(_ *flowtable.Key, id uint32) { b.flowEnded(s, id) })
}

// flowEnded accounts for a flow that left the flow table (expired, or
// evicted to make room) while on backend id.
func (b *Balancer) flowEnded(s *snapshot, id uint32) {
	if be := s.backend(id); be != nil {
		be.stats.active.Add(-1)
		if be.svc.obs != nil {
			be.svc.obs.FlowEnded(be.index)
		}
	}
}

func (b *Balancer) effectiveMAC(be Backend) net.HardwareAddr {
	if be.MAC != nil {
		return append(net.HardwareAddr(nil), be.MAC...)
	}
	if m := b.resolved[be.Addr]; m != nil {
		return append(net.HardwareAddr(nil), m...)
	}
	return nil
}

// Stats returns a copy of all counters. It never pauses forwarding.
func (b *Balancer) Stats() Stats {
	st := Stats{
		Drops:        make(map[DropReason]uint64, numDropReasons),
		Malformed:    map[string]uint64{},
		Flows:        b.flows.Len(),
		FlowCapacity: b.flows.Cap(),
	}
	for i := range b.workers {
		c := &b.workers[i]
		st.Received += c.received.Load()
		st.Forwarded += c.forwarded.Load()
		st.Stateless += c.stateless.Load()
		for r := range c.drops {
			st.Drops[DropReason(r)] += c.drops[r].Load()
		}
		for e := range c.malformed {
			if v := c.malformed[e].Load(); v > 0 {
				st.Malformed[frame.Error(e).String()] += v
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, key := range b.order {
		ss := b.services[key]
		svc := ServiceStats{Key: key, Flows: ss.stats.flows.Load(), Rescheduled: ss.stats.rescheduled.Load()}
		svc.Packets, svc.Bytes = ss.stats.traffic.sum()
		for _, be := range ss.svc.Backends {
			bs := ss.backends[be.Addr]
			out := BackendStats{Addr: be.Addr, State: be.State, Flows: bs.stats.flows.Load(), ActiveFlows: bs.stats.active.Load(),
				Healthy: bs.healthy(), SYNRetransmits: bs.stats.synRetrans.Load(), MAC: b.effectiveMAC(be)}
			for _, err := range bs.failing {
				if err != errHealthUnknown && out.HealthError == "" {
					out.HealthError = err.Error()
				}
			}
			out.Packets, out.Bytes = bs.stats.traffic.sum()
			svc.Backends = append(svc.Backends, out)
		}
		st.Services = append(st.Services, svc)
	}
	return st
}
