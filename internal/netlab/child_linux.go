package netlab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Environment of a server child.
const (
	envRole    = "DSRLB_NETLAB_CHILD"
	envConfig  = "DSRLB_NETLAB_CONFIG"
	roleServer = "server"
	// roleExit exits at once; the leftover sweep test uses it to obtain
	// the PID of a process that is certainly dead.
	roleExit = "exit"
)

// readyTimeout bounds the wait for a child started without a caller's
// deadline (StartServer).
const readyTimeout = 30 * time.Second

// childConfig is what a server child needs to know, passed as JSON in
// envConfig.
type childConfig struct {
	Name string   `json:"name"`
	HTTP []string `json:"http"`
	UDP  []string `json:"udp"`
}

// RunChildIfRequested must be called first thing in TestMain (and in main of
// programs using netlab). If the process was started as a netlab child
// (a server inside a namespace, or the trampoline of Host.Command) it runs
// that role and exits; otherwise it returns at once.
func RunChildIfRequested() {
	if len(os.Args) >= 4 && os.Args[0] == execArg0 {
		err := runExec(os.Args[1], os.Args[2], os.Args[3:])
		fmt.Fprintf(os.Stderr, "netlab: exec %s: %v\n", os.Args[2], err)
		os.Exit(127)
	}
	role := os.Getenv(envRole)
	if role == "" {
		return
	}
	var err error
	switch role {
	case roleServer:
		err = runServer(os.Getenv(envConfig))
	case roleExit:
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "netlab child %s: %v\n", role, err)
		os.Exit(2)
	}
	os.Exit(0)
}

// runExec enters namespace ns on a locked thread and replaces the process
// with path: execve keeps the namespaces of the calling thread.
func runExec(ns, path string, argv []string) error {
	runtime.LockOSThread()
	h, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	if err := netns.Set(h); err != nil {
		return err
	}
	return unix.Exec(path, argv, os.Environ())
}

// freebind lets a child bind VIPs that are not (or not yet) local, so a
// server deliberately built without its VIP still starts.
func freebind(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func networkFor(addr string, base string) (string, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", err
	}
	if ap.Addr().Is4() {
		return base + "4", nil
	}
	return base + "6", nil
}

func runServer(raw string) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	lc := net.ListenConfig{Control: freebind}
	srv := &http.Server{Handler: serverHandler(cfg.Name), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, len(cfg.HTTP)+len(cfg.UDP))
	for _, a := range cfg.HTTP {
		nw, err := networkFor(a, "tcp")
		if err != nil {
			return err
		}
		ln, err := lc.Listen(context.Background(), nw, a)
		if err != nil {
			return err
		}
		go func() { errc <- srv.Serve(ln) }()
	}
	for _, a := range cfg.UDP {
		nw, err := networkFor(a, "udp")
		if err != nil {
			return err
		}
		pc, err := lc.ListenPacket(context.Background(), nw, a)
		if err != nil {
			return err
		}
		go func() { errc <- udpEcho(cfg.Name, pc) }()
	}
	fmt.Fprintf(os.Stderr, "netlab child %s: listening http=%v udp=%v\n", cfg.Name, cfg.HTTP, cfg.UDP)
	ready := os.NewFile(3, "ready")
	if _, err := ready.WriteString("ready\n"); err != nil {
		return fmt.Errorf("signal readiness: %w", err)
	}
	ready.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		return nil
	case err := <-errc:
		return err
	}
}

// udpEcho answers every datagram with "name:payload" from the socket it
// arrived on, which is bound to a VIP, so the reply's source is the VIP.
func udpEcho(name string, pc net.PacketConn) error {
	buf := make([]byte, 65536)
	out := make([]byte, 0, 65536+len(name)+1)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		out = append(append(append(out[:0], name...), ':'), buf[:n]...)
		if _, err := pc.WriteTo(out, from); err != nil {
			fmt.Fprintf(os.Stderr, "netlab child %s: udp reply to %v: %v\n", name, from, err)
		}
	}
}

func (l *Lab) logBuffer(name string) *syncBuffer {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.logs[name]
	if b == nil {
		b = &syncBuffer{}
		l.logs[name] = b
	}
	return b
}

// Logs returns the output of every child process the lab has run, per
// host, for dumping when a test fails.
func (l *Lab) Logs() string {
	l.mu.Lock()
	names := make([]string, 0, len(l.logs))
	for n := range l.logs {
		names = append(names, n)
	}
	l.mu.Unlock()
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "--- %s ---\n%s", n, l.logBuffer(n).String())
	}
	return b.String()
}

func (l *Lab) childConfig(i int) childConfig {
	h := l.Servers[i]
	o := l.serverOptions(i)
	cfg := childConfig{Name: h.Name}
	if o.Listen != nil {
		for _, ap := range o.Listen {
			cfg.HTTP = append(cfg.HTTP, ap.String())
		}
	} else {
		for _, a := range append(slices.Clone(l.VIPs), h.IP, h.IP6) {
			if a.IsValid() {
				cfg.HTTP = append(cfg.HTTP, netip.AddrPortFrom(a, l.Cfg.HTTPPort).String())
			}
		}
	}
	for _, v := range l.VIPs {
		cfg.UDP = append(cfg.UDP, netip.AddrPortFrom(v, l.Cfg.UDPPort).String())
	}
	return cfg
}

// StartServer starts server i's child process (HTTP and UDP echo) and
// returns once it is listening. It does nothing if the child already runs.
func (l *Lab) StartServer(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	return l.startServer(ctx, i)
}

// StopServer kills server i's child process and waits until it is gone,
// so its sockets are closed when StopServer returns. It does nothing if the
// child is not running.
func (l *Lab) StopServer(i int) error {
	if i < 0 || i >= len(l.Servers) {
		return fmt.Errorf("netlab: no server %d", i)
	}
	l.ctl.Lock()
	defer l.ctl.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	p := l.procs[i]
	delete(l.procs, i)
	l.mu.Unlock()
	if p != nil {
		p.stop()
		l.log.Info("netlab: server stopped", "server", l.Servers[i].Name)
	}
	return nil
}

func (l *Lab) startServer(ctx context.Context, i int) error {
	if i < 0 || i >= len(l.Servers) {
		return fmt.Errorf("netlab: no server %d", i)
	}
	h := l.Servers[i]
	l.ctl.Lock()
	defer l.ctl.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	running := l.procs[i] != nil
	l.mu.Unlock()
	if running {
		return nil
	}
	raw, err := json.Marshal(l.childConfig(i))
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	logs := l.logBuffer(h.Name)
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envRole+"="+roleServer, envConfig+"="+string(raw))
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.ExtraFiles = []*os.File{w}
	// Pdeathsig fires when the forking *thread* exits; the forking
	// goroutine below keeps its locked thread until the child is reaped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		target, err := netns.GetFromName(h.NS)
		if err == nil {
			err = netns.Set(target)
			target.Close()
		}
		if err == nil {
			err = cmd.Start()
		}
		started <- err
		if err != nil {
			return
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	err = <-started
	w.Close()
	if err != nil {
		return fmt.Errorf("netlab: start %s: %w", h.Name, err)
	}
	if err := waitReady(ctx, r); err != nil {
		c.stop()
		return fmt.Errorf("netlab: %s not ready (does the binary call netlab.RunChildIfRequested first?): %w; output:\n%s",
			h.Name, err, logs.String())
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.stop()
		return ErrClosed
	}
	l.procs[i] = c
	l.mu.Unlock()
	l.log.Info("netlab: server started", "server", h.Name, "pid", cmd.Process.Pid)
	return nil
}

// waitReady reads the child's readiness line. The child dying closes the
// pipe (EOF); ctx expiring or being cancelled interrupts the read.
func waitReady(ctx context.Context, r *os.File) error {
	if d, ok := ctx.Deadline(); ok {
		r.SetReadDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return errors.New("child exited before it was ready")
		}
		return err
	}
	if line != "ready\n" {
		return fmt.Errorf("unexpected readiness line %q", line)
	}
	return nil
}
