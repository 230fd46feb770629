package dsr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/xdp"
)

func owner(addr string) xdp.SlotOwner {
	return xdp.SlotOwner{VIP: vip4, Port: 80, Proto: uint8(TCP), Addr: netip.MustParseAddr(addr)}
}

func gen(id uint32) uint32 { return id >> idSlotBits }

// TestKernelIDsFresh: on maps that start empty the kernel IDs are the
// Balancer's.
func TestKernelIDsFresh(t *testing.T) {
	k := newKernelIDs(16, 4, nil, nil)
	for _, id := range []uint32{0, 1, 2<<idSlotBits | 5} {
		kid, ok := k.backend(id, owner("192.0.2.1"))
		require.True(t, ok)
		assert.Equal(t, id, kid)
		back, ok := k.goID(kid)
		require.True(t, ok)
		assert.Equal(t, id, back)
	}
	idx, ok := k.service(3, xdp.ServiceKey{VIP: vip4, Port: 80, Proto: 6})
	require.True(t, ok)
	assert.EqualValues(t, 3, idx)
}

// TestKernelIDsAdopt: after a restart, backends keep the pinned ID of the
// same owner; others never get an ID a pinned flow could name.
func TestKernelIDsAdopt(t *testing.T) {
	recs := []xdp.SlotRecord{
		{Slot: 0, ID: 3 << idSlotBits, Held: true, Owner: owner("192.0.2.10")},
		{Slot: 1, ID: 7<<idSlotBits | 1, Held: true, Owner: owner("192.0.2.11")}, // removed from the config
		{Slot: 2, ID: 4<<idSlotBits | 2, Held: false},                            // cleared before
	}
	svcKey := xdp.ServiceKey{VIP: vip4, Port: 80, Proto: 6}
	k := newKernelIDs(4, 4, recs, map[xdp.ServiceKey]uint32{svcKey: 2})

	// The new Balancer numbers afresh: .10 is its ID 1 now.
	kid, ok := k.backend(1, owner("192.0.2.10"))
	require.True(t, ok)
	assert.Equal(t, recs[0].ID, kid, "same owner, same pinned ID")
	// A new backend whose Go slot (0) is taken gets the first free one,
	// slot 2, cleared before at generation 4: generation 5. Slot 1 is
	// reserved for its pinned owner until the plan settles.
	kid, ok = k.backend(0, owner("192.0.2.12"))
	require.True(t, ok)
	assert.Equal(t, uint32(5)<<idSlotBits|2, kid)
	// Its Go slot 2 taken, the next gets slot 3, never used.
	kid, ok = k.backend(2, owner("192.0.2.13"))
	require.True(t, ok)
	assert.Equal(t, uint32(3), kid)
	_, ok = k.backend(9, owner("192.0.2.14"))
	assert.False(t, ok, "no free slot: 0, 2, 3 taken and 1 reserved")

	idx, ok := k.service(0, svcKey)
	require.True(t, ok)
	assert.EqualValues(t, 2, idx, "the pinned index of the same key")
	idx, ok = k.service(2, xdp.ServiceKey{VIP: vip6, Port: 80, Proto: 6})
	require.True(t, ok)
	assert.NotEqual(t, uint32(2), idx)

	assert.Equal(t, []uint32{1}, k.settled(), "the pinned slot nobody adopted is to be cleared")
	kid, ok = k.backend(9, owner("192.0.2.14"))
	require.True(t, ok)
	assert.Equal(t, uint32(1), kid&idSlotMask)
	assert.Equal(t, uint32(8), gen(kid), "after the pinned generation 7")
	// Release and reuse bump the generation again.
	k.release(1)
	_, ok = k.goID(kid)
	assert.False(t, ok, "a released ID names no backend")
	kid, ok = k.backend(10, owner("192.0.2.15"))
	require.True(t, ok)
	assert.Equal(t, uint32(9)<<idSlotBits|1, kid)
}
