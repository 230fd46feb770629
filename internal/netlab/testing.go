package netlab

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

// buildTimeout bounds lab construction in NewT.
const buildTimeout = 2 * time.Minute

// RequirePrivileged skips the test, with the reason, unless the process may
// build labs. When the environment has CI=true on Linux it fails instead:
// CI runs as root, so a skipped privileged test there means a broken setup,
// not a missing privilege.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	ok, why := Privileged()
	switch privilegeVerdict(ok, os.Getenv("CI") == "true", runtime.GOOS) {
	case verdictFail:
		t.Fatalf("netlab: privileged test cannot run under CI: %s", why)
	case verdictSkip:
		t.Skipf("netlab: skipping privileged test: %s", why)
	}
}

type verdict int

const (
	verdictRun verdict = iota
	verdictSkip
	verdictFail
)

// privilegeVerdict decides what RequirePrivileged does.
func privilegeVerdict(ok, ci bool, goos string) verdict {
	switch {
	case ok:
		return verdictRun
	case ci && goos == "linux":
		return verdictFail
	default:
		return verdictSkip
	}
}

// NewT builds a lab for a test: it skips (see RequirePrivileged) without
// the needed privileges, fails the test if the lab cannot be built, closes
// the lab when the test ends, and dumps the children's output if the test
// failed.
func NewT(t testing.TB, cfg *Config) *Lab {
	t.Helper()
	RequirePrivileged(t)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	l, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("netlab %s child output:\n%s", l.ID, l.Logs())
		}
		if err := l.Close(); err != nil {
			t.Errorf("netlab: close: %v", err)
		}
	})
	return l
}
