package netlab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (h *Host) closed() bool {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return h.lab.closed
}

// do is Do without the closed check, for use while building.
func (h *Host) do(fn func() error) error { return doIn(h.NS, fn) }

// Do runs fn on a fresh OS thread inside h's namespace and returns its
// error. The thread is discarded afterwards, so the caller's goroutines never
// change namespace. Sockets created by fn (for example an AF_PACKET socket
// for a balancer) stay in h's namespace and may be used from any goroutine;
// goroutines started by fn run in the caller's namespace, not h's.
func (h *Host) Do(fn func() error) error {
	if h.closed() {
		return ErrClosed
	}
	return h.do(fn)
}

// execArg0 marks a re-execution of the current binary that must enter a
// namespace and exec the real program (see Host.Command).
const execArg0 = "dsrlb-netlab-exec"

// Command returns a command that runs program name inside h's namespace.
// Go cannot choose the namespace of a forked child directly, so the command
// re-executes the current binary (/proc/self/exe), whose
// RunChildIfRequested enters the namespace and then execs name; the
// resulting process is name itself, so cmd.Process, Wait and signals behave
// as usual. Do not change the returned Path or Args; Env, Dir, Stdin,
// Stdout, Stderr and SysProcAttr may be set. Cancelling ctx kills the
// process. The command does not set Pdeathsig (the Go runtime may retire
// the forking thread at any time, which would kill the child): the caller
// must Wait for it or cancel ctx.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	resolved := cmd.Path
	cmd.Path = "/proc/self/exe"
	cmd.Args = append([]string{execArg0, h.NS, resolved, name}, args...)
	if h.closed() {
		cmd.Err = ErrClosed
	}
	return cmd
}

// DialContext connects from h's namespace: the socket is created on a
// thread inside it, then returned for use from any goroutine. addr should
// be an IP literal; host names would be resolved from the caller's
// namespace.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen opens a stream listener (network "tcp", "tcp4", "tcp6") inside h's
// namespace, for tests that bring their own server.
func (h *Host) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var lc net.ListenConfig
		var err error
		ln, err = lc.Listen(ctx, network, addr)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket (network "udp", "udp4", "udp6")
// inside h's namespace.
func (h *Host) ListenPacket(ctx context.Context, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() error {
		var lc net.ListenConfig
		var err error
		pc, err = lc.ListenPacket(ctx, network, addr)
		return err
	})
	return pc, err
}

// HTTPClient returns a client whose connections are made from h's
// namespace. Each call returns a fresh transport, so tests do not share
// connection pools; keep-alives are on (set DisableKeepAlives on the
// *http.Transport to turn them off). Call CloseIdleConnections when done,
// or idle connections keep the namespace alive after Lab.Close.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         h.DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
	}}
}

// LinkStats returns the kernel counters of h's segment interface (eth0,
// or br0 for the switch).
func (h *Host) LinkStats() (LinkStats, error) {
	var s LinkStats
	err := h.Do(func() error {
		link, err := netlink.LinkByName(h.Link)
		if err != nil {
			return fmt.Errorf("netlab: %s: %w", h.Link, err)
		}
		st := link.Attrs().Statistics
		if st == nil {
			return fmt.Errorf("netlab: %s: no statistics", h.Link)
		}
		s = LinkStats{
			RxPackets: st.RxPackets, TxPackets: st.TxPackets,
			RxBytes: st.RxBytes, TxBytes: st.TxBytes,
			RxDropped: st.RxDropped, TxDropped: st.TxDropped,
		}
		return nil
	})
	return s, err
}

func neigh(link netlink.Link, ip netip.Addr, mac net.HardwareAddr) *netlink.Neigh {
	fam := unix.AF_INET
	if ip.Is6() {
		fam = unix.AF_INET6
	}
	return &netlink.Neigh{
		LinkIndex: link.Attrs().Index, Family: fam, State: netlink.NUD_PERMANENT,
		IP: ip.AsSlice(), HardwareAddr: mac,
	}
}

// SetNeighbor installs (or replaces) a permanent neighbour entry on h's
// segment interface, so h sends frames for ip to mac without ARP or
// neighbour discovery. Tests use it to aim a client at one server's MAC
// directly, or at the balancer before it answers ARP for the VIP.
func (h *Host) SetNeighbor(ip netip.Addr, mac net.HardwareAddr) error {
	ip = ip.Unmap()
	return h.Do(func() error {
		link, err := netlink.LinkByName(h.Link)
		if err != nil {
			return err
		}
		if err := netlink.NeighSet(neigh(link, ip, mac)); err != nil {
			return fmt.Errorf("netlab: %s: neighbour %v: %w", h.Name, ip, err)
		}
		return nil
	})
}

// DelNeighbor removes h's neighbour entry for ip, so the kernel resolves it
// again (ARP or neighbour discovery).
func (h *Host) DelNeighbor(ip netip.Addr) error {
	ip = ip.Unmap()
	return h.Do(func() error {
		link, err := netlink.LinkByName(h.Link)
		if err != nil {
			return err
		}
		if err := netlink.NeighDel(neigh(link, ip, nil)); err != nil {
			return fmt.Errorf("netlab: %s: delete neighbour %v: %w", h.Name, ip, err)
		}
		return nil
	})
}

// Sysctl writes a sysctl in h's namespace. The key is in either notation of
// sysctl(8): dotted, with a dot inside an interface name written as a slash
// (net.ipv4.conf.eth0/100.rp_filter), or slashed
// (net/ipv4/conf/eth0.100/rp_filter).
func (h *Host) Sysctl(key, value string) error {
	return h.Do(func() error { return writeSysctl(key, value) })
}

// ReadSysctl reads a sysctl (a key as for Sysctl) in h's namespace, without
// the trailing newline.
func (h *Host) ReadSysctl(key string) (string, error) {
	var v string
	err := h.Do(func() error {
		var err error
		v, err = readSysctl(key)
		return err
	})
	return v, err
}

// Addrs returns the addresses configured on interface link ("eth0", "lo")
// in h's namespace.
func (h *Host) Addrs(link string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := h.Do(func() error {
		l, err := netlink.LinkByName(link)
		if err != nil {
			return err
		}
		as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range as {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ones, _ := a.Mask.Size()
			out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
		}
		return nil
	})
	return out, err
}
