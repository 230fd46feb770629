package scheduler_test

import (
	"fmt"
	"net/netip"

	"github.com/dsrlb/dsrlb/scheduler"
)

// A balancer builds a scheduler whenever a service's backend set changes,
// then asks it for a backend once per new flow.
func ExampleNew() {
	backends := []scheduler.Backend{
		{Addr: netip.MustParseAddr("198.51.100.10"), Weight: 1},
		{Addr: netip.MustParseAddr("198.51.100.11"), Weight: 1},
		{Addr: netip.MustParseAddr("198.51.100.12"), Weight: 0}, // draining
	}
	s, err := scheduler.New(scheduler.Default, backends, scheduler.Config{Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range []uint64{1 << 60, 9 << 60, 15 << 60} {
		// The balancer fills in the 5-tuple and its seeded hash.
		i, ok := s.Pick(&scheduler.Flow{Hash: h})
		fmt.Println(ok, backends[i].Addr)
	}

	_, err = scheduler.New("fastest", backends, scheduler.Config{})
	fmt.Println(err != nil)
	// Output:
	// true 198.51.100.10
	// true 198.51.100.10
	// true 198.51.100.11
	// true
}

// firstActive is a (deliberately simple) plugin: every new flow goes to the
// first backend that is not draining, as for an active/standby pair.
type firstActive struct{ index int }

func (s firstActive) Pick(*scheduler.Flow) (int, bool) { return s.index, s.index >= 0 }

// A plugin registers a factory under a name, usually from an init
// function; configuration files and services then name it like a built-in.
func ExampleRegister() {
	scheduler.Register("first-active", func(bs []scheduler.Backend, _ scheduler.Config) (scheduler.Scheduler, error) {
		for i, b := range bs {
			if b.Weight > 0 {
				return firstActive{i}, nil
			}
		}
		return firstActive{-1}, nil
	})

	backends := []scheduler.Backend{
		{Addr: netip.MustParseAddr("2001:db8::1"), Weight: 0},
		{Addr: netip.MustParseAddr("2001:db8::2"), Weight: 1},
	}
	s, err := scheduler.New("first-active", backends, scheduler.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	i, ok := s.Pick(&scheduler.Flow{})
	fmt.Println(scheduler.Registered("first-active"), ok, backends[i].Addr)
	// Output: true true 2001:db8::2
}
