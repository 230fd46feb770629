package flowtable

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHotPathDoesNotAllocate(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 1 << 12})
	src, dst := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("192.0.2.10")
	k := MakeKey(src, dst, 1000, 80, protoTCP)
	h := tab.Hash(&k)
	ins(t, tab, k, 0, 1)
	state := uint64(3)
	var sink uint64
	now := Tick(0)

	tests := []struct {
		name string
		fn   func()
	}{
		{"MakeKey", func() { k2 := MakeKey(src, dst, 1, 2, protoTCP); sink += uint64(k2.SrcPort) }},
		{"Hash", func() { sink += k.Hash(testSeed) }},
		{"Lookup hit", func() { now++; b, _ := tab.Lookup(&k, h, now, TCPFlagACK); sink += uint64(b) }},
		{"Lookup miss", func() { k2 := k; k2.SrcPort = 9; b, _ := tab.Lookup(&k2, tab.Hash(&k2), now, 0); sink += uint64(b) }},
		{"Insert", func() {
			k2 := randKey(&state)
			_, _, err := tab.Insert(&k2, tab.Hash(&k2), now, 2)
			if err != nil {
				sink++
			}
		}},
		{"Prefetch", func() { tab.Prefetch(h); tab.Prefetch(^h) }},
		{"Reassign", func() { tab.Reassign(&k, h, 3) }},
		{"Sweep", func() { sink += uint64(tab.Sweep(now, 64, nil)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(1000, tt.fn))
		})
	}
	_ = sink
}
