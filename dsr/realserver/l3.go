package realserver

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// L3 DSR. The balancer encapsulates the client's packet to the server's own
// address (dsr.ModeIPIP, dsr.ModeGUE); the server must strip the outer
// headers before its stack sees the packet, and should advertise a TCP MSS
// small enough that the client's packets still fit the path once
// encapsulated. Prepare does both, Check verifies both, Undo reverts both.
//
// Decapsulation takes one of two paths:
//
//   - the kernel's tunnel devices, where the kernel has the ipip (IPv4),
//     ip6_tunnel (IPv6) and, for GUE, fou (and fou6) modules: one tunnel
//     device per balancer (remote the balancer, local the server's
//     address), and a fou port for GUE, configured with ip(8);
//   - otherwise the decapsulation XDP program (package internal/decap),
//     attached to the interface the tunnel packets arrive on. It needs XDP
//     support in the kernel and CAP_NET_ADMIN/CAP_BPF; no BPF filesystem:
//     it is attached through netlink and outlives the tool.

// Mode is the balancer's forwarding mode toward this server.
type Mode string

// Modes. The zero value means ModeL2.
const (
	ModeL2   Mode = "l2"
	ModeIPIP Mode = "ipip"
	ModeGUE  Mode = "gue"
)

// L3 reports whether m encapsulates.
func (m Mode) L3() bool { return m == ModeIPIP || m == ModeGUE }

// Decap selects how Prepare sets up decapsulation in L3 modes.
type Decap string

// Decapsulation paths. The zero value means DecapAuto.
const (
	// DecapAuto uses the kernel's tunnel devices when the modules the mode
	// needs are present, else the decapsulation program.
	DecapAuto Decap = ""
	// DecapKernel uses the kernel's tunnel devices.
	DecapKernel Decap = "kernel"
	// DecapProgram uses the decapsulation XDP program.
	DecapProgram Decap = "program"
)

// DefaultGUEPort is the GUE port when Config.GUEPort is zero; it is the
// balancer's default too (dsr.DefaultGUEPort).
const DefaultGUEPort = 6080

// overhead is what encapsulation adds to an IPv4 or IPv6 packet (as the
// balancer's dsr.Mode.Overhead).
func (m Mode) overhead(v6 bool) int {
	ip := 20
	if v6 {
		ip = 40
	}
	switch m {
	case ModeIPIP:
		return ip
	case ModeGUE:
		return ip + 8 + 4
	}
	return 0
}

// MSS returns the TCP MSS a server in mode m should advertise to clients
// of the family (v6) when its path to the balancer has the given MTU: what
// remains of the MTU after the outer headers and the inner IP (20 or 40)
// and TCP (20) headers. In L2 mode it is the plain MSS of the MTU.
func (m Mode) MSS(mtu int, v6 bool) int {
	ip := 20
	if v6 {
		ip = 40
	}
	return mtu - m.overhead(v6) - ip - 20
}

// kernelModules lists the modules the kernel path needs for mode m and the
// families of the VIPs.
func kernelModules(m Mode, v4, v6 bool) []string {
	var mods []string
	if v4 {
		mods = append(mods, "ipip")
	}
	if v6 {
		mods = append(mods, "ip6_tunnel")
	}
	if m == ModeGUE {
		if v4 {
			mods = append(mods, "fou")
		}
		if v6 {
			mods = append(mods, "fou6")
		}
	}
	return mods
}

// moduleAvailable reports whether the kernel has module name, loaded,
// built in or installed, as seen under root ("/" on a real system):
// /sys/module/NAME, or NAME.ko in modules.builtin or modules.dep of the
// running kernel's release.
func moduleAvailable(root, release, name string) bool {
	if _, err := os.Stat(filepath.Join(root, "sys/module", name)); err == nil {
		return true
	}
	file := "/" + name + ".ko"
	for _, list := range []string{"modules.builtin", "modules.dep"} {
		b, err := os.ReadFile(filepath.Join(root, "lib/modules", release, list))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			path, _, _ := strings.Cut(sc.Text(), ":")
			base := path[strings.LastIndexByte(path, '/')+1:]
			for _, ext := range []string{"", ".xz", ".zst", ".gz"} {
				if "/"+base == file+ext {
					return true
				}
			}
		}
	}
	return false
}

// Command is one step of the kernel path: a command to run and the command
// that reverts it (nil when nothing is to revert).
type Command struct {
	Do   []string `json:"do"`
	Undo []string `json:"undo,omitempty"`
}

// tunnelName is the name of the tunnel device toward balancer number i.
func tunnelName(v6 bool, i int) string {
	if v6 {
		return "dsrlb6t" + strconv.Itoa(i)
	}
	return "dsrlb4t" + strconv.Itoa(i)
}

// kernelPlan returns the commands that set up decapsulation with the
// kernel's tunnel devices: the modules, a fou port for GUE, and one tunnel
// device per balancer of each VIP family, from the server's address local
// of that family, brought up with reverse-path filtering loose (replies to
// the client leave by another interface).
func kernelPlan(m Mode, balancers []netip.Addr, local4, local6 netip.Addr, port uint16, v4, v6 bool) []Command {
	var plan []Command
	for _, mod := range kernelModules(m, v4, v6) {
		plan = append(plan, Command{Do: []string{"modprobe", mod}})
	}
	p := strconv.Itoa(int(port))
	if m == ModeGUE {
		if v4 {
			plan = append(plan, Command{Do: []string{"ip", "fou", "add", "port", p, "gue"}, Undo: []string{"ip", "fou", "del", "port", p}})
		}
		if v6 {
			plan = append(plan, Command{Do: []string{"ip", "-6", "fou", "add", "port", p, "gue"}, Undo: []string{"ip", "-6", "fou", "del", "port", p}})
		}
	}
	n4, n6 := 0, 0
	for _, b := range balancers {
		b = b.Unmap()
		var name, kind string
		var local netip.Addr
		switch {
		case b.Is4() && v4:
			name, kind, local = tunnelName(false, n4), "ipip", local4
			n4++
		case b.Is6() && v6:
			name, kind, local = tunnelName(true, n6), "ip6tnl", local6
			n6++
		default:
			continue
		}
		add := []string{"ip", "link", "add", name, "type", kind, "remote", b.String(), "local", local.String()}
		if kind == "ip6tnl" {
			add = append(add, "mode", "ip6ip6")
		}
		plan = append(plan,
			Command{Do: add, Undo: []string{"ip", "link", "del", name}},
			Command{Do: []string{"ip", "link", "set", name, "up"}})
		if kind == "ipip" {
			plan = append(plan, Command{Do: []string{"sysctl", "-w", "net.ipv4.conf." + name + ".rp_filter=2"}})
		}
	}
	return plan
}

// l3Resolve checks the L3 fields of a resolved configuration.
func (r *config) l3Resolve() error {
	switch r.Mode {
	case "":
		r.Mode = ModeL2
	case ModeL2, ModeIPIP, ModeGUE:
	default:
		return fmt.Errorf("%w: mode %q (want l2, ipip or gue)", ErrInvalidConfig, r.Mode)
	}
	switch r.Decap {
	case DecapAuto, DecapKernel, DecapProgram:
	default:
		return fmt.Errorf("%w: decap %q (want kernel or program)", ErrInvalidConfig, r.Decap)
	}
	if !r.Mode.L3() {
		return nil
	}
	if r.GUEPort == 0 {
		r.GUEPort = DefaultGUEPort
	}
	if len(r.Balancers) == 0 {
		return fmt.Errorf("%w: mode %s needs the balancers' addresses (the outer source of their packets)", ErrInvalidConfig, r.Mode)
	}
	for i, b := range r.Balancers {
		b = b.Unmap()
		if !b.IsValid() || b.IsUnspecified() || b.IsMulticast() {
			return fmt.Errorf("%w: balancer address %v", ErrInvalidConfig, b)
		}
		r.Balancers[i] = b
	}
	if r.Underlay != "" {
		if err := validIfName(r.Underlay); err != nil {
			return err
		}
	}
	// The balancer is not on this segment: nobody here answers ARP or
	// neighbour solicitations for the VIPs, so the probes would only
	// report that.
	r.ARPWindow, r.NDPWindow = -1, -1
	return nil
}
