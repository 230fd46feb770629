package dsr

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"
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
