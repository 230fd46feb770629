package scheduler

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzNew builds every built-in from arbitrary backend sets and
// configurations: a factory must answer with a scheduler or an error value,
// never panic, and a built scheduler must only pick non-draining members.
//
// The input is read as: seed (8 bytes), table size (4), flags (1), then
// 5-byte backends (address selector, weight as 4 bytes).
func FuzzNew(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 13))
	f.Add(append(make([]byte, 13), 1, 0, 0, 0, 1, 2, 0, 0, 0, 0, 3, 255, 255, 255, 255))
	f.Add(append([]byte{1, 2, 3, 4, 5, 6, 7, 8, 7, 0, 0, 0, 1}, 1, 0, 0, 0, 3, 1, 0, 0, 0, 3, 9, 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 13 {
			return
		}
		cfg := Config{
			Seed:      binary.LittleEndian.Uint64(data),
			TableSize: binary.LittleEndian.Uint32(data[8:]) % 100003, // keep builds fast
			HashPorts: data[12]&1 != 0,
		}
		var bs []Backend
		for rest := data[13:]; len(rest) >= 5 && len(bs) < 64; rest = rest[5:] {
			var a netip.Addr
			if rest[0]&0x80 != 0 {
				a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: rest[0]})
			} else {
				a = netip.AddrFrom4([4]byte{192, 0, 2, rest[0]}) // duplicates possible
			}
			bs = append(bs, Backend{Addr: a, Weight: binary.LittleEndian.Uint32(rest[1:])})
		}
		for _, name := range []string{"rr", "wrr", "lc", "wlc", "sh", "mh", "hrw"} {
			s, err := New(name, bs, cfg)
			if err != nil {
				continue
			}
			obs, _ := s.(FlowObserver)
			for k := range 64 {
				fl := Flow{Src: netip.AddrFrom4([4]byte{198, 51, 100, byte(k)}), SrcPort: uint16(k), Hash: mix64(uint64(k))}
				i, ok := s.Pick(&fl)
				if !ok {
					continue
				}
				if i < 0 || i >= len(bs) || bs[i].Weight == 0 {
					t.Fatalf("%s picked %d of %v", name, i, bs)
				}
				if obs != nil {
					obs.FlowStarted(i)
					obs.FlowEnded(i + k%3 - 1) // also out of range
				}
			}
		}
	})
}
