package health

import "time"

// Clock is the Monitor's source of time. It exists so tests can drive the
// rise/fall and jitter logic with a fake clock instead of waiting in real
// time; production code leaves MonitorConfig.Clock nil for the system clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that delivers on C once d has elapsed.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the Monitor uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; the Monitor never reuses a timer
	// after Stop.
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }
