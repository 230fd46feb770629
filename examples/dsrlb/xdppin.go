package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dsrlb/dsrlb/dsr"
)

// defaultBPFFS is where systemd (and most distributions) mount the BPF
// filesystem; the daemon pins under it by default.
const defaultBPFFS = "/sys/fs/bpf"

// xdpPinPath returns the directory the XDP data plane pins into for cfg
// (one per interface), or "" and why there is none.
func xdpPinPath(cfg *Config) (path, why string) {
	switch cfg.XDPPin {
	case "off":
		return "", "xdp_pin is off"
	case "":
		if ok, err := isBPFFS(defaultBPFFS); !ok {
			if err == nil {
				err = errors.New("not a BPF filesystem")
			}
			return "", fmt.Sprintf("%s is not a mounted BPF filesystem (%v): mount one (mount -t bpf bpf %s) or set xdp_pin", defaultBPFFS, err, defaultBPFFS)
		}
		return filepath.Join(defaultBPFFS, "dsrlb", cfg.Interface), ""
	}
	return filepath.Join(cfg.XDPPin, cfg.Interface), ""
}

// removeStalePins removes the pins a previous run left for the interface
// when this one does not pin (which detaches the program they keep
// attached): otherwise that program would go on forwarding by a plan
// nobody updates. A path that does not exist is left alone.
func (d *daemon) removeStalePins(cfg *Config) {
	path := ""
	switch cfg.XDPPin {
	case "", "off":
		if ok, _ := isBPFFS(defaultBPFFS); ok {
			path = filepath.Join(defaultBPFFS, "dsrlb", cfg.Interface)
		}
	default:
		path = filepath.Join(cfg.XDPPin, cfg.Interface)
	}
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		return
	}
	if err := dsr.RemoveXDPPins(path); err != nil {
		d.log.Error("xdp: removing the pins of a previous run failed: its program may still be attached", "pin_path", path, "err", err)
		return
	}
	d.log.Info("xdp: removed the pins of a previous run and detached its program", "pin_path", path)
}

// runXDPCleanup is `dsrlb xdp-cleanup`: it detaches the XDP program a
// pinning daemon leaves attached after it stops, and removes its pins.
func runXDPCleanup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dsrlb xdp-cleanup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfigPath, "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "dsrlb: %v\n", err)
		return 1
	}
	path, why := xdpPinPath(cfg.File)
	if path == "" {
		fmt.Fprintf(stdout, "no pin path: %s\n", why)
		return 0
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stdout, "%s: no pins\n", path)
		return 0
	}
	if err := dsr.RemoveXDPPins(path); err != nil {
		fmt.Fprintf(stderr, "dsrlb: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: program detached, pins removed\n", path)
	return 0
}
