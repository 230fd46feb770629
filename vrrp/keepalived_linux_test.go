package vrrp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdarp "github.com/mdlayher/arp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/dsrlb/dsrlb/vrrp"
)

const (
	testVRID     = 51
	testInterval = 100 * time.Millisecond
)

var testVIP = netlab.DefaultVIP4

// keepalived is a keepalived process in one of the lab's namespaces, with
// its state followed from its log.
type keepalived struct {
	cmd   *exec.Cmd
	host  *netlab.Host
	mu    sync.Mutex
	log   []string
	state string // "MASTER", "BACKUP", "FAULT" or ""
	done  chan struct{}
}

type kaOptions struct {
	priority     int
	nopreempt    bool
	preemptDelay int // seconds
}

func startKeepalived(t *testing.T, h *netlab.Host, o kaOptions) *keepalived {
	t.Helper()
	path, err := exec.LookPath("keepalived")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("keepalived is not installed (scripts/install-deps.sh installs it): %v", err)
		}
		t.Skipf("keepalived is not installed (run scripts/install-deps.sh): %v", err)
	}
	dir := t.TempDir()
	var extra string
	if o.nopreempt {
		extra += "    nopreempt\n"
	}
	if o.preemptDelay > 0 {
		extra += fmt.Sprintf("    preempt_delay %d\n", o.preemptDelay)
	}
	conf := fmt.Sprintf(`global_defs {
    router_id dsrlb_test
    vrrp_version 3
}
vrrp_instance VI_1 {
    state BACKUP
    interface %s
    virtual_router_id %d
    priority %d
    advert_int %.2f
%s    virtual_ipaddress {
        %s/32 dev %s
    }
}
`, h.Link, testVRID, o.priority, testInterval.Seconds(), extra, testVIP, h.Link)
	cf := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(cf, []byte(conf), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, path, "-n", "-l", "-D", "-P", "-f", cf,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own process group, so that kill reaches the parent and its VRRP
	// child at once (the parent would respawn a child killed alone).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pw.Close()
	k := &keepalived{cmd: cmd, host: h, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			k.mu.Lock()
			k.log = append(k.log, line)
			for _, s := range []string{"MASTER", "BACKUP", "FAULT"} {
				if strings.Contains(line, "Entering "+s+" STATE") {
					k.state = s
				}
			}
			k.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if k.cmd.ProcessState == nil {
			_ = k.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-k.done:
			case <-time.After(5 * time.Second):
				cancel()
				<-k.done
			}
			_ = k.cmd.Wait()
		}
		cancel()
		if t.Failed() {
			t.Logf("keepalived log:\n%s", strings.Join(k.lines(), "\n"))
		}
	})
	return k
}

func (k *keepalived) State() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state
}

func (k *keepalived) lines() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.log)
}

func (k *keepalived) contains(s string) bool {
	return slices.ContainsFunc(k.lines(), func(l string) bool { return strings.Contains(l, s) })
}

// kill SIGKILLs keepalived (parent and VRRP child) and removes the VIP it
// leaves on its interface, as the death of its host would.
func (k *keepalived) kill(t *testing.T) {
	require.NoError(t, syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL))
	<-k.done
	_ = k.cmd.Wait()
	out, err := k.host.Command(context.Background(), "ip", "addr", "del", testVIP.String()+"/32", "dev", k.host.Link).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// stop sends SIGTERM: keepalived sends a priority 0 advertisement and exits.
func (k *keepalived) stop(t *testing.T) {
	require.NoError(t, k.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-k.done:
	case <-time.After(10 * time.Second):
		t.Fatal("keepalived did not exit on SIGTERM")
	}
	_ = k.cmd.Wait()
}

// node is a dsrlb VRRP router with an ARP speaker behind a Gate.
type node struct {
	r      *vrrp.Router
	gate   *vrrp.Gate
	mu     sync.Mutex
	events []vrrp.Event
	// receivedAtMaster is the Received count when it last became master.
	receivedAtMaster uint64
	cancel           context.CancelFunc
	done             chan struct{}
}

func startNode(t *testing.T, h *netlab.Host, cfg vrrp.Config) *node {
	t.Helper()
	n := &node{done: make(chan struct{})}
	var sp *arp.Speaker
	require.NoError(t, h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		if sp, err = arp.Listen(ifi, &arp.Config{AnnounceSpacing: 50 * time.Millisecond}); err != nil {
			return err
		}
		n.gate = vrrp.NewGate(sp)
		n.gate.SetVIPs([]netip.Addr{testVIP})
		cfg.Interface = h.Link
		cfg.VRID = testVRID
		cfg.Interval = testInterval
		cfg.VIPs = []netip.Addr{testVIP}
		cfg.OnEvent = func(e vrrp.Event) {
			n.gate.HandleEvent(e)
			n.mu.Lock()
			n.events = append(n.events, e)
			if e.Kind == vrrp.BecameMaster {
				n.receivedAtMaster = n.r.Stats().Received
			}
			n.mu.Unlock()
			t.Logf("dsrlb: %v", e)
		}
		n.r, err = vrrp.New(&cfg)
		return err
	}))
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	var wg sync.WaitGroup
	wg.Go(func() { _ = sp.Run(ctx) })
	wg.Go(func() { assert.NoError(t, n.r.Run(ctx)) })
	go func() { wg.Wait(); close(n.done) }()
	t.Cleanup(func() {
		n.stop()
		_ = n.r.Close()
		_ = sp.Close()
		t.Logf("dsrlb stats: %+v", n.r.Stats())
	})
	return n
}

// stop cancels Run (a master sends priority 0) and waits for it.
func (n *node) stop() {
	n.cancel()
	<-n.done
}

func (n *node) kinds() []vrrp.Kind {
	n.mu.Lock()
	defer n.mu.Unlock()
	var k []vrrp.Kind
	for _, e := range n.events {
		k = append(k, e.Kind)
	}
	return k
}

func (n *node) last(kind vrrp.Kind) (vrrp.Event, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.events) - 1; i >= 0; i-- {
		if n.events[i].Kind == kind {
			return n.events[i], true
		}
	}
	return vrrp.Event{}, false
}

// arpOwners asks for the VIP from h and returns the MACs that answer
// within a short window.
func arpOwners(t *testing.T, h *netlab.Host) []string {
	t.Helper()
	var macs []string
	require.NoError(t, h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		c, err := mdarp.Dial(ifi)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Request(testVIP); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			p, _, err := c.Read()
			if err != nil {
				return nil // deadline: the window is over
			}
			if p.Operation == mdarp.OperationReply && p.SenderIP == testVIP && !slices.Contains(macs, p.SenderHardwareAddr.String()) {
				macs = append(macs, p.SenderHardwareAddr.String())
			}
		}
	}))
	slices.Sort(macs)
	return macs
}

// requireOwner waits until exactly mac answers ARP for the VIP.
func requireOwner(t *testing.T, client *netlab.Host, mac net.HardwareAddr) {
	t.Helper()
	var got []string
	require.Eventually(t, func() bool {
		got = arpOwners(t, client)
		return len(got) == 1 && got[0] == mac.String()
	}, 10*time.Second, 50*time.Millisecond, "ARP owner of %s should be %s only", testVIP, mac)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 15*time.Second, 10*time.Millisecond, what)
}

func TestIntegrationKeepalivedInterop(t *testing.T) {
	type env struct {
		client, lb, ka *netlab.Host
	}
	cases := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"higher-priority dsrlb preempts keepalived", func(t *testing.T, e env) {
			ka := startKeepalived(t, e.ka, kaOptions{priority: 100})
			eventually(t, "keepalived becomes master alone", func() bool { return ka.State() == "MASTER" })
			requireOwner(t, e.client, e.ka.MAC)
			n := startNode(t, e.lb, vrrp.Config{Priority: 200})
			eventually(t, "dsrlb preempts", func() bool { return n.r.State() == vrrp.Master })
			eventually(t, "keepalived yields", func() bool { return ka.State() == "BACKUP" })
			assert.Equal(t, []vrrp.Kind{vrrp.BecameBackup, vrrp.BecameMaster}, n.kinds())
			requireOwner(t, e.client, e.lb.MAC)
		}},
		{"higher-priority keepalived preempts dsrlb", func(t *testing.T, e env) {
			n := startNode(t, e.lb, vrrp.Config{Priority: 100})
			eventually(t, "dsrlb becomes master alone", func() bool { return n.r.State() == vrrp.Master })
			requireOwner(t, e.client, e.lb.MAC)
			ka := startKeepalived(t, e.ka, kaOptions{priority: 200})
			eventually(t, "keepalived preempts", func() bool { return ka.State() == "MASTER" })
			eventually(t, "dsrlb yields", func() bool { return n.r.State() == vrrp.Backup })
			ev, ok := n.last(vrrp.BecameBackup)
			require.True(t, ok)
			assert.Equal(t, e.ka.IP, ev.Peer)
			assert.Equal(t, uint8(200), ev.PeerPriority)
			requireOwner(t, e.client, e.ka.MAC)
		}},
		{"no-preempt dsrlb keeps the keepalived master", func(t *testing.T, e env) {
			ka := startKeepalived(t, e.ka, kaOptions{priority: 100})
			eventually(t, "keepalived becomes master alone", func() bool { return ka.State() == "MASTER" })
			n := startNode(t, e.lb, vrrp.Config{Priority: 200, NoPreempt: true})
			// Many master down intervals' worth of advertisements.
			eventually(t, "dsrlb hears keepalived", func() bool { return n.r.Stats().Received >= 40 })
			assert.Equal(t, vrrp.Backup, n.r.State())
			assert.NotContains(t, n.kinds(), vrrp.BecameMaster)
			assert.Equal(t, "MASTER", ka.State())
			requireOwner(t, e.client, e.ka.MAC)
		}},
		{"no-preempt keepalived keeps the dsrlb master", func(t *testing.T, e env) {
			n := startNode(t, e.lb, vrrp.Config{Priority: 100})
			eventually(t, "dsrlb becomes master alone", func() bool { return n.r.State() == vrrp.Master })
			ka := startKeepalived(t, e.ka, kaOptions{priority: 200, nopreempt: true})
			eventually(t, "keepalived becomes backup", func() bool { return ka.State() == "BACKUP" })
			sent := n.r.Stats().Sent
			eventually(t, "40 more advertisements", func() bool { return n.r.Stats().Sent >= sent+40 })
			assert.Equal(t, "BACKUP", ka.State())
			assert.Equal(t, vrrp.Master, n.r.State())
			requireOwner(t, e.client, e.lb.MAC)
		}},
		{"preempt delay holds dsrlb back", func(t *testing.T, e env) {
			ka := startKeepalived(t, e.ka, kaOptions{priority: 100})
			eventually(t, "keepalived becomes master alone", func() bool { return ka.State() == "MASTER" })
			n := startNode(t, e.lb, vrrp.Config{Priority: 200, PreemptDelay: 2 * time.Second})
			eventually(t, "dsrlb preempts after the delay", func() bool { return n.r.State() == vrrp.Master })
			eventually(t, "keepalived yields", func() bool { return ka.State() == "BACKUP" })
			// 2 s of keepalived's 100 ms advertisements were accepted
			// first; without a delay it preempts after about 3.
			n.mu.Lock()
			got := n.receivedAtMaster
			n.mu.Unlock()
			assert.GreaterOrEqual(t, got, uint64(15))
			requireOwner(t, e.client, e.lb.MAC)
		}},
		{"keepalived master SIGKILLed: dsrlb takes over at master down", func(t *testing.T, e env) {
			ka := startKeepalived(t, e.ka, kaOptions{priority: 200})
			eventually(t, "keepalived becomes master", func() bool { return ka.State() == "MASTER" })
			n := startNode(t, e.lb, vrrp.Config{Priority: 100})
			eventually(t, "dsrlb hears keepalived", func() bool { return n.r.Stats().Received >= 5 })
			require.Equal(t, vrrp.Backup, n.r.State())
			ka.kill(t)
			eventually(t, "dsrlb takes over", func() bool { return n.r.State() == vrrp.Master })
			ev, _ := n.last(vrrp.BecameMaster)
			assert.Contains(t, ev.Reason, "master down interval")
			requireOwner(t, e.client, e.lb.MAC)
		}},
		{"dsrlb master SIGKILLed: keepalived takes over", func(t *testing.T, e env) {
			n := startNode(t, e.lb, vrrp.Config{Priority: 200})
			eventually(t, "dsrlb becomes master", func() bool { return n.r.State() == vrrp.Master })
			ka := startKeepalived(t, e.ka, kaOptions{priority: 100})
			eventually(t, "keepalived becomes backup", func() bool { return ka.State() == "BACKUP" })
			// A crash: the socket goes away with no priority 0
			// advertisement, and the speaker stops answering.
			require.NoError(t, n.r.Close())
			eventually(t, "keepalived takes over", func() bool { return ka.State() == "MASTER" })
			assert.False(t, ka.contains("priority 0"), "no priority 0 advertisement from a crash")
			requireOwner(t, e.client, e.ka.MAC)
		}},
		{"keepalived master stops cleanly: priority 0, dsrlb takes over after skew", func(t *testing.T, e env) {
			ka := startKeepalived(t, e.ka, kaOptions{priority: 200})
			eventually(t, "keepalived becomes master", func() bool { return ka.State() == "MASTER" })
			n := startNode(t, e.lb, vrrp.Config{Priority: 100})
			eventually(t, "dsrlb hears keepalived", func() bool { return n.r.Stats().Received >= 5 })
			ka.stop(t)
			eventually(t, "dsrlb takes over", func() bool { return n.r.State() == vrrp.Master })
			ev, _ := n.last(vrrp.BecameMaster)
			assert.Contains(t, ev.Reason, "priority 0")
			requireOwner(t, e.client, e.lb.MAC)
		}},
		{"dsrlb master stops cleanly: priority 0, keepalived takes over", func(t *testing.T, e env) {
			n := startNode(t, e.lb, vrrp.Config{Priority: 200})
			eventually(t, "dsrlb becomes master", func() bool { return n.r.State() == vrrp.Master })
			ka := startKeepalived(t, e.ka, kaOptions{priority: 100})
			eventually(t, "keepalived becomes backup", func() bool { return ka.State() == "BACKUP" })
			n.stop()
			assert.Equal(t, []vrrp.Kind{vrrp.BecameBackup, vrrp.BecameMaster, vrrp.Stopped}, n.kinds())
			eventually(t, "keepalived takes over", func() bool { return ka.State() == "MASTER" })
			requireOwner(t, e.client, e.ka.MAC)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lab := netlab.NewT(t, &netlab.Config{Clients: 2, Servers: 1, NoServerProcesses: true})
			c.run(t, env{client: lab.Clients[0], lb: lab.Balancer, ka: lab.Clients[1]})
		})
	}
}
