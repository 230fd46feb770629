//go:build linux

package afpacket

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dropOddProgram is a TCX egress program that drops test frames whose
// sequence number (testFrame's bytes 14-17) is odd and lets everything else
// pass. A drop at egress reaches a packet socket as NET_XMIT_DROP, which
// sendmmsg reports as ENOBUFS: the same error a full veth peer ring or a
// full queueing discipline gives, but for chosen frames, deterministically.
func dropOddProgram(t *testing.T) *ebpf.Program {
	t.Helper()
	const (
		skbData    = 76 // offsetof(struct __sk_buff, data)
		skbDataEnd = 80
		tcxPass    = 0
		tcxDrop    = 2
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "Dual MIT/GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, skbData, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, skbDataEnd, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 18),
			asm.JGT.Reg(asm.R4, asm.R3, "pass"),
			asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
			asm.JNE.Imm(asm.R4, int32(testEtherType>>8|testEtherType&0xff<<8), "pass"),
			asm.LoadMem(asm.R4, asm.R2, 17, asm.Byte),
			asm.And.Imm(asm.R4, 1),
			asm.JEq.Imm(asm.R4, 0, "pass"),
			asm.Mov.Imm(asm.R0, tcxDrop),
			asm.Return(),
			asm.Mov.Imm(asm.R0, tcxPass).WithSymbol("pass"),
			asm.Return(),
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = prog.Close() })
	return prog
}

// TestIntegrationSendDropsContinue makes the kernel refuse every other
// frame of a batch with ENOBUFS. WriteBatch must drop and count exactly
// those, without an error, and still send every other frame in order.
func TestIntegrationSendDropsContinue(t *testing.T) {
	p := newPair(t, nil, nil)
	prog := dropOddProgram(t)
	ifi := p.a.Interface(t, "va")
	var l link.Link
	p.a.MustDo(t, func() error {
		var err error
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: ebpf.AttachTCXEgress})
		return err
	})
	defer l.Close()

	for _, tc := range []struct {
		name  string
		first int // sequence number of the batch's first frame
		k     int
	}{
		{"starts with a kept frame", 0, 100},
		{"starts with a dropped frame", 1, 100},
		{"one dropped frame", 1, 1},
		{"beyond one system call", 0, 3*defaultBatchSize + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := p.qa.Stats()
			require.NoError(t, err)
			out := make([]Message, tc.k)
			var want [][]byte
			for i := range out {
				seq := tc.first + i
				out[i].Buf = testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), seq, 60+i%7)
				out[i].N = len(out[i].Buf)
				if seq%2 == 0 {
					want = append(want, out[i].Buf)
				}
			}
			n, err := p.qa.WriteBatch(out)
			require.NoError(t, err, "a transient per-frame failure is not an error")
			assert.Equal(t, len(want), n, "frames accepted")
			after, err := p.qa.Stats()
			require.NoError(t, err)
			assert.EqualValues(t, len(want), after.Sent-before.Sent)
			assert.EqualValues(t, tc.k-len(want), after.SendDrops-before.SendDrops)

			if len(want) == 0 {
				return
			}
			got := readTest(t, p.qb, newMsgs(16), len(want), 5*time.Second)
			require.Len(t, got, len(want))
			for i := range got {
				assert.Equal(t, binary.BigEndian.Uint32(want[i][14:]), binary.BigEndian.Uint32(got[i][14:]), "frame %d", i)
				assert.Equal(t, want[i], got[i], "frame %d", i)
			}
		})
	}

	// Dropping allocates nothing either.
	out := make([]Message, 8)
	for i := range out {
		out[i].Buf = testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), i, 60)
		out[i].N = len(out[i].Buf)
	}
	in := newMsgs(8)
	require.NoError(t, p.qb.SetReadDeadline(time.Now().Add(10*time.Second)))
	var failed error
	allocs := testing.AllocsPerRun(20, func() {
		if n, err := p.qa.WriteBatch(out); err != nil || n != 4 {
			failed = err
			return
		}
		for got := 0; got < 4; {
			n, err := p.qb.ReadBatch(in)
			if err != nil {
				failed = err
				return
			}
			for _, m := range in[:n] {
				if binary.BigEndian.Uint16(m.Buf[12:]) == testEtherType {
					got++
				}
			}
		}
	})
	require.NoError(t, failed)
	assert.Zero(t, allocs)
}

// TestIntegrationSendInvalidStops checks that a failure that is not
// transient still stops the batch with an error.
func TestIntegrationSendInvalidStops(t *testing.T) {
	p := newPair(t, nil, nil)
	ok := testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), 0, 60)
	n, err := p.qa.WriteBatch([]Message{{Buf: ok, N: len(ok)}, {Buf: ok, N: len(ok) + 1}, {Buf: ok, N: len(ok)}})
	require.Error(t, err)
	assert.Equal(t, 1, n)
	s, err := p.qa.Stats()
	require.NoError(t, err)
	assert.Zero(t, s.SendDrops)
}
