//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netnsDir is where named network namespaces are bound ("ip netns").
const netnsDir = "/run/netns"

// attachVethPeer attaches xdp_pass to the peer of the veth ifindex if the
// peer has no XDP program (see Attach). It returns nil for an interface
// that is not a veth or whose peer already runs one.
func (p *Program) attachVethPeer(ifindex int) (link.Link, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("xdp: interface %d: %w", ifindex, err)
	}
	if l.Type() != "veth" {
		return nil, nil
	}
	peerIndex, nsid := l.Attrs().ParentIndex, l.Attrs().NetNsID
	if peerIndex == 0 {
		return nil, nil // the peer is gone
	}
	ns, err := peerNamespace(nsid)
	if err != nil {
		return nil, fmt.Errorf("xdp: veth %s: %w", l.Attrs().Name, err)
	}
	defer ns.Close()
	var peer link.Link
	err = inNamespace(ns, func() error {
		pl, err := netlink.LinkByIndex(peerIndex)
		if err != nil {
			return err
		}
		if x := pl.Attrs().Xdp; x != nil && x.Attached {
			return nil // it runs NAPI already
		}
		peer, err = link.AttachXDP(link.XDPOptions{Program: p.objs.XdpPass, Interface: peerIndex, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("xdp: veth %s: attach a pass-through program to its peer (XDP_TX needs NAPI there): %w", l.Attrs().Name, err)
	}
	return peer, nil
}

// vethPeerIndex returns the index of the peer of the veth ifindex (in the
// peer's namespace), or 0 for an interface that is not a veth or whose
// peer is gone.
func vethPeerIndex(ifindex int) (int, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return 0, fmt.Errorf("xdp: interface %d: %w", ifindex, err)
	}
	if l.Type() != "veth" {
		return 0, nil
	}
	return l.Attrs().ParentIndex, nil
}

// peerNamespace opens the namespace whose ID, as the current namespace
// knows it, is nsid (-1: the current namespace), among the named ones.
func peerNamespace(nsid int) (netns.NsHandle, error) {
	if nsid < 0 {
		return netns.Get()
	}
	names, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	for _, e := range names {
		h, err := netns.GetFromPath(filepath.Join(netnsDir, e.Name()))
		if err != nil {
			continue
		}
		if id, err := netlink.GetNetNsIdByFd(int(h)); err == nil && id == nsid {
			return h, nil
		}
		h.Close()
	}
	return 0, fmt.Errorf("the peer's namespace (ID %d) is not among the named ones in %s", nsid, netnsDir)
}

// inNamespace runs fn on a goroutine of its own whose thread is switched
// to ns. A thread that cannot be switched back stays locked, so it ends
// with the goroutine and never returns to the pool.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("restore namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
