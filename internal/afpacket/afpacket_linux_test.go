//go:build linux

package afpacket

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"

	"github.com/dsrlb/dsrlb/internal/afpacket/nstest"
)

const testEtherType = 0x88b5 // IEEE local experimental

type pair struct {
	a, b   *nstest.NS
	qa, qb *Conn
}

// newPair builds ns a —veth— ns b (198.51.100.1/24, .2/24) and opens a queue
// on each end with cfgA/cfgB.
func newPair(t *testing.T, cfgA, cfgB *Config) *pair {
	t.Helper()
	nstest.RequireRoot(t)
	p := &pair{a: nstest.New(t, "afpa"), b: nstest.New(t, "afpb")}
	nstest.Veth(t, p.a, "va", netip.MustParsePrefix("198.51.100.1/24"), p.b, "vb", netip.MustParsePrefix("198.51.100.2/24"))
	p.qa = listenIn(t, p.a, "va", cfgA)
	p.qb = listenIn(t, p.b, "vb", cfgB)
	return p
}

func listenIn(t *testing.T, ns *nstest.NS, ifname string, cfg *Config) *Conn {
	t.Helper()
	var c *Conn
	ns.MustDo(t, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = Listen(ifi, cfg)
		return err
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testFrame(dst, src net.HardwareAddr, seq, size int) []byte {
	b := make([]byte, size, MaxTestFrame)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], testEtherType)
	binary.BigEndian.PutUint32(b[14:], uint32(seq))
	for i := 18; i < size; i++ {
		b[i] = byte(seq + i)
	}
	return b
}

const MaxTestFrame = 65536 + 64

func newMsgs(n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i].Buf = make([]byte, MaxTestFrame)
	}
	return msgs
}

// readTest reads until want frames of testEtherType arrived (other traffic,
// e.g. IPv6 router solicitations, is skipped) or the deadline passes.
func readTest(t *testing.T, c *Conn, msgs []Message, want int, timeout time.Duration) [][]byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(timeout)))
	var got [][]byte
	for len(got) < want {
		n, err := c.ReadBatch(msgs)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		require.NoError(t, err)
		for _, m := range msgs[:n] {
			if m.N >= 14 && binary.BigEndian.Uint16(m.Buf[12:]) == testEtherType {
				got = append(got, append([]byte(nil), m.Buf[:m.N]...))
			}
		}
	}
	return got
}

func TestIntegrationBatchRoundTrip(t *testing.T) {
	p := newPair(t, nil, nil)
	const k = 100 // more than one batch of 64
	out := make([]Message, k)
	for i := range out {
		out[i].Buf = testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), i, 60+i*13)
		out[i].N = len(out[i].Buf)
	}
	n, err := p.qa.WriteBatch(out)
	require.NoError(t, err)
	require.Equal(t, k, n)

	got := readTest(t, p.qb, newMsgs(16), k, 5*time.Second)
	require.Len(t, got, k)
	for i, f := range got {
		assert.Equal(t, out[i].Buf, f, "frame %d", i)
	}

	// The sender must not see its own transmissions (PACKET_IGNORE_OUTGOING).
	// Absence can only be shown by waiting; the wait is bounded and short.
	own := readTest(t, p.qa, newMsgs(16), 1, 300*time.Millisecond)
	assert.Empty(t, own)

	sa, err := p.qa.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, k, sa.Sent)
	sb, err := p.qb.Stats()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, sb.Received, uint64(k))
	assert.GreaterOrEqual(t, sb.KernelPackets, uint64(k))
	assert.Zero(t, sb.KernelDrops)
	assert.Zero(t, sb.Truncated)
}

func TestIntegrationTruncationCounted(t *testing.T) {
	p := newPair(t, nil, nil)
	big := testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), 1, 300)
	small := testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), 2, 100)
	n, err := p.qa.WriteBatch([]Message{{Buf: big, N: len(big)}, {Buf: small, N: len(small)}})
	require.NoError(t, err)
	require.Equal(t, 2, n)

	msgs := make([]Message, 4)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 128)
	}
	got := readTest(t, p.qb, msgs, 1, 5*time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, small, got[0], "only the frame that fits is returned")
	s, err := p.qb.Stats()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, s.Truncated, uint64(1))
}

func TestIntegrationReadDeadline(t *testing.T) {
	p := newPair(t, &Config{Filter: rejectAll(t)}, &Config{Filter: rejectAll(t)})
	msgs := newMsgs(4)

	require.NoError(t, p.qb.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err := p.qb.ReadBatch(msgs)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// A reader blocked in ReadBatch is released by a later deadline.
	require.NoError(t, p.qb.SetReadDeadline(time.Time{}))
	errc := make(chan error, 1)
	go func() {
		_, err := p.qb.ReadBatch(msgs)
		errc <- err
	}()
	require.NoError(t, p.qb.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	select {
	case err := <-errc:
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch did not return after its deadline")
	}
}

func rejectAll(t *testing.T) []bpf.RawInstruction {
	t.Helper()
	return []bpf.RawInstruction{{Op: 0x06, K: 0}} // ret #0
}

func TestIntegrationFilter(t *testing.T) {
	vip := netip.MustParseAddr("198.51.100.2")
	filter, err := VIPFilterRaw(nil)
	require.NoError(t, err)
	p := newPair(t, nil, &Config{Filter: filter})

	// A test frame (not ARP, not IP) must be filtered out in the kernel.
	f := testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), 1, 64)
	_, err = p.qa.WriteBatch([]Message{{Buf: f, N: len(f)}})
	require.NoError(t, err)
	assert.Empty(t, readTest(t, p.qb, newMsgs(4), 1, 300*time.Millisecond))

	// With the VIP filter, UDP to the VIP passes and nothing else does.
	filter, err = VIPFilterRaw([]netip.Addr{vip})
	require.NoError(t, err)
	require.NoError(t, p.qb.SetBPF(filter))
	var conn net.Conn
	p.a.MustDo(t, func() error {
		conn, err = net.Dial("udp4", "198.51.100.2:9999")
		return err
	})
	defer conn.Close()
	_, err = p.qa.WriteBatch([]Message{{Buf: f, N: len(f)}})
	require.NoError(t, err)
	_, err = conn.Write([]byte("to the vip"))
	require.NoError(t, err)

	msgs := newMsgs(8)
	require.NoError(t, p.qb.SetReadDeadline(time.Now().Add(5*time.Second)))
	var sawUDP bool
	for !sawUDP {
		n, err := p.qb.ReadBatch(msgs)
		require.NoError(t, err)
		for _, m := range msgs[:n] {
			et := binary.BigEndian.Uint16(m.Buf[12:])
			require.NotEqual(t, uint16(testEtherType), et, "filtered frame reached userspace")
			if et == etherTypeIPv4 {
				require.Equal(t, vip.AsSlice(), m.Buf[30:34])
				sawUDP = m.Buf[23] == 17
			}
		}
	}
}

func TestIntegrationZeroAllocs(t *testing.T) {
	p := newPair(t, nil, nil)
	const k = 8
	out := make([]Message, k)
	for i := range out {
		out[i].Buf = testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), i, 200)
		out[i].N = len(out[i].Buf)
	}
	in := newMsgs(k)
	require.NoError(t, p.qb.SetReadDeadline(time.Now().Add(10*time.Second)))
	var failed error
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := p.qa.WriteBatch(out); err != nil {
			failed = err
			return
		}
		for got := 0; got < k; {
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
	assert.Zero(t, allocs, "allocations per WriteBatch+ReadBatch of %d frames", k)
}

// TestIntegrationOffloadsVisible runs real TCP between the namespaces with
// default offloads and checks what a queue next to the receiving stack sees:
// partial checksums and GSO super-frames, with consistent metadata.
func TestIntegrationOffloadsVisible(t *testing.T) {
	filter, err := VIPFilterRaw([]netip.Addr{netip.MustParseAddr("198.51.100.2")})
	require.NoError(t, err)
	p := newPair(t, nil, &Config{Filter: filter})
	mtu := p.b.Interface(t, "vb").MTU

	var ln net.Listener
	p.b.MustDo(t, func() error {
		ln, err = net.Listen("tcp4", "198.51.100.2:0")
		return err
	})
	defer ln.Close()
	const size = 4 << 20
	recvd := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			recvd <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		recvd <- n
	}()

	type seen struct{ partial, gso, frames int }
	res := make(chan seen, 1)
	stop := make(chan struct{})
	go func() {
		var s seen
		msgs := newMsgs(32)
		defer func() { res <- s }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = p.qb.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := p.qb.ReadBatch(msgs)
			if err != nil {
				continue
			}
			for _, m := range msgs[:n] {
				s.frames++
				v := m.VNet
				if v.Flags&VNetNeedsCsum != 0 {
					s.partial++
					if int(v.CsumStart)+int(v.CsumOffset)+2 > m.N || v.CsumStart < 14+20 {
						t.Errorf("checksum offsets %d+%d outside frame of %d", v.CsumStart, v.CsumOffset, m.N)
					}
				}
				if v.GSOType != 0 {
					s.gso++
					if v.GSOSize == 0 || int(v.GSOSize) > mtu-40 {
						t.Errorf("gso size %d not within MTU %d minus headers", v.GSOSize, mtu)
					}
				}
				if m.N > mtu+14 && v.GSOType == 0 {
					t.Errorf("frame of %d bytes beyond MTU without GSO type", m.N)
				}
			}
		}
	}()

	var c net.Conn
	p.a.MustDo(t, func() error {
		c, err = net.Dial("tcp4", ln.Addr().String())
		return err
	})
	buf := make([]byte, size)
	_, err = c.Write(buf)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	select {
	case n := <-recvd:
		require.EqualValues(t, size, n)
	case <-time.After(20 * time.Second):
		t.Fatal("transfer did not complete")
	}
	close(stop)
	s := <-res
	t.Logf("frames %d, partial checksum %d, gso %d", s.frames, s.partial, s.gso)
	assert.Positive(t, s.partial, "no CHECKSUM_PARTIAL frame observed")
	assert.Positive(t, s.gso, "no GSO super-frame observed")
}

// TestIntegrationVLANReinserted sends 802.1Q-tagged frames. The receiving
// kernel strips the tag into packet metadata before the packet socket sees
// the frame; the queue must put it back so the frame reads as on the wire.
func TestIntegrationVLANReinserted(t *testing.T) {
	p := newPair(t, nil, nil)
	tagged := func(seq, size int, tpid, tci uint16) []byte {
		inner := testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), seq, size)
		f := make([]byte, 0, len(inner)+4)
		f = append(f, inner[:12]...)
		f = binary.BigEndian.AppendUint16(f, tpid)
		f = binary.BigEndian.AppendUint16(f, tci)
		return append(f, inner[12:]...)
	}
	out := []Message{
		{Buf: tagged(1, 100, etherTypeVLAN, 42)},
		{Buf: tagged(2, 1400, etherTypeVLAN, 0x2000|4000)}, // priority bits kept
	}
	for i := range out {
		out[i].N = len(out[i].Buf)
	}
	n, err := p.qa.WriteBatch(out)
	require.NoError(t, err)
	require.Equal(t, len(out), n)

	msgs := newMsgs(8)
	require.NoError(t, p.qb.SetReadDeadline(time.Now().Add(5*time.Second)))
	var got [][]byte
	for len(got) < len(out) {
		n, err := p.qb.ReadBatch(msgs)
		require.NoError(t, err, "tagged frames not all seen")
		for _, m := range msgs[:n] {
			if m.N >= 18 && binary.BigEndian.Uint16(m.Buf[16:]) == testEtherType {
				got = append(got, append([]byte(nil), m.Buf[:m.N]...))
			}
		}
	}
	for i := range out {
		assert.Equal(t, out[i].Buf, got[i], "frame %d must arrive with its tag", i)
	}
}

func TestIntegrationFanout(t *testing.T) {
	p := newPair(t, nil, &Config{FanoutGroup: 7})
	second := listenIn(t, p.b, "vb", &Config{FanoutGroup: 7})
	const k = 40
	out := make([]Message, k)
	for i := range out {
		out[i].Buf = testFrame(p.qb.HardwareAddr(), p.qa.HardwareAddr(), i, 100)
		out[i].N = len(out[i].Buf)
	}
	n, err := p.qa.WriteBatch(out)
	require.NoError(t, err)
	require.Equal(t, k, n)

	// Together the group members see each frame exactly once. Frames wait
	// in each member's queue, so the members can be drained one by one.
	total := 0
	for _, c := range []*Conn{p.qb, second} {
		total += len(readTest(t, c, newMsgs(16), k, 300*time.Millisecond))
	}
	assert.Equal(t, k, total)
}

// BenchmarkBatchRoundTrip measures one WriteBatch of 32 frames on one end of
// a veth pair plus the ReadBatch calls receiving them on the other end.
func BenchmarkBatchRoundTrip(b *testing.B) {
	nstest.RequireRoot(b)
	a, bb := nstest.New(b, "afbna"), nstest.New(b, "afbnb")
	nstest.Veth(b, a, "va", netip.Prefix{}, bb, "vb", netip.Prefix{})
	var qa, qb *Conn
	open := func(ns *nstest.NS, name string, cfg *Config) (c *Conn) {
		ns.MustDo(b, func() error {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			c, err = Listen(ifi, cfg)
			return err
		})
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	onlyTest, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: testEtherType, SkipFalse: 1},
		bpf.RetConstant{Val: Snaplen},
		bpf.RetConstant{Val: 0},
	})
	require.NoError(b, err)
	qa = open(a, "va", nil)
	qb = open(bb, "vb", &Config{Filter: onlyTest, ReceiveBuffer: 4 << 20})
	const k = 32
	out := make([]Message, k)
	for i := range out {
		out[i].Buf = testFrame(qb.HardwareAddr(), qa.HardwareAddr(), i, 64)
		out[i].N = len(out[i].Buf)
	}
	in := newMsgs(k)
	require.NoError(b, qb.SetReadDeadline(time.Now().Add(time.Minute)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := qa.WriteBatch(out); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < k; {
			n, err := qb.ReadBatch(in)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k), "ns/frame")
}
