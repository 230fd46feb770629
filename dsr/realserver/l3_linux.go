package realserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/decap"
)

// Finding codes of L3 modes.
const (
	// CodeDecapMissing: nothing decapsulates the balancer's tunnel
	// packets (no decapsulation program on the underlay interface, no
	// tunnel device from the balancer), so the server drops every request.
	CodeDecapMissing = "decap-missing"
	// CodeDecapMismatch: the decapsulation program runs with settings that
	// do not fit the configuration (GUE off or on another port, a
	// balancer or local address missing).
	CodeDecapMismatch = "decap-mismatch"
	// CodeDecapCounters: the decapsulation program's counters (Info).
	CodeDecapCounters = "decap-counters"
	// CodeDecapDrops: the decapsulation program dropped tunnel packets
	// (garbage, truncated, or from a source that is not a balancer).
	CodeDecapDrops = "decap-drops"
	// CodeMSSTooLarge: a gateway route toward the clients advertises no
	// MSS or one too large, so full-size client packets no longer fit the
	// path once encapsulated and depend on the balancer's too-big answers.
	CodeMSSTooLarge = "mss-too-large"
)

// underlay finds the interface tunnel packets arrive on: the configured
// one, or the output interface of the route to the first balancer.
func underlay(c *config) (netlink.Link, error) {
	if c.Underlay != "" {
		l, err := netlink.LinkByName(c.Underlay)
		if err != nil {
			return nil, fmt.Errorf("realserver: underlay %s: %w", c.Underlay, err)
		}
		return l, nil
	}
	rs, err := netlink.RouteGet(c.Balancers[0].AsSlice())
	if err != nil || len(rs) == 0 {
		return nil, fmt.Errorf("realserver: no route to balancer %s to find the underlay interface (name it with Underlay): %v", c.Balancers[0], err)
	}
	l, err := netlink.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return nil, fmt.Errorf("realserver: underlay of balancer %s: %w", c.Balancers[0], err)
	}
	return l, nil
}

// localAddrs returns the global unicast addresses of l (the tunnel
// packets' destination), VIPs excluded.
func localAddrs(l netlink.Link, vips []netip.Addr) ([]netip.Addr, error) {
	as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("realserver: addresses of %s: %w", l.Attrs().Name, err)
	}
	var out []netip.Addr
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.Unmap().IsGlobalUnicast() || containsAddr(vips, ip.Unmap()) {
			continue
		}
		out = append(out, ip.Unmap())
	}
	return out, nil
}

// useKernel decides the decapsulation path.
func useKernel(c *config) (bool, error) {
	mods := kernelModules(c.Mode, len(c.v4) > 0, len(c.v6) > 0)
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	var missing []string
	for _, m := range mods {
		if !moduleAvailable("/", release, m) {
			missing = append(missing, m)
		}
	}
	switch c.Decap {
	case DecapKernel:
		if len(missing) > 0 {
			return false, fmt.Errorf("realserver: the kernel path needs the modules %s, which this kernel lacks; use the decapsulation program", strings.Join(missing, ", "))
		}
		return true, nil
	case DecapProgram:
		return false, nil
	}
	return len(missing) == 0, nil
}

// prepareL3 sets up decapsulation and the advertised MSS. Called by
// Prepare after the L2 part, which L3 DSR needs too (VIP on the loopback).
func prepareL3(c *config, st *State, log *slog.Logger) error {
	if !c.Mode.L3() {
		return nil
	}
	ul, err := underlay(c)
	if err != nil {
		return err
	}
	name := ul.Attrs().Name
	locals, err := localAddrs(ul, c.VIPs)
	if err != nil {
		return err
	}
	if len(locals) == 0 {
		return fmt.Errorf("realserver: underlay %s has no address of its own for the balancers to send to", name)
	}
	kernel, err := useKernel(c)
	if err != nil {
		return err
	}
	if kernel {
		var l4, l6 netip.Addr
		for _, a := range locals {
			if a.Is4() && !l4.IsValid() {
				l4 = a
			}
			if a.Is6() && !l6.IsValid() {
				l6 = a
			}
		}
		for _, cmd := range kernelPlan(c.Mode, c.Balancers, l4, l6, c.GUEPort, len(c.v4) > 0, len(c.v6) > 0) {
			if out, err := exec.Command(cmd.Do[0], cmd.Do[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("realserver: %s: %v: %s", strings.Join(cmd.Do, " "), err, strings.TrimSpace(string(out)))
			}
			if cmd.Undo != nil {
				st.Commands = append(st.Commands, cmd)
			}
			log.Info("realserver: ran", "command", strings.Join(cmd.Do, " "))
		}
	} else {
		ds, err := decap.Attach(name, &decap.Config{Balancers: c.Balancers, Locals: locals, GUE: c.Mode == ModeGUE, GUEPort: c.GUEPort})
		if err != nil {
			return fmt.Errorf("realserver: %w", err)
		}
		st.Decap = appendUnique(st.Decap, name)
		log.Info("realserver: attached the decapsulation program", "interface", name, "program", ds.ProgramID, "native", ds.Native)
	}
	return lowerMSS(c, ul, st, log)
}

// gatewayRoutes returns the routes of family fam out of l that have a
// gateway: the routes toward clients on other networks.
func gatewayRoutes(l netlink.Link, fam int) ([]netlink.Route, error) {
	rs, err := netlink.RouteList(l, fam)
	if err != nil {
		return nil, fmt.Errorf("realserver: routes of %s: %w", l.Attrs().Name, err)
	}
	var out []netlink.Route
	for _, r := range rs {
		if r.Gw != nil || len(r.MultiPath) > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

// mssFor returns the MSS to advertise for the family, or 0 to leave the
// routes alone.
func mssFor(c *config, l netlink.Link, v6 bool) int {
	if c.AdvMSS < 0 {
		return 0
	}
	if c.AdvMSS > 0 {
		return c.AdvMSS
	}
	return c.Mode.MSS(l.Attrs().MTU, v6)
}

func lowerMSS(c *config, l netlink.Link, st *State, log *slog.Logger) error {
	for _, fam := range families(c) {
		v6 := fam == netlink.FAMILY_V6
		mss := mssFor(c, l, v6)
		if mss <= 0 {
			continue
		}
		rs, err := gatewayRoutes(l, fam)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.AdvMSS != 0 && r.AdvMSS <= mss {
				continue
			}
			old := r.AdvMSS
			r.AdvMSS = mss
			if err := netlink.RouteReplace(&r); err != nil {
				return fmt.Errorf("realserver: set advmss %d on the route %s: %w", mss, r, err)
			}
			st.Routes = append(st.Routes, routeChange(&r, l.Attrs().Name, v6, old, mss))
			log.Info("realserver: advmss", "route", routeDst(&r), "interface", l.Attrs().Name, "old", old, "new", mss)
		}
	}
	return nil
}

func families(c *config) []int {
	var f []int
	if len(c.v4) > 0 {
		f = append(f, netlink.FAMILY_V4)
	}
	if len(c.v6) > 0 {
		f = append(f, netlink.FAMILY_V6)
	}
	return f
}

func routeChange(r *netlink.Route, dev string, v6 bool, old, new int) RouteChange {
	rc := RouteChange{Interface: dev, V6: v6, Old: old, New: new}
	if r.Dst != nil {
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			ones, _ := r.Dst.Mask.Size()
			rc.Dst = netip.PrefixFrom(a.Unmap(), ones)
		}
	}
	if g, ok := netip.AddrFromSlice(r.Gw); ok {
		rc.Gateway = g.Unmap()
	}
	return rc
}

func routeDst(r *netlink.Route) string {
	if r.Dst == nil {
		return "default"
	}
	return r.Dst.String()
}

// undoL3 reverts the L3 part of st: it detaches the program, restores the
// routes' advmss and runs the kernel path's undo commands.
func undoL3(st *State) []error {
	var errs []error
	for len(st.Decap) > 0 {
		name := st.Decap[len(st.Decap)-1]
		err := decap.Detach(name)
		switch {
		case err == nil, errors.Is(err, decap.ErrNotAttached), isNotFound(err):
		case errors.Is(err, decap.ErrOtherProgram):
			errs = append(errs, fmt.Errorf("%w: %s runs another XDP program now", ErrModified, name))
		default:
			errs = append(errs, err)
			return errs
		}
		st.Decap = st.Decap[:len(st.Decap)-1]
	}
	for len(st.Routes) > 0 {
		rc := st.Routes[len(st.Routes)-1]
		if err := restoreRoute(rc); err != nil {
			errs = append(errs, err)
		}
		st.Routes = st.Routes[:len(st.Routes)-1]
	}
	for len(st.Commands) > 0 {
		cmd := st.Commands[len(st.Commands)-1]
		if len(cmd.Undo) > 0 {
			if out, err := exec.Command(cmd.Undo[0], cmd.Undo[1:]...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("realserver: %s: %v: %s", strings.Join(cmd.Undo, " "), err, strings.TrimSpace(string(out))))
			}
		}
		st.Commands = st.Commands[:len(st.Commands)-1]
	}
	return errs
}

func restoreRoute(rc RouteChange) error {
	l, err := netlink.LinkByName(rc.Interface)
	if err != nil {
		return fmt.Errorf("%w: cannot restore advmss of the route via %s: interface %s is gone", ErrModified, rc.Gateway, rc.Interface)
	}
	fam := netlink.FAMILY_V4
	if rc.V6 {
		fam = netlink.FAMILY_V6
	}
	rs, err := gatewayRoutes(l, fam)
	if err != nil {
		return err
	}
	for _, r := range rs {
		c := routeChange(&r, rc.Interface, rc.V6, 0, 0)
		if c.Dst != rc.Dst || c.Gateway != rc.Gateway {
			continue
		}
		if r.AdvMSS != rc.New {
			return fmt.Errorf("%w: the route %s via %s advertises MSS %d, Prepare set %d", ErrModified, routeDst(&r), rc.Gateway, r.AdvMSS, rc.New)
		}
		r.AdvMSS = rc.Old
		if err := netlink.RouteReplace(&r); err != nil {
			return fmt.Errorf("realserver: restore advmss of the route %s: %w", routeDst(&r), err)
		}
		return nil
	}
	return nil // the route is gone: nothing to restore
}

// checkL3 adds the L3 findings: decapsulation present and fitting, its
// counters, and the advertised MSS.
func checkL3(_ context.Context, c *config, r *Report) error {
	if !c.Mode.L3() {
		return nil
	}
	ul, err := underlay(c)
	if err != nil {
		return err
	}
	name := ul.Attrs().Name
	fix := fmt.Sprintf("realserver prepare --mode %s --balancer %s", c.Mode, c.Balancers[0])
	ds, err := decap.Get(name)
	switch {
	case err == nil:
		checkDecapConfig(c, ul, ds, r)
	case errors.Is(err, decap.ErrNotAttached), errors.Is(err, decap.ErrOtherProgram):
		if !kernelTunnelUp(c) {
			r.add(Finding{Severity: Error, Code: CodeDecapMissing, Interface: name,
				Message: fmt.Sprintf("nothing decapsulates the balancer's %s packets on %s (no decapsulation program, no tunnel device from the balancer): the server drops every request", c.Mode, name),
				Fix:     []string{fix}})
		}
	default:
		return err
	}
	for _, fam := range families(c) {
		v6 := fam == netlink.FAMILY_V6
		mss := c.Mode.MSS(ul.Attrs().MTU, v6)
		if c.AdvMSS > 0 {
			mss = c.AdvMSS
		}
		rs, err := gatewayRoutes(ul, fam)
		if err != nil {
			return err
		}
		for _, rt := range rs {
			if rt.AdvMSS != 0 && rt.AdvMSS <= mss {
				continue
			}
			have := "no advmss"
			if rt.AdvMSS != 0 {
				have = fmt.Sprintf("advmss %d", rt.AdvMSS)
			}
			r.add(Finding{Severity: Warning, Code: CodeMSSTooLarge, Interface: name,
				Message: fmt.Sprintf("the route %s via %s has %s: clients' full-size packets exceed the MTU once encapsulated (%s adds %d bytes) and rely on the balancer's too-big answers; advertise at most %d", routeDst(&rt), rt.Gw, have, c.Mode, c.Mode.overhead(v6), mss),
				Fix:     []string{fmt.Sprintf("ip route change %s via %s dev %s advmss %d", routeDst(&rt), rt.Gw, name, mss)}})
		}
	}
	return nil
}

func checkDecapConfig(c *config, ul netlink.Link, ds *decap.Status, r *Report) {
	name := ul.Attrs().Name
	var wrong []string
	if c.Mode == ModeGUE && !ds.Config.GUE {
		wrong = append(wrong, "GUE is off")
	}
	if c.Mode == ModeGUE && ds.Config.GUE && ds.Config.GUEPort != c.GUEPort {
		wrong = append(wrong, fmt.Sprintf("GUE on port %d, not %d", ds.Config.GUEPort, c.GUEPort))
	}
	for _, b := range c.Balancers {
		if !containsAddr(ds.Config.Balancers, b) {
			wrong = append(wrong, fmt.Sprintf("balancer %s not accepted", b))
		}
	}
	if locals, err := localAddrs(ul, c.VIPs); err == nil {
		for _, a := range locals {
			if (a.Is4() && len(c.v4) > 0 || a.Is6() && len(c.v6) > 0) && !containsAddr(ds.Config.Locals, a) {
				wrong = append(wrong, fmt.Sprintf("local address %s not accepted", a))
			}
		}
	}
	if len(wrong) > 0 {
		r.add(Finding{Severity: Error, Code: CodeDecapMismatch, Interface: name,
			Message: fmt.Sprintf("the decapsulation program on %s does not fit the configuration: %s", name, strings.Join(wrong, "; ")),
			Fix:     []string{fmt.Sprintf("realserver prepare --mode %s --balancer %s", c.Mode, c.Balancers[0])}})
	}
	s := ds.Stats
	mode := "generic"
	if ds.Native {
		mode = "native"
	}
	r.add(Finding{Severity: Info, Code: CodeDecapCounters, Interface: name,
		Message: fmt.Sprintf("decapsulation program %d (%s XDP) on %s: decapsulated %d (ipip4 %d, ipip6 %d, gue4 %d, gue6 %d), passed %d other packets, dropped %d (truncated %d, bad version %d, bad checksum %d, not from a balancer %d, bad header %d)",
			ds.ProgramID, mode, name, s.Decapsulated(), s.IPIP4, s.IPIP6, s.GUE4, s.GUE6, s.Passed, s.Dropped(), s.Truncated, s.BadVersion, s.BadChecksum, s.NotBalancer, s.BadHeader)})
	if s.Dropped() > 0 {
		r.add(Finding{Severity: Warning, Code: CodeDecapDrops, Interface: name,
			Message: fmt.Sprintf("the decapsulation program dropped %d tunnel packets (garbage, truncated, or from sources that are not a configured balancer: %d)", s.Dropped(), s.NotBalancer)})
	}
}

// kernelTunnelUp reports whether the kernel path decapsulates: an up ipip
// or ip6tnl device whose remote is a balancer and, in GUE mode, a fou port
// for GUE on the configured port.
func kernelTunnelUp(c *config) bool {
	if c.Mode == ModeGUE && !fouListens(c.GUEPort) {
		return false
	}
	ls, err := netlink.LinkList()
	if err != nil {
		return false
	}
	for _, l := range ls {
		if l.Attrs().Flags&net.FlagUp == 0 {
			continue
		}
		var remote net.IP
		switch t := l.(type) {
		case *netlink.Iptun:
			remote = t.Remote
		case *netlink.Ip6tnl:
			remote = t.Remote
		default:
			continue
		}
		if a, ok := netip.AddrFromSlice(remote); ok && containsAddr(c.Balancers, a.Unmap()) {
			return true
		}
	}
	return false
}

// fouListens reports whether a fou port in GUE mode listens on port (for
// either family). Without the fou module there is none.
func fouListens(port uint16) bool {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		fs, err := netlink.FouList(fam)
		if err != nil {
			continue
		}
		for _, f := range fs {
			if f.Port == int(port) && f.EncapType == netlink.FOU_ENCAP_GUE {
				return true
			}
		}
	}
	return false
}
