package scheduler

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFlowKeyedAndExplain(t *testing.T) {
	bes := []Backend{
		{Addr: netip.MustParseAddr("192.0.2.1"), Weight: 1},
		{Addr: netip.MustParseAddr("192.0.2.2"), Weight: 2},
		{Addr: netip.MustParseAddr("192.0.2.3"), Weight: 1},
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			s, err := New(name, bes, Config{Seed: 7})
			require.NoError(t, err)
			keyed := name == "mh" || name == "sh" || name == "hrw"
			require.Equal(t, keyed, FollowsFlow(s))
			ex, ok := s.(Explainer)
			require.Equal(t, keyed, ok, "the hashing schedulers explain their placement")
			if !ok {
				return
			}
			for i := range 2000 {
				f := Flow{Src: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), SrcPort: uint16(1024 + i), DstPort: 80, Proto: 6,
					Hash: uint64(i) * 0x9e3779b97f4a7c15, SrcHash: uint64(i%256)*0xbf58476d1ce4e5b9 | 1}
				p := ex.Explain(&f)
				idx, pok := s.Pick(&f)
				require.Equal(t, pok, p.OK)
				require.Equal(t, idx, p.Index, "Explain agrees with Pick")
				require.Positive(t, p.TableSize)
				require.Less(t, p.Slot, p.TableSize)
			}
		})
	}
}

func TestFollowsFlowOfPlugin(t *testing.T) {
	require.False(t, FollowsFlow(firstOf{}), "a plugin that says nothing is not flow-keyed")
	require.True(t, FollowsFlow(keyedPlugin{}))
}

type firstOf struct{}

func (firstOf) Pick(*Flow) (int, bool) { return 0, true }

type keyedPlugin struct{ firstOf }

func (keyedPlugin) FollowsFlow() bool { return true }

func TestTabledPickIsTableLookup(t *testing.T) {
	bes := []Backend{
		{Addr: netip.MustParseAddr("2001:db8::1"), Weight: 3},
		{Addr: netip.MustParseAddr("2001:db8::2"), Weight: 1},
		{Addr: netip.MustParseAddr("2001:db8::3"), Weight: 0},
	}
	for _, name := range []string{"mh", "hrw"} {
		s, err := New(name, bes, Config{Seed: 11})
		require.NoError(t, err)
		tab, ok := s.(Tabled)
		require.True(t, ok, name)
		table := tab.LookupTable()
		require.NotEmpty(t, table)
		for i := range 5000 {
			f := Flow{Hash: uint64(i)*0x9e3779b97f4a7c15 ^ 0xdeadbeef}
			idx, ok := s.Pick(&f)
			require.True(t, ok)
			require.Equal(t, int(table[Reduce(f.Hash, uint64(len(table)))]), idx, "%s: Pick is the table lookup", name)
			require.NotEqual(t, 2, idx, "weight 0 takes nothing")
		}
	}
	for _, name := range []string{"rr", "wrr", "lc", "wlc", "sh"} {
		s, err := New(name, bes, Config{})
		require.NoError(t, err)
		_, ok := s.(Tabled)
		require.False(t, ok, "%s does not pick by the flow hash alone", name)
	}
}
