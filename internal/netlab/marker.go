package netlab

import (
	"bytes"
	"errors"
	"strconv"
)

// owner identifies the process that created a lab. The start time tells a
// live owner from an unrelated process that reused the PID.
type owner struct {
	pid   int
	start uint64
}

var errMalformed = errors.New("malformed")

// parseStatStart extracts the start time (field 22) from the contents of
// /proc/<pid>/stat. The command name (field 2) may contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatStart(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errMalformed
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, errMalformed
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}

// formatMarker is the inverse of parseMarker.
func formatMarker(o owner) []byte {
	b := strconv.AppendInt(nil, int64(o.pid), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, o.start, 10)
	return append(b, '\n')
}

// parseMarker parses "pid starttime\n" as written by formatMarker.
func parseMarker(b []byte) (owner, error) {
	f := bytes.Fields(b)
	if len(f) != 2 {
		return owner{}, errMalformed
	}
	pid, err := strconv.Atoi(string(f[0]))
	if err != nil || pid <= 0 {
		return owner{}, errMalformed
	}
	st, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return owner{}, errMalformed
	}
	return owner{pid: pid, start: st}, nil
}
