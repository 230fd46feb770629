package dsr

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"github.com/dsrlb/dsrlb/internal/xdp"
)

// XDPRestore says what ListenXDP found under XDPConfig.PinPath: the state
// a previous process (or forwarder) left there and what became of it.
type XDPRestore struct {
	// PinPath is XDPConfig.PinPath; empty: no pinning, nothing restored.
	PinPath string
	// Reused names the pinned maps taken over with their content, Created
	// those that were not pinned yet (a first start), Replaced those whose
	// layout no longer matched (a program upgrade, or a changed size): their
	// content is lost. Why says, by map, what differed.
	Reused, Created, Replaced []string
	Why                       map[string]string
	// FlowsLost says the established flows lost their entries (the flow
	// table, or the backend slots its entries name, was replaced): each is
	// scheduled again on its next packet, which keeps most of them on
	// their backend with a consistent-hash scheduler, but not all.
	FlowsLost bool
	// Flows, Services and Backends count the flow entries, service keys
	// and backend slots taken over.
	Flows, Services, Backends int
	// ProgramReplaced says the interface already ran the previous
	// process's program through the pinned link, and this one replaced it
	// there without detaching it: no frame met the interface without a
	// program.
	ProgramReplaced bool
	// LinkProblem says why a pinned link could not be updated (it was
	// replaced by a new attachment, with a moment without a program), or is
	// empty.
	LinkProblem string
	// seedSet says the pinned settings were taken over, with seed.
	seedSet bool
	seed    uint64
}

func restoreOf(pinPath string, r xdp.Restore) XDPRestore {
	return XDPRestore{PinPath: pinPath, Reused: r.Reused, Created: r.Created, Replaced: r.Replaced, Why: r.Why,
		FlowsLost: r.FlowsLost, Flows: r.Flows, Services: r.Services, Backends: r.Slots,
		ProgramReplaced: r.LinkUpdated, LinkProblem: r.LinkProblem, seedSet: r.Settings, seed: r.Seed}
}

func (r *XDPRestore) log(log *slog.Logger, ifname string) {
	if r.PinPath == "" {
		return
	}
	if len(r.Reused) > 0 {
		log.Info("xdp: took over the pinned state of the previous process", "interface", ifname, "pin_path", r.PinPath,
			"flows", r.Flows, "services", r.Services, "backends", r.Backends, "program_replaced", r.ProgramReplaced)
	} else {
		log.Info("xdp: no pinned state: starting empty and pinning", "interface", ifname, "pin_path", r.PinPath)
	}
	for _, name := range r.Replaced {
		log.Warn("xdp: a pinned map had another layout and was replaced: its content is lost", "interface", ifname,
			"map", name, "why", r.Why[name])
	}
	if r.FlowsLost {
		log.Warn("xdp: the pinned flow table was replaced: established flows are scheduled again on their next packet, and those whose backend changes are reset", "interface", ifname)
	}
	if r.LinkProblem != "" {
		log.Warn("xdp: a pinned link could not be updated; the program was attached anew", "interface", ifname, "problem", r.LinkProblem)
	}
}

// Restored says what ListenXDP found under XDPConfig.PinPath and did with
// it; the zero XDPRestore without pinning.
func (x *XDPForwarder) Restored() XDPRestore {
	r := x.restored
	r.Reused, r.Created, r.Replaced = slices.Clone(r.Reused), slices.Clone(r.Created), slices.Clone(r.Replaced)
	return r
}

// Detach closes the forwarder and, with XDPConfig.PinPath, detaches the
// program and removes its pins, as RemoveXDPPins does: the XDP flows are
// lost. Without pinning it is Close.
func (x *XDPForwarder) Detach() error {
	err := x.Close()
	if x.pinPath == "" {
		return err
	}
	return errors.Join(err, RemoveXDPPins(x.pinPath))
}

// RemoveXDPPins detaches the XDP program pinned under pinPath (a
// forwarder's XDPConfig.PinPath) from its interface, and its veth peer's
// pass-through program, and removes the pins: for a process that stops
// forwarding in XDP for good, or switches pinning off. A forwarder still
// open on those pins keeps its program attached until it is closed. A path
// without pins is not an error.
func RemoveXDPPins(pinPath string) error {
	if err := xdp.Remove(pinPath); err != nil {
		if errors.Is(err, xdp.ErrUnsupported) {
			return fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		return fmt.Errorf("dsr: %w", err)
	}
	return nil
}

// initIDs reads the slot records and services of the maps (the pinned
// ones, after a restart) into the kernel ID map.
func (x *XDPForwarder) initIDs() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.initIDsLocked()
}

func (x *XDPForwarder) initIDsLocked() error {
	recs, err := x.prog.Slots()
	if err != nil {
		return err
	}
	pinned := x.prog.Services()
	x.ids = newKernelIDs(x.prog.MaxBackendSlots(), x.prog.MaxServices(), recs, pinned)
	for key, idx := range pinned {
		// Placeholders: the first plan rewrites the services it has and
		// deletes the others.
		if x.services[key] == nil {
			x.services[key] = &pushedService{index: idx}
		}
	}
	x.hints = map[nbKey]net.HardwareAddr{}
	for _, r := range recs {
		if r.Held && r.Owner.Addr.IsValid() && len(r.MAC) == 6 {
			x.hints[nbKey{addr: r.Owner.Addr, vlan: r.Owner.VLAN}] = r.MAC
		}
	}
	return nil
}

// macHinter is a data plane that knows backends' MACs from before the
// Balancer's address resolution does: the pinned maps of a restarted
// forwarder.
type macHinter interface {
	macHints() map[nbKey]net.HardwareAddr
}

func (x *XDPForwarder) macHints() map[nbKey]net.HardwareAddr {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.hints
}

// adoptMACHints takes the MACs a restarted data plane's pinned maps hold
// for backends whose MAC is neither configured nor resolved yet: until
// address resolution answers, those backends would otherwise be unusable,
// and the flows the pinned maps hold on them would be moved elsewhere (and
// reset). Resolution overrides them as soon as it answers.
func (b *Balancer) adoptMACHints(hints map[nbKey]net.HardwareAddr) {
	if len(hints) == 0 {
		return
	}
	b.mu.Lock()
	defer b.unlockAndFlush()
	changed := 0
	for _, key := range b.order {
		svc := &b.services[key].svc
		for _, be := range svc.Backends {
			// L3 backends are not forwarded by the program: their next
			// hop is resolved as usual.
			k := nbKey{addr: be.Addr, vlan: svc.VLAN}
			mac, ok := hints[k]
			if !ok || len(be.MAC) != 0 || b.resolved[k] != nil || modeOf(svc, &be).L3() {
				continue
			}
			b.resolved[k] = slices.Clone(mac)
			changed++
		}
	}
	if changed > 0 {
		b.log.Info("backend MACs taken from the pinned XDP maps until address resolution answers", "backends", changed)
		b.recompile()
		b.reconcileHealth()
	}
}
