// Command realserver prepares a Linux server for L2 Direct Server Return,
// checks it, and undoes the preparation:
//
//	realserver prepare --vip 192.0.2.100 --vip 2001:db8:1::100 --port 80
//	realserver check   --vip 192.0.2.100 --vip 2001:db8:1::100 --port 80 [--balancer-mac 02:00:00:00:00:01] [--json]
//	realserver undo
//	realserver prepare --mode ipip|gue --balancer 203.0.113.2 [--gue-port 6080] [--underlay IFACE] [--decap kernel|program] --vip ...
//	realserver prepare --os windows --vip 192.0.2.100 [--adapter Ethernet] [--loopback dsr-loopback]
//	realserver -version
//
// With --mode ipip or gue (L3 DSR, the balancer in another subnet) prepare
// also sets up decapsulation (the kernel's tunnel devices where the modules
// exist, else the decapsulation XDP program, which stays attached after the
// command exits) and lowers the MSS the server advertises (--advmss), check
// reports missing decapsulation, its counters and a too-large MSS, and undo
// removes both. With --os windows, prepare and check print the PowerShell
// for a Windows L2 DSR server instead of changing this host; L3 modes are
// refused for Windows.
//
// IPv4 and IPv6 VIPs may be mixed; each is prepared and checked with what
// its family needs (ARP settings for IPv4; no duplicate address detection,
// IPv6 enabled, no proxy NDP for IPv6), and each family's owner on the
// segment is probed (ARP who-has, --arp-window; neighbour solicitation,
// --ndp-window). prepare records what it changed in a state file (--state),
// which undo reads to revert exactly that. prepare runs check afterwards.
// The exit status is 0 when no error was found, 1 when errors were found
// (a VIP family that could not be checked is an error) or an operation
// failed, and 2 on usage errors.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/dsrlb/dsrlb/dsr/realserver"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFound = 1
	exitUsage = 2
)

// defaultState is where prepare keeps its record when --state is not given;
// /run is cleared at boot, like the changes it records.
const defaultState = "/run/dsrlb-realserver.json"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	cfg     realserver.Config
	os      string
	win     realserver.WindowsConfig
	state   string
	json    bool
	timeout time.Duration
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: realserver prepare|check|undo --vip ADDR [--vip ADDR...] [--port N] [--proto tcp|udp]")
	fmt.Fprintln(w, "       [--interface lo|DUMMY] [--segment IFACE...] [--balancer-mac MAC] [--arp-window D] [--ndp-window D]")
	fmt.Fprintln(w, "       [--state FILE] [--json]")
	fmt.Fprintln(w, "       [--mode l2|ipip|gue --balancer ADDR... [--gue-port N] [--underlay IFACE] [--advmss N] [--decap kernel|program]]")
	fmt.Fprintln(w, "       [--os linux|windows [--adapter NAME] [--loopback NAME]]")
	fmt.Fprintln(w, "       realserver -version")
	if fs != nil {
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func parse(args []string, stderr io.Writer) (string, *options, error) {
	if len(args) == 0 {
		usage(stderr, nil)
		return "", nil, errors.New("missing command")
	}
	cmd := args[0]
	switch cmd {
	case "prepare", "check", "undo":
	case "-h", "--help", "help":
		usage(stderr, nil)
		return "", nil, flag.ErrHelp
	default:
		usage(stderr, nil)
		return "", nil, fmt.Errorf("unknown command %q", cmd)
	}
	o := &options{}
	fs := flag.NewFlagSet("realserver "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("vip", "service address (repeatable)", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return err
		}
		o.cfg.VIPs = append(o.cfg.VIPs, a)
		return nil
	})
	fs.Func("port", "service port; checks that something listens on VIP:port", func(s string) error {
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			return fmt.Errorf("bad port %q", s)
		}
		o.cfg.Port = uint16(p)
		return nil
	})
	fs.Func("proto", "service protocol: tcp or udp (default tcp)", func(s string) error {
		switch realserver.Protocol(s) {
		case realserver.TCP, realserver.UDP:
			o.cfg.Protocol = realserver.Protocol(s)
			return nil
		}
		return fmt.Errorf("bad protocol %q", s)
	})
	fs.StringVar(&o.cfg.Interface, "interface", "lo", "interface holding the VIPs: lo or a dummy interface name")
	fs.Func("segment", "interface facing the balancer's segment (repeatable; default: detected)", func(s string) error {
		o.cfg.Segment = append(o.cfg.Segment, s)
		return nil
	})
	fs.Func("balancer-mac", "MAC that legitimately answers ARP and neighbour solicitations for the VIPs", func(s string) error {
		m, err := net.ParseMAC(s)
		if err != nil {
			return err
		}
		o.cfg.BalancerMAC = m
		return nil
	})
	fs.DurationVar(&o.cfg.ARPWindow, "arp-window", realserver.DefaultARPWindow, "how long to wait for ARP replies (IPv4 VIPs); negative skips the ARP probe")
	fs.DurationVar(&o.cfg.NDPWindow, "ndp-window", realserver.DefaultNDPWindow, "how long to wait for neighbour advertisements (IPv6 VIPs); negative skips the neighbour-discovery probe")
	fs.Func("mode", "how the balancer forwards here: l2 (default), ipip or gue (L3 DSR)", func(s string) error {
		switch m := realserver.Mode(s); m {
		case realserver.ModeL2, realserver.ModeIPIP, realserver.ModeGUE:
			o.cfg.Mode = m
			return nil
		}
		return fmt.Errorf("bad mode %q (want l2, ipip or gue)", s)
	})
	fs.Func("balancer", "a balancer's own address, the outer source of its tunnel packets (repeatable; L3 modes)", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return err
		}
		o.cfg.Balancers = append(o.cfg.Balancers, a)
		return nil
	})
	fs.Func("gue-port", "UDP port of GUE packets (default 6080)", func(s string) error {
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			return fmt.Errorf("bad port %q", s)
		}
		o.cfg.GUEPort = uint16(p)
		return nil
	})
	fs.StringVar(&o.cfg.Underlay, "underlay", "", "interface the tunnel packets arrive on (default: the route to the first balancer)")
	fs.IntVar(&o.cfg.AdvMSS, "advmss", 0, "MSS to advertise on the gateway routes in L3 modes (0: from the MTU and the mode; -1: leave the routes alone)")
	fs.Func("decap", "decapsulation path: kernel (tunnel devices) or program (XDP); default: kernel where the modules exist", func(s string) error {
		switch d := realserver.Decap(s); d {
		case realserver.DecapKernel, realserver.DecapProgram:
			o.cfg.Decap = d
			return nil
		}
		return fmt.Errorf("bad decap %q (want kernel or program)", s)
	})
	fs.StringVar(&o.os, "os", "linux", "the server's operating system: linux, or windows to print its PowerShell")
	fs.StringVar(&o.win.Adapter, "adapter", "Ethernet", "with --os windows: the network adapter facing the segment")
	fs.StringVar(&o.win.Loopback, "loopback", "dsr-loopback", "with --os windows: the loopback adapter's alias")
	fs.StringVar(&o.state, "state", defaultState, "file recording what prepare changed, for undo")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of text")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "overall time limit")
	if err := fs.Parse(args[1:]); err != nil {
		usage(stderr, fs)
		return "", nil, err
	}
	if fs.NArg() > 0 {
		usage(stderr, fs)
		return "", nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch o.os {
	case "linux":
	case "windows":
		if cmd == "undo" {
			usage(stderr, fs)
			return "", nil, errors.New("undo --os windows: remove what the printed script added by hand")
		}
	default:
		usage(stderr, fs)
		return "", nil, fmt.Errorf("bad --os %q (want linux or windows)", o.os)
	}
	if cmd != "undo" && len(o.cfg.VIPs) == 0 {
		usage(stderr, fs)
		return "", nil, errors.New("at least one --vip is required")
	}
	return cmd, o, nil
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if isVersion(args) {
		return printVersion(stdout)
	}
	cmd, o, err := parse(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "realserver:", err)
		}
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	fail := func(err error) int {
		fmt.Fprintln(stderr, "realserver:", err)
		if errors.Is(err, realserver.ErrInvalidConfig) {
			return exitUsage
		}
		return exitFound
	}
	if o.os == "windows" {
		o.win.VIPs, o.win.Mode = o.cfg.VIPs, o.cfg.Mode
		script, err := realserver.WindowsScript(&o.win, cmd == "check")
		if errors.Is(err, realserver.ErrWindowsL3) {
			fmt.Fprintln(stderr, "realserver:", err)
			return exitUsage
		}
		if err != nil {
			return fail(err)
		}
		fmt.Fprint(stdout, script)
		return exitOK
	}
	switch cmd {
	case "prepare":
		st, err := loadState(o.state)
		if err != nil {
			return fail(err)
		}
		n := changes(st)
		perr := realserver.Prepare(&o.cfg, st)
		// Save even after an error: the record of a partial Prepare is
		// what undo needs.
		if serr := saveState(o.state, st); serr != nil {
			return fail(errors.Join(perr, serr))
		}
		if perr != nil {
			return fail(perr)
		}
		rep, err := realserver.Check(ctx, &o.cfg)
		if err != nil {
			return fail(err)
		}
		if o.json {
			writeJSON(stdout, struct {
				State  *realserver.State  `json:"state"`
				Report *realserver.Report `json:"report"`
			}{st, rep})
		} else {
			fmt.Fprintf(stdout, "prepare: %d change(s), recorded in %s\n", changes(st)-n, o.state)
			writeText(stdout, rep)
		}
		return status(rep)
	case "check":
		rep, err := realserver.Check(ctx, &o.cfg)
		if err != nil {
			return fail(err)
		}
		if o.json {
			writeJSON(stdout, rep)
		} else {
			writeText(stdout, rep)
		}
		return status(rep)
	default: // undo
		st, err := loadState(o.state)
		if err != nil {
			return fail(err)
		}
		n := changes(st)
		uerr := realserver.Undo(st)
		if st.Empty() {
			if err := os.Remove(o.state); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fail(errors.Join(uerr, err))
			}
		} else if err := saveState(o.state, st); err != nil {
			return fail(errors.Join(uerr, err))
		}
		if o.json {
			writeJSON(stdout, struct {
				Reverted  int               `json:"reverted"`
				Remaining *realserver.State `json:"remaining"`
			}{n - changes(st), st})
		} else {
			fmt.Fprintf(stdout, "undo: %d change(s) reverted\n", n-changes(st))
		}
		if uerr != nil {
			return fail(uerr)
		}
		return exitOK
	}
}

func changes(st *realserver.State) int { return st.Len() }

func status(r *realserver.Report) int {
	if r.OK() {
		return exitOK
	}
	return exitFound
}

func writeText(w io.Writer, r *realserver.Report) {
	for _, f := range r.Findings {
		fmt.Fprintln(w, f.String())
	}
	fmt.Fprintf(w, "%d error(s), %d warning(s)\n", r.Count(realserver.Error), r.Count(realserver.Warning))
}

func writeJSON(w io.Writer, v any) {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	_ = e.Encode(v)
}

// loadState reads the record of earlier prepares; a missing file is an
// empty record.
func loadState(path string) (*realserver.State, error) {
	st := &realserver.State{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return st, nil
}

// saveState writes the record atomically, so a crash never leaves a
// half-written file that would make undo impossible.
func saveState(path string, st *realserver.State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
