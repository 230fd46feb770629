// Command dsrbench runs the data-path benchmark: the Balancer on packet
// sockets and the Balancer on the XDP data plane side by side with a bare
// AF_PACKET reflector, a bare XDP_TX reflector and kernel IP forwarding, on
// one veth topology in throw-away network namespaces, and prints the
// Markdown tables of docs/PERFORMANCE.md, the XDP data plane's targets
// first. It needs Linux, root and the ip command.
//
//	go run ./cmd/dsrbench -reps 5          # as root; -v logs every step
//
// On a shared machine, samples disturbed by other load are measured again
// (see -max-foreign and -reruns) and the tables show how much foreign load
// remained.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/dsrlb/dsrlb/internal/bench"
)

func main() {
	bench.RunChildIfRequested()
	var cfg bench.Config
	var sizes, cands string
	flag.IntVar(&cfg.Reps, "reps", 5, "interleaved repetitions")
	flag.DurationVar(&cfg.Duration, "duration", 0, "length of each measured phase (default 2s)")
	flag.DurationVar(&cfg.Warmup, "warmup", 0, "unmeasured traffic before each candidate's phases (default 500ms)")
	flag.IntVar(&cfg.Flows, "flows", 0, "distinct UDP flows, a power of two (default 1024)")
	flag.Float64Var(&cfg.PacedLoad, "load", 0, "own-capacity paced phase rate as a fraction of the candidate's capacity (default 0.8)")
	flag.Float64Var(&cfg.CommonLoad, "common-load", 0, "common-rate phase (the headline) rate as a fraction of the lower packet-socket capacity of each repetition (default 0.5)")
	flag.Float64Var(&cfg.MaxForeignLoad, "max-foreign", 0, "share of the forwarder CPU other work may take before a sample is measured again (default 0.05)")
	flag.IntVar(&cfg.Reruns, "reruns", 0, "re-measurements of a disturbed sample; negative: none, and no waiting for a quiet machine (default 2)")
	flag.StringVar(&sizes, "sizes", "60,1514", "comma-separated Ethernet frame sizes without FCS")
	flag.StringVar(&cands, "candidates", "", "comma-separated candidates (default all)")
	verbose := flag.Bool("v", false, "log every sample and capacity-search step to stderr")
	flag.Parse()
	for f := range strings.SplitSeq(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fmt.Fprintf(os.Stderr, "dsrbench: bad size %q\n", f)
			os.Exit(2)
		}
		cfg.FrameSizes = append(cfg.FrameSizes, n)
	}
	if cands != "" {
		for f := range strings.SplitSeq(cands, ",") {
			cfg.Candidates = append(cfg.Candidates, bench.Candidate(strings.TrimSpace(f)))
		}
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, &cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dsrbench:", err)
		os.Exit(1)
	}
	if err := rep.WriteMarkdown(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dsrbench:", err)
		os.Exit(1)
	}
}
