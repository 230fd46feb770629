package scheduler_test

import (
	"testing"

	"github.com/dsrlb/dsrlb/scheduler"
	"github.com/dsrlb/dsrlb/scheduler/schedulertest"
)

// named adapts a registered scheduler to the conformance suite.
func named(name string) scheduler.Factory {
	return func(bs []scheduler.Backend, cfg scheduler.Config) (scheduler.Scheduler, error) {
		return scheduler.New(name, bs, cfg)
	}
}

func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		opts schedulertest.Options
	}{
		// Sequences are exact: a tight tolerance.
		{"rr", schedulertest.Options{Shares: schedulertest.Equal, Tolerance: 0.001}},
		{"wrr", schedulertest.Options{Tolerance: 0.001}},
		// Exact least-connection at these set sizes: counts stay level.
		{"lc", schedulertest.Options{Shares: schedulertest.Equal, Tolerance: 0.001}},
		{"wlc", schedulertest.Options{Tolerance: 0.001}},
		{"mh", schedulertest.Options{Deterministic: true, Tolerance: 0.05}},
		{"mh", schedulertest.Options{Deterministic: true, Tolerance: 0.05, Config: scheduler.Config{Seed: 42, TableSize: 4093}}},
		{"sh", schedulertest.Options{Deterministic: true}},
		{"sh", schedulertest.Options{Deterministic: true, Tolerance: 0.05, Config: scheduler.Config{HashPorts: true}}},
		{"hrw", schedulertest.Options{Deterministic: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			schedulertest.Run(t, named(tc.name), &tc.opts)
		})
	}
}
