package health

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	lbMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	srvMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x21}
	testP  = probe{
		srcMAC: lbMAC, dstMAC: srvMAC,
		src: netip.MustParseAddr("192.0.2.2"), dst: netip.MustParseAddr("192.0.2.100"),
		sport: 40000, dport: 80, seq: 0xfffffff0, ipID: 7,
	}
)

// tcpChecksumOK verifies the TCP checksum of an Ethernet+IPv4+TCP frame.
func tcpChecksumOK(f []byte) bool {
	ip := f[ethHdrLen:]
	ihl := int(ip[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	return fold(pseudoSum(ip[12:16], ip[16:20], total-ihl)+sum(0, ip[ihl:total])) == 0xffff
}

func TestProbeFrames(t *testing.T) {
	syn := testP.appendSYN(nil)
	require.Len(t, syn, ethHdrLen+ipv4HdrLen+tcpHdrLen+4)
	assert.Equal(t, []byte(srvMAC), syn[0:6], "addressed to the backend's MAC")
	assert.Equal(t, []byte(lbMAC), syn[6:12])
	assert.True(t, tcpChecksumOK(syn))
	s, err := parseSegment(syn)
	require.NoError(t, err, "IPv4 header checksum verifies")
	assert.Equal(t, segment{src: testP.src, dst: testP.dst, sport: 40000, dport: 80, seq: 0xfffffff0, flags: tcpSYN}, s)

	rst := testP.appendRST(nil)
	assert.True(t, tcpChecksumOK(rst))
	s, err = parseSegment(rst)
	require.NoError(t, err)
	assert.Equal(t, uint32(0xfffffff1), s.seq, "RST carries ISN+1, the sequence the backend expects")
	assert.Equal(t, uint8(tcpRST), s.flags)

	// Known-answer check of the checksum routine (RFC 1071 example words).
	assert.Equal(t, uint16(0xddf2), fold(sum(0, []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7})))
}

func TestParseSegmentRejects(t *testing.T) {
	good := testP.appendSYN(nil)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, errShort},
		{"truncated", good[:40], errShort},
		{"ARP", mut(func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b }), errNotTCP4},
		{"IPv6 version", mut(func(b []byte) []byte { b[14] = 0x65; return b }), errNotTCP4},
		{"UDP", mut(func(b []byte) []byte { b[23] = 17; return b }), errNotTCP4},
		{"fragment", mut(func(b []byte) []byte { b[20] |= 0x20; return b }), errNotTCP4},
		{"IHL too small", mut(func(b []byte) []byte { b[14] = 0x44; return b }), errBadHeader},
		{"total length beyond frame", mut(func(b []byte) []byte { b[16] = 0xff; return b }), errBadHeader},
		{"bad IP checksum", mut(func(b []byte) []byte { b[24] ^= 0xff; return b }), errChecksum},
		{"TCP data offset beyond segment", mut(func(b []byte) []byte { b[46] = 0xf0; return b }), errBadHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSegment(tc.frame)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestARPReply(t *testing.T) {
	req := make([]byte, ethHdrLen+28)
	copy(req[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(req[6:12], srvMAC)
	binary.BigEndian.PutUint16(req[12:], etherARP)
	a := req[ethHdrLen:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], etherIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1)
	copy(a[8:14], srvMAC)
	copy(a[14:18], []byte{192, 0, 2, 21})
	copy(a[24:28], []byte{192, 0, 2, 250})

	r, err := parseARPRequest(req)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("192.0.2.21"), r.senderIP)
	assert.Equal(t, netip.MustParseAddr("192.0.2.250"), r.targetIP)

	reply := appendARPReply(nil, r, r.targetIP, lbMAC)
	assert.Equal(t, []byte(srvMAC), reply[0:6])
	assert.Equal(t, uint16(2), binary.BigEndian.Uint16(reply[ethHdrLen+6:]), "op reply")
	assert.Equal(t, []byte(lbMAC), reply[ethHdrLen+8:ethHdrLen+14], "sender hardware is ours")
	assert.Equal(t, []byte{192, 0, 2, 250}, reply[ethHdrLen+14:ethHdrLen+18])
	assert.Equal(t, []byte(srvMAC), reply[ethHdrLen+18:ethHdrLen+24])
	assert.Equal(t, []byte{192, 0, 2, 21}, reply[ethHdrLen+24:ethHdrLen+28])

	_, err = parseARPRequest(reply)
	assert.ErrorIs(t, err, errNotARPReq, "a reply is not a request")
	_, err = parseARPRequest(req[:30])
	assert.ErrorIs(t, err, errShort)
}

// The probe runs per check, not per packet, but building frames into a
// reused buffer and parsing replies must still not allocate: the reader
// parses every SYN-ACK and RST the interface carries.
func TestProbeFramesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	buf := make([]byte, 0, 128)
	syn := testP.appendSYN(nil)
	allocs := testing.AllocsPerRun(100, func() {
		buf = testP.appendSYN(buf[:0])
		buf = testP.appendRST(buf[:0])
		if _, err := parseSegment(syn); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
}

func BenchmarkParseSegment(b *testing.B) {
	syn := testP.appendSYN(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSegment(syn); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseSegment(f *testing.F) {
	f.Add(testP.appendSYN(nil))
	f.Add(testP.appendRST(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSegment(b)
		if err != nil {
			return
		}
		// Whatever parses must be IPv4 with a valid header checksum.
		require.True(t, s.src.Is4() && s.dst.Is4())
		ihl := int(b[ethHdrLen]&0xf) * 4
		require.Equal(t, uint16(0xffff), fold(sum(0, b[ethHdrLen:ethHdrLen+ihl])))
	})
}

func FuzzParseARPRequest(f *testing.F) {
	req := make([]byte, ethHdrLen+28)
	binary.BigEndian.PutUint16(req[12:], etherARP)
	binary.BigEndian.PutUint16(req[ethHdrLen:], 1)
	binary.BigEndian.PutUint16(req[ethHdrLen+2:], etherIPv4)
	req[ethHdrLen+4], req[ethHdrLen+5] = 6, 4
	binary.BigEndian.PutUint16(req[ethHdrLen+6:], 1)
	f.Add(req)
	f.Add(testP.appendSYN(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseARPRequest(b)
		if err != nil {
			return
		}
		reply := appendARPReply(nil, r, r.targetIP, lbMAC)
		require.Len(t, reply, ethHdrLen+28)
		_, err = parseARPRequest(reply)
		require.ErrorIs(t, err, errNotARPReq)
	})
}
