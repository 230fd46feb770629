package main

import (
	"net/netip"
	"sync"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
)

// historyLen is how many one-second samples the graphs of the status page
// show: the last five minutes.
const historyLen = 300

// rateSampler turns the Balancer's counters into per-second rates and keeps
// their recent history for the status page's graphs.
type rateSampler struct {
	mu   sync.Mutex
	last map[rateKey]sample
	hist map[rateKey]*history
}

type rateKey struct {
	svc  dsr.ServiceKey
	addr netip.Addr // invalid for the service itself
}

type sample struct {
	at             time.Time
	packets, bytes uint64
}

// rates are packets and bits per second.
type rates struct{ PPS, BPS float64 }

// history is a ring of the last historyLen rates, one per sample.
type history struct {
	points [historyLen]rates
	next   int
	n      int
}

func (h *history) add(r rates) {
	h.points[h.next] = r
	h.next = (h.next + 1) % historyLen
	h.n = min(h.n+1, historyLen)
}

// oldestFirst returns a copy of the points, oldest first.
func (h *history) oldestFirst() []rates {
	out := make([]rates, h.n)
	for i := range h.n {
		out[i] = h.points[(h.next-h.n+i+historyLen)%historyLen]
	}
	return out
}

func newRateSampler() *rateSampler {
	return &rateSampler{last: map[rateKey]sample{}, hist: map[rateKey]*history{}}
}

// sample records the counters of st taken at now. Services and backends
// that are gone lose their history.
func (r *rateSampler) sample(st dsr.Stats, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[rateKey]sample, len(r.last))
	put := func(k rateKey, packets, bytes uint64) {
		if prev, ok := r.last[k]; ok && now.After(prev.at) && packets >= prev.packets && bytes >= prev.bytes {
			dt := now.Sub(prev.at).Seconds()
			h := r.hist[k]
			if h == nil {
				h = &history{}
				r.hist[k] = h
			}
			h.add(rates{PPS: float64(packets-prev.packets) / dt, BPS: 8 * float64(bytes-prev.bytes) / dt})
		}
		next[k] = sample{at: now, packets: packets, bytes: bytes}
	}
	for _, s := range st.Services {
		put(rateKey{svc: s.Key}, s.Packets, s.Bytes)
		for _, b := range s.Backends {
			put(rateKey{svc: s.Key, addr: b.Addr}, b.Packets, b.Bytes)
		}
	}
	for k := range r.hist {
		if _, ok := next[k]; !ok {
			delete(r.hist, k)
		}
	}
	r.last = next
}

// get returns the latest rates of k and their history, oldest first.
func (r *rateSampler) get(k rateKey) (rates, []rates) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hist[k]
	if h == nil || h.n == 0 {
		return rates{}, nil
	}
	pts := h.oldestFirst()
	return pts[len(pts)-1], pts
}
