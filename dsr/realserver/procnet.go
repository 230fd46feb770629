package realserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Socket states in /proc/net/{tcp,udp}[6] (include/net/tcp_states.h).
const (
	stateListen = 0x0A // TCP_LISTEN
	stateClose  = 0x07 // TCP_CLOSE: an unconnected (bound) UDP socket
)

// socketEntry is one line of /proc/net/tcp and friends, reduced to what the
// listener check needs.
type socketEntry struct {
	Local netip.AddrPort
	State uint8
}

var errProcNet = errors.New("realserver: malformed /proc/net socket table")

// parseProcNet parses the socket tables of /proc/net/tcp, tcp6, udp and
// udp6. The kernel prints addresses as 32-bit words in host byte order, so
// they are decoded with the native byte order of this machine (the reader
// and the kernel always share it). Malformed input is an error, never a
// panic.
func parseProcNet(data []byte) ([]socketEntry, error) {
	var out []socketEntry
	first := true
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if first {
			first = false
			if f := bytes.Fields(line); len(f) > 0 && bytes.Equal(f[0], []byte("sl")) {
				continue
			}
		}
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 4 || len(fields[0]) < 2 || fields[0][len(fields[0])-1] != ':' {
			return nil, fmt.Errorf("%w: line %q", errProcNet, truncate(line))
		}
		local, err := parseHexAddrPort(fields[1])
		if err != nil {
			return nil, err
		}
		st, err := strconv.ParseUint(string(fields[3]), 16, 8)
		if err != nil {
			return nil, fmt.Errorf("%w: state %q", errProcNet, truncate(fields[3]))
		}
		out = append(out, socketEntry{Local: local, State: uint8(st)})
	}
	return out, nil
}

// parseHexAddrPort decodes "0100007F:0050" (IPv4) or 32 hex digits plus
// port (IPv6).
func parseHexAddrPort(b []byte) (netip.AddrPort, error) {
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: address %q", errProcNet, truncate(b))
	}
	hexAddr, hexPort := b[:i], b[i+1:]
	port, err := strconv.ParseUint(string(hexPort), 16, 16)
	if err != nil || len(hexPort) != 4 {
		return netip.AddrPort{}, fmt.Errorf("%w: port %q", errProcNet, truncate(hexPort))
	}
	var raw [16]byte
	n, err := hex.Decode(raw[:], hexAddr[:min(len(hexAddr), 32)])
	if err != nil || (len(hexAddr) != 8 && len(hexAddr) != 32) {
		return netip.AddrPort{}, fmt.Errorf("%w: address %q", errProcNet, truncate(hexAddr))
	}
	// Each 32-bit word was printed as a number in host order: turn it
	// back into the bytes it was in memory, which are network order.
	var ip [16]byte
	for w := 0; w < n/4; w++ {
		v := binary.BigEndian.Uint32(raw[w*4:])
		binary.NativeEndian.PutUint32(ip[w*4:], v)
	}
	var addr netip.Addr
	if n == 4 {
		addr = netip.AddrFrom4([4]byte(ip[:4]))
	} else {
		addr = netip.AddrFrom16(ip)
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// serves reports whether a socket table (entries from the tcp or udp files
// of both families) has a socket that receives proto traffic for vip:port:
// a TCP listener, or a bound UDP socket, on the VIP itself, its IPv4-mapped
// form, or a wildcard of a family that covers it (:: also accepts IPv4
// unless the socket is IPv6-only, which the table does not show, so it
// counts).
func serves(entries []socketEntry, proto Protocol, vip netip.Addr, port uint16) bool {
	want := uint8(stateListen)
	if proto == UDP {
		want = stateClose
	}
	for _, e := range entries {
		if e.State != want || e.Local.Port() != port {
			continue
		}
		a := e.Local.Addr()
		switch {
		case a.Unmap() == vip:
			return true
		case a == netip.IPv4Unspecified() && vip.Is4():
			return true
		case a == netip.IPv6Unspecified():
			return true
		}
	}
	return false
}
