package arp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEventHandlerRemoved(t *testing.T) {
	s := &Speaker{}
	var a, b int
	removeA := s.AddEventHandler(func(Event) { a++ })
	s.AddEventHandler(func(Event) { b++ })
	deliver := func() {
		s.evMu.Lock()
		defer s.evMu.Unlock()
		for _, h := range s.extra {
			h.fn(Event{})
		}
	}
	deliver()
	removeA()
	removeA() // twice is harmless
	deliver()
	require.Equal(t, 1, a, "a removed handler is not called again")
	require.Equal(t, 2, b, "the others still are")
	require.NotNil(t, s.AddEventHandler(nil), "nil gets a remove that does nothing")
}

func TestDropReasonsListsEveryLabel(t *testing.T) {
	rs := DropReasons()
	require.Len(t, rs, int(numDropReasons)-1)
	seen := map[string]bool{}
	for _, r := range rs {
		s := r.String()
		require.NotContains(t, s, "DropReason(", "every listed reason has a label")
		require.False(t, seen[s], "labels are distinct")
		seen[s] = true
	}
}
