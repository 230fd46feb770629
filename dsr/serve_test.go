package dsr_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/dsr/dsrtest"
	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

type segment struct {
	fabric  *dsrtest.Fabric
	lb      *dsrtest.Port
	client  *dsrtest.Port
	servers []*dsrtest.Port
	svc     dsr.Service
}

func newSegment(t *testing.T, lbPorts int, servers int) (*segment, []*dsrtest.Port) {
	f := dsrtest.NewFabric()
	s := &segment{fabric: f, client: f.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 0x0a})}
	var lbs []*dsrtest.Port
	for i := range lbPorts {
		// Several forwarders of one balancer share its MAC, like several
		// queues of one interface.
		p := f.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 1})
		if i == 0 {
			s.lb = p
		}
		lbs = append(lbs, p)
	}
	s.svc = dsr.Service{VIP: netip.MustParseAddr("192.0.2.100"), Protocol: dsr.TCP, Port: 80}
	for i := range servers {
		mac := net.HardwareAddr{2, 0, 0, 0, 0x10, byte(i)}
		s.servers = append(s.servers, f.NewPort(mac))
		s.svc.Backends = append(s.svc.Backends, dsr.Backend{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(21 + i)}), MAC: mac})
	}
	return s, lbs
}

func synFrame(sport uint16) []byte {
	return ft.Build(
		ft.Ethernet{Dst: ft.MAC("02:00:00:00:00:01"), Src: ft.MAC("02:00:00:00:00:0a")},
		ft.IPv4{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("192.0.2.100")},
		ft.TCP{SrcPort: sport, DstPort: 80, Flags: frame.FlagSYN},
	)
}

// TestServeOverFabric runs real Serve loops over the in-memory segment with
// several workers while the configuration changes underneath them.
func TestServeOverFabric(t *testing.T) {
	seg, lbs := newSegment(t, 2, 3)
	b, err := dsr.New(&dsr.Config{Workers: 2})
	require.NoError(t, err)
	require.NoError(t, b.AddService(seg.svc))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, len(lbs)+1)
	for _, p := range lbs {
		wg.Go(func() { errs <- b.Serve(ctx, p) })
	}
	wg.Go(func() { errs <- b.Run(ctx) })

	// Reconfigure concurrently: weights change, never the backend set.
	wg.Go(func() {
		for i := range 50 {
			bs := append([]dsr.Backend(nil), seg.svc.Backends...)
			bs[i%3].Weight = uint32(1 + i%5)
			if err := b.SetBackends(seg.svc.Key(), bs); err != nil {
				errs <- err
				return
			}
		}
	})

	const flows = 300
	for i := range flows {
		require.NoError(t, seg.client.Send(synFrame(uint16(10000+i))))
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	got := 0
	perServer := make([]int, len(seg.servers))
	for got < flows {
		progress := false
		for i, sp := range seg.servers {
			for _, pk := range sp.Pending() {
				assert.Equal(t, net.HardwareAddr(pk.Data[0:6]), sp.HardwareAddr())
				perServer[i]++
				got++
				progress = true
			}
		}
		if !progress {
			// Wait for the next delivery to any server.
			wctx, wcancel := context.WithCancel(rctx)
			select {
			case <-rctx.Done():
				wcancel()
				t.Fatalf("only %d of %d frames arrived", got, flows)
			case <-waitAny(wctx, seg.servers):
			}
			wcancel()
		}
	}
	for i, n := range perServer {
		assert.Positive(t, n, "server %d got no flows", i)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := b.Stats()
	assert.Equal(t, uint64(flows), st.Forwarded)
	assert.Equal(t, flows, st.Flows)
}

// waitAny returns a channel closed when any port has a frame queued. Its
// goroutines end when ctx is cancelled.
func waitAny(ctx context.Context, ports []*dsrtest.Port) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	for _, p := range ports {
		go func() {
			pk, err := p.Recv(ctx)
			if err == nil {
				// Put it back for the caller to count.
				p.Requeue(pk)
				once.Do(func() { close(ch) })
			}
		}()
	}
	return ch
}

func TestServeStopsOnCancelAndReportsReadErrors(t *testing.T) {
	seg, _ := newSegment(t, 1, 1)
	b, err := dsr.New(nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, seg.lb) }()
	cancel()
	require.NoError(t, <-done, "cancel is a clean stop")

	go func() { done <- b.Serve(context.Background(), seg.lb) }()
	require.NoError(t, seg.lb.Close())
	err = <-done
	require.Error(t, err)
	assert.True(t, errors.Is(err, dsrtest.ErrClosed), "got %v", err)
}
