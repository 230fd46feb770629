package realserver_test

import (
	"os"
	"strings"
)

// readProcSys reads a sysctl of the calling thread's namespace.
func readProcSys(key string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	return strings.TrimSpace(string(b)), err
}
