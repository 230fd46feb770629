//go:build linux

package afpacket

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// auxMsg builds a control buffer holding one PACKET_AUXDATA message, the way
// the kernel lays it out.
func auxMsg(status uint32, tci, tpid uint16) []byte {
	b := make([]byte, unix.CmsgSpace(sizeofAuxdata))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_PACKET
	h.Type = unix.PACKET_AUXDATA
	h.SetLen(unix.CmsgLen(sizeofAuxdata))
	aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	aux.Status = status
	aux.Vlan_tci = tci
	aux.Vlan_tpid = tpid
	return b
}

func TestAuxdataLayout(t *testing.T) {
	var a unix.TpacketAuxdata
	assert.EqualValues(t, 16, unsafe.Offsetof(a.Vlan_tci))
	assert.EqualValues(t, 18, unsafe.Offsetof(a.Vlan_tpid))
	assert.EqualValues(t, 20, sizeofAuxdata)
}

func TestVLANFromAux(t *testing.T) {
	other := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&other[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(4))

	tests := []struct {
		name      string
		ctrl      []byte
		tpid, tci uint16
		ok        bool
	}{
		{"tag", auxMsg(unix.TP_STATUS_VLAN_VALID, 42, 0), etherTypeVLAN, 42, true},
		{"tag with tpid", auxMsg(unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 7, 0x88a8), 0x88a8, 7, true},
		{"tpid not valid", auxMsg(unix.TP_STATUS_VLAN_VALID, 7, 0x88a8), etherTypeVLAN, 7, true},
		{"no tag", auxMsg(unix.TP_STATUS_CSUMNOTREADY, 42, 0), 0, 0, false},
		{"after another message", append(other, auxMsg(unix.TP_STATUS_VLAN_VALID, 9, 0)...), etherTypeVLAN, 9, true},
		{"truncated", auxMsg(unix.TP_STATUS_VLAN_VALID, 42, 0)[:unix.CmsgLen(8)], 0, 0, false},
		{"empty", nil, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpid, tci, ok := vlanFromAux(tt.ctrl)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.tpid, tpid)
			assert.Equal(t, tt.tci, tci)
		})
	}
}

func TestInsertVLAN(t *testing.T) {
	frame := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0x45, 0xaa}
	buf := make([]byte, 64)
	copy(buf, frame)
	m := Message{Buf: buf, N: len(frame), VNet: VNetHeader{Flags: VNetNeedsCsum, HdrLen: 54, CsumStart: 34, CsumOffset: 16}}
	require.True(t, insertVLAN(&m, etherTypeVLAN, 0x2005))
	want := append(append(append([]byte{}, frame[:12]...), 0x81, 0x00, 0x20, 0x05), frame[12:]...)
	assert.Equal(t, want, m.Buf[:m.N])
	assert.Equal(t, VNetHeader{Flags: VNetNeedsCsum, HdrLen: 58, CsumStart: 38, CsumOffset: 16}, m.VNet)

	// No room for the tag: refused, frame untouched.
	full := Message{Buf: append([]byte(nil), frame...), N: len(frame)}
	assert.False(t, insertVLAN(&full, etherTypeVLAN, 1))
	assert.Equal(t, frame, full.Buf[:full.N])

	// No partial checksum: offsets stay as they are.
	plain := Message{Buf: make([]byte, 64), N: 20}
	require.True(t, insertVLAN(&plain, etherTypeVLAN, 1))
	assert.Equal(t, VNetHeader{}, plain.VNet)
}

func TestVNetRoundTrip(t *testing.T) {
	h := VNetHeader{Flags: VNetNeedsCsum, GSOType: 4, HdrLen: 86, GSOSize: 1428, CsumStart: 54, CsumOffset: 16}
	b := make([]byte, VNetHeaderLen)
	encodeVNet(b, h)
	assert.Equal(t, h, decodeVNet(b))
	assert.Equal(t, uint16(1428), binary.NativeEndian.Uint16(b[4:]))
}

func FuzzVLANFromAux(f *testing.F) {
	f.Add(auxMsg(unix.TP_STATUS_VLAN_VALID, 42, 0))
	f.Add(auxMsg(unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 7, 0x88a8))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ctrl []byte) {
		tpid, _, ok := vlanFromAux(ctrl)
		if ok && tpid == 0 {
			t.Fatal("a found tag must have a TPID")
		}
		m := Message{Buf: make([]byte, len(ctrl), len(ctrl)+4), N: len(ctrl)}
		copy(m.Buf, ctrl)
		if insertVLAN(&m, tpid, 1) && m.N != len(ctrl)+4 {
			t.Fatal("inserted tag must add 4 bytes")
		}
	})
}
