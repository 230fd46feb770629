package realserver_test

import "github.com/dsrlb/dsrlb/internal/sysctl"

// readProcSys reads a sysctl (sysctl(8) notation) of the calling thread's
// namespace.
func readProcSys(key string) (string, error) {
	k, err := sysctl.Parse(key)
	if err != nil {
		return "", err
	}
	return sysctl.Read(k)
}
