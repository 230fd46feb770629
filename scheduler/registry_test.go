package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegistry(t *testing.T) {
	for _, name := range []string{"rr", "wrr", "lc", "wlc", "sh", "mh", "hrw"} {
		assert.True(t, Registered(name), name)
		assert.Contains(t, Names(), name)
		s, err := New(name, testBackends(3, 1), Config{})
		require.NoError(t, err, name)
		_, ok := s.Pick(&Flow{Hash: 5})
		assert.True(t, ok, name)
	}
	assert.True(t, Registered(Default))
	assert.IsNonDecreasing(t, Names())

	_, err := New("nope", nil, Config{})
	assert.ErrorIs(t, err, ErrUnknown)
	assert.False(t, Registered("nope"))

	_, isObs := mustNew(t, "wlc").(FlowObserver)
	assert.True(t, isObs, "wlc observes flows")
	_, isObs = mustNew(t, "mh").(FlowObserver)
	assert.False(t, isObs, "mh needs no flow events")

	ok := func(bs []Backend, cfg Config) (Scheduler, error) { return nil, nil }
	assert.Panics(t, func() { Register("", ok) })
	assert.Panics(t, func() { Register("x-nil", nil) })
	assert.Panics(t, func() { Register("mh", ok) })
}

func mustNew(t *testing.T, name string) Scheduler {
	t.Helper()
	s, err := New(name, testBackends(2, 1), Config{})
	require.NoError(t, err)
	return s
}
