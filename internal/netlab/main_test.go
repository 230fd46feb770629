package netlab

import (
	"os"
	"testing"
)

// beforeTests, when set by a platform's test file, runs after the child
// dispatch and before the tests; it may take over the process.
var beforeTests func()

func TestMain(m *testing.M) {
	RunChildIfRequested()
	if beforeTests != nil {
		beforeTests()
	}
	os.Exit(m.Run())
}
