package health

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errDown = errors.New("scripted failure")

// scriptChecker returns scripted results in order (nil after the script
// ends) and reports every call.
type scriptChecker struct {
	mu     sync.Mutex
	script []error
	calls  chan Target
}

func newScript(results ...error) *scriptChecker {
	return &scriptChecker{script: results, calls: make(chan Target, 1000)}
}

func (s *scriptChecker) Check(ctx context.Context, t Target) error {
	s.mu.Lock()
	var err error
	if len(s.script) > 0 {
		err, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()
	s.calls <- t
	return err
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		require.FailNow(t, "timed out waiting for "+what)
		panic("unreachable")
	}
}

// runMonitor runs m until the test ends and checks that Run returned.
func runMonitor(t *testing.T, m *Monitor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

var tgt = Target{Addr: netip.MustParseAddr("192.0.2.21"), Port: 80}

func TestMonitorRiseFall(t *testing.T) {
	type step struct {
		result error
		state  State
		event  string // "", "up" or "down"
	}
	tests := []struct {
		name       string
		rise, fall int
		steps      []step
	}{
		{"first result decides up, fall 3, rise 2", 2, 3, []step{
			{nil, StateUp, "up"},
			{errDown, StateUp, ""},
			{errDown, StateUp, ""},
			{errDown, StateDown, "down"},
			{nil, StateDown, ""},
			{errDown, StateDown, ""},
			{nil, StateDown, ""},
			{nil, StateUp, "up"},
		}},
		{"fall counts from the start", 2, 3, []step{
			{errDown, StateUnknown, ""},
			{errDown, StateUnknown, ""},
			{errDown, StateDown, "down"},
			{nil, StateDown, ""},
			{nil, StateUp, "up"},
		}},
		{"fall 2: one failure at start keeps the target up", 2, 2, []step{
			{errDown, StateUnknown, ""},
			{nil, StateUp, "up"},
			{errDown, StateUp, ""},
			{errDown, StateDown, "down"},
		}},
		{"a pass at start resets the failures", 2, 3, []step{
			{errDown, StateUnknown, ""},
			{errDown, StateUnknown, ""},
			{nil, StateUp, "up"},
			{errDown, StateUp, ""},
			{errDown, StateUp, ""},
			{errDown, StateDown, "down"},
		}},
		{"fall 1: the first failure takes the target down", 2, 1, []step{
			{errDown, StateDown, "down"},
			{nil, StateDown, ""},
			{nil, StateUp, "up"},
		}},
		{"rise and fall 1 follow every result", 1, 1, []step{
			{nil, StateUp, "up"},
			{errDown, StateDown, "down"},
			{nil, StateUp, "up"},
			{nil, StateUp, ""},
		}},
		{"interrupted runs reset the count", 3, 2, []step{
			{nil, StateUp, "up"},
			{errDown, StateUp, ""},
			{nil, StateUp, ""},
			{errDown, StateUp, ""},
			{errDown, StateDown, "down"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			events := make(chan Event, 100)
			m := NewMonitor(&MonitorConfig{
				Interval: time.Second, Jitter: -1, Rise: tc.rise, Fall: tc.fall,
				Clock: clk, OnEvent: func(e Event) { events <- e },
			})
			var results []error
			for _, s := range tc.steps {
				results = append(results, s.result)
			}
			chk := newScript(results...)
			k, err := m.Add(tgt, chk)
			require.NoError(t, err)
			runMonitor(t, m)
			for i, s := range tc.steps {
				recv(t, chk.calls, "check call")
				wait, ok := clk.WaitTimer()
				require.True(t, ok, "step %d: no timer armed after the check", i)
				assert.Equal(t, time.Second, wait, "step %d: next check one interval after this one", i)
				st, ok := m.State(k)
				require.True(t, ok)
				assert.Equal(t, s.state, st.State, "step %d", i)
				assert.Equal(t, s.result, st.LastErr, "step %d", i)
				if s.event != "" {
					ev := recv(t, events, "event at step")
					assert.Equal(t, s.event == "up", ev.Up, "step %d", i)
					assert.Equal(t, k, ev.Key)
					assert.Equal(t, tgt, ev.Target)
					assert.Equal(t, clk.Now(), ev.At)
					if !ev.Up {
						assert.ErrorIs(t, ev.Reason, errDown)
					} else {
						assert.NoError(t, ev.Reason)
					}
				}
				clk.Advance(wait)
			}
			select {
			case ev := <-events:
				t.Fatalf("unexpected event %+v", ev)
			default:
			}
		})
	}
}

// seq returns a Rand that yields vals in turn, then repeats the last.
func seq(vals ...float64) func() float64 {
	var mu sync.Mutex
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		v := vals[0]
		if len(vals) > 1 {
			vals = vals[1:]
		}
		return v
	}
}

func TestMonitorJitterSchedule(t *testing.T) {
	clk := newFakeClock()
	m := NewMonitor(&MonitorConfig{
		Interval: 10 * time.Second, Jitter: 0.2, Clock: clk,
		Rand: seq(0.5, 0.0, 0.999, 0.75),
	})
	chk := newScript()
	_, err := m.Add(tgt, chk)
	require.NoError(t, err)
	runMonitor(t, m)

	// First check after rand·jitter·interval = 0.5·0.2·10 s.
	wait, ok := clk.WaitTimer()
	require.True(t, ok)
	assert.Equal(t, time.Second, wait)
	clk.Advance(wait)
	recv(t, chk.calls, "first check")

	// Then interval·(1 + (2·rand − 1)·jitter) after each start.
	for i, want := range []time.Duration{8 * time.Second, 11996 * time.Millisecond, 11 * time.Second} {
		wait, ok := clk.WaitTimer()
		require.True(t, ok)
		assert.InDelta(t, want, wait, float64(time.Millisecond), "interval %d", i)
		clk.Advance(wait)
		recv(t, chk.calls, "check")
	}
}

func TestMonitorJitterSpreadsFirstChecks(t *testing.T) {
	clk := newFakeClock()
	m := NewMonitor(&MonitorConfig{Interval: time.Second, Clock: clk}) // default jitter 0.1
	start := clk.Now()
	for i := range 1000 {
		_, err := m.Add(Target{Addr: netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), Port: 80}, &TCPChecker{})
		require.NoError(t, err)
	}
	// Count first-check times per 10 ms bucket over the jitter window.
	buckets := map[time.Duration]int{}
	m.mu.Lock()
	for _, e := range m.queue {
		d := e.next.Sub(start)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.Less(t, d, 100*time.Millisecond)
		buckets[d/(10*time.Millisecond)]++
	}
	m.mu.Unlock()
	assert.Len(t, buckets, 10, "first checks fall in every 10 ms slot of the 100 ms jitter window")
	for b, n := range buckets {
		assert.Less(t, n, 200, "slot %v holds %d of 1000 first checks: herd", b, n)
	}
}

func TestMonitorDeduplicates(t *testing.T) {
	m := NewMonitor(nil)
	a := Target{Addr: netip.MustParseAddr("::ffff:192.0.2.21"), Port: 80}
	b := Target{Addr: netip.MustParseAddr("192.0.2.21"), Port: 80}

	k1, err := m.Add(a, &TCPChecker{})
	require.NoError(t, err)
	k2, err := m.Add(b, &TCPChecker{}) // another service, its own but equal checker
	require.NoError(t, err)
	assert.Equal(t, k1, k2)
	require.Len(t, m.Targets(), 1)

	k3, err := m.Add(b, &HTTPChecker{Path: "/healthz"})
	require.NoError(t, err)
	k4, err := m.Add(b, &HTTPChecker{Path: "/ready"})
	require.NoError(t, err)
	assert.NotEqual(t, k1, k3)
	assert.NotEqual(t, k3, k4)
	assert.Len(t, m.Targets(), 3)

	fn := CheckerFunc(func(context.Context, Target) error { return nil })
	k5, err := m.Add(b, fn)
	require.NoError(t, err)
	k6, err := m.Add(b, fn)
	require.NoError(t, err)
	assert.True(t, k5 != k6, "uncomparable checkers are never shared")

	_, err = m.Add(b, nil)
	assert.ErrorIs(t, err, ErrNilChecker)

	assert.True(t, m.Remove(k1))
	_, ok := m.State(k1)
	assert.True(t, ok, "still referenced by the second Add")
	assert.True(t, m.Remove(k2))
	_, ok = m.State(k1)
	assert.False(t, ok)
	assert.False(t, m.Remove(k1))
	assert.Len(t, m.Targets(), 4)
}

func TestMonitorRemoveStopsChecks(t *testing.T) {
	clk := newFakeClock()
	m := NewMonitor(&MonitorConfig{Interval: time.Second, Jitter: -1, Clock: clk})
	chk := newScript()
	k, err := m.Add(tgt, chk)
	require.NoError(t, err)
	other := newScript()
	_, err = m.Add(Target{Addr: tgt.Addr, Port: 81}, other)
	require.NoError(t, err)
	runMonitor(t, m)
	recv(t, chk.calls, "first check")
	recv(t, other.calls, "first check of the other")
	require.True(t, m.Remove(k))
	for range 3 {
		wait, ok := clk.WaitTimer()
		require.True(t, ok)
		clk.Advance(wait)
		recv(t, other.calls, "check of the remaining target")
	}
	assert.Empty(t, chk.calls, "removed target was checked again")
}

func TestMonitorTimeout(t *testing.T) {
	events := make(chan Event, 1)
	m := NewMonitor(&MonitorConfig{
		Interval: time.Hour, Timeout: 20 * time.Millisecond, Jitter: -1, Fall: 1,
		OnEvent: func(e Event) { events <- e },
	})
	_, err := m.Add(tgt, CheckerFunc(func(ctx context.Context, _ Target) error {
		<-ctx.Done()
		return ctx.Err()
	}))
	require.NoError(t, err)
	runMonitor(t, m)
	ev := recv(t, events, "down event")
	assert.False(t, ev.Up)
	assert.ErrorIs(t, ev.Reason, context.DeadlineExceeded)
}

// A consumer that blocks must not stall checking, and once it resumes it
// sees the latest state of every key.
func TestMonitorSlowConsumer(t *testing.T) {
	clk := newFakeClock()
	release := make(chan struct{})
	var mu sync.Mutex
	var got []Event
	m := NewMonitor(&MonitorConfig{
		Interval: time.Second, Jitter: -1, Rise: 1, Fall: 1, Clock: clk,
		OnEvent: func(e Event) {
			<-release
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		},
	})
	var flips []error
	for i := range 20 {
		if i%2 == 1 {
			flips = append(flips, errDown)
		} else {
			flips = append(flips, nil)
		}
	}
	chk := newScript(flips...)
	k, err := m.Add(tgt, chk)
	require.NoError(t, err)
	runMonitor(t, m)
	for i := range 20 {
		recv(t, chk.calls, "check while the consumer is blocked")
		wait, ok := clk.WaitTimer()
		require.True(t, ok)
		if i < 19 {
			clk.Advance(wait)
		}
	}
	st, _ := m.State(k)
	require.Equal(t, StateDown, st.State, "the 20th scripted result fails")
	close(release)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].Up == (st.State == StateUp)
	}, 5*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Less(t, len(got), 20, "queued events for one key are coalesced")
}

func TestMonitorRunOnceAndNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	m := NewMonitor(&MonitorConfig{Interval: 10 * time.Millisecond, Workers: 8})
	var n atomic.Int32
	_, err := m.Add(tgt, CheckerFunc(func(context.Context, Target) error { n.Add(1); return nil }))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	require.Eventually(t, func() bool { return n.Load() >= 3 }, 5*time.Second, time.Millisecond)
	assert.ErrorIs(t, m.Run(ctx), ErrRunning)
	cancel()
	require.ErrorIs(t, recv(t, done, "Run to return"), context.Canceled)
	waitGoroutines(t, before)
}

// waitGoroutines fails unless the goroutine count drops back to at most
// want within a bounded time (exiting goroutines need a moment to be
// accounted for after they signalled completion).
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutine leak: %d > %d\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}
