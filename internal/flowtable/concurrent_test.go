package flowtable

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const reassigned = 1 << 31 // marks a backend set by Reassign

// backendFor encodes the worker that inserted key i, so that a backend
// read for the wrong key or torn between two entries is detectable.
func backendFor(worker int, i uint32) uint32 { return uint32(worker)<<16 | i }

// TestConcurrentAffinity races workers that insert, look up and reassign
// the same flows, and checks the affinity contract: exactly one Insert per
// flow wins, every other Insert and every Lookup returns the winner's
// backend, and the backend changes only to what Reassign set.
func TestConcurrentAffinity(t *testing.T) {
	const (
		workers = 4
		keys    = 4000
		ops     = 20000
	)
	tab := newTable(t, Config{MaxFlows: 8192, Shards: 8})
	var winner [keys]atomic.Uint32
	type obs struct{ i, b uint32 }
	seen := make([][]obs, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := uint64(w + 1)
			for n := 0; n < ops; n++ {
				r = r*6364136223846793005 + 1442695040888963407
				i := uint32(r>>33) % keys
				k := v4Key(i, protoTCP)
				h := tab.Hash(&k)
				switch op := r >> 60; {
				case op < 6:
					got, inserted, err := tab.Insert(&k, h, 1, backendFor(w+1, i))
					if err != nil {
						t.Errorf("insert: %v", err)
						return
					}
					if inserted {
						if !winner[i].CompareAndSwap(0, got) {
							t.Errorf("flow %d inserted twice", i)
							return
						}
					}
					seen[w] = append(seen[w], obs{i, got})
				case op < 15:
					if b, ok := tab.Lookup(&k, h, 1, TCPFlagACK); ok {
						seen[w] = append(seen[w], obs{i, b})
					}
				default:
					if i%16 == 0 {
						tab.Reassign(&k, h, reassigned|i)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	for w := range seen {
		for _, o := range seen[w] {
			if o.b == reassigned|o.i {
				continue
			}
			require.Equal(t, winner[o.i].Load(), o.b, "flow %d: backend differs from the first insert", o.i)
		}
	}
	checkInvariants(t, tab)
}

// TestConcurrentChurn runs lookups, inserts, deletes, reassigns, sweeps
// and ranges at once with advancing time, on a table small enough to hit
// its limits, and checks that no operation ever returns another flow's
// backend and that the layout invariants hold afterwards.
func TestConcurrentChurn(t *testing.T) {
	const (
		workers = 4
		keys    = 3000
		ops     = 20000
	)
	tab := newTable(t, Config{MaxFlows: 2048, Shards: 4})
	var clock atomic.Uint32
	var wg sync.WaitGroup
	var failed atomic.Bool
	check := func(i, b uint32) {
		if b&0xffff != i && b != reassigned|i {
			failed.Store(true)
			t.Errorf("flow %d got backend %#x of another flow", i, b)
		}
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := uint64(w + 100)
			for n := 0; n < ops && !failed.Load(); n++ {
				r = r*6364136223846793005 + 1442695040888963407
				i := uint32(r>>33) % keys
				k := v4Key(i, protoUDP)
				h := tab.Hash(&k)
				now := Tick(clock.Load())
				switch op := r >> 59; {
				case op < 12:
					got, _, err := tab.Insert(&k, h, now, backendFor(w+1, i))
					if err == nil {
						check(i, got)
					}
				case op < 28:
					if b, ok := tab.Lookup(&k, h, now, 0); ok {
						check(i, b)
					}
				case op < 30:
					tab.Delete(&k, h)
				default:
					tab.Reassign(&k, h, reassigned|i)
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() { // the expiry loop, with time moving on
		defer wg.Done()
		for n := 0; n < 300 && !failed.Load(); n++ {
			clock.Add(20)
			tab.Sweep(Tick(clock.Load()), 256, func(k *Key, b uint32) { check(v4Index(k), b) })
			tab.Range(func(k *Key, b uint32, _ State) bool { check(v4Index(k), b); return true })
		}
	}()
	wg.Wait()
	checkInvariants(t, tab)
	assert.LessOrEqual(t, tab.Len(), tab.Cap())
}

// v4Index inverts v4Key.
func v4Index(k *Key) uint32 {
	return (binary.BigEndian.Uint32(k.Src[12:])-0xc6336400)<<8 | uint32(k.SrcPort-1024)
}

func TestV4Index(t *testing.T) {
	for _, i := range []uint32{0, 1, 255, 256, 4095} {
		k := v4Key(i, protoUDP)
		assert.Equal(t, i, v4Index(&k))
	}
}
