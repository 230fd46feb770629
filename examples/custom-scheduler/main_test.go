package main

import (
	"net/netip"
	"testing"

	"github.com/dsrlb/dsrlb/scheduler"
	"github.com/dsrlb/dsrlb/scheduler/schedulertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConformance runs the scheduler conformance suite on the plugin,
// through the registry as a balancer would build it. The plugin skews
// shares on purpose, so shares are not checked; it is deterministic.
func TestConformance(t *testing.T) {
	require.True(t, scheduler.Registered(Name))
	factory := func(bs []scheduler.Backend, cfg scheduler.Config) (scheduler.Scheduler, error) {
		return scheduler.New(Name, bs, cfg)
	}
	schedulertest.Run(t, factory, &schedulertest.Options{
		Shares:        schedulertest.Unchecked,
		Deterministic: true,
	})
}

func TestSubnetFirst(t *testing.T) {
	backends := []scheduler.Backend{
		{Addr: netip.MustParseAddr("198.51.100.10"), Weight: 1},
		{Addr: netip.MustParseAddr("198.51.100.11"), Weight: 0}, // draining
		{Addr: netip.MustParseAddr("203.0.113.10"), Weight: 1},
		{Addr: netip.MustParseAddr("2001:db8:a::10"), Weight: 1},
	}
	s, err := scheduler.New(Name, backends, scheduler.Config{})
	require.NoError(t, err)
	cases := []struct {
		src  string
		want []int
	}{
		{"198.51.100.200", []int{0}},        // local; the draining neighbour is skipped
		{"::ffff:198.51.100.200", []int{0}}, // mapped form counts too
		{"203.0.113.99", []int{2}},          // local
		{"2001:db8:a::99", []int{3}},        // local /64
		{"192.0.2.1", []int{0, 2, 3}},       // no local backend: mh over all active
		{"2001:db8:b::1", []int{0, 2, 3}},   // different /64
	}
	for _, tc := range cases {
		for h := range uint64(50) {
			i, ok := s.Pick(&scheduler.Flow{Src: netip.MustParseAddr(tc.src), Hash: h * 0x9e3779b97f4a7c15})
			require.True(t, ok, tc.src)
			assert.Contains(t, tc.want, i, tc.src)
		}
	}
}

func TestMainRuns(t *testing.T) {
	main() // prints a few picks; must not fail or panic
}
