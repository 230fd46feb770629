package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/sysctl"
)

// netnsDir is where named namespaces are bind-mounted, the directory that
// "ip netns" uses.
const netnsDir = "/run/netns"

// bridgeName is the bridge in the switch namespace.
const bridgeName = "br0"

// New builds a lab: it removes leftovers of dead netlab processes, creates
// the namespaces, the bridge and the veth pairs, configures addresses and
// sysctls, and starts the server child processes, returning once every child
// is listening. ctx bounds the whole construction. On error everything built
// so far is removed again.
func New(ctx context.Context, cfg *Config) (*Lab, error) {
	c, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	log := c.Logger
	if _, err := SweepLeftovers(log); err != nil {
		log.Warn("netlab: sweeping leftovers", "err", err)
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	l := &Lab{
		ID:   id,
		VIPs: c.VIPs,
		Cfg:  c,
		labState: &labState{
			log:   log,
			procs: map[int]*child{},
			logs:  map[string]*syncBuffer{},
		},
	}
	if err := writeMarker(id); err != nil {
		return nil, err
	}
	if err := l.build(ctx); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		return nil, err
	}
	log.Info("netlab: lab ready", "id", id, "servers", len(l.Servers), "clients", len(l.Clients))
	return l, nil
}

func randomID() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("netlab: random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func nsName(id, role string) string { return "dsrlb-" + id + "-" + role }

func (l *Lab) newHost(role string, last byte) *Host {
	h := &Host{Name: role, NS: nsName(l.ID, role), Link: "eth0", lab: l}
	if last != 0 {
		a := Prefix4.Addr().As4()
		a[3] = last
		h.IP = netip.AddrFrom4(a)
		if l.Cfg.IPv6 {
			b := Prefix6.Addr().As16()
			b[15] = last
			h.IP6 = netip.AddrFrom16(b)
		}
	}
	return h
}

func (l *Lab) build(ctx context.Context) error {
	l.Switch = l.newHost("sw", 0)
	l.Switch.Link = bridgeName
	l.Balancer = l.newHost("lb", 2)
	for i := range l.Cfg.Clients {
		l.Clients = append(l.Clients, l.newHost("c"+strconv.Itoa(i), byte(10+i)))
	}
	for i := range l.Cfg.Servers {
		l.Servers = append(l.Servers, l.newHost("s"+strconv.Itoa(i), byte(20+i)))
	}
	for _, h := range l.all() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := createNamedNS(h.NS); err != nil {
			return fmt.Errorf("netlab: create namespace %s: %w", h.NS, err)
		}
		l.mu.Lock()
		l.made = append(l.made, h.NS)
		l.mu.Unlock()
	}
	if err := l.buildSwitch(); err != nil {
		return err
	}
	for _, h := range l.hosts() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.plug(h); err != nil {
			return err
		}
	}
	if l.Cfg.NoServerProcesses {
		return nil
	}
	for i := range l.Servers {
		if l.serverOptions(i).NoProcess {
			continue
		}
		if err := l.startServer(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// all returns every host including the switch, in creation order.
func (l *Lab) all() []*Host { return append([]*Host{l.Switch}, l.hosts()...) }

// hosts returns the hosts on the segment: balancer, clients, servers.
func (l *Lab) hosts() []*Host {
	hs := []*Host{l.Balancer}
	hs = append(hs, l.Clients...)
	return append(hs, l.Servers...)
}

func (l *Lab) serverOptions(i int) ServerOptions {
	if l.Cfg.Server == nil {
		return ServerOptions{}
	}
	return l.Cfg.Server(i)
}

// buildSwitch creates br0 in the switch namespace. IPv6 is disabled there
// so the bridge ports add no link-local chatter of their own to the segment;
// multicast snooping is off so neighbour discovery never depends on an MLD
// querier that the lab does not have.
func (l *Lab) buildSwitch() error {
	return l.Switch.do(func() error {
		for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
			if err := writeSysctl(k, "1"); err != nil {
				return err
			}
		}
		if err := linkUp("lo"); err != nil {
			return err
		}
		off := false
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}, MulticastSnooping: &off}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("netlab: add bridge: %w", err)
		}
		return linkUp(bridgeName)
	})
}

// plug creates the veth pair of h inside the switch namespace, with its
// peer born directly as eth0 in h's namespace, so no interface ever appears
// in the caller's namespace; then it configures h.
func (l *Lab) plug(h *Host) error {
	target, err := netns.GetFromName(h.NS)
	if err != nil {
		return fmt.Errorf("netlab: open namespace %s: %w", h.NS, err)
	}
	defer target.Close()
	err = l.Switch.do(func() error {
		br, err := netlink.LinkByName(bridgeName)
		if err != nil {
			return err
		}
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: h.Name, MasterIndex: br.Attrs().Index},
			PeerName:      "eth0",
			PeerNamespace: netlink.NsFd(target),
		}
		if err := netlink.LinkAdd(v); err != nil {
			return fmt.Errorf("add veth: %w", err)
		}
		return linkUp(h.Name)
	})
	if err != nil {
		return fmt.Errorf("netlab: plug %s: %w", h.Name, err)
	}
	if err := h.do(func() error { return l.configure(h) }); err != nil {
		return fmt.Errorf("netlab: configure %s: %w", h.Name, err)
	}
	return nil
}

// configure runs inside h's namespace.
func (l *Lab) configure(h *Host) error {
	var sysctls [][2]string
	if l.Cfg.IPv6 {
		// Duplicate address detection would leave the addresses tentative
		// (unusable) for a second or more; the lab's addresses are unique
		// by construction.
		for _, k := range []string{"all", "default", "eth0"} {
			sysctls = append(sysctls, [2]string{"net.ipv6.conf." + k + ".accept_dad", "0"})
		}
	} else {
		// IPv4-only labs keep IPv6 (link-local, MLD, router solicitations)
		// off the segment, so byte counters show only test traffic.
		for _, k := range []string{"all", "default"} {
			sysctls = append(sysctls, [2]string{"net.ipv6.conf." + k + ".disable_ipv6", "1"})
		}
	}
	switch h.Name[0] {
	case 'l':
		// The balancer's own kernel must never route VIP traffic.
		sysctls = append(sysctls,
			[2]string{"net.ipv4.ip_forward", "0"},
			[2]string{"net.ipv6.conf.all.forwarding", "0"})
	case 's':
		i, _ := strconv.Atoi(h.Name[1:])
		o := l.serverOptions(i)
		ign, ann := 1, 2
		if o.ARPIgnore != nil {
			ign = *o.ARPIgnore
		}
		if o.ARPAnnounce != nil {
			ann = *o.ARPAnnounce
		}
		for _, k := range []string{"all", "eth0"} {
			sysctls = append(sysctls,
				[2]string{"net.ipv4.conf." + k + ".arp_ignore", strconv.Itoa(ign)},
				[2]string{"net.ipv4.conf." + k + ".arp_announce", strconv.Itoa(ann)})
		}
	}
	for _, kv := range sysctls {
		if err := writeSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := linkUp("lo"); err != nil {
		return err
	}
	eth, err := netlink.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(eth); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	h.MAC = slices.Clone(eth.Attrs().HardwareAddr)
	if err := addAddr(eth, netip.PrefixFrom(h.IP, Prefix4.Bits())); err != nil {
		return err
	}
	if h.IP6.IsValid() {
		if err := addAddr(eth, netip.PrefixFrom(h.IP6, Prefix6.Bits())); err != nil {
			return err
		}
	}
	switch h.Name[0] {
	case 'c':
		// VIPs outside the segment are still reached over it.
		for _, v := range l.VIPs {
			if Prefix4.Contains(v) || Prefix6.Contains(v) {
				continue
			}
			r := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: prefixNet(netip.PrefixFrom(v, v.BitLen())), Scope: netlink.SCOPE_LINK}
			if err := netlink.RouteAdd(r); err != nil {
				return fmt.Errorf("route %v: %w", v, err)
			}
		}
	case 's':
		i, _ := strconv.Atoi(h.Name[1:])
		if l.serverOptions(i).NoVIP {
			return nil
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		for _, v := range l.VIPs {
			if err := addAddr(lo, netip.PrefixFrom(v, v.BitLen())); err != nil {
				return err
			}
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func addAddr(link netlink.Link, p netip.Prefix) error {
	a := &netlink.Addr{IPNet: prefixNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(link, a); err != nil {
		return fmt.Errorf("add %v to %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

func linkUp(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", name, err)
	}
	return nil
}

// createNamedNS creates a namespace bind-mounted under /run/netns. Creating
// it moves the calling thread into it, so it runs on a goroutine that locks
// its thread and never unlocks: the runtime discards that thread when the
// goroutine returns, and no other goroutine ever runs in the new namespace.
func createNamedNS(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	return <-errc
}

// deleteNamedNS removes the bind mount and the file; the namespace itself
// (and with it its interfaces) goes away once nothing else references it.
func deleteNamedNS(name string) error {
	p := filepath.Join(netnsDir, name)
	err := unix.Unmount(p, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netlab: unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netlab: remove %s: %w", p, err)
	}
	return nil
}

// doIn runs fn on a fresh goroutine locked to its OS thread after moving
// that thread into namespace ns. The goroutine never unlocks, so the thread
// (now in another namespace) is destroyed rather than returned to the pool.
func doIn(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		target, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("netlab: open namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("netlab: enter namespace %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// writeSysctl writes a sysctl of the calling thread's namespace; key is in
// either notation of sysctl(8) (see Host.Sysctl).
func writeSysctl(key, value string) error {
	k, err := sysctl.Parse(key)
	if err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	if err := sysctl.Write(k, value); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return nil
}

func readSysctl(key string) (string, error) {
	k, err := sysctl.Parse(key)
	if err != nil {
		return "", fmt.Errorf("netlab: %w", err)
	}
	v, err := sysctl.Read(k)
	if err != nil {
		return "", fmt.Errorf("netlab: %w", err)
	}
	return v, nil
}

// Close stops every child process and deletes every namespace the lab made,
// which also destroys its bridge and veth pairs. It is safe to call more
// than once; later calls return nil. Sockets still open in a lab namespace
// (for example idle keep-alive connections of Host.HTTPClient) keep that
// namespace alive, unnamed, until they are closed.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := l.procs
	l.procs = map[int]*child{}
	made := l.made
	l.mu.Unlock()

	var errs []error
	for _, p := range procs {
		p.stop()
	}
	for _, ns := range slices.Backward(made) {
		if err := deleteNamedNS(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := removeMarker(l.ID); err != nil {
			errs = append(errs, err)
		}
	}
	l.log.Info("netlab: lab closed", "id", l.ID)
	return errors.Join(errs...)
}
