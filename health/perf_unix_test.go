//go:build unix

package health

import (
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingChecker counts the checks that passed.
type countingChecker struct {
	Checker
	ok atomic.Int64
}

func (c *countingChecker) Check(ctx context.Context, t Target) error {
	err := c.Checker.Check(ctx, t)
	if err == nil {
		c.ok.Add(1)
	}
	return err
}

// TestMonitorCPU1000TCP checks 1000 real loopback listeners every second
// for 5 s and bounds the process CPU time to 5% of one core. The listeners
// never call Accept: the kernel completes the handshakes on its own (the
// backlog holds far more than the five connections per listener), so the
// measurement is the checking side plus the kernel's loopback TCP work, not
// a server application's accept loop.
func TestMonitorCPU1000TCP(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 5 s")
	}
	if raceEnabled {
		t.Skip("the race detector multiplies CPU cost; run without -race")
	}
	const n, run = 1000, 5 * time.Second
	targets := make([]Target, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		targets[i] = targetOf(t, l.Addr().String())
	}
	before := runtime.NumGoroutine()
	var downs atomic.Int64
	m := NewMonitor(&MonitorConfig{
		Interval: time.Second, Timeout: 500 * time.Millisecond,
		OnEvent: func(e Event) {
			if !e.Up {
				downs.Add(1)
			}
		},
	})
	chk := &countingChecker{Checker: &TCPChecker{}}
	for _, tg := range targets {
		_, err := m.Add(tg, chk)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	c0 := cpuTime(t)
	w0 := time.Now()
	err := m.Run(ctx)
	wall := time.Since(w0)
	cpu := cpuTime(t) - c0
	require.ErrorIs(t, err, context.DeadlineExceeded)
	waitGoroutines(t, before)

	share := float64(cpu) / float64(wall)
	t.Logf("%d targets, %v: %d checks, CPU %v over %v wall = %.2f%% of one core", n, run, chk.ok.Load(), cpu, wall.Round(time.Millisecond), 100*share)
	assert.Zero(t, downs.Load(), "no target went down")
	assert.GreaterOrEqual(t, chk.ok.Load(), int64(n*3), "every target checked about once a second")
	for _, st := range m.Targets() {
		require.Equal(t, StateUp, st.State, "%v", st.Target)
	}
	// On loopback both TCP endpoints' kernel work (SYN, SYN-ACK, ACK, RST
	// processing and the listener's child socket) is charged to this
	// process; against remote backends only the checking half is. The
	// budget for the checking side is 5% of one core, so the loopback bound
	// is twice that.
	assert.Less(t, share, 0.10, "1000 TCP checks per second on loopback must cost < 10%% of one core")
}
