//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// doIn runs fn on a fresh goroutine locked to its OS thread after moving
// that thread into the named namespace ns (empty: stay) and pinning it to
// cpu (negative: leave the affinity). The goroutine never unlocks, so the
// thread is discarded rather than returned to the pool in another
// namespace or with a narrowed affinity.
func doIn(ns string, cpu int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if ns != "" {
			target, err := netns.GetFromName(ns)
			if err != nil {
				errc <- fmt.Errorf("bench: open namespace %s: %w", ns, err)
				return
			}
			err = netns.Set(target)
			target.Close()
			if err != nil {
				errc <- fmt.Errorf("bench: enter namespace %s: %w", ns, err)
				return
			}
		}
		if cpu >= 0 {
			if err := pin(0, cpu); err != nil {
				errc <- err
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

// pin sets the CPU affinity of task tid (0: the calling thread) to cpu.
func pin(tid, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(tid, &set); err != nil {
		return fmt.Errorf("bench: pin task %d to CPU %d: %w", tid, cpu, err)
	}
	return nil
}

// run runs a command (for example ip) and returns its error with its
// output.
func run(ctx context.Context, stdin string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// writeProcSys writes a sysctl of the calling thread's network namespace.
func writeProcSys(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("bench: sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func readProcSys(key string) (string, error) {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("bench: sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// setGRO switches generic receive offload of ifname (in the calling
// thread's namespace) on or off with the ETHTOOL_SGRO ioctl. On a veth,
// GRO on gives the device a NAPI instance, which is what lets it receive
// frames redirected by XDP (the generator's) without an XDP program of
// its own.
func setGRO(ifname string, on bool) error {
	const (
		ethtoolSGRO = 0x0000002c
		siocEthtool = 0x8946
	)
	type ethtoolValue struct{ cmd, data uint32 }
	type ifreq struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bench: ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: ethtoolSGRO}
	if on {
		v.data = 1
	}
	var r ifreq
	copy(r.name[:], ifname)
	r.data = unsafe.Pointer(&v)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), siocEthtool, uintptr(unsafe.Pointer(&r))); e != 0 {
		return fmt.Errorf("bench: set GRO on %s: %w", ifname, e)
	}
	runtime.KeepAlive(&v)
	return nil
}

// napiThreads returns the ids of the threaded-NAPI kernel threads of
// ifname ("napi/<ifname>-<id>", truncated to the 15 bytes of a task name).
// Interface names in the benchmark carry a random suffix, so a prefix
// match cannot pick up another namespace's device.
func napiThreads(ifname string) ([]int, error) {
	prefix := "napi/" + ifname + "-"
	if len(prefix) > 15 {
		prefix = prefix[:15]
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("bench: list tasks: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue // exited meanwhile
		}
		if strings.HasPrefix(string(comm), prefix) {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("bench: no threaded NAPI kernel thread for %s", ifname)
	}
	return pids, nil
}

// taskCPU returns the CPU time in nanoseconds task tid of process pid has
// used (/proc/PID/task/TID/schedstat, nanosecond resolution).
func taskCPU(pid, tid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
	if err != nil {
		return 0, fmt.Errorf("bench: task CPU: %w", err)
	}
	return parseSchedstat(b)
}

// tasks lists the thread IDs of process pid.
func tasks(pid int) ([]int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// processCPU sums taskCPU over the live threads of pid. Go runtimes do not
// retire threads in steady state, so nothing is lost to exited threads
// within a measurement window.
func processCPU(pid int) (uint64, error) {
	tids, err := tasks(pid)
	if err != nil {
		return 0, fmt.Errorf("bench: process CPU: %w", err)
	}
	var sum uint64
	for _, tid := range tids {
		ns, err := taskCPU(pid, tid)
		if err != nil {
			continue // thread exited between listing and reading
		}
		sum += ns
	}
	return sum, nil
}

// taskSwitches returns the voluntary and involuntary context switches of
// task tid of process pid.
func taskSwitches(pid, tid int) (voluntary, involuntary uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		return 0, 0, fmt.Errorf("bench: task switches: %w", err)
	}
	return parseSwitches(b)
}

// processSwitches sums taskSwitches over the live threads of pid.
func processSwitches(pid int) (voluntary, involuntary uint64, err error) {
	tids, err := tasks(pid)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: process switches: %w", err)
	}
	for _, tid := range tids {
		v, i, err := taskSwitches(pid, tid)
		if err != nil {
			continue // thread exited between listing and reading
		}
		voluntary += v
		involuntary += i
	}
	return voluntary, involuntary, nil
}

// rxDropped returns the receive drops of interface ifname in namespace
// ns. On veth they include the frames the peer could not put into the
// receiving ring (XDP-redirected frames when the ring is full, because
// the NAPI thread did not run soon enough): loss before any socket sees
// the frame.
func rxDropped(ns, ifname string) (uint64, error) {
	var n uint64
	err := doIn(ns, -1, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("bench: link %s: %w", ifname, err)
		}
		if st := l.Attrs().Statistics; st != nil {
			n = st.RxDropped
		}
		return nil
	})
	return n, err
}

// cpuBusy returns the busy time of one CPU from /proc/stat in nanoseconds.
func cpuBusy(cpu int) (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: read /proc/stat: %w", err)
	}
	return parseCPUBusy(b, cpu, 1e9/100) // USER_HZ is 100 on Linux
}

func machine(genCPU, fwdCPU int) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GenCPU: genCPU, FwdCPU: fwdCPU}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// cpuPair picks the generator's and the forwarder's CPUs from the
// process's allowed set: the first and the last.
func cpuPair() (gen, fwd int, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, fmt.Errorf("bench: CPU affinity: %w", err)
	}
	gen, fwd = -1, -1
	for i := range 1024 {
		if set.IsSet(i) {
			if gen < 0 {
				gen = i
			}
			fwd = i
		}
	}
	if gen < 0 || gen == fwd {
		return 0, 0, fmt.Errorf("bench: need two CPUs, have %d", set.Count())
	}
	return gen, fwd, nil
}
