//go:build linux

package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// batchSize is the frames per system call of both user-space candidates.
const batchSize = 64

// topo is the benchmark's two namespaces, its veth pair and its BPF
// objects.
type topo struct {
	cfg            Config
	id             string
	genNS, fwdNS   string
	genIf, fwdIf   string
	genMAC, fwdMAC net.HardwareAddr
	genIdx         int
	genCPU, fwdCPU int

	sent, delivered *ebpf.Map
	pace            *ebpf.Map
	sinkProg        *ebpf.Program
	reflProg        *ebpf.Program
	sinkLink        link.Link
	genProg         *ebpf.Program
}

// Run builds the topology, measures every configured candidate
// interleaved, removes everything it created and returns the samples. It
// needs Linux, root and two CPUs, and the ip command (iproute2).
func Run(ctx context.Context, cfg *Config) (*Report, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("bench: the ip command (iproute2) is needed: %w", err)
	}
	t := &topo{cfg: c}
	t.genCPU, t.fwdCPU, err = cpuPair()
	if err != nil {
		return nil, err
	}
	defer t.close()
	if err := t.build(ctx); err != nil {
		return nil, err
	}
	rep := &Report{Config: c, Machine: machine(t.genCPU, t.fwdCPU)}
	frames := map[int][]byte{}
	for _, size := range c.FrameSizes {
		if frames[size], err = buildFrame(size, t.fwdMAC, t.genMAC); err != nil {
			return nil, err
		}
	}
	for r := range c.Reps {
		for _, size := range c.FrameSizes {
			first := len(rep.Samples)
			for _, cand := range c.Candidates {
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				s, err := t.measureClean(ctx, cand, frames[size])
				if err != nil {
					return rep, fmt.Errorf("bench: %s, %d bytes, rep %d: %w", cand, size, r+1, err)
				}
				s.Rep = r
				rep.Samples = append(rep.Samples, s)
				c.Logger.Info("sample", "rep", r+1, "size", size, "candidate", cand,
					"capacity_kpps", s.Capacity/1e3, "lossfree_kpps", s.LossFreeRate/1e3,
					"flood_kpps", s.SatDelivered/1e3, "flood_ns_per_pkt", s.SatCPUPerPacket,
					"paced_kpps", s.PacedOffered/1e3, "loss", s.PacedLoss, "paced_ns_per_pkt", s.PacedCPUPerPacket,
					"paced_frames_per_read", s.PacedCalls.FramesPerRead, "paced_wakeups_per_pkt", s.PacedCalls.WakeupsPerPacket,
					"flood_frames_per_read", s.FloodCalls.FramesPerRead, "flood_kernel_drops", s.FloodCalls.KernelDrops,
					"foreign", s.ForeignLoad, "shortfall", s.PacedShortfall, "reruns", s.Reruns)
			}
			samples := rep.Samples[first:]
			rate := commonRate(samples, c.CommonLoad)
			if rate == 0 {
				continue
			}
			for i := range samples {
				s := &samples[i]
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				cp, err := t.measureCommonClean(ctx, s.Candidate, frames[size], rate, s.SatOffered)
				if err != nil {
					return rep, fmt.Errorf("bench: %s, %d bytes, rep %d, common rate: %w", s.Candidate, size, r+1, err)
				}
				s.Common = cp
				c.Logger.Info("common rate", "rep", r+1, "size", size, "candidate", s.Candidate,
					"target_kpps", cp.Target/1e3, "offered_kpps", cp.Offered/1e3, "loss", cp.Loss,
					"ns_per_pkt", cp.CPUPerPacket, "frames_per_read", cp.Calls.FramesPerRead,
					"frames_per_write", cp.Calls.FramesPerWrite, "wakeups_per_pkt", cp.Calls.WakeupsPerPacket,
					"preempt_per_pkt", cp.Calls.PreemptionsPerPacket, "napi_wakeups_per_pkt", cp.Calls.NAPIWakeupsPerPacket,
					"kernel_drops", cp.Calls.KernelDrops, "send_drops", cp.Calls.SendDrops, "ring_drops", cp.Calls.RingDrops,
					"foreign", cp.ForeignLoad, "shortfall", cp.Shortfall, "reruns", cp.Reruns)
			}
		}
	}
	return rep, nil
}

// begin starts cand, pins both veths' NAPI threads and warms the
// candidate up at rate. It returns the running candidate, which the caller
// must stop, and the forwarder's NAPI thread IDs; on error it has stopped
// the candidate itself.
func (t *topo) begin(ctx context.Context, cand Candidate, frame []byte, rate float64) (*running, []int, error) {
	r, err := t.start(ctx, cand)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*running, []int, error) {
		if serr := r.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, nil, err
	}
	napi, err := t.pinNAPI(t.fwdIf, t.fwdCPU, false)
	if err != nil {
		return fail(err)
	}
	if _, err := t.pinNAPI(t.genIf, t.genCPU, true); err != nil {
		return fail(err)
	}
	if _, err := t.generate(ctx, frame, rate, t.cfg.Warmup); err != nil {
		return fail(err)
	}
	if err := t.drain(ctx); err != nil {
		return fail(err)
	}
	return r, napi, nil
}

// measureCommon starts cand, warms it up at rate and measures one paced
// phase at rate.
func (t *topo) measureCommon(ctx context.Context, cand Candidate, frame []byte, rate float64) (cp CommonPhase, err error) {
	cp.Target = rate
	r, napi, err := t.begin(ctx, cand, frame, rate)
	if err != nil {
		return cp, err
	}
	defer func() {
		if serr := r.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	p, err := t.phase(ctx, r, napi, frame, rate, t.cfg.Duration)
	if err != nil {
		return cp, err
	}
	cp.Offered, cp.Loss = p.offered, p.loss
	cp.CPUPerPacket, cp.ProcessCPUPerPacket, cp.BusyPerPacket = p.cpuPerPacket, p.procPerPacket, p.busyPerPacket
	cp.ForeignLoad = p.foreign
	cp.Shortfall = max(0, 1-p.offered/rate)
	cp.Calls = p.calls
	return cp, nil
}

// measureCommonClean is measureCommon with the re-runs of measureClean;
// floodRate is the generator's unpaced rate in the candidate's sample,
// which tells whether a shortfall means a starved generator.
func (t *topo) measureCommonClean(ctx context.Context, cand Candidate, frame []byte, rate, floodRate float64) (CommonPhase, error) {
	var best CommonPhase
	for attempt := 0; ; attempt++ {
		if t.cfg.Reruns > 0 {
			if err := t.waitQuiet(ctx); err != nil {
				return best, err
			}
		}
		cp, err := t.measureCommon(ctx, cand, frame, rate)
		if err != nil {
			return cp, err
		}
		d := Sample{ForeignLoad: cp.ForeignLoad, PacedShortfall: cp.Shortfall, PacedTarget: rate, SatOffered: floodRate}
		if !t.cfg.disturbed(d) {
			cp.Reruns = attempt
			return cp, nil
		}
		if attempt == 0 || disturbance(d) < best.ForeignLoad+best.Shortfall {
			best = cp
		}
		if attempt >= t.cfg.Reruns {
			best.Reruns = attempt
			return best, nil
		}
		t.cfg.Logger.Info("disturbed common-rate phase, measuring again", "candidate", cand, "size", len(frame),
			"foreign", cp.ForeignLoad, "shortfall", cp.Shortfall)
	}
}

func (t *topo) build(ctx context.Context) error {
	var id [3]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	t.id = hex.EncodeToString(id[:])
	t.genIf, t.fwdIf = "bg"+t.id, "bf"+t.id
	for _, ns := range []*string{&t.genNS, &t.fwdNS} {
		name := "dsrlb-bench-" + t.id + "-gen"
		if ns == &t.fwdNS {
			name = "dsrlb-bench-" + t.id + "-fwd"
		}
		if err := run(ctx, "", "ip", "netns", "add", name); err != nil {
			return err
		}
		*ns = name
	}
	steps := [][]string{
		{"-n", t.genNS, "link", "add", t.genIf, "type", "veth", "peer", "name", t.fwdIf, "netns", t.fwdNS},
		{"-n", t.genNS, "link", "set", "lo", "up"},
		{"-n", t.fwdNS, "link", "set", "lo", "up"},
		{"-n", t.genNS, "addr", "add", sinkAddr.String(), "dev", t.genIf},
		{"-n", t.fwdNS, "addr", "add", fwdAddr.String(), "dev", t.fwdIf},
		{"-n", t.genNS, "link", "set", t.genIf, "up"},
		{"-n", t.fwdNS, "link", "set", t.fwdIf, "up"},
	}
	for _, s := range steps {
		if err := run(ctx, "", "ip", s...); err != nil {
			return err
		}
	}
	err := doIn(t.genNS, -1, func() error {
		ifi, err := net.InterfaceByName(t.genIf)
		if err != nil {
			return err
		}
		t.genMAC, t.genIdx = ifi.HardwareAddr, ifi.Index
		return writeProcSys("net.ipv6.conf.all.disable_ipv6", "1")
	})
	if err != nil {
		return err
	}
	err = doIn(t.fwdNS, -1, func() error {
		ifi, err := net.InterfaceByName(t.fwdIf)
		if err != nil {
			return err
		}
		t.fwdMAC = ifi.HardwareAddr
		for _, kv := range [][2]string{
			{"net.ipv6.conf.all.disable_ipv6", "1"},
			{"net.ipv4.ip_forward", "0"},
			{"net.ipv4.conf.all.rp_filter", "0"},
			{"net.ipv4.conf." + t.fwdIf + ".rp_filter", "0"},
			{"net.ipv4.conf.all.send_redirects", "0"},
			{"net.ipv4.conf." + t.fwdIf + ".send_redirects", "0"},
		} {
			if err := writeProcSys(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return setGRO(t.fwdIf, true)
	})
	if err != nil {
		return err
	}
	// Kernel forwarding's path to the sink: only used while ip_forward=1.
	steps = [][]string{
		{"-n", t.fwdNS, "neigh", "replace", sinkAddr.Addr().String(), "lladdr", t.genMAC.String(), "dev", t.fwdIf, "nud", "permanent"},
		{"-n", t.fwdNS, "route", "add", VIP.String() + "/32", "via", sinkAddr.Addr().String(), "dev", t.fwdIf},
		{"-n", t.fwdNS, "route", "add", clientNet.String(), "via", sinkAddr.Addr().String(), "dev", t.fwdIf},
	}
	for _, s := range steps {
		if err := run(ctx, "", "ip", s...); err != nil {
			return err
		}
	}
	if t.sent, err = counterMap("dsrbench_sent"); err != nil {
		return err
	}
	if t.delivered, err = counterMap("dsrbench_dlvd"); err != nil {
		return err
	}
	if t.pace, err = paceMap(); err != nil {
		return err
	}
	if t.genProg, err = generatorProgram(t.cfg.Flows, t.sent, t.pace); err != nil {
		return err
	}
	if t.reflProg, err = reflectorProgram(); err != nil {
		return err
	}
	if t.sinkProg, err = sinkProgram(VIP.As4(), t.delivered); err != nil {
		return err
	}
	err = doIn(t.genNS, -1, func() error {
		l, err := link.AttachXDP(link.XDPOptions{Program: t.sinkProg, Interface: t.genIdx, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("bench: attach sink XDP: %w", err)
		}
		t.sinkLink = l
		return nil
	})
	if err != nil {
		return err
	}
	// Threaded NAPI moves each veth's receive processing out of softirq
	// into a kernel thread we can pin and account: the forwarder's to the
	// forwarder CPU, the sink's to the generator CPU.
	for _, x := range []struct {
		ns, ifname string
		cpu        int
		realtime   bool
	}{{t.fwdNS, t.fwdIf, t.fwdCPU, false}, {t.genNS, t.genIf, t.genCPU, true}} {
		if err := run(ctx, "1", "ip", "netns", "exec", x.ns, "tee", "/sys/class/net/"+x.ifname+"/threaded"); err != nil {
			return err
		}
		if _, err := t.pinNAPI(x.ifname, x.cpu, x.realtime); err != nil {
			return err
		}
	}
	return nil
}

// boostNice is the nice value of every benchmark task. The machine may be
// shared: a raised priority keeps ordinary (nice 0) work of others from
// taking a large share of the pinned CPUs during a measurement, while
// staying in the normal scheduling class so the forwarder's NAPI thread
// and its process still share their CPU fairly, as they would in
// production.
const boostNice = -15

// boost sets the nice value of task tid (0: the calling thread; children
// and threads it creates inherit it).
func boost(tid int) error {
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, boostNice); err != nil {
		return fmt.Errorf("bench: renice task %d: %w", tid, err)
	}
	return nil
}

// batchPolicy moves the calling thread (and the processes it starts) to
// SCHED_BATCH at boostNice. A batch task keeps its fair share of the CPU
// but never preempts a running task when it wakes up. The forwarder's
// NAPI thread and the user-space candidate share one CPU: in the normal
// policy every frame the NAPI thread queues wakes the candidate, which
// preempts it at once, takes that one frame, transmits it (waking the
// sink's NAPI thread on the other CPU, an inter-processor interrupt) and
// sleeps again. That ping-pong costs tens of microseconds per frame and
// dominates whatever the candidate does. On a real host receive
// processing runs in softirq context, which the process cannot preempt,
// so it hands over whole batches: the batch policy restores that.
func batchPolicy() error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_BATCH, Nice: boostNice}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("bench: SCHED_BATCH: %w", err)
	}
	return nil
}

// pinNAPI pins the NAPI threads of ifname to cpu and returns their ids.
// It runs before every measurement because the kernel may recreate the
// threads when a device's XDP or GRO state changes. With realtime set the
// threads also get SCHED_FIFO priority 1: the sink's receive thread must
// preempt the generator, which keeps its CPU busy, or the sink, not the
// forwarder, would limit what is delivered.
func (t *topo) pinNAPI(ifname string, cpu int, realtime bool) ([]int, error) {
	pids, err := napiThreads(ifname)
	if err != nil {
		return nil, err
	}
	for _, p := range pids {
		if err := pin(p, cpu); err != nil {
			return nil, err
		}
		if err := boost(p); err != nil {
			return nil, err
		}
		if realtime {
			attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}
			if err := unix.SchedSetAttr(p, &attr, 0); err != nil {
				return nil, fmt.Errorf("bench: make NAPI thread %d realtime: %w", p, err)
			}
		}
	}
	return pids, nil
}

func (t *topo) close() {
	if t.sinkLink != nil {
		_ = t.sinkLink.Close()
	}
	for _, c := range []io.Closer{t.genProg, t.reflProg, t.sinkProg, t.sent, t.delivered, t.pace} {
		if c != nil && !isNilCloser(c) {
			_ = c.Close()
		}
	}
	for _, ns := range []string{t.genNS, t.fwdNS} {
		if ns != "" {
			_ = run(context.Background(), "", "ip", "netns", "del", ns)
		}
	}
}

func isNilCloser(c io.Closer) bool {
	switch v := c.(type) {
	case *ebpf.Program:
		return v == nil
	case *ebpf.Map:
		return v == nil
	}
	return false
}

// running is a started candidate.
type running struct {
	cand  Candidate
	stop  func() error
	child int // pid of the user-space candidate, 0 for in-kernel ones
	// stats asks a user-space candidate for its counters; nil for
	// in-kernel ones.
	stats func() (childStats, error)
}

func (t *topo) start(ctx context.Context, cand Candidate) (*running, error) {
	r, err := t.startCandidate(ctx, cand)
	if r != nil {
		r.cand = cand
	}
	return r, err
}

func (t *topo) startCandidate(ctx context.Context, cand Candidate) (*running, error) {
	switch cand {
	case KernelForward:
		if err := t.setForwarding(true); err != nil {
			return nil, err
		}
		return &running{stop: func() error { return t.setForwarding(false) }}, nil
	case XDPReflector:
		var l link.Link
		err := doIn(t.fwdNS, -1, func() error {
			ifi, err := net.InterfaceByName(t.fwdIf)
			if err != nil {
				return err
			}
			l, err = link.AttachXDP(link.XDPOptions{Program: t.reflProg, Interface: ifi.Index, Flags: link.XDPDriverMode})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("attach reflector XDP: %w", err)
		}
		return &running{stop: l.Close}, nil
	case Balancer, BalancerXDP, PacketReflector:
		if err := t.setForwarding(false); err != nil {
			return nil, err
		}
		return t.startChild(ctx, cand)
	}
	return nil, fmt.Errorf("unknown candidate %q", cand)
}

// setForwarding switches the forwarder namespace's IPv4 forwarding and
// reads it back: left on while a packet-socket candidate runs, the kernel
// would forward a second copy of every frame.
func (t *topo) setForwarding(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return doIn(t.fwdNS, -1, func() error {
		if err := writeProcSys("net.ipv4.ip_forward", v); err != nil {
			return err
		}
		got, err := readProcSys("net.ipv4.ip_forward")
		if err != nil {
			return err
		}
		if got != v {
			return fmt.Errorf("ip_forward is %s, want %s", got, v)
		}
		return nil
	})
}

// startChild re-executes this binary as cand inside the forwarder
// namespace, pinned to the forwarder CPU: namespace and affinity are
// inherited from the thread that forks. That thread then waits for the
// child, staying alive so the child's parent-death signal only fires if
// the benchmark itself dies.
func (t *topo) startChild(ctx context.Context, cand Candidate) (*running, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	spec, err := json.Marshal(childSpec{
		Role: cand, Ifname: t.fwdIf, VIP: VIP, Backend: sinkAddr.Addr(),
		BackendMAC: t.genMAC.String(), BatchSize: batchSize,
	})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) })
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		_ = doIn(t.fwdNS, t.fwdCPU, func() error {
			if err := batchPolicy(); err != nil {
				started <- err
				return nil
			}
			if err := cmd.Start(); err != nil {
				started <- err
				return nil
			}
			started <- nil
			waited <- cmd.Wait()
			return nil
		})
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", cand, err)
	}
	childErr := func(err error) error {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("%s child: %w: %s", cand, err, strings.TrimSpace(stderr.String()))
	}
	ready := make(chan error, 1)
	rd := bufio.NewReader(stdout)
	go func() {
		line, err := rd.ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Kill()
			return nil, childErr(errors.Join(err, <-waited))
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, childErr(errors.Join(errors.New("not ready after 30s"), <-waited))
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-waited
		return nil, ctx.Err()
	}
	stop := func() error {
		_ = stdin.Close()
		select {
		case err := <-waited:
			if err != nil {
				return childErr(err)
			}
			return nil
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			return childErr(errors.Join(errors.New("did not stop within 10s"), <-waited))
		}
	}
	// Questions are asked by one goroutine at a time (the driver's), and
	// the child answers each with one line before the next is asked.
	stats := func() (childStats, error) {
		var st childStats
		if _, err := io.WriteString(stdin, "stats\n"); err != nil {
			return st, childErr(err)
		}
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return st, childErr(err)
		}
		if err := json.Unmarshal(line, &st); err != nil {
			return st, childErr(fmt.Errorf("bad stats %q: %w", line, err))
		}
		return st, nil
	}
	return &running{stop: stop, child: cmd.Process.Pid, stats: stats}, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// counters is one reading of everything a phase is judged by.
type counters struct {
	at              time.Time
	sent, delivered uint64
	taskNS, busyNS  uint64
	procNS          uint64 // the candidate process's share of taskNS
	// Context switches of the candidate's threads: voluntary ones are
	// its sleeps (each followed by a wake-up), involuntary ones
	// preemptions. napiWakeups are the forwarder NAPI thread's voluntary
	// switches.
	wakeups, preempted, napiWakeups uint64
	child                           childStats
	user                            bool // a user-space candidate: child and switches are set
	ringDrops                       uint64
}

func (t *topo) read(r *running, napi []int) (counters, error) {
	c := counters{at: time.Now()}
	var err error
	if c.sent, err = readCounter(t.sent); err != nil {
		return c, err
	}
	if c.delivered, err = readCounter(t.delivered); err != nil {
		return c, err
	}
	for _, p := range napi {
		ns, err := taskCPU(p, p)
		if err != nil {
			return c, err
		}
		c.taskNS += ns
		v, _, err := taskSwitches(p, p)
		if err != nil {
			return c, err
		}
		c.napiWakeups += v
	}
	if r.child != 0 {
		ns, err := processCPU(r.child)
		if err != nil {
			return c, err
		}
		c.taskNS += ns
		c.procNS = ns
		if c.wakeups, c.preempted, err = processSwitches(r.child); err != nil {
			return c, err
		}
		c.user = true
	}
	if r.stats != nil {
		if c.child, err = r.stats(); err != nil {
			return c, err
		}
	}
	if c.busyNS, err = cpuBusy(t.fwdCPU); err != nil {
		return c, err
	}
	if c.ringDrops, err = rxDropped(t.fwdNS, t.fwdIf); err != nil {
		return c, err
	}
	return c, nil
}

// phaseResult is the difference between two readings around one phase.
type phaseResult struct {
	offered, delivered float64 // frames per second of traffic time
	loss               float64
	cpuPerPacket       float64 // ns
	procPerPacket      float64 // ns, the candidate process alone; NaN in-kernel
	busyPerPacket      float64 // ns
	// foreign is the share of the phase's wall time the forwarder CPU was
	// busy with anything but the measured tasks: other load on a shared
	// machine (or work the measurement misses).
	foreign float64
	calls   Calls
}

// phase offers traffic for d (at rate frames/s, or as fast as the
// generator goes when rate is 0), waits for the last frames to drain, and
// returns what the forwarder side did with it.
func (t *topo) phase(ctx context.Context, r *running, napi []int, frame []byte, rate float64, d time.Duration) (phaseResult, error) {
	var res phaseResult
	before, err := t.read(r, napi)
	if err != nil {
		return res, err
	}
	took, err := t.generate(ctx, frame, rate, d)
	if err != nil {
		return res, err
	}
	if err := t.drain(ctx); err != nil {
		return res, err
	}
	after, err := t.read(r, napi)
	if err != nil {
		return res, err
	}
	sent := float64(after.sent - before.sent)
	got := float64(after.delivered - before.delivered)
	res.offered = sent / took.Seconds()
	res.delivered = got / took.Seconds()
	if sent > 0 {
		res.loss = max(0, 1-got/sent)
	}
	task, busy := float64(after.taskNS-before.taskNS), float64(after.busyNS-before.busyNS)
	res.procPerPacket = math.NaN()
	if got > 0 {
		res.cpuPerPacket = task / got
		res.busyPerPacket = busy / got
		if after.user && before.user {
			res.procPerPacket = float64(after.procNS-before.procNS) / got
		}
	}
	if wall := float64(after.at.Sub(before.at)); wall > 0 {
		res.foreign = max(0, busy-task) / wall
	}
	res.calls = callsBetween(before, after, got)
	// The XDP balancer is measured only if its program forwarded the
	// traffic: had it passed the frames up, the numbers would be the Go
	// path's.
	if err := checkXDP(before.child.XDP, after.child.XDP, after.delivered-before.delivered); err != nil {
		return res, fmt.Errorf("%s: %w", r.cand, err)
	}
	return res, nil
}

// drain waits until the sink's count stops moving: every frame still in
// a ring or socket buffer has been delivered or dropped.
func (t *topo) drain(ctx context.Context) error {
	last, err := readCounter(t.delivered)
	if err != nil {
		return err
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(time.Second)
	for stable := 0; stable < 3 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		n, err := readCounter(t.delivered)
		if err != nil {
			return err
		}
		if n == last {
			stable++
		} else {
			stable, last = 0, n
		}
	}
	return nil
}

// generate transmits frame from the generator namespace with
// BPF_PROG_RUN in live-frame mode on a thread pinned to the generator CPU,
// for about d at rate frames/s (0: as fast as it goes), and returns how
// long it actually ran.
func (t *topo) generate(ctx context.Context, frame []byte, rate float64, d time.Duration) (time.Duration, error) {
	type xdpMD struct {
		Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
	}
	md := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(t.genIdx)}
	var p genState
	copy(p.Header[:], frame)
	if rate > 0 {
		p.Interval = uint64(max(1, 1e9/rate))
		p.Window = 32 * p.Interval
	}
	if err := t.pace.Put(uint32(0), p); err != nil {
		return 0, fmt.Errorf("bench: set pace: %w", err)
	}
	var took time.Duration
	err := doIn(t.genNS, t.genCPU, func() error {
		if err := boost(0); err != nil {
			return err
		}
		start := time.Now()
		defer func() { took = time.Since(start) }()
		// Every BPF_PROG_RUN call pays a fixed setup and teardown (about
		// 20 ms here: a page pool and an RCU grace period), during which
		// nothing is sent. So calls are made as long as the phase allows:
		// the repeat count is sized from the previous call's speed.
		repeat := uint64(1 << 14)
		for ctx.Err() == nil {
			left := d - time.Since(start)
			if left <= 5*time.Millisecond {
				return nil
			}
			t0 := time.Now()
			_, err := t.genProg.Run(&ebpf.RunOptions{
				Data:      frame,
				Repeat:    uint32(repeat),
				Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
				Context:   md,
				BatchSize: batchSize,
			})
			if err != nil {
				return fmt.Errorf("bench: live-frame generator: %w", err)
			}
			perRun := float64(time.Since(t0)) / float64(repeat)
			left = d - time.Since(start)
			repeat = uint64(min(float64(1<<31), max(float64(batchSize), float64(left)/perRun)))
		}
		return nil
	})
	return took, err
}

// measureClean measures cand and, while the sample is disturbed (other
// load took more than MaxForeignLoad of the forwarder CPU, or the
// generator fell more than maxShortfall short of the paced rate because
// its CPU was taken), measures it again, up to Reruns more times. It
// returns the first clean attempt or else the least disturbed one, with
// the number of re-runs.
func (t *topo) measureClean(ctx context.Context, cand Candidate, frame []byte) (Sample, error) {
	var best Sample
	for attempt := 0; ; attempt++ {
		if t.cfg.Reruns > 0 {
			if err := t.waitQuiet(ctx); err != nil {
				return best, err
			}
		}
		s, err := t.measure(ctx, cand, frame)
		if err != nil {
			return s, err
		}
		if !t.cfg.disturbed(s) {
			s.Reruns = attempt
			return s, nil // a clean attempt always wins
		}
		if attempt == 0 || disturbance(s) < disturbance(best) {
			best = s
		}
		if attempt >= t.cfg.Reruns {
			best.Reruns = attempt
			return best, nil
		}
		t.cfg.Logger.Info("disturbed sample, measuring again", "candidate", cand, "size", len(frame),
			"foreign", s.ForeignLoad, "shortfall", s.PacedShortfall, "search_starved", s.SearchStarved)
	}
}

// Quiet-machine check before each measurement: both benchmark CPUs must be
// at most MaxForeignLoad busy over quietWindow while nothing of the
// benchmark runs. The wait is bounded by quietTimeout; after it the sample
// is measured anyway (and then judged by its own foreign load).
const (
	quietWindow  = 500 * time.Millisecond
	quietTimeout = 10 * time.Second
)

// waitQuiet waits until the benchmark CPUs are quiet (see quietWindow).
func (t *topo) waitQuiet(ctx context.Context) error {
	deadline := time.Now().Add(quietTimeout)
	for {
		load, err := t.cpuLoad(ctx, quietWindow)
		if err != nil {
			return err
		}
		if load <= t.cfg.MaxForeignLoad {
			return nil
		}
		if time.Now().After(deadline) {
			t.cfg.Logger.Info("machine not quiet, measuring anyway", "load", load)
			return nil
		}
	}
}

// cpuLoad returns the busier of the two benchmark CPUs' busy share over d.
func (t *topo) cpuLoad(ctx context.Context, d time.Duration) (float64, error) {
	var before, after [2]uint64
	read := func(v *[2]uint64) error {
		var err error
		for i, cpu := range []int{t.genCPU, t.fwdCPU} {
			if v[i], err = cpuBusy(cpu); err != nil {
				return err
			}
		}
		return nil
	}
	if err := read(&before); err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	if err := read(&after); err != nil {
		return 0, err
	}
	wall := float64(time.Since(t0))
	return max(float64(after[0]-before[0]), float64(after[1]-before[1])) / wall, nil
}

// The capacity search: paced steps from searchStart frames/s, each
// searchFactor times the last, each Duration/8 long (at least
// minSearchStep), until more than searchLoss of a step is lost or the
// generator cannot come near the step's rate.
const (
	searchStart   = 32e3
	searchFactor  = 1.5
	searchMax     = 32e6
	searchLoss    = 0.01
	minSearchStep = 50 * time.Millisecond
	// searchBisections refine the capacity between the last step that
	// held and the first that lost: three halve the factor 1.5 three
	// times (in logarithm), to about 5 %.
	searchBisections = 3
)

// measure runs one candidate through warmup, the capacity search, the
// overload (flood) phase and the paced phase.
func (t *topo) measure(ctx context.Context, cand Candidate, frame []byte) (s Sample, err error) {
	s = Sample{Candidate: cand, FrameSize: len(frame)}
	// Warm up at the search's first rate: a flood would measure (and
	// disturb) nothing useful yet.
	r, napi, err := t.begin(ctx, cand, frame, searchStart)
	if err != nil {
		return s, err
	}
	defer func() {
		if serr := r.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	// Capacity: the highest rate delivered while the offered rate rises
	// step by step until frames are lost.
	step := max(t.cfg.Duration/8, minSearchStep)
	foreign := 0.0
	// Target rates (not offered ones: a short step falls some way short
	// of its target) of the last step that held and the first that lost.
	held, failed := 0.0, 0.0
	// searchAt measures one step of the search at rate.
	searchAt := func(kind string, rate float64) (phaseResult, error) {
		p, err := t.phase(ctx, r, napi, frame, rate, step)
		if err != nil {
			return p, err
		}
		foreign = max(foreign, p.foreign)
		t.cfg.Logger.Debug(kind, "candidate", cand, "rate", rate, "offered", p.offered, "delivered", p.delivered, "loss", p.loss,
			"frames_per_read", p.calls.FramesPerRead, "kernel_drops", p.calls.KernelDrops, "send_drops", p.calls.SendDrops, "ring_drops", p.calls.RingDrops)
		s.Capacity = max(s.Capacity, p.delivered)
		return p, nil
	}
	for rate := searchStart; rate <= searchMax; rate *= searchFactor {
		p, err := searchAt("search step", rate)
		if err != nil {
			return s, err
		}
		// A short step falls some way short of its rate (each generator
		// call starts with a fixed pause), so the step is judged by what
		// it offered; well below the rate means the generator is the
		// limit.
		if p.loss > searchLoss {
			failed = rate
			break
		}
		if p.offered < rate/2 {
			// The generator is the limit, or it was starved: the
			// flood below tells which (see Sample.SearchStarved).
			s.searchLimit = rate
			break
		}
		held = rate
		s.LossFreeRate = p.offered
	}
	// The steps are a factor of 1.5 apart, too coarse to tell candidates
	// within a third of each other apart: bisect (geometrically) between
	// the last step that held and the first that lost.
	if lo, hi := held, failed; lo > 0 && hi > lo {
		for range searchBisections {
			mid := math.Sqrt(lo * hi)
			p, err := searchAt("bisection step", mid)
			if err != nil {
				return s, err
			}
			if p.loss > searchLoss {
				hi = mid
				continue
			}
			lo = mid
			s.LossFreeRate = max(s.LossFreeRate, p.offered)
		}
	}
	sat, err := t.phase(ctx, r, napi, frame, 0, t.cfg.Duration)
	if err != nil {
		return s, err
	}
	s.SatOffered, s.SatDelivered, s.SatCPUPerPacket = sat.offered, sat.delivered, sat.cpuPerPacket
	s.FloodCalls = sat.calls
	s.Capacity = max(s.Capacity, sat.delivered)
	s.SearchStarved = s.searchLimit > 0 && s.searchLimit < sat.offered/2
	if s.Capacity == 0 {
		return s, errors.New("nothing delivered")
	}
	s.PacedTarget = t.cfg.PacedLoad * s.Capacity
	paced, err := t.phase(ctx, r, napi, frame, s.PacedTarget, t.cfg.Duration)
	if err != nil {
		return s, err
	}
	s.PacedOffered, s.PacedLoss = paced.offered, paced.loss
	s.PacedCalls = paced.calls
	s.PacedCPUPerPacket, s.CPUBusyPerPacket = paced.cpuPerPacket, paced.busyPerPacket
	s.PacedProcessCPUPerPacket = paced.procPerPacket
	s.ForeignLoad = max(foreign, sat.foreign, paced.foreign)
	s.PacedShortfall = max(0, 1-paced.offered/s.PacedTarget)
	return s, nil
}

// callsBetween derives how the candidate moved frames between two
// readings, per got frames delivered. In-kernel candidates have no calls
// or process: those fields are NaN, which the tables show as n/a.
func callsBetween(before, after counters, got float64) Calls {
	nan := math.NaN()
	c := Calls{FramesPerRead: nan, FramesPerWrite: nan, WakeupsPerPacket: nan, PreemptionsPerPacket: nan, NAPIWakeupsPerPacket: nan}
	c.RingDrops = after.ringDrops - before.ringDrops
	if got <= 0 {
		return c
	}
	c.NAPIWakeupsPerPacket = float64(after.napiWakeups-before.napiWakeups) / got
	if !after.user || !before.user {
		return c
	}
	a, b := after.child, before.child
	c.FramesPerRead = ratio(a.ReadFrames-b.ReadFrames, a.ReadCalls-b.ReadCalls)
	c.FramesPerWrite = ratio(a.WriteFrames-b.WriteFrames, a.WriteCalls-b.WriteCalls)
	c.WakeupsPerPacket = float64(after.wakeups-before.wakeups) / got
	c.PreemptionsPerPacket = float64(after.preempted-before.preempted) / got
	c.KernelDrops = a.KernelDrops - b.KernelDrops
	c.SendDrops = a.SendDrops - b.SendDrops
	if a.XDP != nil && b.XDP != nil {
		c.XDPForwarded = a.XDP.Forwarded - b.XDP.Forwarded
		c.XDPPassed = a.XDP.Passed - b.XDP.Passed
	}
	return c
}

func ratio(num, den uint64) float64 {
	if den == 0 {
		return math.NaN()
	}
	return float64(num) / float64(den)
}
