package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckXDP(t *testing.T) {
	base := &xdpCounts{Received: 100, Forwarded: 90, Passed: 10, PassedBy: map[string]uint64{"not_ours": 10}}
	for _, tc := range []struct {
		name      string
		before    *xdpCounts
		after     *xdpCounts
		delivered uint64
		wantErr   []string // substrings of the error; nil: no error
	}{
		{name: "another candidate", before: nil, after: nil, delivered: 1000},
		{name: "all forwarded", before: base,
			after: &xdpCounts{Received: 1100, Forwarded: 1090, Passed: 10, PassedBy: map[string]uint64{"not_ours": 10}}, delivered: 1000},
		{name: "a few passed", before: base,
			after: &xdpCounts{Received: 1100, Forwarded: 700, Passed: 410, PassedBy: map[string]uint64{"not_ours": 410}}, delivered: 700},
		{name: "most passed", before: base,
			after:     &xdpCounts{Received: 1100, Forwarded: 190, Passed: 910, PassedBy: map[string]uint64{"not_ours": 20, "no_service": 800}},
			delivered: 1000, wantErr: []string{"passed 900 of 1000", "no_service 800, not_ours 10", "forwarded only 100"}},
		{name: "program saw nothing", before: base, after: base, delivered: 5,
			wantErr: []string{"saw none of the 5 frames"}},
		{name: "nothing at all", before: base, after: base, delivered: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkXDP(tc.before, tc.after, tc.delivered)
			if tc.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
