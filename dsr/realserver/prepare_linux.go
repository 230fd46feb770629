package realserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/sysctl"
)

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l
}

// Prepare configures the calling thread's network namespace for DSR and
// adds what it changed to st, which must not be nil:
//
//   - creates the dummy VIP interface if Config.Interface names one that
//     does not exist, and brings the VIP interface up;
//   - adds each VIP as /32 or /128 to the VIP interface unless it is
//     already there (with any prefix length); IPv6 VIPs without duplicate
//     address detection (IFA_F_NODAD), so they are usable at once and never
//     "dadfailed" (the balancer owns the VIP, so detection would fail on an
//     interface that runs it); an IPv6 VIP that is there but tentative or
//     dadfailed is deleted and added again that way;
//   - removes the VIPs from interfaces that do ARP and neighbour discovery,
//     where they would make the server answer for them;
//   - for IPv4 VIPs, raises arp_ignore to 1 and arp_announce to 2 and
//     relaxes strict rp_filter to loose (2) on "all" or the segment
//     interface, whichever makes the kernel's effective value (the maximum
//     of both) right with the fewest writes;
//   - for IPv6 VIPs, clears disable_ipv6 on the VIP interface and the
//     segment interfaces, turns proxy_ndp off for the segment interfaces
//     (on the interface, and on "all" if that is on), and deletes every
//     proxy neighbour entry for a VIP. Linux answers a neighbour
//     solicitation only for an address on the receiving interface, an
//     anycast address joined there, or a proxy entry (with proxy_ndp and
//     forwarding on), so a VIP on lo without proxying is never answered
//     for; forwarding itself is left alone.
//
// In L3 modes (Config.Mode ModeIPIP or ModeGUE) it then sets up
// decapsulation: the kernel's tunnel devices where the kernel has the
// modules (ipip, ip6_tunnel, fou, fou6), else the decapsulation XDP program
// on the underlay interface (see l3.go); and it sets advmss on the gateway
// routes out of the underlay so that the server advertises an MSS whose
// packets still fit once encapsulated (Config.AdvMSS).
//
// Prepare is idempotent: a second call finds nothing to change and leaves
// st as it was. On error st still records everything changed so far, so
// Undo can revert a partial Prepare.
func Prepare(cfg *Config, st *State) error {
	if st == nil {
		return fmt.Errorf("%w: nil State", ErrInvalidConfig)
	}
	c, err := cfg.resolve(true)
	if err != nil {
		return err
	}
	log := logger(c.Logger)
	if len(c.v6) > 0 {
		ok, err := ipv6Available()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("realserver: this kernel has no IPv6 (/proc/sys/net/ipv6 is absent), so %v cannot be served", c.v6[0])
		}
	}
	links, err := listLinks()
	if err != nil {
		return err
	}

	holder := findLink(links, c.holder)
	if holder == nil {
		if c.holder == "lo" {
			return fmt.Errorf("realserver: lo: %w", errNoSuchLink)
		}
		d := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: c.holder}}
		if err := netlink.LinkAdd(d); err != nil {
			return fmt.Errorf("realserver: create dummy %s: %w", c.holder, err)
		}
		st.Created = appendUnique(st.Created, c.holder)
		log.Info("realserver: created dummy interface", "interface", c.holder)
		if links, err = listLinks(); err != nil {
			return err
		}
		holder = findLink(links, c.holder)
		if holder == nil {
			return fmt.Errorf("realserver: dummy %s vanished", c.holder)
		}
	}
	if !holder.up {
		if err := setLink(holder.name, true); err != nil {
			return err
		}
		if !slices.Contains(st.Created, holder.name) {
			st.SetUp = appendUnique(st.SetUp, holder.name)
		}
		log.Info("realserver: interface up", "interface", holder.name)
	}

	if len(c.v6) > 0 {
		if err := applyParam(paramDisableIPv6, holder.name, st, log); err != nil {
			return err
		}
	}

	for _, vip := range c.VIPs {
		p := hostPrefix(vip)
		have, ok := holder.has(vip)
		if ok && holder.addrFlags(vip)&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			// Tentative or dadfailed: the kernel does not use it. Re-add
			// it without duplicate address detection.
			if err := delAddr(holder.name, have); err != nil {
				return err
			}
			st.recordRemoved(Address{Interface: holder.name, Prefix: have, NoDAD: holder.addrFlags(vip)&unix.IFA_F_NODAD != 0})
			log.Info("realserver: removed VIP that duplicate address detection holds back", "prefix", have, "interface", holder.name)
			ok, p = false, have
		}
		if !ok {
			if err := addAddr(holder.name, p, true); err != nil {
				return err
			}
			st.recordAdded(Address{Interface: holder.name, Prefix: p, NoDAD: vip.Is6()})
			log.Info("realserver: added VIP", "prefix", p, "interface", holder.name)
		}
		// Remove the VIP from ARP interfaces only after it is on the
		// holder, so the service never loses it in between.
		for _, l := range links {
			p, ok := l.has(vip)
			if !ok || l == holder || !l.arp {
				continue
			}
			if err := delAddr(l.name, p); err != nil {
				return err
			}
			st.recordRemoved(Address{Interface: l.name, Prefix: p, NoDAD: vip.Is6() && l.addrFlags(vip)&unix.IFA_F_NODAD != 0})
			log.Info("realserver: removed VIP from ARP interface", "prefix", p, "interface", l.name)
		}
	}

	segs, err := segmentLinks(&c, links)
	if err != nil {
		return err
	}
	var params []param
	if len(c.v4) > 0 {
		params = append(params, paramARPIgnore, paramARPAnnounce, paramRPFilter)
	}
	if len(c.v6) > 0 {
		params = append(params, paramDisableIPv6, paramProxyNDP)
	}
	for _, s := range segs {
		for _, p := range params {
			if err := applyParam(p, s.name, st, log); err != nil {
				return err
			}
		}
	}
	if len(c.v6) == 0 {
		return prepareL3(&c, st, log)
	}
	proxies, err := listProxies(links)
	if err != nil {
		return err
	}
	for _, px := range proxies {
		if px.dev == "" || !slices.Contains(c.v6, px.addr) {
			continue
		}
		if err := delProxy(px.dev, px.addr); err != nil {
			return err
		}
		st.recordProxy(Address{Interface: px.dev, Prefix: hostPrefix(px.addr)})
		log.Info("realserver: deleted proxy neighbour entry", "addr", px.addr, "interface", px.dev)
	}
	return prepareL3(&c, st, log)
}

// applyParam makes the effective value of p on dev acceptable.
func applyParam(p param, dev string, st *State, log *slog.Logger) error {
	allKey, devKey, err := p.keys(dev)
	if err != nil {
		return err
	}
	all, err := readSysctlInt(allKey)
	if err != nil {
		return err
	}
	d, err := readSysctlInt(devKey)
	if err != nil {
		return err
	}
	setAll, setDev := p.plan(all, d)
	for _, w := range []struct {
		set bool
		key sysctl.Key
		old int
	}{{setAll, allKey, all}, {setDev, devKey, d}} {
		if !w.set {
			continue
		}
		v := strconv.Itoa(p.target)
		if err := sysctl.Write(w.key, v); err != nil {
			return fmt.Errorf("realserver: %w", err)
		}
		st.recordSysctl(w.key.String(), strconv.Itoa(w.old), v)
		log.Info("realserver: sysctl", "key", w.key.String(), "old", w.old, "new", v)
	}
	return nil
}

func setLink(name string, up bool) error {
	nl, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("realserver: %s: %w", name, err)
	}
	if up {
		err = netlink.LinkSetUp(nl)
	} else {
		err = netlink.LinkSetDown(nl)
	}
	if err != nil {
		return fmt.Errorf("realserver: set %s up=%v: %w", name, up, err)
	}
	return nil
}

// Undo reverts what st records, in the reverse order of Prepare, in the
// calling thread's network namespace, and removes each reverted entry from
// st. Things already reverted (an address already gone, a dummy already
// deleted) are skipped. A sysctl whose value is no longer what Prepare
// wrote, or an interface that is no longer a dummy, was changed by someone
// else: Undo leaves it alone, drops it from st, and reports it with an
// error wrapping ErrModified. On other errors the entries not yet reverted
// stay in st, so Undo can be retried.
func Undo(st *State) error {
	if st == nil {
		return nil
	}
	errs := undoL3(st)

	for len(st.Proxies) > 0 {
		a := st.Proxies[len(st.Proxies)-1]
		if err := addProxy(a.Interface, a.Prefix.Addr()); err != nil && !errors.Is(err, unix.EEXIST) {
			if errors.Is(err, errNoSuchLink) || isNotFound(err) {
				errs = append(errs, fmt.Errorf("%w: cannot restore proxy entry %v: interface %s is gone", ErrModified, a.Prefix.Addr(), a.Interface))
			} else {
				return errors.Join(append(errs, err)...)
			}
		}
		st.Proxies = st.Proxies[:len(st.Proxies)-1]
	}

	for len(st.Sysctls) > 0 {
		s := st.Sysctls[len(st.Sysctls)-1]
		k, err := sysctl.Parse(s.Key)
		if err != nil {
			// A record that names no key cannot be undone; keeping it
			// would block every later entry.
			errs = append(errs, fmt.Errorf("realserver: state: %w", err))
			st.Sysctls = st.Sysctls[:len(st.Sysctls)-1]
			continue
		}
		cur, err := sysctl.Read(k)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("realserver: %w", err))...)
		}
		if cur != s.New {
			errs = append(errs, fmt.Errorf("%w: sysctl %s is %s, Prepare set %s", ErrModified, s.Key, cur, s.New))
		} else if err := sysctl.Write(k, s.Old); err != nil {
			return errors.Join(append(errs, fmt.Errorf("realserver: %w", err))...)
		}
		st.Sysctls = st.Sysctls[:len(st.Sysctls)-1]
	}

	links, err := listLinks()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	// Delete what Prepare added before restoring what it removed: a
	// tentative VIP that Prepare re-added without duplicate address
	// detection is both.
	for len(st.Added) > 0 {
		a := st.Added[len(st.Added)-1]
		if l := findLink(links, a.Interface); l != nil {
			if p, ok := l.has(a.Prefix.Addr()); ok && p == a.Prefix {
				if err := delAddr(a.Interface, a.Prefix); err != nil {
					return errors.Join(append(errs, err)...)
				}
			}
		}
		st.Added = st.Added[:len(st.Added)-1]
	}
	if links, err = listLinks(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for len(st.Removed) > 0 {
		a := st.Removed[len(st.Removed)-1]
		l := findLink(links, a.Interface)
		if l != nil {
			if _, ok := l.has(a.Prefix.Addr()); !ok {
				if err := addAddr(a.Interface, a.Prefix, a.NoDAD); err != nil {
					return errors.Join(append(errs, err)...)
				}
			}
		} else {
			errs = append(errs, fmt.Errorf("%w: cannot restore %v: interface %s is gone", ErrModified, a.Prefix, a.Interface))
		}
		st.Removed = st.Removed[:len(st.Removed)-1]
	}
	for len(st.SetUp) > 0 {
		name := st.SetUp[len(st.SetUp)-1]
		if findLink(links, name) != nil {
			if err := setLink(name, false); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
		st.SetUp = st.SetUp[:len(st.SetUp)-1]
	}
	for len(st.Created) > 0 {
		name := st.Created[len(st.Created)-1]
		if l := findLink(links, name); l != nil {
			if !l.dummy {
				errs = append(errs, fmt.Errorf("%w: %s is no longer a dummy interface", ErrModified, name))
			} else if err := deleteLink(name); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
		st.Created = st.Created[:len(st.Created)-1]
	}
	return errors.Join(errs...)
}

func deleteLink(name string) error {
	nl, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("realserver: %s: %w", name, err)
	}
	if err := netlink.LinkDel(nl); err != nil {
		return fmt.Errorf("realserver: delete %s: %w", name, err)
	}
	return nil
}

// isNotFound reports whether err says that an interface does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func (s *State) recordRemoved(a Address) { s.Removed = appendUnique(s.Removed, a) }

func (s *State) recordProxy(a Address) { s.Proxies = appendUnique(s.Proxies, a) }
