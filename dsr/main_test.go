package dsr_test

import (
	"os"
	"testing"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// TestMain lets the integration tests re-execute this binary as the servers
// inside their network namespaces.
func TestMain(m *testing.M) {
	netlab.RunChildIfRequested()
	os.Exit(m.Run())
}
