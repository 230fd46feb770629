//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
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
	go func() {
		_, _ = io.Copy(io.Discard, in)
		cancel()
	}()
	ready := func() error {
		_, err := io.WriteString(out, "ready\n")
		return err
	}
	switch spec.Role {
	case Balancer:
		return runBalancer(ctx, spec, ready)
	case PacketReflector:
		return runReflector(ctx, spec, ready)
	}
	return fmt.Errorf("unknown role %q", spec.Role)
}

func runBalancer(ctx context.Context, spec childSpec, ready func() error) error {
	mac, err := net.ParseMAC(spec.BackendMAC)
	if err != nil {
		return err
	}
	b, err := dsr.New(&dsr.Config{Workers: 1, BatchSize: spec.BatchSize})
	if err != nil {
		return err
	}
	err = b.AddService(dsr.Service{
		VIP:      spec.VIP,
		Protocol: dsr.UDP,
		Port:     ServicePort,
		Backends: []dsr.Backend{{Addr: spec.Backend, MAC: mac}},
	})
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
	if err := ready(); err != nil {
		return err
	}
	serveErr := b.Serve(ctx, f)
	<-runDone
	return serveErr
}

// runReflector is the bare AF_PACKET baseline: the same socket, filter,
// receive buffer and batch size as the Balancer's forwarder, and per frame
// only a MAC swap.
// The frames' offload headers go back out unchanged, as the forwarder's do.
func runReflector(ctx context.Context, spec childSpec, ready func() error) error {
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
	if err := ready(); err != nil {
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
		for i := range n {
			swapMAC(msgs[i].Buf[:msgs[i].N])
		}
		// A frame the kernel has no room for (ENOBUFS when the sink's
		// ring is full) is dropped and the rest of the batch still sent,
		// as in the Balancer's forwarder; the sink counts it as loss.
		_, _ = conn.WriteBatch(msgs[:n])
	}
}
