package health

import (
	"sync"
	"time"
)

// fakeClock is a manual Clock: time moves only on Advance, and tests can
// wait until the code under test has armed a timer before moving it.
type fakeClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	ch      chan time.Time
	stopped bool
}

func newFakeClock() *fakeClock {
	c := &fakeClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		t.stopped = true
	} else {
		c.timers = append(c.timers, t)
	}
	c.cond.Broadcast()
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	t.c.prune()
	return was
}

// prune drops stopped timers; c.mu held.
func (c *fakeClock) prune() {
	live := c.timers[:0]
	for _, t := range c.timers {
		if !t.stopped {
			live = append(live, t)
		}
	}
	c.timers = live
}

// Advance moves time forward by d and fires every timer that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			t.ch <- c.now
		}
	}
	c.prune()
}

// WaitTimer blocks until a timer is armed (up to a real-time bound, so a
// broken monitor fails the test instead of hanging it) and returns its
// remaining duration.
func (c *fakeClock) WaitTimer() (time.Duration, bool) {
	deadline := time.Now().Add(5 * time.Second)
	stop := time.AfterFunc(5*time.Second, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.timers) == 0 {
		if time.Now().After(deadline) {
			return 0, false
		}
		c.cond.Wait()
	}
	min := c.timers[0].at
	for _, t := range c.timers[1:] {
		if t.at.Before(min) {
			min = t.at
		}
	}
	return min.Sub(c.now), true
}
