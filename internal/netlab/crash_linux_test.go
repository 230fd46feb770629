package netlab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// envCrashTest makes the test binary build a lab, report it on stdout and
// wait to be killed, for TestIntegrationCrashedOwner.
const envCrashTest = "DSRLB_NETLAB_TEST_CRASH"

func init() {
	beforeTests = func() {
		if os.Getenv(envCrashTest) == "" {
			return
		}
		l, err := New(context.Background(), &Config{Servers: 2})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(l.ID, l.procs[0].cmd.Process.Pid, l.procs[1].cmd.Process.Pid)
		select {}
	}
}

// waitGone waits until pid (not our child) has exited, via a pidfd, which
// becomes readable when the process terminates.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return
	}
	require.NoError(t, err)
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 10_000)
	require.NoError(t, err)
	require.Equal(t, 1, n, "process %d still alive after its owner died", pid)
}

// TestIntegrationCrashedOwner kills a process that owns a lab, as a crash
// or Ctrl-C would: its server children must die with it (Pdeathsig) and
// the next sweep must remove its namespaces.
func TestIntegrationCrashedOwner(t *testing.T) {
	RequirePrivileged(t)
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashTest+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		SweepLeftovers(nil) // the killed owner's namespaces, if the test failed early
	})

	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	var id string
	var pids [2]int
	_, err = fmt.Sscanf(line, "%s %d %d", &id, &pids[0], &pids[1])
	require.NoError(t, err, line)
	require.Len(t, labNamespaces(t, id), 5)

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	for _, p := range pids {
		waitGone(t, p)
	}
	assert.Len(t, labNamespaces(t, id), 5, "namespaces outlive a killed owner...")

	removed, err := SweepLeftovers(nil)
	require.NoError(t, err)
	assert.Subset(t, removed, []string{nsName(id, "sw"), nsName(id, "lb"), nsName(id, "c0"), nsName(id, "s0"), nsName(id, "s1")})
	assert.Empty(t, labNamespaces(t, id), "...until the next sweep")
	assert.NoFileExists(t, markerDir+"/"+id)
}
