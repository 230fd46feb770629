package arp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
)

// The sockets' filters pass their protocol untagged (as the kernel shows a
// frame whose tag it stripped) and behind one tag still in the frame, and
// nothing else.
func TestVLANFilters(t *testing.T) {
	arpVM, err := bpf.NewVM(arpFilter)
	require.NoError(t, err)
	ndVM, err := bpf.NewVM(ndFilter)
	require.NoError(t, err)
	req := request(t, clientMAC, clientIP, vip)
	sol := ns(t, clientMAC, clientIP6, vip6)
	udp6 := nsSpec(clientMAC, clientIP6, vip6)
	udp6.next = 17
	tests := []struct {
		name    string
		frame   []byte
		arp, nd bool
	}{
		{"ARP", req, true, false},
		{"ARP tagged", vlanTag(req, 10), true, false},
		{"ARP behind two tags", tagged(req, 0x8100, 10, 0x8100, 20), false, false},
		{"NS", sol, false, true},
		{"NS tagged", vlanTag(sol, 10), false, true},
		{"UDP over IPv6 tagged", vlanTag(udp6.frame(t), 10), false, false},
		{"short", []byte{1, 2, 3}, false, false},
	}
	for _, tt := range tests {
		n, err := arpVM.Run(tt.frame)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.arp, n >= len(tt.frame), "arp filter: %s", tt.name)
		n, err = ndVM.Run(tt.frame)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.nd, n >= len(tt.frame), "nd filter: %s", tt.name)
	}
}
