package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// machine is the RFC 5798 §6.4 state machine of one virtual router, with
// time passed in: it sends nothing itself and keeps no timers, so that
// tests drive it step by step. Each step fills an output.
type machine struct {
	self         netip.Addr // our primary address, the tie-breaker
	prio         uint8
	interval     time.Duration // our Advertisement_Interval
	preempt      bool
	preemptDelay time.Duration

	state      State
	mai        time.Duration // Master_Adver_Interval: the master's interval
	downAt     time.Time     // Backup: Master_Down_Timer's deadline
	advAt      time.Time     // Master: Adver_Timer's deadline
	lowerSince time.Time     // Backup: first lower-priority advert (preempt delay)
	reassertAt time.Time     // Master: earliest next Reasserted event
	leaving    netip.Addr    // Backup: the master that sent priority 0
}

// output is what a step asks the caller to do, in order: send an
// advertisement with priority sendPrio if send, then deliver events.
type output struct {
	send     bool
	sendPrio uint8
	events   []Event
}

func (m *machine) skew() time.Duration {
	return time.Duration(256-int(m.prio)) * m.mai / 256
}

// masterDown is Master_Down_Interval: three missed advertisements plus the
// skew that lets the highest-priority backup move first.
func (m *machine) masterDown() time.Duration { return 3*m.mai + m.skew() }

func (m *machine) to(out *output, now time.Time, k Kind, s State, peer netip.Addr, peerPrio uint8, reason string) {
	out.events = append(out.events, Event{Kind: k, State: s, Prev: m.state, Peer: peer,
		PeerPriority: peerPrio, Reason: reason, At: now})
	m.state = s
}

// start is the Startup event: Initialize (or Fault) → Backup. Priority 255
// (address owner) is not supported, so startup always goes to Backup.
func (m *machine) start(now time.Time, reason string, out *output) {
	m.mai = m.interval
	m.downAt = now.Add(m.masterDown())
	m.lowerSince = time.Time{}
	m.leaving = netip.Addr{}
	m.to(out, now, BecameBackup, Backup, netip.Addr{}, 0, reason)
}

// next returns when tick must be called at the latest (zero: never).
func (m *machine) next() time.Time {
	switch m.state {
	case Backup:
		return m.downAt
	case Master:
		return m.advAt
	}
	return time.Time{}
}

// tick fires the timers that are due at now.
func (m *machine) tick(now time.Time, out *output) {
	switch m.state {
	case Backup:
		if now.Before(m.downAt) {
			return
		}
		if m.leaving.IsValid() {
			m.becomeMaster(now, fmt.Sprintf("master %s left (priority 0 advertisement): took over after the skew time %v", m.leaving, m.skew()), out)
			return
		}
		m.becomeMaster(now, fmt.Sprintf("no advertisement from a higher-priority master for %v (master down interval)", m.masterDown()), out)
	case Master:
		if now.Before(m.advAt) {
			return
		}
		out.send, out.sendPrio = true, m.prio
		m.advAt = now.Add(m.interval)
	}
}

func (m *machine) becomeMaster(now time.Time, reason string, out *output) {
	m.leaving = netip.Addr{}
	out.send, out.sendPrio = true, m.prio
	m.advAt = now.Add(m.interval)
	m.reassertAt = time.Time{}
	m.to(out, now, BecameMaster, Master, netip.Addr{}, 0, reason)
}

// receive handles a valid advertisement for our virtual router from src.
func (m *machine) receive(now time.Time, src netip.Addr, a *Advertisement, out *output) {
	peerIv := time.Duration(a.Interval) * 10 * time.Millisecond
	switch m.state {
	case Backup:
		if a.Priority == 0 {
			// The master is leaving: take over after the skew time only,
			// so the highest-priority backup moves first.
			m.downAt = now.Add(m.skew())
			m.leaving = src
			return
		}
		m.leaving = netip.Addr{}
		if !m.preempt || a.Priority >= m.prio || m.delayPreempt(now) {
			if a.Priority >= m.prio {
				m.lowerSince = time.Time{}
			}
			m.mai = peerIv
			m.downAt = now.Add(m.masterDown())
		}
		// Otherwise a lower-priority master is preempted: its advert is
		// discarded and the master down timer takes us over.
	case Master:
		if a.Priority == 0 {
			out.send, out.sendPrio = true, m.prio
			m.advAt = now.Add(m.interval)
			return
		}
		if a.Priority > m.prio || (a.Priority == m.prio && src.Compare(m.self) > 0) {
			m.mai = peerIv
			m.downAt = now.Add(m.masterDown())
			m.lowerSince = time.Time{}
			reason := fmt.Sprintf("%s advertises priority %d, higher than our %d", src, a.Priority, m.prio)
			if a.Priority == m.prio {
				reason = fmt.Sprintf("%s advertises our priority %d and has the higher address", src, a.Priority)
			}
			m.to(out, now, BecameBackup, Backup, src, a.Priority, reason)
			return
		}
		// A lower-priority router believes it is master: two masters on
		// one segment. It yields when it hears us; the addresses must be
		// announced again because it may have announced them too.
		if now.Before(m.reassertAt) {
			return
		}
		m.reassertAt = now.Add(m.masterDown())
		out.events = append(out.events, Event{Kind: Reasserted, State: Master, Prev: Master, Peer: src,
			PeerPriority: a.Priority, At: now,
			Reason: fmt.Sprintf("%s also advertises as master with priority %d (lower than ours, or equal with a lower address); announcing the addresses again", src, a.Priority)})
	}
}

// delayPreempt reports, in Backup with preemption, whether a lower-priority
// master's advert is still accepted because the preempt delay, counted from
// the first such advert, has not passed.
func (m *machine) delayPreempt(now time.Time) bool {
	if m.preemptDelay <= 0 {
		return false
	}
	if m.lowerSince.IsZero() {
		m.lowerSince = now
	}
	return now.Sub(m.lowerSince) < m.preemptDelay
}

// stop is the Shutdown event: a master sends a priority 0 advertisement so
// that a backup takes over after its skew time instead of the master down
// interval.
func (m *machine) stop(now time.Time, reason string, out *output) {
	if m.state == Master {
		out.send, out.sendPrio = true, 0
	}
	m.to(out, now, Stopped, Initialize, netip.Addr{}, 0, reason)
}

// fault moves to Fault (no advertisements, nothing owned).
func (m *machine) fault(now time.Time, reason string, out *output) {
	if m.state == Fault {
		return
	}
	m.to(out, now, BecameFault, Fault, netip.Addr{}, 0, reason)
}
