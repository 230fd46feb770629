// Command custom-scheduler shows how an appliance adds its own scheduler
// to dsrlb: implement scheduler.Scheduler, register a factory by name, and
// name it in a service's configuration like any built-in.
//
// The plugin here, "subnet-first", keeps traffic local: a client whose
// address shares a subnet (/24 for IPv4, /64 for IPv6) with some backends
// is served by one of those, chosen by flow hash; every other client is
// spread over all backends by the built-in Maglev scheduler. Think of
// backends placed in each branch office, with a shared pool as fallback.
//
// Run it to see picks for a few clients:
//
//	go run ./examples/custom-scheduler
package main

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/dsrlb/dsrlb/scheduler"
)

// Name is the name the plugin registers under.
const Name = "subnet-first"

func init() { scheduler.Register(Name, NewSubnetFirst) }

// SubnetFirst sends a flow to a backend in the client's subnet when there
// is one, otherwise to the Maglev pick over all backends. Its Pick does one
// map lookup and no allocation; all slices are built by NewSubnetFirst.
type SubnetFirst struct {
	local    map[netip.Prefix][]int32 // subnet -> active backends in it
	fallback scheduler.Scheduler      // mh over the whole set
}

// NewSubnetFirst is the scheduler.Factory of "subnet-first". Draining
// (weight zero) backends are left out of the local groups; mh leaves them
// out of the fallback.
func NewSubnetFirst(backends []scheduler.Backend, cfg scheduler.Config) (scheduler.Scheduler, error) {
	fallback, err := scheduler.New("mh", backends, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	s := &SubnetFirst{local: map[netip.Prefix][]int32{}, fallback: fallback}
	for i, b := range backends {
		if b.Weight == 0 {
			continue
		}
		if p, ok := subnet(b.Addr); ok {
			s.local[p] = append(s.local[p], int32(i))
		}
	}
	return s, nil
}

// subnet returns the subnet that counts as local for a.
func subnet(a netip.Addr) (netip.Prefix, bool) {
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

// Pick implements scheduler.Scheduler.
func (s *SubnetFirst) Pick(f *scheduler.Flow) (int, bool) {
	if p, ok := subnet(f.Src); ok {
		if group := s.local[p]; len(group) > 0 {
			return int(group[f.Hash%uint64(len(group))]), true
		}
	}
	return s.fallback.Pick(f)
}

func main() {
	backends := []scheduler.Backend{
		{Addr: netip.MustParseAddr("198.51.100.10"), Weight: 1},  // office A
		{Addr: netip.MustParseAddr("198.51.100.11"), Weight: 1},  // office A
		{Addr: netip.MustParseAddr("203.0.113.10"), Weight: 1},   // office B
		{Addr: netip.MustParseAddr("2001:db8:c::10"), Weight: 2}, // shared pool
	}
	// A balancer would do this from a service that names the scheduler.
	s, err := scheduler.New(Name, backends, scheduler.Config{Seed: 7})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	clients := []string{"198.51.100.77", "198.51.100.78", "203.0.113.5", "192.0.2.44", "2001:db8:f::1"}
	for k, c := range clients {
		f := scheduler.Flow{
			Src: netip.MustParseAddr(c), SrcPort: uint16(40000 + k), DstPort: 443, Proto: 6,
			Hash: uint64(k+1) * 0x9e3779b97f4a7c15, // the balancer's flow hash
		}
		i, ok := s.Pick(&f)
		if !ok {
			fmt.Printf("%-15s -> no backend\n", c)
			continue
		}
		fmt.Printf("%-15s -> %s\n", c, backends[i].Addr)
	}
}
