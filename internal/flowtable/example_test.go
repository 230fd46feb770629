package flowtable_test

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/internal/flowtable"
)

// The per-packet pattern of a forwarding worker: look the flow up; on a
// miss pick a backend and insert; if another worker inserted first, use
// its backend.
func Example() {
	tab, err := flowtable.New(&flowtable.Config{MaxFlows: 1 << 16})
	if err != nil {
		panic(err)
	}
	start := time.Now()
	now := flowtable.TickOf(time.Since(start))

	k := flowtable.MakeKey(netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("192.0.2.10"), 40000, 443, 6)
	h := tab.Hash(&k)
	backend, ok := tab.Lookup(&k, h, now, flowtable.TCPFlagSYN)
	if !ok {
		picked := uint32(2) // the scheduler's choice
		backend, _, err = tab.Insert(&k, h, now, picked)
		if errors.Is(err, flowtable.ErrFull) {
			backend = picked // forward without state
		}
	}
	fmt.Println("backend", backend)

	// The client's ACK establishes the flow.
	tab.Lookup(&k, h, now, flowtable.TCPFlagACK)
	tab.Range(func(k *flowtable.Key, b uint32, st flowtable.State) bool {
		fmt.Println(k.SrcAddr(), k.SrcPort, "->", k.DstAddr(), k.DstPort, "backend", b, st)
		return true
	})
	// Output:
	// backend 2
	// 198.51.100.7 40000 -> 192.0.2.10 443 backend 2 established
}

// The expiry loop: sweep a bounded slice of the table every tick and
// release the removed flows' per-backend counts.
func ExampleTable_Sweep() {
	tab, _ := flowtable.New(&flowtable.Config{MaxFlows: 1024, UDPEmbryonicTimeout: time.Second})
	k := flowtable.MakeKey(netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("2001:db8::10"), 5353, 53, 17)
	tab.Insert(&k, tab.Hash(&k), 0, 1)

	perBackend := map[uint32]int{1: 1}
	later := flowtable.TickOf(2 * time.Second)
	for i := 0; i < 100 && tab.Len() > 0; i++ { // a few sweeps cover the table
		tab.Sweep(later, 256, func(_ *flowtable.Key, b uint32) { perBackend[b]-- })
	}
	fmt.Println(perBackend[1], tab.Len())
	// Output: 0 0
}
