package schedulertest_test

import (
	"bytes"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"

	"github.com/dsrlb/dsrlb/scheduler"
	"github.com/dsrlb/dsrlb/scheduler/schedulertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Broken schedulers, each violating one rule of the contract.

type funcSched func(f *scheduler.Flow) (int, bool)

func (s funcSched) Pick(f *scheduler.Flow) (int, bool) { return s(f) }

// firstActive returns the index of the first non-draining backend.
func firstActive(bs []scheduler.Backend) (int, bool) {
	for i, b := range bs {
		if b.Weight > 0 {
			return i, true
		}
	}
	return 0, false
}

// activeIndices returns the indices of the non-draining backends.
func activeIndices(bs []scheduler.Backend) []int {
	var act []int
	for i, b := range bs {
		if b.Weight > 0 {
			act = append(act, i)
		}
	}
	return act
}

// hashPick is a correct, deterministic scheduler to mutate: a weighted
// choice by flow hash over a cumulative weight list.
func hashPick(bs []scheduler.Backend, _ scheduler.Config) (scheduler.Scheduler, error) {
	var cum []uint64
	var idx []int
	total := uint64(0)
	for i, b := range bs {
		if b.Weight > 0 {
			total += uint64(b.Weight)
			cum = append(cum, total)
			idx = append(idx, i)
		}
	}
	return funcSched(func(f *scheduler.Flow) (int, bool) {
		if total == 0 {
			return 0, false
		}
		x := f.Hash % total
		for k, c := range cum {
			if x < c {
				return idx[k], true
			}
		}
		return 0, false
	}), nil
}

var broken = map[string]struct {
	factory scheduler.Factory
	opts    *schedulertest.Options
	message string
}{
	"outOfRange": {func(bs []scheduler.Backend, _ scheduler.Config) (scheduler.Scheduler, error) {
		return funcSched(func(*scheduler.Flow) (int, bool) { return len(bs), len(bs) > 0 }), nil
	}, nil, "outside the set"},
	"picksDraining": {func(bs []scheduler.Backend, _ scheduler.Config) (scheduler.Scheduler, error) {
		return funcSched(func(f *scheduler.Flow) (int, bool) { return int(f.Hash % uint64(max(len(bs), 1))), len(bs) > 0 }), nil
	}, nil, "draining backend"},
	"panicsOnEmpty": {func(bs []scheduler.Backend, _ scheduler.Config) (scheduler.Scheduler, error) {
		return funcSched(func(f *scheduler.Flow) (int, bool) {
			i, ok := firstActive(bs)
			if !ok {
				panic("no backends")
			}
			return i, ok
		}), nil
	}, &schedulertest.Options{Shares: schedulertest.Unchecked}, "Pick panicked"},
	"ignoresWeights": {func(bs []scheduler.Backend, _ scheduler.Config) (scheduler.Scheduler, error) {
		act := activeIndices(bs)
		return funcSched(func(f *scheduler.Flow) (int, bool) {
			if len(act) == 0 {
				return 0, false
			}
			return act[f.Hash%uint64(len(act))], true
		}), nil
	}, nil, "promised"},
	"allocates": {func(bs []scheduler.Backend, cfg scheduler.Config) (scheduler.Scheduler, error) {
		inner, _ := hashPick(bs, cfg)
		return funcSched(func(f *scheduler.Flow) (int, bool) {
			sink = append([]byte(nil), make([]byte, 64)...)
			return inner.Pick(f)
		}), nil
	}, nil, "Pick allocates"},
	"notDeterministic": {func(bs []scheduler.Backend, cfg scheduler.Config) (scheduler.Scheduler, error) {
		inner, _ := hashPick(bs, cfg)
		salt := uint64(counter.Add(1))
		return funcSched(func(f *scheduler.Flow) (int, bool) {
			g := *f
			g.Hash ^= salt * 0x9e3779b97f4a7c15
			return inner.Pick(&g)
		}), nil
	}, &schedulertest.Options{Deterministic: true}, "instances disagree"},
	"needsTurns": {func(bs []scheduler.Backend, cfg scheduler.Config) (scheduler.Scheduler, error) {
		// Rotates by the caller's turn, and without one always picks
		// the first backend: fine for the balancer, wrong for others.
		act := activeIndices(bs)
		return funcSched(func(f *scheduler.Flow) (int, bool) {
			if len(act) == 0 {
				return 0, false
			}
			return act[f.Turn%uint64(len(act))], true
		}), nil
	}, &schedulertest.Options{Shares: schedulertest.Equal}, "BareFlows/Shares"},
	"falselyFlowKeyed": {func(bs []scheduler.Backend, cfg scheduler.Config) (scheduler.Scheduler, error) {
		// Claims its picks follow the flow, but rotates by turn.
		act := activeIndices(bs)
		return keyedClaim{funcSched(func(f *scheduler.Flow) (int, bool) {
			if len(act) == 0 {
				return 0, false
			}
			return act[(f.Hash+f.Turn)%uint64(len(act))], true
		})}, nil
	}, &schedulertest.Options{Shares: schedulertest.Unchecked}, "declares FollowsFlow but"},
	"retainsSlice": {func(bs []scheduler.Backend, _ scheduler.Config) (scheduler.Scheduler, error) {
		return funcSched(func(f *scheduler.Flow) (int, bool) {
			inner, _ := hashPick(bs, scheduler.Config{}) // reads bs at pick time
			return inner.Pick(f)
		}), nil
	}, &schedulertest.Options{Deterministic: true, Shares: schedulertest.Unchecked}, "disagree"},
}

// keyedClaim declares the scheduler it wraps flow-keyed, rightly or not.
type keyedClaim struct{ scheduler.Scheduler }

func (keyedClaim) FollowsFlow() bool { return true }

var (
	sink    []byte
	counter atomic.Uint64
)

// TestBroken runs the suite on one broken scheduler. It only does so in
// the child process started by TestSuiteCatchesBrokenSchedulers, where it
// is expected to fail.
func TestBroken(t *testing.T) {
	name := os.Getenv("SCHEDULERTEST_BROKEN")
	if name == "" {
		t.Skip("runs only as a child of TestSuiteCatchesBrokenSchedulers")
	}
	b := broken[name]
	schedulertest.Run(t, b.factory, b.opts)
}

// TestSuiteCatchesBrokenSchedulers proves that each check can fail: the
// suite run on a scheduler breaking one rule must fail with that rule's
// message. Each run is a child test process, since a failing suite fails
// the test that ran it.
func TestSuiteCatchesBrokenSchedulers(t *testing.T) {
	if os.Getenv("SCHEDULERTEST_BROKEN") != "" {
		t.Skip("child process")
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBroken$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SCHEDULERTEST_BROKEN="+name)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			require.Error(t, err, "the suite passed a broken scheduler:\n%s", out.String())
			assert.Contains(t, out.String(), b.message)
		})
	}
}

// TestSuitePassesCorrectScheduler is the control for the above: the
// unmutated scheduler passes every check.
func TestSuitePassesCorrectScheduler(t *testing.T) {
	schedulertest.Run(t, hashPick, &schedulertest.Options{Deterministic: true})
}
