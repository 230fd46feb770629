package netlab

import (
	"testing"

	"golang.org/x/sys/unix"
)

// MountBPFFS mounts a BPF filesystem of the test's own on a temporary
// directory (never /sys/fs/bpf) and returns that directory; it is
// unmounted when the test ends, which also drops whatever was pinned
// there. Privileged: it skips (or fails under CI) as RequirePrivileged.
func MountBPFFS(t testing.TB) string {
	t.Helper()
	RequirePrivileged(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount bpffs %s: %v", dir, err)
		}
	})
	return dir
}
