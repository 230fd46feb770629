package arp

import "time"

// limiter is a token bucket per requester MAC. It keeps one misbehaving or
// forged host from turning the Speaker into a reply amplifier, without one
// host's flood starving the others.
type limiter struct {
	rate, burst float64 // rate < 0: unlimited
	max         int
	buckets     map[[6]byte]bucket
	lastPrune   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate, burst float64, max int) limiter {
	return limiter{rate: rate, burst: burst, max: max, buckets: make(map[[6]byte]bucket)}
}

// allow takes one token from mac's bucket. It returns 0 when a reply may be
// sent, otherwise the reason to drop.
func (l *limiter) allow(mac [6]byte, now time.Time) DropReason {
	if l.rate < 0 {
		return 0
	}
	b, ok := l.buckets[mac]
	if !ok {
		if len(l.buckets) >= l.max && !l.prune(now) {
			return DropRateTableFull
		}
		b = bucket{tokens: l.burst, last: now}
	} else if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		l.buckets[mac] = b
		return DropRateLimited
	}
	b.tokens--
	l.buckets[mac] = b
	return 0
}

// prune forgets requesters whose bucket has refilled completely, which is
// the same as never having seen them. It scans the whole table, so it runs
// at most once a second, and reports whether room was made.
func (l *limiter) prune(now time.Time) bool {
	if !l.lastPrune.IsZero() && now.Sub(l.lastPrune) < time.Second {
		return false
	}
	l.lastPrune = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for mac, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, mac)
		}
	}
	return len(l.buckets) < l.max
}
