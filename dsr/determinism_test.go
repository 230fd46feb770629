package dsr_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
)

// determinismServices are three services, one per scheduler that places
// flows by hash, with backends of several weights.
func determinismServices() []dsr.Service {
	var out []dsr.Service
	for i, sch := range []string{"mh", "sh", "mh"} {
		svc := dsr.Service{
			VIP: netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}), Protocol: dsr.TCP, Port: 80,
			Scheduler: sch,
		}
		svc.SchedulerConfig.Seed = uint64(i) * 7
		for j := range 9 {
			svc.Backends = append(svc.Backends, dsr.Backend{
				Addr:   netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + j + 10*i)}),
				MAC:    net.HardwareAddr{0x02, 0, 0, 0, byte(i), byte(j)},
				Weight: uint32(1 + j%3),
			})
		}
		out = append(out, svc)
	}
	return out
}

// build adds the services to a new Balancer in the order perm gives, each
// with its backends added one by one in a shuffled order.
func build(t *testing.T, seed uint64, order []int, shuffle *rand.Rand) *dsr.Balancer {
	t.Helper()
	b, err := dsr.New(&dsr.Config{Seed: seed})
	require.NoError(t, err)
	svcs := determinismServices()
	for _, i := range order {
		svc := svcs[i]
		bes := svc.Backends
		svc.Backends = nil
		require.NoError(t, b.AddService(svc))
		if shuffle != nil {
			shuffle.Shuffle(len(bes), func(a, c int) { bes[a], bes[c] = bes[c], bes[a] })
		}
		for _, be := range bes {
			require.NoError(t, b.AddBackend(svc.Key(), be))
		}
	}
	return b
}

// TestBalancersAgreeWhateverTheOrder is what lets a flow survive a change
// of balancer (a VRRP takeover, an ECMP re-hash): two Balancers with the same
// Seed and services pick the same backend, and the same table slot, for
// every flow, whatever order the services and backends were added in.
func TestBalancersAgreeWhateverTheOrder(t *testing.T) {
	const seed = 0x5eed
	ref := build(t, seed, []int{0, 1, 2}, nil)
	orders := [][]int{{2, 1, 0}, {1, 0, 2}, {2, 0, 1}}
	for k, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			other := build(t, seed, order, rand.New(rand.NewPCG(uint64(k), 1)))
			rng := rand.New(rand.NewPCG(42, uint64(k)))
			svcs := determinismServices()
			for range 10_000 {
				svc := svcs[rng.IntN(len(svcs))]
				tup := dsr.Tuple{
					Src:      netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(256))}), uint16(1024+rng.IntN(60000))),
					Dst:      netip.AddrPortFrom(svc.VIP, svc.Port),
					Protocol: dsr.TCP,
				}
				want, err := ref.ExplainFlow(tup)
				require.NoError(t, err)
				got, err := other.ExplainFlow(tup)
				require.NoError(t, err)
				require.True(t, want.Forward, "%s: %s", tup, want.String())
				require.True(t, want.Backend.IsValid())
				require.Equal(t, want.Backend, got.Backend, "%s", tup)
				require.NotNil(t, want.Placement)
				require.NotNil(t, got.Placement)
				require.Equal(t, want.Placement.Slot, got.Placement.Slot, "%s", tup)
				require.Equal(t, want.Placement.TableSize, got.Placement.TableSize)
			}
		})
	}

	// The test can fail: another Seed moves flows.
	other := build(t, seed+1, []int{0, 1, 2}, nil)
	moved := 0
	rng := rand.New(rand.NewPCG(7, 7))
	for range 1000 {
		tup := dsr.Tuple{Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(256))}), uint16(1024+rng.IntN(60000))),
			Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, 10}), 80), Protocol: dsr.TCP}
		a, _ := ref.ExplainFlow(tup)
		b, _ := other.ExplainFlow(tup)
		if a.Backend != b.Backend {
			moved++
		}
	}
	assert.Positive(t, moved, "a different Seed should change some picks")
}
