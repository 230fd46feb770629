package netlab

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VLANs. The lab's bridge can act as a VLAN-aware (802.1Q) switch:
// SetAccessVLAN makes a host's port an access port of one VLAN (frames
// from the host join the VLAN, frames of the VLAN leave untagged, other
// frames do not reach the host), SetTrunkVLANs a trunk port carrying some
// VLANs tagged and nothing untagged.
//
// The kernels we run on have neither the 8021q module nor the bridge's own
// VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING), so the switch is built from
// what they do have: a plain bridge, which forwards frames with their tag,
// and on each port a small tc program (clsact, direct action) that does a
// VLAN switch port's work with the kernel's own tag helpers: an access port
// pushes its VLAN's tag on what enters and pops it from what leaves,
// dropping other VLANs; a trunk port passes only its VLANs' tagged frames.
// Tags travel as the kernel's VLAN metadata (as with a NIC's VLAN offload),
// so the hosts see what they would see behind a real switch. Only the
// switch namespace is touched. MAC learning is not per VLAN, which is fine
// as long as no MAC is on two VLANs (true of a lab: one MAC per host).
//
// A host whose port is set neither way keeps its untagged traffic, which
// reaches the other untagged ports and the trunks' drop.

// Actions of a tc classifier in direct-action mode.
const (
	tcActOK   = 0
	tcActShot = 2
)

// Offsets of struct __sk_buff fields the programs read.
const (
	skbVLANPresent = 20
	skbVLANTCI     = 24
)

// SetAccessVLAN makes h's port an access port of VLAN vid (1..4094).
func (l *Lab) SetAccessVLAN(h *Host, vid uint16) error {
	if vid == 0 || vid > 4094 {
		return fmt.Errorf("netlab: VLAN %d out of range 1..4094", vid)
	}
	return l.setPort(h, accessIngress(vid), accessEgress(vid))
}

// SetTrunkVLANs makes h's port a trunk carrying the VLANs vids (1..4094)
// tagged, and nothing untagged.
func (l *Lab) SetTrunkVLANs(h *Host, vids ...uint16) error {
	for _, vid := range vids {
		if vid == 0 || vid > 4094 {
			return fmt.Errorf("netlab: VLAN %d out of range 1..4094", vid)
		}
	}
	return l.setPort(h, trunk(vids), trunk(vids))
}

// accessIngress pushes vid's tag on every untagged frame from the host and
// drops tagged ones.
func accessIngress(vid uint16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skbVLANPresent, asm.Word),
		asm.JNE.Imm(asm.R2, 0, "drop"),
		asm.Mov.Imm(asm.R2, int32(htons(unix.ETH_P_8021Q))),
		asm.Mov.Imm(asm.R3, int32(vid)),
		asm.FnSkbVlanPush.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R0, tcActOK),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("drop"),
		asm.Return(),
	}
}

// accessEgress pops the tag of vid's frames going to the host and drops
// every other frame.
func accessEgress(vid uint16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skbVLANPresent, asm.Word),
		asm.JEq.Imm(asm.R2, 0, "drop"),
		asm.LoadMem(asm.R2, asm.R1, skbVLANTCI, asm.Word),
		asm.And.Imm(asm.R2, 0x0fff),
		asm.JNE.Imm(asm.R2, int32(vid), "drop"),
		asm.FnSkbVlanPop.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R0, tcActOK),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("drop"),
		asm.Return(),
	}
}

// trunk passes frames tagged with one of vids, both ways, and drops the
// rest.
func trunk(vids []uint16) asm.Instructions {
	prog := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skbVLANPresent, asm.Word),
		asm.JEq.Imm(asm.R2, 0, "drop"),
		asm.LoadMem(asm.R2, asm.R1, skbVLANTCI, asm.Word),
		asm.And.Imm(asm.R2, 0x0fff),
	}
	for _, vid := range vids {
		prog = append(prog, asm.JEq.Imm(asm.R2, int32(vid), "pass"))
	}
	return append(prog,
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("drop"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcActOK).WithSymbol("pass"),
		asm.Return(),
	)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// setPort replaces the programs on h's port in the switch namespace.
func (l *Lab) setPort(h *Host, ingress, egress asm.Instructions) error {
	if h == nil || h.lab != l || h == l.Switch {
		return fmt.Errorf("netlab: VLANs: not a host of this lab")
	}
	err := l.Switch.do(func() error {
		port, err := netlink.LinkByName(h.Name)
		if err != nil {
			return err
		}
		// Replacing the qdisc drops any programs set before.
		qdisc := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: port.Attrs().Index,
			Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
		_ = netlink.QdiscDel(qdisc)
		if err := netlink.QdiscAdd(qdisc); err != nil {
			return fmt.Errorf("clsact: %w", err)
		}
		for _, dir := range []struct {
			parent uint32
			insns  asm.Instructions
			name   string
		}{{netlink.HANDLE_MIN_INGRESS, ingress, "vlan_in"}, {netlink.HANDLE_MIN_EGRESS, egress, "vlan_out"}} {
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: dir.name, Type: ebpf.SchedCLS, Instructions: dir.insns, License: "Dual MIT/GPL"})
			if err != nil {
				return fmt.Errorf("load %s: %w", dir.name, err)
			}
			f := &netlink.BpfFilter{
				FilterAttrs: netlink.FilterAttrs{LinkIndex: port.Attrs().Index, Parent: dir.parent, Handle: 1,
					Protocol: unix.ETH_P_ALL, Priority: 1},
				Fd: prog.FD(), Name: dir.name, DirectAction: true,
			}
			err = netlink.FilterAdd(f)
			prog.Close() // the filter holds the program
			if err != nil {
				return fmt.Errorf("attach %s: %w", dir.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netlab: VLANs of %s: %w", h.Name, err)
	}
	return nil
}
