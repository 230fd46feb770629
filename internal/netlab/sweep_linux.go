package netlab

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// markerDir holds one file per lab, named by lab ID, recording the owner
// process as "pid starttime". The start time (from /proc/<pid>/stat) tells
// a live owner from an unrelated process that reused the PID. It is kept
// out of /run/netns so "ip netns list" shows only namespaces.
var markerDir = "/run/dsrlb-netlab"

var nsPattern = regexp.MustCompile(`^dsrlb-([0-9a-f]{6})-(sw|lb|c[0-9]+|s[0-9]+|x[0-9]+)$`)

// procStart returns the start time of pid in clock ticks since boot.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatStart(b)
}

func (o owner) alive() bool {
	st, err := procStart(o.pid)
	return err == nil && st == o.start
}

func writeMarkerFor(id string, o owner) error {
	if err := os.MkdirAll(markerDir, 0o755); err != nil {
		return fmt.Errorf("netlab: marker dir: %w", err)
	}
	p := filepath.Join(markerDir, id)
	if err := os.WriteFile(p, formatMarker(o), 0o644); err != nil {
		return fmt.Errorf("netlab: marker: %w", err)
	}
	return nil
}

// writeMarker records the current process as owner of lab id. It is
// written before the first namespace and removed after the last, so a
// namespace of a live lab always has a live marker.
func writeMarker(id string) error {
	st, err := procStart(os.Getpid())
	if err != nil {
		return err
	}
	return writeMarkerFor(id, owner{pid: os.Getpid(), start: st})
}

func removeMarker(id string) error {
	err := os.Remove(filepath.Join(markerDir, id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netlab: marker: %w", err)
	}
	return nil
}

func readMarker(id string) (owner, error) {
	b, err := os.ReadFile(filepath.Join(markerDir, id))
	if err != nil {
		return owner{}, err
	}
	o, err := parseMarker(b)
	if err != nil {
		return owner{}, fmt.Errorf("netlab: marker %s: %w", id, err)
	}
	return o, nil
}

// SweepLeftovers deletes the namespaces of labs whose owner process is
// dead (a crashed or killed test run) and returns their names. Namespaces
// of live processes are never touched, nor are namespaces without an owner
// marker (whose origin is unknown). New calls it before building.
func SweepLeftovers(log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	byID := map[string][]string{}
	ents, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	for _, e := range ents {
		if m := nsPattern.FindStringSubmatch(e.Name()); m != nil {
			byID[m[1]] = append(byID[m[1]], e.Name())
		}
	}
	// Markers without namespaces (a crash between marker and first
	// namespace) are swept too.
	if ms, err := os.ReadDir(markerDir); err == nil {
		for _, m := range ms {
			if _, ok := byID[m.Name()]; !ok && len(m.Name()) == 6 {
				byID[m.Name()] = nil
			}
		}
	}
	var removed []string
	var errs []error
	for id, names := range byID {
		o, err := readMarker(id)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if o.alive() {
			continue
		}
		ok := true
		for _, n := range names {
			if err := deleteNamedNS(n); err != nil {
				errs = append(errs, err)
				ok = false
				continue
			}
			removed = append(removed, n)
			log.Info("netlab: removed leftover namespace", "ns", n, "owner_pid", o.pid)
		}
		if ok {
			if err := removeMarker(id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return removed, errors.Join(errs...)
}

// Privileged reports whether the process can build labs: it needs
// CAP_SYS_ADMIN (namespaces, bind mounts), CAP_NET_ADMIN (links, addresses)
// and CAP_NET_RAW (packet sockets), in practice root. why explains a false
// result for a skip message.
func Privileged() (ok bool, why string) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false, "cannot read capabilities: " + err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		hexCaps, found := strings.CutPrefix(line, "CapEff:")
		if !found {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hexCaps), 16, 64)
		if err != nil {
			return false, "cannot parse capabilities: " + err.Error()
		}
		var missing []string
		for _, c := range []struct {
			bit  uint
			name string
		}{{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {unix.CAP_NET_RAW, "CAP_NET_RAW"}} {
			if caps&(1<<c.bit) == 0 {
				missing = append(missing, c.name)
			}
		}
		if len(missing) > 0 {
			return false, "needs " + strings.Join(missing, ", ") + " (run as root)"
		}
		return true, ""
	}
	return false, "no CapEff in /proc/self/status"
}
