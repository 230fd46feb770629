package dsr

import (
	"encoding/binary"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// GSO super-frames to L3 backends. In L2 mode a super-frame leaves as it came
// and the kernel segments it on transmit. A packet socket cannot ask the
// kernel to segment a tunnelled super-frame, so the worker cuts TCP
// super-frames into segments itself, each encapsulated, into buffers it
// owns: they are kept from batch to batch, so steady forwarding allocates
// nothing.

// maxSegBuffers bounds the segment buffers of one worker (about 6 MiB at
// 1500-byte MTU): a batch needing more drops the rest as DropEncap.
const maxSegBuffers = 4096

// segBuf returns a free segment buffer of at least size bytes for this
// batch, or nil when the worker has used maxSegBuffers.
func (w *worker) segBuf(size int) []byte {
	if w.segUsed < len(w.segBufs) && len(w.segBufs[w.segUsed]) >= size {
		b := w.segBufs[w.segUsed]
		w.segUsed++
		return b
	}
	if w.segUsed >= maxSegBuffers {
		return nil
	}
	b := make([]byte, size)
	if w.segUsed < len(w.segBufs) {
		w.segBufs[w.segUsed] = b
	} else {
		w.segBufs = append(w.segBufs, b)
	}
	w.segUsed++
	return b
}

// segment cuts the TCP super-frame f into encapsulated segments of the
// frame's GSO size and queues them on w.segOut. f itself is not
// transmitted, so it returns false, except when it was turned into a
// too-big answer.
func (w *worker) segment(f *Frame, ps *parsed, be *beEntry, mtu int) bool {
	p := &ps.pkt
	e := be.encap
	gt := f.Offload.GSOType &^ GSOECN
	if p.Proto != frame.ProtoTCP || p.L4Off == 0 || (gt != GSOTCPv4 && gt != GSOTCPv6) || f.Offload.GSOSize == 0 {
		// UDP segmentation offload and the rest: not cut here.
		return w.drop(DropEncap)
	}
	data := f.Buf[:p.Len]
	l3, l4 := p.L3Off, p.L4Off
	if l4+frame.TCPHeaderLen > len(data) {
		return w.drop(DropEncap)
	}
	hdrEnd := l4 + int(data[l4+12]>>4)*4
	if hdrEnd < l4+frame.TCPHeaderLen || hdrEnd > len(data) {
		return w.drop(DropEncap)
	}
	mss := int(f.Offload.GSOSize)
	hdrs := hdrEnd - l3 // inner IP and TCP headers
	if hdrs+mss+e.overhead > mtu {
		return w.tooBig(f, p, mtu-e.overhead)
	}
	payload := data[hdrEnd:]
	nseg := max(1, (len(payload)+mss-1)/mss)
	h := w.flowHash(ps)
	tc := trafficClass(data, l3, e.v6)
	seq := binary.BigEndian.Uint32(data[l4+4:])
	flags := data[l4+13]
	var id uint16
	if !e.v6 {
		id = binary.BigEndian.Uint16(data[l3+4:])
	}
	size := max(mtu+l3+64, 2048)
	bytes := 0
	for i := range nseg {
		chunk := payload[min(i*mss, len(payload)):min((i+1)*mss, len(payload))]
		innerLen := hdrs + len(chunk)
		n := l3 + e.overhead + innerLen
		b := w.segBuf(size)
		if b == nil {
			if i == 0 {
				w.drop(DropEncap)
			}
			break
		}
		b = b[:n]
		copy(b, data[:l3])
		in := l3 + e.overhead // the inner IP header
		copy(b[in:], data[l3:hdrEnd])
		copy(b[in+hdrs:], chunk)
		t := in + (l4 - l3) // the inner TCP header
		if e.v6 {
			binary.BigEndian.PutUint16(b[in+4:], uint16(innerLen-frame.IPv6HeaderLen))
		} else {
			binary.BigEndian.PutUint16(b[in+2:], uint16(innerLen))
			binary.BigEndian.PutUint16(b[in+4:], id+uint16(i))
			binary.BigEndian.PutUint16(b[in+10:], 0)
			binary.BigEndian.PutUint16(b[in+10:], frame.Checksum(b[in:t], 0))
		}
		binary.BigEndian.PutUint32(b[t+4:], seq+uint32(i*mss))
		fl := flags
		if i > 0 {
			fl &^= frame.FlagCWR
		}
		if i < nseg-1 {
			fl &^= frame.FlagFIN | frame.FlagPSH
		}
		b[t+13] = fl
		binary.BigEndian.PutUint16(b[t+16:], 0)
		tcpLen := n - t
		binary.BigEndian.PutUint16(b[t+16:], frame.Checksum(b[t:n], frame.PseudoHeaderSum(p.Src, p.Dst, frame.ProtoTCP, tcpLen)))
		w.writeOuter(b, l3, e, innerLen, h, tc)
		frame.SetMACs(b, be.mac, w.mac)
		w.segOut = append(w.segOut, Frame{Buf: b, N: n})
		bytes += n
		if i > 0 {
			w.extra++
		}
	}
	if bytes == 0 {
		return false
	}
	w.c.encapsulated.Add(1)
	w.c.segmented.Add(1)
	w.count(be, bytes)
	return false
}
