package dsr

import (
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	"github.com/dsrlb/dsrlb/scheduler"
)

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

	// L3 modes (encap.go, pmtu.go, segment.go).
	mtu     int         // IP MTU of the interface; 0 means defaultMTU
	ipID    uint16      // outer IPv4 Identification
	ptb     tokenBucket // too-big answers
	extra   int         // frames of the batch's output that are not forwarded input frames
	segBufs [][]byte    // segment buffers, kept across batches
	segUsed int         // segBufs used by this batch
	segOut  []Frame     // the segments of the frame being processed
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
	w.extra, w.segUsed = 0, 0
	for i := range in {
		if w.process(&in[i], &w.parsed[i], s, now) {
			out = append(out, in[i])
		}
		if len(w.segOut) > 0 {
			out = append(out, w.segOut...)
			w.segOut = w.segOut[:0]
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
	if be.encap != nil {
		return w.encapsulate(f, ps, be)
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
	if id, prev, ok := w.b.flows.LookupState(k, h, now, flags); ok {
		if flags&(frame.FlagSYN|frame.FlagACK) == frame.FlagSYN {
			switch prev {
			case flowtable.Closing:
				// A new connection reusing the ports of a closed one: it
				// gets the current plan's pick, like any new connection
				// (as IPVS does with conn_reuse_mode). Clients that open
				// many short connections reuse ports all the time; kept
				// on the old backend, they would starve a backend added
				// under load and keep a draining one busy for ever.
				return w.reopen(p, s, k, h, id)
			case flowtable.Embryonic:
				// A bare SYN on a flow still waiting for its handshake is
				// a client retrying because it got no answer. The
				// control loop watches the rate.
				if be := s.backend(id); be != nil && be.usable {
					be.stats.synRetrans.Add(1)
				}
			}
		}
		if be := s.backend(id); be != nil && be.usable && be.svc.key.VLAN == frameVLAN(p) {
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
		if other := s.backend(got); other != nil && other.usable && other.svc.key.VLAN == frameVLAN(p) {
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
	svc := s.service(p.Dst, p.Proto, p.DstPort, frameVLAN(p))
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

// reopen starts a new connection on the ports of a closed flow whose entry
// (old backend oldID) is still in the table: the flow ends on its old
// backend and starts on the current plan's pick, which may be the same.
func (w *worker) reopen(p *frame.Packet, s *snapshot, k *flowtable.Key, h uint64, oldID uint32) *beEntry {
	svc, idx, be := w.schedule(p, s, k)
	if be == nil {
		return nil
	}
	if !w.b.flows.Reassign(k, h, be.id) {
		return be // expired meanwhile: the next packet creates a fresh flow
	}
	w.b.flowEnded(s, oldID)
	be.stats.flows.Add(1)
	be.stats.active.Add(1)
	svc.stats.flows.Add(1)
	if svc.obs != nil {
		svc.obs.FlowStarted(idx)
	}
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
	if be == nil || !be.usable || be.svc.key.VLAN != frameVLAN(p) {
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
	svc, ok := s.frag[fragLookup{vip: p.Dst.As16(), proto: p.Proto, vlan: frameVLAN(p)}]
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
