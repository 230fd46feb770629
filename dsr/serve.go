package dsr

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/dsrlb/dsrlb/internal/flowtable"
)

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
	w.mtu = b.cfg.MTU
	if mr, ok := fwd.(mtuReporter); ok && w.mtu == 0 {
		w.mtu = mr.MTU()
	}
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
		// Segments of a super-frame beyond its first and too-big
		// answers are not input frames: Forwarded counts input frames.
		w.c.forwarded.Add(uint64(max(sent-w.extra, 0)))
		if sent < len(out) {
			lost := uint64(min(len(out)-sent, len(out)-w.extra))
			w.c.drops[DropTransmit].Add(lost)
			if err != nil {
				b.log.Debug("transmit failed", "err", err, "frames", lost)
			}
		}
	}
}

func (b *Balancer) registerForwarder(fwd Forwarder) error {
	if h, ok := fwd.(macHinter); ok {
		b.adoptMACHints(h.macHints())
	}
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
	if dp, ok := fwd.(dataPlane); ok {
		// Under fwdMu, so that a plan applied meanwhile is pushed after
		// this one (syncDataPlanes waits for the lock).
		ftCfg := b.ftCfg
		err := errors.Join(dp.setParams(b.cfg.Seed, &ftCfg), dp.setNow(b.now()), dp.loadPlan(b.snap.Load()))
		if err != nil {
			delete(b.forwarders, fwd)
			return fmt.Errorf("dsr: load the plan into the data plane: %w", err)
		}
		b.dataPlanes = append(b.dataPlanes, dp)
	}
	return nil
}

func (b *Balancer) unregisterForwarder(fwd Forwarder) {
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	delete(b.forwarders, fwd)
	if dp, ok := fwd.(dataPlane); ok {
		b.dataPlanes = slices.DeleteFunc(b.dataPlanes, func(d dataPlane) bool { return d == dp })
	}
}

// syncDataPlanes loads a newly applied snapshot into the data planes that
// decide in the kernel. It runs before the call that made the change
// returns. Called with b.mu held.
func (b *Balancer) syncDataPlanes(s *snapshot) {
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	for _, dp := range b.dataPlanes {
		if err := dp.loadPlan(s); err != nil {
			b.log.Error("loading the plan into the kernel data plane failed; services it could not take are passed to the Go path", "err", err)
		}
	}
}

// dataPlaneTick moves the data planes' clocks. Called from the expiry loop.
func (b *Balancer) dataPlaneTick(now flowtable.Tick) {
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	for _, dp := range b.dataPlanes {
		if err := dp.setNow(now); err != nil {
			b.log.Error("moving the kernel data plane's clock failed", "err", err)
		}
	}
}

// collectDataPlanes stores the data planes' per-backend and per-service
// totals into the snapshot's entries and returns their own counters, summed
// (nil without a data plane). With countActive it also counts their live
// flows per backend, which walks their flow tables.
func (b *Balancer) collectDataPlanes(s *snapshot, countActive bool) *XDPStats {
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	if len(b.dataPlanes) == 0 {
		return nil
	}
	sum := &XDPStats{Passed: map[string]uint64{}, Dropped: map[string]uint64{}}
	active := map[uint32]int{}
	for _, dp := range b.dataPlanes {
		st, err := dp.collect(s)
		if err != nil {
			b.log.Error("reading the kernel data plane's counters failed", "err", err)
			continue
		}
		sum.Received += st.Received
		sum.Forwarded += st.Forwarded
		sum.ChecksumsCompleted += st.ChecksumsCompleted
		for k, v := range st.Passed {
			sum.Passed[k] += v
		}
		for k, v := range st.Dropped {
			sum.Dropped[k] += v
		}
		if countActive {
			per, err := dp.activeFlows(b.now())
			if err != nil {
				b.log.Error("counting the kernel data plane's flows failed", "err", err)
				continue
			}
			for id, n := range per {
				active[id] += n
			}
		}
	}
	if countActive {
		for i := range s.backends {
			if be := &s.backends[i]; be.svc != nil {
				be.stats.dp.active.Store(int64(active[be.id]))
			}
		}
	}
	return sum
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
