package flowtable

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzTableOps drives a small table with an arbitrary sequence of
// operations and compares it with a plain map: every operation must agree
// with the model, and the layout invariants must hold at the end. Each
// operation is three bytes: op, key index, argument.
func FuzzTableOps(f *testing.F) {
	f.Add([]byte{0, 1, 5, 1, 1, 0, 3, 1, 9, 1, 1, 0, 2, 1, 0})
	f.Add([]byte{0, 1, 1, 0, 2, 2, 0, 3, 3, 5, 0, 200, 1, 1, 16, 4, 0, 0})
	f.Add([]byte{0, 7, 1, 6, 7, 0, 5, 0, 250, 1, 7, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 3*4096 {
			ops = ops[:3*4096]
		}
		tab := newTable(t, Config{MaxFlows: 64, Shards: 1})
		type flow struct {
			backend uint32
			last    Tick
			state   State
		}
		model := map[uint32]*flow{}
		now := Tick(0)
		timeout := func(f *flow) int32 { return tab.timeouts[classUDP][f.state] }
		live := func(f *flow) bool { return int32(now-f.last) <= timeout(f) }
		for len(ops) >= 3 {
			op, i, arg := ops[0]%7, uint32(ops[1]), ops[2]
			ops = ops[3:]
			k := v4Key(i, protoUDP)
			h := tab.Hash(&k)
			m, stored := model[i]
			present := stored && live(m)
			switch op {
			case 0: // insert
				got, inserted, err := tab.Insert(&k, h, now, uint32(arg))
				if present {
					require.NoError(t, err)
					require.False(t, inserted)
					require.Equal(t, m.backend, got)
					break
				}
				if err != nil {
					require.ErrorIs(t, err, ErrFull)
					delete(model, i)
					break
				}
				require.True(t, inserted)
				model[i] = &flow{backend: uint32(arg), last: now}
			case 1: // lookup
				b, ok := tab.Lookup(&k, h, now, 0)
				require.Equal(t, present, ok, "lookup of %d", i)
				if ok {
					require.Equal(t, m.backend, b)
					m.last, m.state = now, Established
				}
			case 2: // reassign
				// An expired entry not yet removed is reassigned too.
				ok := tab.Reassign(&k, h, uint32(arg)+1000)
				require.Equal(t, stored, ok)
				if stored {
					require.True(t, ok)
					m.backend = uint32(arg) + 1000
				}
			case 3: // delete
				require.Equal(t, stored, tab.Delete(&k, h))
				delete(model, i)
			case 4: // time passes
				now += Tick(arg) * 4
			case 5: // sweep
				tab.Sweep(now, int(arg), func(k *Key, b uint32) {
					j := v4Index(k)
					if f, ok := model[j]; ok {
						require.False(t, live(f), "swept a live flow")
						require.Equal(t, f.backend, b)
					}
					delete(model, j)
				})
			case 6: // check
				checkInvariants(t, tab)
			}
			// Evictions make room silently: forget model flows the table
			// no longer has, but never a non-embryonic live one.
			for j, f := range model {
				kj := v4Key(j, protoUDP)
				s := tab.shard(tab.Hash(&kj))
				kw := kj.words()
				if s.find(s.home(tab.Hash(&kj)), &kw) < 0 {
					require.False(t, live(f) && f.state != Embryonic, "flow %d lost", j)
					delete(model, j)
				}
			}
		}
		checkInvariants(t, tab)
	})
}
