package health

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"
)

// State is the health of one registered check.
type State uint8

const (
	// StateUnknown is the state of a check that has not passed yet and has
	// not failed Fall times in a row. Callers count it as up (see
	// MonitorConfig.Fall).
	StateUnknown State = iota
	// StateUp means the target passed its last Rise checks (or its first).
	StateUp
	// StateDown means the target failed its last Fall checks.
	StateDown
)

// String returns "unknown", "up" or "down".
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	case StateUnknown:
		return "unknown"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Key identifies one registration in a Monitor: a target and a way of
// checking it. It is comparable; two Add calls with equal keys share one
// check.
type Key struct {
	// Target is the probed target's identity.
	Target TargetKey
	// check is the checker's CheckKey, or the Checker value itself.
	check any
}

// Event reports a state change of one check.
type Event struct {
	// Key is the registration that changed.
	Key Key
	// Target is the probed target.
	Target Target
	// Up is the new state: true for StateUp, false for StateDown.
	Up bool
	// Reason is the error of the check that caused a down transition, nil
	// for up.
	Reason error
	// At is when the deciding check finished, by the Monitor's clock.
	At time.Time
}

// Status is a snapshot of one check's state.
type Status struct {
	Key    Key
	Target Target
	State  State
	// LastErr is the result of the most recent check (nil if it passed).
	LastErr error
	// LastCheck is when the most recent check finished; zero before any.
	LastCheck time.Time
	// Successes and Failures count the current run of equal results.
	Successes, Failures int
}

// MonitorConfig configures a Monitor. A nil *MonitorConfig means all defaults.
type MonitorConfig struct {
	// Interval is the time between the starts of two checks of one target.
	// Zero means 2 s.
	Interval time.Duration
	// Timeout bounds each check (through its context). Zero means 1 s, and
	// it is capped at Interval, so checks of one target never overlap.
	Timeout time.Duration
	// Jitter spreads checks in time as a fraction of Interval: the first
	// check of a target starts after a random delay in [0, Jitter·Interval),
	// and every next one Interval·(1±Jitter) after the previous start, so
	// targets added together do not stay in lock-step (no thundering herd on
	// shared servers or on the balancer itself). Zero means 0.1; negative
	// means no jitter; values above 0.5 are capped at 0.5.
	Jitter float64
	// Rise is how many consecutive passes turn a down target up. Zero means 2.
	Rise int
	// Fall is how many consecutive failures turn an up target down. Zero
	// means 3. It applies from the start: a new target is in StateUnknown,
	// counts as up, and goes down only after Fall consecutive failures, so
	// one lost probe at start-up does not take a backend out. Its first
	// pass, on the other hand, turns it up at once (not after Rise passes),
	// so a starting balancer confirms its backends after one check.
	Fall int
	// Workers bounds how many checks run at once. Zero means 128. A check that
	// times out holds a worker for Timeout, so with many black-holed targets
	// checks start late rather than piling up unbounded goroutines.
	Workers int
	// OnEvent receives state changes. It is called from one goroutine owned
	// by Run, in order, never concurrently and never while the Monitor holds
	// a lock, so it may call the Monitor's methods. Backpressure: a slow
	// OnEvent never delays checking; undelivered events are queued, and a
	// newer event for a key whose previous event is still queued replaces
	// it (the consumer sees the latest state, and the queue stays bounded by
	// the number of keys). To consume events from a channel, send to it from
	// OnEvent. Nil means events are not delivered (poll State instead).
	OnEvent func(Event)
	// Clock is the time source. Nil means the system clock.
	Clock Clock
	// Rand returns uniform numbers in [0, 1) for jitter. Nil means
	// math/rand/v2.Float64. Tests inject a fixed sequence.
	Rand func() float64
	// Logger receives debug messages about check results. Nil discards.
	Logger *slog.Logger
}

// ErrRunning is returned by Run when the Monitor is already running or has
// run before: a Monitor runs once.
var ErrRunning = errors.New("health: monitor already ran")

// Monitor checks registered targets on a schedule and reports state
// changes. One scheduler goroutine keeps the checks in a heap ordered by
// due time and hands due checks to a bounded pool of workers; there is no
// goroutine per target. Add, Remove, State and Targets are safe for
// concurrent use, before and during Run.
type Monitor struct {
	interval, timeout time.Duration
	jitter            float64
	rise, fall        int
	workers           int
	onEvent           func(Event)
	clock             Clock
	rand              func() float64
	log               *slog.Logger

	mu      sync.Mutex
	entries map[Key]*entry
	queue   schedHeap
	started bool
	wake    chan struct{}

	evMu      sync.Mutex
	evQueue   []Event
	evPending map[Key]int // index into evQueue of a queued event per key
	evWake    chan struct{}
}

type entry struct {
	key       Key
	target    Target
	checker   Checker
	refs      int
	state     State
	succ      int
	fail      int
	lastErr   error
	lastCheck time.Time
	next      time.Time
	idx       int // index in queue; -1 while in flight or removed
	removed   bool
}

// NewMonitor returns a Monitor configured by cfg (nil means defaults).
func NewMonitor(cfg *MonitorConfig) *Monitor {
	var c MonitorConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Interval <= 0 {
		c.Interval = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.Timeout > c.Interval {
		c.Timeout = c.Interval
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = 0.1
	case c.Jitter < 0:
		c.Jitter = 0
	case c.Jitter > 0.5:
		c.Jitter = 0.5
	}
	if c.Rise <= 0 {
		c.Rise = 2
	}
	if c.Fall <= 0 {
		c.Fall = 3
	}
	if c.Workers <= 0 {
		c.Workers = 128
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Monitor{
		interval: c.Interval, timeout: c.Timeout, jitter: c.Jitter,
		rise: c.Rise, fall: c.Fall, workers: c.Workers,
		onEvent: c.OnEvent, clock: c.Clock, rand: c.Rand, log: c.Logger,
		entries:   make(map[Key]*entry),
		wake:      make(chan struct{}, 1),
		evPending: make(map[Key]int),
		evWake:    make(chan struct{}, 1),
	}
}

// ErrNilChecker is returned by Add for a nil Checker.
var ErrNilChecker = errors.New("health: nil checker")

// keyOf returns the Key under which Add registers t checked by c. A checker
// that is neither a Keyer nor comparable (a CheckerFunc, say) gets a unique
// key: it cannot be recognised again, so it is never de-duplicated.
func keyOf(t Target, c Checker) Key {
	if k, ok := c.(Keyer); ok {
		return Key{Target: t.Key(), check: fmt.Sprintf("%T %s", c, k.CheckKey())}
	}
	if !reflect.TypeOf(c).Comparable() {
		return Key{Target: t.Key(), check: new(byte)}
	}
	return Key{Target: t.Key(), check: c}
}

// Add registers t to be checked by c and returns its Key. Registering an
// equal (target, checker) pair again does not add a second check: it
// increments a reference count, and the check stops only when Remove has
// been called as many times as Add. This is how several services sharing a
// backend cause one check. Checkers are equal when they are Keyers with
// the same type and CheckKey (all built-ins), or else equal comparable
// values; other checkers are never shared.
func (m *Monitor) Add(t Target, c Checker) (Key, error) {
	if c == nil {
		return Key{}, ErrNilChecker
	}
	k := keyOf(t, c)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[k]; e != nil {
		e.refs++
		return k, nil
	}
	e := &entry{key: k, target: cloneTarget(t), checker: c, refs: 1}
	e.next = m.clock.Now().Add(time.Duration(m.rand() * m.jitter * float64(m.interval)))
	m.entries[k] = e
	heap.Push(&m.queue, e)
	m.poke()
	return k, nil
}

// Remove drops one reference to k and reports whether k was registered.
// When the last reference goes, the check stops and its state is forgotten;
// a check in flight finishes but its result is discarded.
func (m *Monitor) Remove(k Key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[k]
	if e == nil {
		return false
	}
	e.refs--
	if e.refs > 0 {
		return true
	}
	delete(m.entries, k)
	e.removed = true
	if e.idx >= 0 {
		heap.Remove(&m.queue, e.idx)
	}
	m.poke()
	return true
}

// State returns the status of k, and false if k is not registered.
func (m *Monitor) State(k Key) (Status, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[k]
	if e == nil {
		return Status{}, false
	}
	return e.status(), true
}

// Targets returns the status of every registration, in no particular order.
func (m *Monitor) Targets() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.entries))
	for _, e := range m.entries {
		out = append(out, e.status())
	}
	return out
}

func (e *entry) status() Status {
	return Status{Key: e.key, Target: cloneTarget(e.target), State: e.state, LastErr: e.lastErr,
		LastCheck: e.lastCheck, Successes: e.succ, Failures: e.fail}
}

func cloneTarget(t Target) Target {
	t.MAC = append([]byte(nil), t.MAC...)
	if len(t.MAC) == 0 {
		t.MAC = nil
	}
	return t
}

// poke wakes the scheduler; m.mu may be held.
func (m *Monitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

type job struct {
	e     *entry
	start time.Time
}

type result struct {
	e          *entry
	start, end time.Time
	err        error
}

// Run checks the registered targets until ctx ends, then waits for its
// workers and its event delivery to stop and returns ctx's error. Checks in
// flight are cancelled; events still queued are not delivered. A Monitor
// runs once; a second call returns ErrRunning.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return ErrRunning
	}
	m.started = true
	m.mu.Unlock()

	jobs := make(chan job, m.workers)
	results := make(chan result, m.workers)
	var wg sync.WaitGroup
	for range m.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- m.check(ctx, j)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.deliver(ctx)
	}()

	inflight := 0
	for {
		m.mu.Lock()
		now := m.clock.Now()
		for inflight < m.workers && m.queue.Len() > 0 && !m.queue[0].next.After(now) {
			e := heap.Pop(&m.queue).(*entry)
			inflight++
			jobs <- job{e: e, start: now} // never blocks: cap(jobs) == workers
		}
		wait := time.Duration(-1)
		if inflight < m.workers && m.queue.Len() > 0 {
			wait = m.queue[0].next.Sub(now)
		}
		m.mu.Unlock()

		var timer Timer
		var tc <-chan time.Time
		if wait >= 0 {
			timer = m.clock.NewTimer(wait)
			tc = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			// Workers never block on results (cap(results) == workers >=
			// checks in flight), so closing jobs lets every one of them end.
			close(jobs)
			wg.Wait()
			return ctx.Err()
		case <-tc:
		case <-m.wake:
		case r := <-results:
			inflight--
			m.record(r)
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (m *Monitor) check(ctx context.Context, j job) result {
	cctx, cancel := context.WithTimeout(ctx, m.timeout)
	err := j.e.checker.Check(cctx, j.e.target)
	cancel()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return result{e: j.e, start: j.start, end: m.clock.Now(), err: err}
}

// record applies a check result: counters, state transition, event and
// the next due time.
func (m *Monitor) record(r result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := r.e
	if e.removed {
		return
	}
	e.lastErr, e.lastCheck = r.err, r.end
	var ev *Event
	if r.err == nil {
		e.succ++
		e.fail = 0
		if e.state == StateUnknown || (e.state == StateDown && e.succ >= m.rise) {
			e.state = StateUp
			ev = &Event{Key: e.key, Target: cloneTarget(e.target), Up: true, At: r.end}
		}
	} else {
		e.fail++
		e.succ = 0
		if e.state != StateDown && e.fail >= m.fall {
			e.state = StateDown
			ev = &Event{Key: e.key, Target: cloneTarget(e.target), Reason: r.err, At: r.end}
		}
	}
	m.log.Debug("health check", "target", e.target.String(), "err", r.err, "state", e.state.String())
	f := 1.0
	if m.jitter > 0 {
		f += (2*m.rand() - 1) * m.jitter
	}
	e.next = r.start.Add(time.Duration(f * float64(m.interval)))
	if now := m.clock.Now(); e.next.Before(now) {
		e.next = now
	}
	heap.Push(&m.queue, e)
	if ev != nil {
		m.queueEvent(*ev)
	}
}

// queueEvent queues ev for delivery, replacing a still-queued event of the
// same key. Called with m.mu held; takes evMu (lock order mu → evMu).
func (m *Monitor) queueEvent(ev Event) {
	if m.onEvent == nil {
		return
	}
	m.evMu.Lock()
	if i, ok := m.evPending[ev.Key]; ok {
		m.evQueue[i] = ev
	} else {
		m.evPending[ev.Key] = len(m.evQueue)
		m.evQueue = append(m.evQueue, ev)
	}
	m.evMu.Unlock()
	select {
	case m.evWake <- struct{}{}:
	default:
	}
}

func (m *Monitor) deliver(ctx context.Context) {
	var batch []Event
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.evWake:
		}
		m.evMu.Lock()
		batch, m.evQueue = m.evQueue, batch[:0]
		clear(m.evPending)
		m.evMu.Unlock()
		for _, ev := range batch {
			if ctx.Err() != nil {
				return
			}
			m.onEvent(ev)
		}
		clear(batch)
	}
}

// schedHeap orders entries by due time.
type schedHeap []*entry

func (h schedHeap) Len() int           { return len(h) }
func (h schedHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h schedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *schedHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *schedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.idx = -1
	*h = old[:len(old)-1]
	return e
}
