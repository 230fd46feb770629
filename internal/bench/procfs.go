package bench

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// parseSchedstat returns the first field of /proc/.../schedstat: the time
// the task has spent on a CPU, in nanoseconds.
func parseSchedstat(b []byte) (uint64, error) {
	f := bytes.Fields(b)
	if len(f) < 1 {
		return 0, errors.New("bench: empty schedstat")
	}
	v, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: schedstat: %w", err)
	}
	return v, nil
}

// parseCPUBusy returns the busy time (user, nice, system, irq, softirq,
// steal; not idle, iowait or the guest fields, which user already
// includes) of CPU cpu from the text of /proc/stat, in nanoseconds given
// the length of one tick.
func parseCPUBusy(b []byte, cpu int, tickNS uint64) (uint64, error) {
	want := []byte("cpu" + strconv.Itoa(cpu))
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) == 0 || !bytes.Equal(f[0], want) {
			continue
		}
		if len(f) < 9 {
			return 0, fmt.Errorf("bench: /proc/stat line for cpu%d has %d fields", cpu, len(f))
		}
		var busy uint64
		for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
			v, err := strconv.ParseUint(string(f[i]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: /proc/stat cpu%d field %d: %w", cpu, i, err)
			}
			busy += v
		}
		return busy * tickNS, nil
	}
	return 0, fmt.Errorf("bench: no cpu%d in /proc/stat", cpu)
}

// parseSwitches returns the voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches fields of a /proc/.../status file.
func parseSwitches(b []byte) (voluntary, involuntary uint64, err error) {
	found := 0
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(k) {
		case "voluntary_ctxt_switches":
			dst = &voluntary
		case "nonvoluntary_ctxt_switches":
			dst = &involuntary
		default:
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: status %s: %w", k, err)
		}
		*dst = n
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("bench: status has no context switch counts")
	}
	return voluntary, involuntary, nil
}
