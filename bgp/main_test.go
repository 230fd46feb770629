package bgp

import (
	"os"
	"testing"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// childMain, when set by a platform's test file, runs the test binary as a
// helper process (the balancer side of the router tests) when the
// environment asks for it; it does not return then.
var childMain func()

func TestMain(m *testing.M) {
	netlab.RunChildIfRequested()
	if childMain != nil {
		childMain()
	}
	os.Exit(m.Run())
}
