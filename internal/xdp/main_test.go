package xdp

import (
	"os"
	"testing"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// TestMain lets the lab's server processes, which re-execute the test
// binary, run as such.
func TestMain(m *testing.M) {
	netlab.RunChildIfRequested()
	os.Exit(m.Run())
}
