//go:build linux

package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RequireRoot skips t unless it runs with CAP_NET_ADMIN (as root); when
// the environment variable CI is "true" it fails instead, so a privileged
// CI run can never pass by skipping.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "integration test needs root (CAP_NET_ADMIN, CAP_NET_RAW) to create network namespaces and packet sockets"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true forbids skipping")
	}
	t.Skip(msg)
}

// NS is a named network namespace with one goroutine locked to an OS thread
// inside it. Work that must happen in the namespace (creating sockets,
// configuring links) is sent to that goroutine with Do; sockets created
// there can afterwards be used from any goroutine.
type NS struct {
	Name string
	h    netns.NsHandle
	work chan func()
	done chan struct{}
}

// New creates a namespace named prefix plus a random suffix and removes it
// in t.Cleanup.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	var suf [4]byte
	_, _ = rand.Read(suf[:])
	n := &NS{
		Name: prefix + "-" + hex.EncodeToString(suf[:]),
		work: make(chan func()),
		done: make(chan struct{}),
	}
	errc := make(chan error, 1)
	go func() {
		// The thread enters the namespace and never leaves it: when this
		// goroutine returns still locked, the runtime discards the thread.
		runtime.LockOSThread()
		defer close(n.done)
		h, err := netns.NewNamed(n.Name)
		if err != nil {
			errc <- err
			return
		}
		n.h = h
		errc <- nil
		for fn := range n.work {
			fn()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatalf("creating namespace %s: %v", n.Name, err)
	}
	t.Cleanup(func() {
		close(n.work)
		<-n.done
		_ = n.h.Close()
		if err := netns.DeleteNamed(n.Name); err != nil {
			t.Errorf("deleting namespace %s: %v", n.Name, err)
		}
	})
	// Loopback up, so local sockets behave normally.
	n.MustDo(t, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	return n
}

// Do runs fn on the namespace's thread and returns its error.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	n.work <- func() { errc <- fn() }
	return <-errc
}

// MustDo is Do that fails t on error.
func (n *NS) MustDo(t testing.TB, fn func() error) {
	t.Helper()
	if err := n.Do(fn); err != nil {
		t.Fatalf("in namespace %s: %v", n.Name, err)
	}
}

// Sysctl sets a sysctl (dotted name) inside the namespace.
func (n *NS) Sysctl(t testing.TB, name, value string) {
	t.Helper()
	n.MustDo(t, func() error {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
		return os.WriteFile(p, []byte(value), 0o644)
	})
}

// Interface looks up an interface inside the namespace.
func (n *NS) Interface(t testing.TB, name string) *net.Interface {
	t.Helper()
	var ifi *net.Interface
	n.MustDo(t, func() error {
		var err error
		ifi, err = net.InterfaceByName(name)
		return err
	})
	return ifi
}

// Veth creates a veth pair: aName in a with aAddr, bName in b with bAddr
// (invalid prefixes mean no address), both up. The pair lives and dies with
// the namespaces.
func Veth(t testing.TB, a *NS, aName string, aAddr netip.Prefix, b *NS, bName string, bAddr netip.Prefix) {
	t.Helper()
	a.MustDo(t, func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName}
		if err := netlink.LinkAdd(v); err != nil {
			return fmt.Errorf("adding veth %s/%s: %w", aName, bName, err)
		}
		peer, err := netlink.LinkByName(bName)
		if err != nil {
			return err
		}
		return netlink.LinkSetNsFd(peer, int(b.h))
	})
	up := func(name string, p netip.Prefix) func() error {
		return func() error {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if p.IsValid() {
				addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
				if p.Addr().Is6() {
					addr.Flags = unix.IFA_F_NODAD
				}
				if err := netlink.AddrAdd(l, addr); err != nil {
					return err
				}
			}
			return netlink.LinkSetUp(l)
		}
	}
	a.MustDo(t, up(aName, aAddr))
	b.MustDo(t, up(bName, bAddr))
	a.WaitOperUp(t, aName)
	b.WaitOperUp(t, bName)
}

// WaitOperUp waits (at most 10 s) until the kernel reports the link as
// operationally up. Until then its queueing discipline drops every frame
// sent, which would make the first frames of a test vanish.
func (n *NS) WaitOperUp(t testing.TB, name string) {
	t.Helper()
	updates := make(chan netlink.LinkUpdate, 16)
	stop := make(chan struct{})
	defer close(stop)
	var idx int
	n.MustDo(t, func() error {
		if err := netlink.LinkSubscribe(updates, stop); err != nil {
			return err
		}
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		idx = l.Attrs().Index
		if l.Attrs().OperState == netlink.OperUp {
			idx = -1
		}
		return nil
	})
	timeout := time.After(10 * time.Second)
	for idx != -1 {
		select {
		case u := <-updates:
			if int(u.Index) == idx && u.Attrs().OperState == netlink.OperUp {
				return
			}
		case <-timeout:
			t.Fatalf("link %s in %s did not come up", name, n.Name)
		}
	}
}
