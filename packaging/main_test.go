package packaging

import (
	"os"
	"testing"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

func TestMain(m *testing.M) {
	netlab.RunChildIfRequested()
	os.Exit(m.Run())
}
