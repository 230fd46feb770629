//go:build unix

package health

import (
	"context"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
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

// BenchmarkMonitorCPU1000TCP checks 1000 real loopback listeners every
// second for 5 s per iteration and reports the process's CPU time as a
// share of one core ("cpu-%"; the requirement is below 5 % for the checking
// side) and the checks completed per second. The listeners never call
// Accept: the kernel completes the handshakes on its own (the backlog holds
// far more than the five connections per listener), so the measurement is
// the checking side plus the kernel's loopback TCP work, not a server
// application's accept loop. On loopback both TCP endpoints' kernel work
// (SYN, SYN-ACK, ACK, RST processing and the listener's child socket) is
// charged to this process; against remote backends only the checking half
// is, so the checking side alone costs less than the figure.
//
// "probe" is the default TCPChecker (on Linux four system calls per check);
// "net.Conn" is the same check through a net.Dialer and a net.Conn, for
// comparison. Run without -race (the detector multiplies CPU cost) and on
// an otherwise idle machine: other processes' work is not charged here,
// but it delays the checks.
func BenchmarkMonitorCPU1000TCP(b *testing.B) {
	const n, run = 1000, 5 * time.Second
	targets := make([]Target, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		targets[i] = targetOf(b, l.Addr().String())
	}
	for _, bc := range []struct {
		name    string
		checker Checker
	}{
		{"probe", &TCPChecker{}},
		{"net.Conn", &TCPChecker{Dialer: &net.Dialer{KeepAlive: -1}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var cpu, wall time.Duration
			var checks int64
			for range b.N {
				c, w, ok := monitorCPU(b, targets, bc.checker, run)
				cpu, wall, checks = cpu+c, wall+w, checks+ok
			}
			b.ReportMetric(100*float64(cpu)/float64(wall), "cpu-%")
			b.ReportMetric(float64(checks)/wall.Seconds(), "checks/s")
		})
	}
}

// monitorCPU runs a Monitor checking every target with checker once a
// second for run and returns the process CPU time and wall time it took
// and the number of checks that passed. It fails b if a target went down:
// the figure would then not be the cost of checking healthy backends.
func monitorCPU(b *testing.B, targets []Target, checker Checker, run time.Duration) (cpu, wall time.Duration, checks int64) {
	b.Helper()
	var downs atomic.Int64
	m := NewMonitor(&MonitorConfig{
		Interval: time.Second, Timeout: 500 * time.Millisecond,
		OnEvent: func(e Event) {
			if !e.Up {
				downs.Add(1)
			}
		},
	})
	chk := &countingChecker{Checker: checker}
	for _, tg := range targets {
		if _, err := m.Add(tg, chk); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	c0 := cpuTime(b)
	w0 := time.Now()
	err := m.Run(ctx)
	wall = time.Since(w0)
	cpu = cpuTime(b) - c0
	if err != context.DeadlineExceeded {
		b.Fatalf("Run: %v", err)
	}
	if d := downs.Load(); d > 0 {
		b.Fatalf("%d targets went down", d)
	}
	return cpu, wall, chk.ok.Load()
}
