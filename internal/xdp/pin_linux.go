//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Names of the pins under Config.PinPath besides the program's maps.
const (
	linkPin     = "link"      // the interface's XDP link
	peerLinkPin = "link_peer" // the veth peer's pass-through link
	slotsMap    = "slots"     // slot owners, written only by the control plane
)

// stateMaps are the maps pinned: the plan and the flows. The counters are
// not: every process counts from zero, as its Stats do.
var stateMaps = []string{xdpMapConfig, xdpMapFlows, xdpMapBackends, xdpMapServices, xdpMapVips, xdpMapTables, slotsMap}

// slotValue is an entry of the slots map.
type slotValue struct {
	ID    uint32
	Flags uint8 // slotHeld | slotOwned | slotVIP4 | slotAddr4
	Proto uint8
	Port  uint16
	VLAN  uint16
	Pad   [2]uint8
	VIP   [16]byte
	Addr  [16]byte
}

const (
	slotHeld  = 1 << iota // holds a backend now
	slotOwned             // Owner is set (VIP valid)
	slotVIP4              // VIP is IPv4
	slotAddr4             // Addr is IPv4
	slotUsed              // ID was written at least once
)

func slotSpec(maxSlots int) *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: slotsMap, Type: ebpf.Array, KeySize: 4, ValueSize: 44, MaxEntries: uint32(maxSlots)}
}

func encodeSlot(id uint32, held bool, o SlotOwner) slotValue {
	v := slotValue{ID: id, Flags: slotUsed, Proto: o.Proto, Port: o.Port, VLAN: o.VLAN}
	if held {
		v.Flags |= slotHeld
	}
	if o.VIP.IsValid() {
		v.Flags |= slotOwned
		vip := o.VIP.Unmap()
		if vip.Is4() {
			v.Flags |= slotVIP4
		}
		v.VIP = vip.As16()
		if o.Addr.IsValid() {
			addr := o.Addr.Unmap()
			if addr.Is4() {
				v.Flags |= slotAddr4
			}
			v.Addr = addr.As16()
		}
	}
	return v
}

func decodeSlot(slot uint32, v *slotValue) SlotRecord {
	r := SlotRecord{Slot: slot, ID: v.ID, Held: v.Flags&slotHeld != 0}
	if v.Flags&slotOwned != 0 {
		r.Owner = SlotOwner{Port: v.Port, Proto: v.Proto, VLAN: v.VLAN, VIP: netip.AddrFrom16(v.VIP), Addr: netip.AddrFrom16(v.Addr)}
		if v.Flags&slotVIP4 != 0 {
			r.Owner.VIP = r.Owner.VIP.Unmap()
		}
		if v.Flags&slotAddr4 != 0 {
			r.Owner.Addr = r.Owner.Addr.Unmap()
		}
		if v.Addr == ([16]byte{}) && v.Flags&slotAddr4 == 0 {
			r.Owner.Addr = netip.Addr{}
		}
	}
	return r
}

// checkBPFFS creates dir and checks that it is in a BPF filesystem.
func checkBPFFS(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("xdp: pin path: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("xdp: pin path: %w", err)
	}
	if uint32(st.Type) != unix.BPF_FS_MAGIC {
		return fmt.Errorf("%w: %s", ErrNotBPFFS, dir)
	}
	return nil
}

// lockPinDir takes the pin directory's lock (flock), which a Program holds
// until Close: a second control plane on the same pins fails with
// ErrPinBusy instead of writing the maps under the first one.
func lockPinDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("xdp: pin path: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrPinBusy, dir)
		}
		return nil, fmt.Errorf("xdp: lock pin path %s: %w", dir, err)
	}
	return f, nil
}

// preparePins looks at the pins under dir before the collection is loaded:
// pins that match spec stay (the load reuses them), pins of another layout
// are removed (the load creates and pins new maps) and reported. The flow
// table, the backends map and the slots map go together: a flow entry
// names a backend ID, which means something only with the slots' history.
func preparePins(dir string, spec *ebpf.CollectionSpec, slots *ebpf.MapSpec, rs *Restore) error {
	specOf := func(name string) *ebpf.MapSpec {
		if name == slotsMap {
			return slots
		}
		return spec.Maps[name]
	}
	present := map[string]bool{}
	bad := map[string]string{}
	for _, name := range stateMaps {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("xdp: pin %s: %w", path, err)
		}
		present[name] = true
		m, err := ebpf.LoadPinnedMap(path, nil)
		if err != nil {
			bad[name] = err.Error()
			continue
		}
		if err := specOf(name).Compatible(m); err != nil {
			bad[name] = err.Error()
		}
		m.Close()
	}
	flowGroup := []string{xdpMapFlows, xdpMapBackends, slotsMap}
	groupOK := true
	for _, name := range flowGroup {
		if bad[name] != "" || !present[name] {
			groupOK = false
		}
	}
	if !groupOK && present[xdpMapFlows] {
		for _, name := range flowGroup {
			if present[name] && bad[name] == "" {
				bad[name] = "replaced with the flow table: flow entries name backend IDs that mean something only with the slots they were written with"
			}
		}
		rs.FlowsLost = true
	}
	for _, name := range stateMaps {
		switch {
		case bad[name] != "":
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("xdp: remove the incompatible pin of map %s: %w", name, err)
			}
			rs.Replaced = append(rs.Replaced, name)
			if rs.Why == nil {
				rs.Why = map[string]string{}
			}
			rs.Why[name] = bad[name]
		case present[name]:
			rs.Reused = append(rs.Reused, name)
		default:
			rs.Created = append(rs.Created, name)
		}
	}
	return nil
}

// adoptPinned rebuilds the in-memory view of the service maps from the
// pinned ones and removes what is inconsistent in them: VIPs without a
// service, tables no service names.
func (p *Program) adoptPinned() error {
	var k xdpServiceKey
	var e xdpServiceEntry
	used := map[uint32]bool{}
	it := p.objs.Services.Iterate()
	for it.Next(&k, &e) {
		vip := netip.AddrFrom16(k.Vip).Unmap()
		key := ServiceKey{VIP: vip, Port: k.Port, Proto: k.Proto}
		p.services[key] = e.Index
		p.vips[vip.As16()]++
		used[e.Index] = true
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("xdp: read pinned services: %w", err)
	}
	var vip [16]byte
	var one uint8
	var stale [][16]byte
	vit := p.objs.Vips.Iterate()
	for vit.Next(&vip, &one) {
		if p.vips[vip] == 0 {
			stale = append(stale, vip)
		}
	}
	if err := vit.Err(); err != nil {
		return fmt.Errorf("xdp: read pinned VIPs: %w", err)
	}
	for _, v := range stale {
		if err := p.objs.Vips.Delete(v); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("xdp: delete a stale VIP: %w", err)
		}
	}
	for v := range p.vips {
		if err := p.objs.Vips.Update(v, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("xdp: restore a VIP: %w", err)
		}
	}
	for i := range uint32(p.cfg.maxServices) {
		if used[i] {
			continue
		}
		if err := p.objs.Tables.Delete(i); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("xdp: delete the stale table %d: %w", i, err)
		}
	}
	p.restore.Services = len(p.services)
	var fk xdpFlowKey
	var fe xdpFlowEntry
	fit := p.objs.Flows.Iterate()
	for fit.Next(&fk, &fe) {
		p.restore.Flows++
	}
	if err := fit.Err(); err != nil {
		return fmt.Errorf("xdp: count pinned flows: %w", err)
	}
	recs, err := p.Slots()
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Held {
			p.restore.Slots++
		}
	}
	return nil
}

// Restore says what Load found under Config.PinPath and what Attach did
// with the pinned links.
func (p *Program) Restore() Restore {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.restore
	r.Reused = slices.Clone(r.Reused)
	r.Created = slices.Clone(r.Created)
	r.Replaced = slices.Clone(r.Replaced)
	return r
}

// Slots returns the record of every backend slot that ever held a backend
// in these maps (with pinning: in any process that used them), by slot.
func (p *Program) Slots() ([]SlotRecord, error) {
	var out []SlotRecord
	var slot uint32
	var v slotValue
	it := p.slots.Iterate()
	for it.Next(&slot, &v) {
		if v.Flags&slotUsed != 0 {
			out = append(out, decodeSlot(slot, &v))
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("xdp: read slot records: %w", err)
	}
	for i := range out {
		r := &out[i]
		var e xdpBackendEntry
		if !r.Held || p.objs.Backends.Lookup(r.Slot, &e) != nil || e.Id != r.ID || e.Mac == ([6]byte{}) {
			continue
		}
		r.MAC = net.HardwareAddr(e.Mac[:])
	}
	return out, nil
}

// Services returns the service keys in the maps with their indices (after
// a Load that took pinned maps over: the pinned ones).
func (p *Program) Services() map[ServiceKey]uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[ServiceKey]uint32, len(p.services))
	for k, v := range p.services {
		out[k] = v
	}
	return out
}

// MaxBackendSlots returns the number of backend slots (Config.MaxBackendSlots
// resolved).
func (p *Program) MaxBackendSlots() int { return p.cfg.maxSlots }

// MaxServices returns the number of service indices (Config.MaxServices
// resolved).
func (p *Program) MaxServices() int { return p.cfg.maxServices }

// attachPinned attaches prog to ifindex, or replaces the program of the
// link pinned under name (one pinned for ifindex) with it. It returns the
// link and whether it updated a pinned one; problem says why a pinned link
// was given up.
func attachPinned(dir, name string, ifindex int, prog *ebpf.Program, attach func() (link.Link, error)) (l link.Link, updated bool, problem string, err error) {
	path := filepath.Join(dir, name)
	if old, err := link.LoadPinnedLink(path, nil); err == nil {
		info, ierr := old.Info()
		switch {
		case ierr != nil:
			problem = fmt.Sprintf("pinned link %s: %v", path, ierr)
		case info.XDP() == nil || info.XDP().Ifindex != uint32(ifindex):
			problem = fmt.Sprintf("pinned link %s is not an XDP link of interface %d", path, ifindex)
		default:
			if uerr := old.Update(prog); uerr != nil {
				problem = fmt.Sprintf("update pinned link %s: %v", path, uerr)
			} else {
				return old, true, "", nil
			}
		}
		// Give the pinned link up: unpinned and closed, it detaches.
		_ = old.Unpin()
		old.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		problem = fmt.Sprintf("pinned link %s: %v", path, err)
		_ = os.Remove(path)
	}
	l, err = attach()
	if err != nil || l == nil {
		return nil, false, problem, err
	}
	if err := l.Pin(path); err != nil {
		l.Close()
		return nil, false, problem, fmt.Errorf("xdp: pin link %s: %w", path, err)
	}
	return l, false, problem, nil
}

// Remove undoes the pins under pinPath that Load and Attach made: the
// pinned links are unpinned and closed, which detaches their programs
// (once no process holds them open: close the forwarder's links first),
// the pinned maps are removed, and then the directory if it is empty. The
// flows the maps held are lost. A pinPath without pins is not an error.
func Remove(pinPath string) error {
	if pinPath == "" {
		return fmt.Errorf("%w: empty pin path", ErrInvalid)
	}
	lock, err := lockPinDir(pinPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer lock.Close()
	var errs []error
	for _, name := range []string{linkPin, peerLinkPin} {
		path := filepath.Join(pinPath, name)
		l, err := link.LoadPinnedLink(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("xdp: pinned link %s: %w", path, err))
			if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				errs = append(errs, rerr)
			}
			continue
		}
		errs = append(errs, l.Unpin(), l.Close())
	}
	for _, name := range stateMaps {
		if err := os.Remove(filepath.Join(pinPath, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("xdp: remove pin: %w", err))
		}
	}
	if err := os.Remove(pinPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("xdp: remove pin path: %w", err))
	}
	return errors.Join(errs...)
}
