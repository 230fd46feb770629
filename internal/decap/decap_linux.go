//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package decap

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// progName is the program's name in the kernel, by which Get and Detach
// tell it from other XDP programs.
const progName = "xdp_decap"

// Program is a loaded decapsulation program that is not attached to an
// interface: for tests, which run it on frames with Run.
type Program struct{ objs decapObjects }

// Load loads the program and configures it with cfg.
func Load(cfg *Config) (*Program, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	p := &Program{}
	if err := loadDecapObjects(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("decap: load the program: %w", err)
	}
	if err := p.configure(cfg); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close releases the program's file descriptors. An attached program stays
// attached.
func (p *Program) Close() error { return p.objs.Close() }

func key(a netip.Addr) decapAddr { return decapAddr{B: a.As16()} }

func (p *Program) configure(cfg *Config) error {
	var st decapSettings
	st.GuePort = swap16(cfg.port())
	if cfg.GUE {
		st.Gue = 1
	}
	if err := p.objs.DecapSettings.Put(uint32(0), &st); err != nil {
		return fmt.Errorf("decap: settings: %w", err)
	}
	one := uint8(1)
	for _, a := range cfg.Balancers {
		if err := p.objs.DecapBalancers.Put(key(a.Unmap()), one); err != nil {
			return fmt.Errorf("decap: balancer %s: %w", a, err)
		}
	}
	for _, a := range cfg.Locals {
		if err := p.objs.DecapLocals.Put(key(a.Unmap()), one); err != nil {
			return fmt.Errorf("decap: local address %s: %w", a, err)
		}
	}
	return nil
}

// Run runs the program once on frame through BPF_PROG_TEST_RUN and returns
// its verdict (2 is XDP_PASS, 1 XDP_DROP) and the frame as it left it.
func (p *Program) Run(frame []byte) (verdict uint32, out []byte, err error) {
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+512)}
	ret, err := p.objs.XdpDecap.Run(&opts)
	if err != nil {
		return 0, nil, fmt.Errorf("decap: run: %w", err)
	}
	return ret, opts.DataOut, nil
}

// Stats reads the program's counters.
func (p *Program) Stats() (Stats, error) { return readStats(p.objs.DecapStats) }

func readStats(m *ebpf.Map) (Stats, error) {
	var v [cMax]uint64
	for i := range v {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return Stats{}, fmt.Errorf("decap: counters: %w", err)
		}
		for _, n := range per {
			v[i] += n
		}
	}
	return statsFrom(v), nil
}

// Attach loads the program configured with cfg and attaches it to the
// interface ifname of the current network namespace through netlink, in
// driver mode where the driver supports XDP and in generic mode otherwise.
// It stays attached after the process exits, until Detach. An earlier
// decapsulation program on the interface is replaced (keeping its mode);
// any other XDP program makes Attach fail with ErrOtherProgram.
func Attach(ifname string, cfg *Config) (*Status, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("decap: interface %s: %w", ifname, err)
	}
	modes := []int{nl.XDP_FLAGS_DRV_MODE, nl.XDP_FLAGS_SKB_MODE}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		if _, err := Get(ifname); err != nil {
			return nil, err
		}
		modes = []int{modeFlags(x.AttachMode)}
	}
	p, err := Load(cfg)
	if err != nil {
		return nil, err
	}
	defer p.Close() // the interface holds the program, and the program its maps
	var errs []error
	for _, m := range modes {
		err = netlink.LinkSetXdpFdWithFlags(l, p.objs.XdpDecap.FD(), m)
		if err == nil {
			return Get(ifname)
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("decap: attach to %s: %w", ifname, errors.Join(errs...))
}

func modeFlags(attachMode uint32) int {
	if attachMode == nl.XDP_ATTACHED_DRV {
		return nl.XDP_FLAGS_DRV_MODE
	}
	return nl.XDP_FLAGS_SKB_MODE
}

// Detach removes the decapsulation program from ifname. It fails with
// ErrNotAttached when there is none and ErrOtherProgram when the XDP
// program there is not this package's.
func Detach(ifname string) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("decap: interface %s: %w", ifname, err)
	}
	if _, err := Get(ifname); err != nil {
		return err
	}
	if err := netlink.LinkSetXdpFdWithFlags(l, -1, modeFlags(l.Attrs().Xdp.AttachMode)); err != nil {
		return fmt.Errorf("decap: detach from %s: %w", ifname, err)
	}
	return nil
}

// Get finds the decapsulation program attached to ifname and reads its
// configuration and counters.
func Get(ifname string) (*Status, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("decap: interface %s: %w", ifname, err)
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached || x.ProgId == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotAttached, ifname)
	}
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId))
	if err != nil {
		return nil, fmt.Errorf("decap: program %d on %s: %w", x.ProgId, ifname, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("decap: program %d on %s: %w", x.ProgId, ifname, err)
	}
	if info.Name != progName {
		return nil, fmt.Errorf("%w: %s runs %q", ErrOtherProgram, ifname, info.Name)
	}
	st := &Status{ProgramID: x.ProgId, Native: x.AttachMode == nl.XDP_ATTACHED_DRV}
	ids, _ := info.MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			return nil, fmt.Errorf("decap: map %d: %w", id, err)
		}
		mi, err := m.Info()
		if err == nil {
			err = readMap(mi.Name, m, st)
		}
		m.Close()
		if err != nil {
			return nil, err
		}
	}
	return st, nil
}

func readMap(name string, m *ebpf.Map, st *Status) error {
	switch name {
	case decapMapDecapStats:
		s, err := readStats(m)
		st.Stats = s
		return err
	case decapMapDecapSettings:
		var s decapSettings
		if err := m.Lookup(uint32(0), &s); err != nil {
			return fmt.Errorf("decap: settings: %w", err)
		}
		st.Config.GUE = s.Gue != 0
		st.Config.GUEPort = swap16(s.GuePort)
	case decapMapDecapBalancers, decapMapDecapLocals:
		var k decapAddr
		var v uint8
		var addrs []netip.Addr
		it := m.Iterate()
		for it.Next(&k, &v) {
			addrs = append(addrs, netip.AddrFrom16(k.B).Unmap())
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("decap: %s: %w", name, err)
		}
		if name == decapMapDecapBalancers {
			st.Config.Balancers = addrs
		} else {
			st.Config.Locals = addrs
		}
	}
	return nil
}

// swap16 converts between host and network byte order for a field the
// program keeps in network order; the program is built for little-endian
// processors only.
func swap16(v uint16) uint16 { return v<<8 | v>>8 }
