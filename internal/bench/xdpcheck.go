package bench

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// xdpCounts are the counters of BalancerXDP's XDP program (from the
// Balancer's Stats().XDP) as its child reports them.
type xdpCounts struct {
	// Received counts every frame the program saw; each is also counted
	// once in Forwarded (XDP_TX), Passed (up to the Go path) or Dropped.
	Received, Forwarded, Passed, Dropped uint64
	// PassedBy breaks Passed down by reason.
	PassedBy map[string]uint64
}

// checkXDP returns an error, saying why, unless the XDP program forwarded
// most of the frames it saw between two readings: frames it passed up are
// forwarded by the Go path, and the sample would measure that instead.
// delivered is what the sink received meanwhile. Nil readings (another
// candidate) are never an error.
func checkXDP(before, after *xdpCounts, delivered uint64) error {
	if before == nil || after == nil {
		return nil
	}
	recv := after.Received - before.Received
	fwd := after.Forwarded - before.Forwarded
	passed := after.Passed - before.Passed
	if recv == 0 {
		if delivered > 0 {
			return fmt.Errorf("the XDP program saw none of the %d frames the sink received: something else forwarded them", delivered)
		}
		return nil
	}
	if passed > recv/2 {
		type reason struct {
			name string
			n    uint64
		}
		var rs []reason
		for name, n := range after.PassedBy {
			if d := n - before.PassedBy[name]; d > 0 {
				rs = append(rs, reason{name, d})
			}
		}
		slices.SortFunc(rs, func(a, b reason) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = fmt.Sprintf("%s %d", r.name, r.n)
		}
		return fmt.Errorf("the XDP program passed %d of %d frames up to the Go path (by reason: %s) and forwarded only %d: the sample would measure the packet socket, not XDP",
			passed, recv, strings.Join(parts, ", "), fwd)
	}
	return nil
}
