//go:build linux

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/internal/afpacket"
)

// childEnv carries a childSpec to a re-executed copy of the binary that
// runs one user-space candidate inside the forwarder namespace.
const childEnv = "DSRLB_BENCH_CHILD"

// childSpec tells a child which candidate to run and where.
type childSpec struct {
	Role       Candidate
	Ifname     string
	VIP        netip.Addr
	Backend    netip.Addr
	BackendMAC string
	BatchSize  int
}

// RunChildIfRequested runs a benchmark candidate and exits if this process
// was started as one by Run; otherwise it returns at once. Call it first
// thing in main or TestMain of every binary that calls Run.
func RunChildIfRequested() {
	raw := os.Getenv(childEnv)
	if raw == "" {
		return
	}
	if err := runChild(raw, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runChild starts the candidate, writes "ready" to out once it forwards,
// and stops when in reaches EOF (the parent closed the pipe or died).
func runChild(raw string, in io.Reader, out io.Writer) error {
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("bad spec: %w", err)
	}
	// DSRLB_BENCH_CPUPROFILE=dir writes one CPU profile per candidate run
	// into dir, to see where a candidate's time goes.
	if dir := os.Getenv("DSRLB_BENCH_CPUPROFILE"); dir != "" {
		f, err := os.CreateTemp(dir, string(spec.Role)+"-*.prof")
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cnt callCounters
	// After "ready", the parent writes one line per question: "stats"
	// is answered with one JSON line of childStats. EOF means stop.
	var outMu sync.Mutex
	var stats func() childStats
	var statsMu sync.Mutex
	go func() {
		defer cancel()
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			if sc.Text() != "stats" {
				continue
			}
			statsMu.Lock()
			f := stats
			statsMu.Unlock()
			var st childStats
			if f != nil {
				st = f()
			}
			b, err := json.Marshal(st)
			if err != nil {
				return
			}
			outMu.Lock()
			_, err = out.Write(append(b, '\n'))
			outMu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	ready := func(f func() childStats) error {
		statsMu.Lock()
		stats = f
		statsMu.Unlock()
		outMu.Lock()
		defer outMu.Unlock()
		_, err := io.WriteString(out, "ready\n")
		return err
	}
	switch spec.Role {
	case Balancer:
		return runBalancer(ctx, spec, &cnt, ready)
	case BalancerXDP:
		return runBalancerXDP(ctx, spec, &cnt, ready)
	case PacketReflector:
		return runReflector(ctx, spec, &cnt, ready)
	}
	return fmt.Errorf("unknown role %q", spec.Role)
}

// childStats is a user-space candidate's answer to "stats": its counters
// since it started.
type childStats struct {
	// ReadCalls counts receive calls that returned frames, ReadFrames
	// the frames they returned; likewise for transmit.
	ReadCalls, ReadFrames, WriteCalls, WriteFrames uint64
	// KernelDrops are frames the kernel dropped for a full socket receive
	// buffer; SendDrops frames refused on transmit (a full peer ring).
	KernelDrops, SendDrops uint64
	// XDP are the XDP program's counters (BalancerXDP only).
	XDP *xdpCounts `json:",omitempty"`
}

// callCounters counts both user-space candidates' receive and transmit
// calls at the same level (one ReadBatch or WriteBatch of the packet
// socket, each one recvmmsg or, barring a full ring, one sendmmsg), so
// that frames per call compare like with like. One goroutine writes, the
// stats query reads: atomics, no lock.
type callCounters struct {
	readCalls, readFrames, writeCalls, writeFrames atomic.Uint64
}

func (c *callCounters) read(n int) {
	if n > 0 {
		c.readCalls.Add(1)
		c.readFrames.Add(uint64(n))
	}
}

func (c *callCounters) wrote(n int) {
	if n > 0 {
		c.writeCalls.Add(1)
		c.writeFrames.Add(uint64(n))
	}
}

func (c *callCounters) stats(kernelDrops, sendDrops uint64) childStats {
	return childStats{
		ReadCalls: c.readCalls.Load(), ReadFrames: c.readFrames.Load(),
		WriteCalls: c.writeCalls.Load(), WriteFrames: c.writeFrames.Load(),
		KernelDrops: kernelDrops, SendDrops: sendDrops,
	}
}

// countingForwarder counts the Balancer's calls into its PacketForwarder
// exactly as runReflector counts its own, and passes the VIP filter
// updates through.
type countingForwarder struct {
	*dsr.PacketForwarder
	cnt *callCounters
}

func (f countingForwarder) ReadBatch(frames []dsr.Frame) (int, error) {
	n, err := f.PacketForwarder.ReadBatch(frames)
	f.cnt.read(n)
	return n, err
}

func (f countingForwarder) WriteBatch(frames []dsr.Frame) (int, error) {
	n, err := f.PacketForwarder.WriteBatch(frames)
	f.cnt.wrote(len(frames))
	return n, err
}

// newBalancer is the Balancer both balancer candidates run: one worker,
// one UDP service on the VIP (default scheduler, mh) whose only backend is
// the sink.
func newBalancer(spec childSpec) (*dsr.Balancer, error) {
	mac, err := net.ParseMAC(spec.BackendMAC)
	if err != nil {
		return nil, err
	}
	b, err := dsr.New(&dsr.Config{Workers: 1, BatchSize: spec.BatchSize})
	if err != nil {
		return nil, err
	}
	err = b.AddService(dsr.Service{
		VIP:      spec.VIP,
		Protocol: dsr.UDP,
		Port:     ServicePort,
		Backends: []dsr.Backend{{Addr: spec.Backend, MAC: mac}},
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

func runBalancer(ctx context.Context, spec childSpec, cnt *callCounters, ready func(func() childStats) error) error {
	b, err := newBalancer(spec)
	if err != nil {
		return err
	}
	f, err := dsr.ListenPacket(spec.Ifname, &dsr.PacketConfig{VIPs: []netip.Addr{spec.VIP}, BatchSize: spec.BatchSize})
	if err != nil {
		return err
	}
	defer f.Close()
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(ctx) }()
	err = ready(func() childStats {
		ps := f.Stats()
		return cnt.stats(ps.KernelDrops, ps.SendDrops)
	})
	if err != nil {
		return err
	}
	serveErr := b.Serve(ctx, countingForwarder{f, cnt})
	<-runDone
	return serveErr
}

// runReflector is the bare AF_PACKET baseline: the same socket, filter,
// receive buffer and batch size as the Balancer's forwarder, and per frame
// only a MAC swap.
// The frames' offload headers go back out unchanged, as the forwarder's do.
func runReflector(ctx context.Context, spec childSpec, cnt *callCounters, ready func(func() childStats) error) error {
	ifi, err := net.InterfaceByName(spec.Ifname)
	if err != nil {
		return err
	}
	filter, err := afpacket.VIPFilterRaw([]netip.Addr{spec.VIP})
	if err != nil {
		return err
	}
	conn, err := afpacket.Listen(ifi, &afpacket.Config{
		Filter:        filter,
		BatchSize:     spec.BatchSize,
		ReceiveBuffer: dsr.DefaultReceiveBuffer, // what dsr.ListenPacket uses by default
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	msgs := make([]afpacket.Message, spec.BatchSize)
	for i := range msgs {
		msgs[i].Buf = make([]byte, dsr.MaxFrameSize)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	err = ready(func() childStats {
		st, _ := conn.Stats() // on error the locally kept counters are still right
		return cnt.stats(st.KernelDrops, st.SendDrops)
	})
	if err != nil {
		return err
	}
	for {
		n, err := conn.ReadBatch(msgs)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return err
		}
		cnt.read(n)
		for i := range n {
			swapMAC(msgs[i].Buf[:msgs[i].N])
		}
		// A frame the kernel has no room for (ENOBUFS when the sink's
		// ring is full) is dropped and the rest of the batch still sent,
		// as in the Balancer's forwarder; the sink counts it as loss.
		_, _ = conn.WriteBatch(msgs[:n])
		cnt.wrote(n)
	}
}

// runBalancerXDP is the Balancer serving an XDPForwarder on the forwarder
// veth, set up as runBalancer's: its program forwards the generated
// traffic in the forwarder veth's NAPI thread, and the process only runs
// the control plane (and the Go path for what the program passes up,
// counted like runBalancer's calls). Serve loads the plan into the
// program's maps before it reads, so "ready" waits until the Balancer
// reports the program's counters, which it does once it serves it.
func runBalancerXDP(ctx context.Context, spec childSpec, cnt *callCounters, ready func(func() childStats) error) error {
	b, err := newBalancer(spec)
	if err != nil {
		return err
	}
	f, err := dsr.ListenXDP(spec.Ifname, &dsr.XDPConfig{
		Packet: &dsr.PacketConfig{VIPs: []netip.Addr{spec.VIP}, BatchSize: spec.BatchSize},
	})
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(ctx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- b.Serve(ctx, countingXDPForwarder{f, cnt}) }()
	finish := func(err error) error {
		cancel()
		return errors.Join(err, <-serveDone, <-runDone)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for b.Stats().XDP == nil {
		select {
		case err := <-serveDone:
			serveDone <- err
			return finish(fmt.Errorf("serving the XDP forwarder: %w", err))
		case <-deadline:
			return finish(errors.New("the Balancer did not take up the XDP forwarder within 10s"))
		case <-tick.C:
		}
	}
	err = ready(func() childStats {
		ps := f.Stats()
		st := cnt.stats(ps.KernelDrops, ps.SendDrops)
		if xs := b.Stats().XDP; xs != nil {
			x := &xdpCounts{Received: xs.Received, Forwarded: xs.Forwarded, PassedBy: xs.Passed}
			for _, n := range xs.Passed {
				x.Passed += n
			}
			for _, n := range xs.Dropped {
				x.Dropped += n
			}
			st.XDP = x
		}
		return st
	})
	if err != nil {
		return finish(err)
	}
	<-ctx.Done()
	return finish(nil)
}

// countingXDPForwarder counts the Balancer's calls into the packet socket
// of its XDPForwarder (the frames the program passed up), as
// countingForwarder does, and keeps the XDPForwarder visible to the
// Balancer: it is the value the Balancer serves.
type countingXDPForwarder struct {
	*dsr.XDPForwarder
	cnt *callCounters
}

func (f countingXDPForwarder) ReadBatch(frames []dsr.Frame) (int, error) {
	n, err := f.XDPForwarder.ReadBatch(frames)
	f.cnt.read(n)
	return n, err
}

func (f countingXDPForwarder) WriteBatch(frames []dsr.Frame) (int, error) {
	n, err := f.XDPForwarder.WriteBatch(frames)
	f.cnt.wrote(len(frames))
	return n, err
}
