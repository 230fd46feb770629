package dsr

import (
	"encoding/binary"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
)

// Path MTU for L3 modes: a client packet that no longer fits once
// encapsulated is answered, not forwarded (see encap.go).

// DefaultTooBigRate is the number of too-big answers a forwarding worker
// sends per second when Config.TooBigRate is zero; it is also the burst.
const DefaultTooBigRate = 100

// Quote limits: an ICMP error quotes as much of the packet as keeps the
// answer within 576 bytes (IPv4, RFC 1812 4.3.2.3) or 1280 bytes (IPv6,
// RFC 4443 2.4(c)).
const (
	icmpv4MaxQuote = 576 - frame.IPv4HeaderLen - frame.ICMPHeaderLen
	icmpv6MaxQuote = 1280 - frame.IPv6HeaderLen - frame.ICMPHeaderLen
)

// tokenBucket limits the too-big answers of one worker. Only that worker
// uses it, so it needs no lock; it allocates nothing.
type tokenBucket struct {
	tokens int
	last   flowtable.Tick
	primed bool
}

// allow takes a token if one is left after refilling rate tokens per
// second (at most rate in the bucket) since the last call.
func (t *tokenBucket) allow(now flowtable.Tick, rate int) bool {
	if rate <= 0 {
		return false
	}
	if !t.primed {
		t.tokens, t.last, t.primed = rate, now, true
	}
	if el := int64(now - t.last); el > 0 {
		add := el * int64(rate) * int64(flowtable.TickDuration) / 1e9
		if add > 0 {
			t.tokens = int(min(int64(rate), int64(t.tokens)+add))
			t.last = now
		}
	}
	if t.tokens == 0 {
		return false
	}
	t.tokens--
	return true
}

// tooBig handles a packet that would exceed the MTU once encapsulated:
// pathMTU is what the client may send. It drops the packet (DropTooBig)
// and, for IPv4 with DF and for IPv6, rewrites f in place into the ICMP
// answer to the client and returns true so that it is transmitted.
func (w *worker) tooBig(f *Frame, p *frame.Packet, pathMTU int) bool {
	w.drop(DropTooBig)
	l3 := p.L3Off
	data := f.Buf
	v6 := p.Version == 6
	switch {
	case p.ICMPError || p.Proto == frame.ProtoICMP && !v6:
		// Never an ICMP error about an ICMP error (RFC 1122 3.2.2); an
		// echo request this large is not worth one either.
		w.c.tooBigUnanswered.Add(1)
		return false
	case !v6 && data[l3+6]&0x40 == 0:
		// No DF: the client allows fragmentation, which the balancer
		// does not do. Dropped and counted.
		w.c.tooBigUnanswered.Add(1)
		return false
	case v6 && p.Proto == frame.ProtoICMPv6 && p.ICMPType < 128:
		w.c.tooBigUnanswered.Add(1)
		return false
	}
	rate := w.b.cfg.TooBigRate
	if rate == 0 {
		rate = DefaultTooBigRate
	}
	if !w.ptb.allow(w.b.now(), rate) {
		w.c.tooBigLimited.Add(1)
		return false
	}
	ipLen, limit := frame.IPv4HeaderLen, icmpv4MaxQuote
	if v6 {
		ipLen, limit = frame.IPv6HeaderLen, icmpv6MaxQuote
		pathMTU = max(pathMTU, 1280)
	}
	q := min(p.Len-l3, limit)
	icmp := l3 + ipLen
	n := icmp + frame.ICMPHeaderLen + q
	if n > len(data) {
		w.c.tooBigUnanswered.Add(1)
		return false
	}
	copy(data[icmp+frame.ICMPHeaderLen:n], data[l3:l3+q])
	frame.SetMACs(data, p.EthSrc, w.mac)
	body := data[icmp:n]
	if v6 {
		frame.AppendIPv6(data[l3:l3], frame.IPv6Header{Src: p.Dst, Dst: p.Src, NextHeader: frame.ProtoICMPv6, HopLimit: 64}, len(body))
		body[0], body[1] = frame.ICMPv6PacketTooBig, 0
		binary.BigEndian.PutUint16(body[2:], 0)
		binary.BigEndian.PutUint32(body[4:], uint32(pathMTU))
		binary.BigEndian.PutUint16(body[2:], frame.Checksum(body, frame.PseudoHeaderSum(p.Dst, p.Src, frame.ProtoICMPv6, len(body))))
	} else {
		frame.AppendIPv4(data[l3:l3], frame.IPv4Header{Src: p.Dst, Dst: p.Src, Proto: frame.ProtoICMP, TTL: 64}, len(body))
		body[0], body[1] = frame.ICMPv4DestUnreachable, 4
		binary.BigEndian.PutUint16(body[2:], 0)
		binary.BigEndian.PutUint16(body[4:], 0)
		binary.BigEndian.PutUint16(body[6:], uint16(pathMTU))
		binary.BigEndian.PutUint16(body[2:], frame.Checksum(body, 0))
	}
	f.N = n
	f.Offload = Offload{}
	w.c.tooBigAnswered.Add(1)
	w.extra++
	return true
}
