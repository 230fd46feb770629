package dsr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	"github.com/dsrlb/dsrlb/scheduler"
)

// Tuple identifies a flow as a client sends it: to a VIP and port.
type Tuple struct {
	Src, Dst netip.AddrPort
	// Protocol is TCP or UDP.
	Protocol Protocol
	// VLAN is the VLAN ID the flow arrives on; zero means untagged.
	VLAN uint16
}

func (t Tuple) String() string {
	return fmt.Sprintf("%s → %s/%s%s", t.Src, t.Dst, t.Protocol, vlanSuffix(t.VLAN))
}

// Why is the reason of a forwarding decision.
type Why uint8

const (
	// WhyDropped: the frame is not forwarded; Explanation.Drop says why.
	WhyDropped Why = iota + 1
	// WhyFlowHit: the flow is in the flow table and stays on its backend.
	WhyFlowHit
	// WhyNewFlow: no flow yet; the service's scheduler picks the backend.
	WhyNewFlow
	// WhyRescheduled: the flow's backend can no longer take it (removed,
	// down, unhealthy, MAC unknown); the scheduler picks a new one.
	WhyRescheduled
	// WhyReopened: a bare SYN on the ports of a closed flow opens a new
	// connection; the scheduler picks its backend.
	WhyReopened
	// WhyICMPError: an ICMP error goes to the backend of the flow it
	// quotes.
	WhyICMPError
	// WhyFragment: a fragment is placed by addresses and protocol.
	WhyFragment
)

var whyNames = [...]string{
	WhyDropped:     "dropped",
	WhyFlowHit:     "flow-table hit",
	WhyNewFlow:     "new flow",
	WhyRescheduled: "rescheduled",
	WhyReopened:    "new connection on a closed flow's ports",
	WhyICMPError:   "ICMP error of a flow",
	WhyFragment:    "fragment",
}

func (w Why) String() string {
	if int(w) < len(whyNames) && whyNames[w] != "" {
		return whyNames[w]
	}
	return fmt.Sprintf("Why(%d)", uint8(w))
}

// FlowEntry is what the flow table holds of a flow.
type FlowEntry struct {
	// Backend is the flow's backend; invalid when that backend is no longer
	// configured.
	Backend netip.Addr
	// State is "embryonic", "established" or "closing".
	State string
	// Idle is how long the flow has been idle.
	Idle time.Duration
	// Expired reports that the flow timed out: its next packet starts a new
	// flow.
	Expired bool
}

// Explanation says what the Balancer does with a packet, and why. It is
// computed from the compiled plan the workers run and from the flow table,
// without changing either.
type Explanation struct {
	Tuple Tuple
	// Forward reports that the frame is forwarded to Backend; else Drop
	// says why not.
	Forward bool
	Drop    DropReason
	Why     Why
	// Service is the matching service, when HasService.
	Service    ServiceKey
	HasService bool
	// Backend and BackendMAC are where the frame goes. For a rotating or
	// least-connection scheduler, whose pick depends on the order of new
	// flows or on load rather than on the flow, a new flow's backend cannot
	// be known in advance: Backend is then invalid and Candidates lists the
	// backends that can take it.
	Backend    netip.Addr
	BackendMAC net.HardwareAddr
	Candidates []netip.Addr
	// Mode is how the frame reaches Backend (ModeL2, ModeIPIP, ModeGUE),
	// when forwarded. In L3 modes BackendMAC is the next hop's MAC, and
	// TunnelSource, TunnelDest and NextHop are the outer source and
	// destination addresses and the address whose MAC it is; GUEPort is
	// the outer UDP destination port in ModeGUE.
	Mode                              Mode
	TunnelSource, TunnelDest, NextHop netip.Addr
	GUEPort                           uint16
	// Flow is the flow-table entry, when there is one.
	Flow *FlowEntry
	// Scheduler names the service's scheduler, and Placement says how a
	// hashing scheduler placed the flow (its table slot).
	Scheduler string
	Placement *scheduler.Placement
	// PlanGeneration counts the compiled plans; SchedulerGeneration is the
	// plan that built the service's scheduler (its table).
	PlanGeneration, SchedulerGeneration uint64
	// Steps tell the decision in words, one line per step.
	Steps []string
}

// String returns the steps, one per line.
func (e *Explanation) String() string { return strings.Join(e.Steps, "\n") }

func (e *Explanation) step(format string, args ...any) {
	e.Steps = append(e.Steps, fmt.Sprintf(format, args...))
}

func (e *Explanation) drop(r DropReason, format string, args ...any) {
	e.Forward, e.Drop, e.Why = false, r, WhyDropped
	e.step("dropped (%s): "+format, append([]any{r}, args...)...)
}

// ErrNotAFlow is returned by ExplainFlow for a tuple that is not a TCP or
// UDP flow between two addresses of one family.
var ErrNotAFlow = errors.New("dsr: not a TCP or UDP flow")

// ExplainFlow says which service a flow from t.Src to t.Dst matches, which
// backend the flow has or would get, and why, for its next packet that is
// not a SYN. It does not touch the flow table or any counter, and needs no
// privileges.
func (b *Balancer) ExplainFlow(t Tuple) (Explanation, error) {
	src, dst := t.Src.Addr().Unmap(), t.Dst.Addr().Unmap()
	var proto uint8
	switch t.Protocol {
	case TCP:
		proto = frame.ProtoTCP
	case UDP:
		proto = frame.ProtoUDP
	}
	if proto == 0 || !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return Explanation{Tuple: t}, fmt.Errorf("%w: %s", ErrNotAFlow, t)
	}
	if t.VLAN > MaxVLAN {
		return Explanation{Tuple: t}, fmt.Errorf("%w: %s: VLAN %d out of range 0..%d", ErrNotAFlow, t, t.VLAN, MaxVLAN)
	}
	var p frame.Packet
	p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto = src, dst, t.Src.Port(), t.Dst.Port(), proto
	if t.VLAN != 0 {
		p.Tagged, p.VLAN = true, t.VLAN
	}
	if proto == frame.ProtoTCP {
		p.TCPFlags = frame.FlagACK
	}
	e := Explanation{Tuple: Tuple{Src: netip.AddrPortFrom(src, t.Src.Port()), Dst: netip.AddrPortFrom(dst, t.Dst.Port()), Protocol: t.Protocol, VLAN: t.VLAN}}
	b.explain(&p, &e)
	return e, nil
}

// Explain says what the Balancer does with one Ethernet frame as it would
// arrive from the segment: which service it matches, which backend it goes
// to and why, or why it is dropped. The frame's TCP flags count (a bare SYN
// on a closed flow opens a new connection). The checks of the frame's MAC
// addresses against a forwarder's own are not made: Explain has no
// forwarder. It does not touch the flow table or any counter, and needs no
// privileges.
func (b *Balancer) Explain(f []byte) Explanation {
	var p frame.Packet
	var e Explanation
	if err := frame.Parse(f, &p); err != nil {
		e.drop(DropMalformed, "%v", err)
		return e
	}
	switch {
	case p.EtherType == frame.EtherTypeARP:
		e.drop(DropARP, "ARP is answered by the ARP speaker, not forwarded")
		return e
	case p.Version == 0:
		e.drop(DropNotIP, "EtherType %#04x", p.EtherType)
		return e
	}
	e.Tuple = Tuple{Src: netip.AddrPortFrom(p.Src, p.SrcPort), Dst: netip.AddrPortFrom(p.Dst, p.DstPort), Protocol: protocolOf(p.Proto), VLAN: frameVLAN(&p)}
	b.explain(&p, &e)
	return e
}

func protocolOf(proto uint8) Protocol {
	switch proto {
	case frame.ProtoTCP:
		return TCP
	case frame.ProtoUDP:
		return UDP
	}
	return 0
}

// explain follows the worker's decision (worker.process and what it calls)
// on the live plan, reading instead of writing.
func (b *Balancer) explain(p *frame.Packet, e *Explanation) {
	s := b.snap.Load()
	e.PlanGeneration = s.gen
	now := b.now()
	switch {
	case p.ICMPError:
		b.explainICMP(p, s, now, e)
		return
	case p.Fragment != frame.NotFragment:
		b.explainFragment(p, s, e)
		return
	case p.Proto != frame.ProtoTCP && p.Proto != frame.ProtoUDP:
		explainMiss(s, p.Dst, e, fmt.Sprintf("protocol %d is neither TCP nor UDP", p.Proto))
		return
	}
	e.step("%s", e.Tuple)
	svc := s.service(p.Dst, p.Proto, p.DstPort, frameVLAN(p))
	if svc != nil {
		e.Service, e.HasService, e.Scheduler, e.SchedulerGeneration = svc.key, true, svc.schedName, svc.schedGen
		e.step("service %s, scheduler %s (built by plan %d; live plan %d)", svc.key, svc.schedName, svc.schedGen, s.gen)
	}
	k := flowtable.MakeKey(p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto)
	var flags uint8
	if p.Proto == frame.ProtoTCP {
		flags = p.TCPFlags
	}
	ent, held := b.peekFlow(&k, now)
	if held && !ent.Expired {
		e.Flow = b.flowEntry(s, ent)
		old := s.backend(ent.Backend)
		e.step("flow-table entry: backend %s, %s, idle %v", describeBackend(old), e.Flow.State, e.Flow.Idle)
		switch {
		case flags&(frame.FlagSYN|frame.FlagACK) == frame.FlagSYN && ent.State == flowtable.Closing:
			e.Why = WhyReopened
			e.step("a bare SYN after the flow closed opens a new connection: the current plan places it")
		case old != nil && old.usable && old.svc.key.VLAN != frameVLAN(p):
			e.Why = WhyRescheduled
			e.step("its backend is on VLAN %d, the packet on VLAN %d: rescheduled", old.svc.key.VLAN, frameVLAN(p))
		case old != nil && old.usable:
			e.Why = WhyFlowHit
			e.forwardTo(old)
			e.step("forwarded to %s: the flow stays on its backend", old.addr())
			return
		default:
			e.Why = WhyRescheduled
			e.step("its backend cannot take it (%s): rescheduled", unusableReason(old))
		}
	} else {
		if held {
			e.Flow = b.flowEntry(s, ent)
			e.step("the flow-table entry expired (idle %v): a new flow", e.Flow.Idle)
		} else {
			e.step("no flow-table entry: a new flow")
		}
		e.Why = WhyNewFlow
	}
	if svc == nil {
		explainMiss(s, p.Dst, e, "")
		return
	}
	h, src := k.Hashes(b.cfg.Seed)
	fl := scheduler.Flow{Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort, Proto: p.Proto, Hash: h, SrcHash: src | 1}
	explainPick(s, svc, svc.sched, &fl, e)
}

// explainPick says which backend the scheduler gives a flow, as
// worker.pick would.
func explainPick(s *snapshot, svc *svcEntry, sched scheduler.Scheduler, fl *scheduler.Flow, e *Explanation) {
	var idx int
	var ok bool
	switch ex, isEx := sched.(scheduler.Explainer); {
	case isEx:
		pl := ex.Explain(fl)
		e.Placement = &pl
		idx, ok = pl.Index, pl.OK
		if ok && pl.TableSize > 0 {
			e.step("hash %#016x selects slot %d of %d in the %s table", pl.Hash, pl.Slot, pl.TableSize, svc.schedName)
		}
	case scheduler.FollowsFlow(sched):
		idx, ok = sched.Pick(fl)
	default:
		// The pick depends on the order of new flows or on load.
		for _, id := range svc.ids {
			if be := s.backend(id); be != nil && be.usable && be.weight > 0 {
				e.Candidates = append(e.Candidates, be.addr())
			}
		}
		if len(e.Candidates) == 0 {
			e.drop(DropNoBackend, "no backend of %s can take a new flow", svc.key)
			return
		}
		e.Forward = true
		e.step("%s picks by turn or load, not by flow: one of %v", svc.schedName, e.Candidates)
		return
	}
	if !ok || idx < 0 || idx >= len(svc.ids) {
		e.drop(DropNoBackend, "no backend of %s can take a new flow", svc.key)
		return
	}
	be := s.backend(svc.ids[idx])
	if be == nil || !be.usable {
		e.drop(DropNoBackend, "the scheduler picked %s, which cannot take it (%s)", describeBackend(be), unusableReason(be))
		return
	}
	e.forwardTo(be)
	e.step("forwarded to %s (%s)", be.addr(), describeWeight(be))
}

func (b *Balancer) explainICMP(p *frame.Packet, s *snapshot, now flowtable.Tick, e *Explanation) {
	in := &p.Inner
	e.Tuple = Tuple{Src: netip.AddrPortFrom(in.Dst, in.DstPort), Dst: netip.AddrPortFrom(in.Src, in.SrcPort), Protocol: protocolOf(in.Proto), VLAN: frameVLAN(p)}
	e.step("ICMP error from %s about %s → %s", p.Src, in.Src, in.Dst)
	if !s.isVIP(in.Src) {
		e.drop(DropNotVIP, "the packet it quotes was not sent from a VIP")
		return
	}
	if !in.HasPorts || (in.Proto != frame.ProtoTCP && in.Proto != frame.ProtoUDP) {
		e.drop(DropICMPNoFlow, "the quoted packet is not TCP or UDP with ports")
		return
	}
	k := flowtable.MakeKey(in.Dst, in.Src, in.DstPort, in.SrcPort, in.Proto)
	ent, held := b.peekFlow(&k, now)
	if !held || ent.Expired {
		e.drop(DropICMPNoFlow, "no flow %s", e.Tuple)
		return
	}
	e.Flow = b.flowEntry(s, ent)
	be := s.backend(ent.Backend)
	if be == nil || !be.usable {
		e.drop(DropICMPNoFlow, "the flow's backend cannot take it (%s)", unusableReason(be))
		return
	}
	if be.svc.key.VLAN != frameVLAN(p) {
		e.drop(DropICMPNoFlow, "the flow's backend is on VLAN %d, the error on VLAN %d", be.svc.key.VLAN, frameVLAN(p))
		return
	}
	e.Why = WhyICMPError
	e.Service, e.HasService = be.svc.key, true
	e.forwardTo(be)
	e.step("forwarded to %s, the backend of flow %s", be.addr(), e.Tuple)
}

func (b *Balancer) explainFragment(p *frame.Packet, s *snapshot, e *Explanation) {
	e.Tuple = Tuple{Src: netip.AddrPortFrom(p.Src, 0), Dst: netip.AddrPortFrom(p.Dst, 0), Protocol: protocolOf(p.Proto), VLAN: frameVLAN(p)}
	e.step("IP fragment %s → %s, protocol %d", p.Src, p.Dst, p.Proto)
	if b.cfg.Fragments != FragmentsHash {
		e.drop(DropFragment, "the fragment policy is %s", b.cfg.Fragments)
		return
	}
	svc, ok := s.frag[fragLookup{vip: p.Dst.As16(), proto: p.Proto, vlan: frameVLAN(p)}]
	if !ok {
		explainMiss(s, p.Dst, e, "")
		return
	}
	if svc == nil {
		e.drop(DropFragment, "several services share the VIP and protocol: a fragment cannot be matched to one")
		return
	}
	e.Why = WhyFragment
	e.Service, e.HasService, e.Scheduler, e.SchedulerGeneration = svc.key, true, svc.schedName, svc.schedGen
	k := flowtable.MakeKey(p.Src, p.Dst, 0, 0, p.Proto)
	h, src := k.Hashes(b.cfg.Seed)
	fl := scheduler.Flow{Src: p.Src, Dst: p.Dst, Proto: p.Proto, Hash: h, SrcHash: src | 1}
	explainPick(s, svc, svc.frag, &fl, e)
}

func explainMiss(s *snapshot, dst netip.Addr, e *Explanation, detail string) {
	if detail != "" {
		detail = ": " + detail
	}
	if s.isVIP(dst) {
		e.drop(DropNoService, "%s is a VIP but no service matches%s", dst, detail)
	} else {
		e.drop(DropNotVIP, "%s is not a VIP%s", dst, detail)
	}
}

func (e *Explanation) forwardTo(be *beEntry) {
	e.Forward, e.Backend, e.BackendMAC = true, be.addr(), net.HardwareAddr(be.mac[:])
	if !e.HasService {
		e.Service, e.HasService = be.svc.key, true
	}
	e.Mode = ModeL2
	if t := be.encap; t != nil {
		e.Mode, e.TunnelSource, e.TunnelDest, e.NextHop = t.mode, t.src, t.dst, t.nextHop
		if t.mode == ModeGUE {
			e.GUEPort = t.port
			e.step("encapsulated (%s) from %s to %s, UDP port %d, via next hop %s", t.mode, t.src, t.dst, t.port, t.nextHop)
		} else {
			e.step("encapsulated (%s) from %s to %s via next hop %s", t.mode, t.src, t.dst, t.nextHop)
		}
	}
}

func (b *Balancer) flowEntry(s *snapshot, ent flowtable.Entry) *FlowEntry {
	fe := &FlowEntry{State: ent.State.String(), Idle: time.Duration(ent.Idle) * flowtable.TickDuration, Expired: ent.Expired}
	if be := s.backend(ent.Backend); be != nil {
		fe.Backend = be.addr()
	}
	return fe
}

// addr is the backend's address, from its service's configuration order.
func (be *beEntry) addr() netip.Addr {
	return be.svc.addrs[be.index]
}

func describeBackend(be *beEntry) string {
	if be == nil {
		return "(removed from the configuration)"
	}
	return be.addr().String()
}

func describeWeight(be *beEntry) string {
	s := fmt.Sprintf("weight %d, %s", be.weight, be.state)
	if be.rampFrac > 0 {
		s += fmt.Sprintf(", slow start %.0f%%", be.rampFrac*100)
	}
	if be.failOpen {
		s += ", kept by fail-open"
	}
	return s
}

// unusableReason says why a backend cannot carry a flow.
func unusableReason(be *beEntry) string {
	switch {
	case be == nil:
		return "removed from the configuration"
	case be.state == BackendDown:
		return "set down"
	case !be.hasMAC:
		return "its MAC is not known"
	case !be.healthy:
		if be.healthErr != nil {
			return "unhealthy: " + be.healthErr.Error()
		}
		return "unhealthy"
	}
	return "usable"
}

// peekFlow looks a flow up in the Go path's flow table and then in the
// kernel data planes' (a flow lives in one of them).
func (b *Balancer) peekFlow(k *flowtable.Key, now flowtable.Tick) (flowtable.Entry, bool) {
	if e, ok := b.flows.Peek(k, b.flows.Hash(k), now); ok {
		return e, true
	}
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	for _, dp := range b.dataPlanes {
		if e, ok := dp.peekFlow(k, now); ok {
			return e, true
		}
	}
	return flowtable.Entry{}, false
}
