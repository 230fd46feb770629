package netlab

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/arp"
)

// aimVIP makes the clients' kernels find vip at server s through real
// address resolution, the way they find a balancer: an ARP/NDP speaker in
// s's namespace, on s's own interface and MAC, answers for the VIP (s's
// kernel does not: arp_ignore). It stops when the test ends. Tests never
// plant static neighbour entries.
func aimVIP(t *testing.T, l *Lab, vip netip.Addr, s *Host) {
	t.Helper()
	for _, c := range l.Clients {
		_ = c.DelNeighbor(vip) // forget an earlier answer; absent is fine
	}
	var sp *arp.Speaker
	require.NoError(t, s.Do(func() error {
		ifi, err := net.InterfaceByName(s.Link)
		if err != nil {
			return err
		}
		sp, err = arp.Listen(ifi, nil)
		return err
	}))
	sp.SetVIPs([]netip.Addr{vip})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sp.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = sp.Close()
	})
}
