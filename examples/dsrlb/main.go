// Command dsrlb is an L2 Direct Server Return load balancer daemon built on
// the dsrlb library.
//
//	dsrlb [-config /etc/dsrlb/dsrlb.yaml] [-log-level info] [-log-format json|text] [-check]
//	dsrlb -version
//	dsrlb explain [-config /etc/dsrlb/dsrlb.yaml] [-json] SRC:PORT DST:PORT/PROTO
//	dsrlb xdp-cleanup [-config /etc/dsrlb/dsrlb.yaml]
//
// It forwards the services of its YAML configuration on one interface,
// answers ARP for their VIPs, health-checks the backends, exports Prometheus
// metrics and a status page, reloads its configuration on SIGHUP (a bad file
// keeps the running configuration) and drains on SIGTERM.
//
// Every configuration error, from -check, start-up or a reload, reads
// "file:line: field.path: problem" (decode.go). The status page (status.go)
// is server-rendered HTML with inline SVG graphs and no script; the metrics
// (metrics.go) export every family from start. Every event and
// control-plane log line carries an "event" key naming its kind and its
// facts as separate attributes (logging.go); under systemd it reports
// readiness, reloads and its drain-aware stop timeout (notify.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dsrlb/dsrlb/internal/version"
)

// defaultConfigPath is where the Debian package installs the
// configuration.
const defaultConfigPath = "/etc/dsrlb/dsrlb.yaml"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the daemon with the command-line arguments args and returns
// the exit status: 0 after a clean stop or a passing -check, 1 when the
// configuration is refused or the daemon fails, 2 for a bad command line.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "explain" {
		return runExplain(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "xdp-cleanup" {
		return runXDPCleanup(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("dsrlb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfigPath, "configuration file")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	format := fs.String("log-format", logJSON, "log format: json (one object per line) or text (key=value)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "dsrlb", version.Get())
		return 0
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "dsrlb: -log-level: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, *format, lvl)
	if err != nil {
		fmt.Fprintf(stderr, "dsrlb: -log-format: %v\n", err)
		return 2
	}

	cfg, err := LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "dsrlb: %v\n", err)
		if !*check {
			logEvent(log, slog.LevelError, "configuration refused", evConfigError, errAttrs(err)...)
		}
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (%d services)\n", *configPath, len(cfg.Services))
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	d, err := newDaemon(*configPath, cfg, log)
	if err != nil {
		logEvent(log, slog.LevelError, "start failed", evStartFailed, errAttrs(err)...)
		fmt.Fprintf(stderr, "dsrlb: %v\n", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	term := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(term, syscall.SIGTERM)
	if err := d.run(ctx, hup, term); err != nil && !errors.Is(err, context.Canceled) {
		logEvent(log, slog.LevelError, "stopped", evStopped, errAttrs(err)...)
		return 1
	}
	logEvent(log, slog.LevelInfo, "stopped", evStopped)
	return 0
}
