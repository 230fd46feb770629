package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// harness drives a machine with a fake clock and records what it asked for.
type harness struct {
	t      *testing.T
	m      machine
	now    time.Time
	sent   []uint8 // priorities of the advertisements sent
	events []Event
}

func newHarness(t *testing.T, prio uint8, iv time.Duration, preempt bool, delay time.Duration) *harness {
	h := &harness{t: t, now: t0, m: machine{self: srcA, prio: prio, interval: iv, preempt: preempt, preemptDelay: delay}}
	var out output
	h.m.start(h.now, "test", &out)
	h.take(&out)
	return h
}

func (h *harness) take(out *output) {
	if out.send {
		h.sent = append(h.sent, out.sendPrio)
	}
	h.events = append(h.events, out.events...)
}

// advance moves the clock to d after t0 and fires every timer due on the way,
// at the instant it is due.
func (h *harness) advance(d time.Duration) {
	end := t0.Add(d)
	for {
		next := h.m.next()
		if next.IsZero() || next.After(end) {
			break
		}
		h.now = next
		var out output
		h.m.tick(h.now, &out)
		h.take(&out)
	}
	h.now = end
}

func (h *harness) recv(at time.Duration, src netip.Addr, prio uint8, ivCs uint16) {
	h.advance(at)
	var out output
	h.m.receive(h.now, src, &Advertisement{VRID: 1, Priority: prio, Interval: ivCs}, &out)
	h.take(&out)
}

func (h *harness) lastKind() Kind {
	if len(h.events) == 0 {
		return 0
	}
	return h.events[len(h.events)-1].Kind
}

// becameMasterAt returns when the machine last became master (zero: never).
func (h *harness) becameMasterAt() time.Time {
	for i := len(h.events) - 1; i >= 0; i-- {
		if h.events[i].Kind == BecameMaster {
			return h.events[i].At
		}
	}
	return time.Time{}
}

func skewOf(prio uint8, iv time.Duration) time.Duration {
	return time.Duration(256-int(prio)) * iv / 256
}

func TestMasterDownInterval(t *testing.T) {
	for _, c := range []struct {
		prio uint8
		iv   time.Duration
	}{{100, time.Second}, {254, time.Second}, {1, time.Second}, {200, 100 * time.Millisecond}, {50, 30 * time.Millisecond}} {
		h := newHarness(t, c.prio, c.iv, true, 0)
		require.Equal(t, Backup, h.m.state, "startup goes to Backup")
		want := 3*c.iv + skewOf(c.prio, c.iv)
		h.advance(want - time.Nanosecond)
		assert.Equal(t, Backup, h.m.state, "prio %d: still backup just before the master down interval", c.prio)
		assert.Empty(t, h.sent)
		h.advance(want)
		assert.Equal(t, Master, h.m.state, "prio %d: master at 3*interval+skew", c.prio)
		assert.Equal(t, []uint8{c.prio}, h.sent, "an advertisement on becoming master")
		// Then one every interval.
		h.advance(want + 5*c.iv)
		assert.Len(t, h.sent, 6)
	}
	// A higher priority has a shorter skew, so it wins the race.
	assert.Less(t, skewOf(200, time.Second), skewOf(100, time.Second))
}

func TestBackupTransitions(t *testing.T) {
	const iv = time.Second
	const prio = 100
	cases := []struct {
		name     string
		preempt  bool
		delay    time.Duration
		peerPrio uint8
		// wantMasterAt is when the machine becomes master after one advert
		// at 1 s from a peer (then silent); each advert received after
		// that keeps it below when the peer keeps advertising.
		wantMasterAt time.Duration
		// keepsBackup: with the peer advertising every second, the
		// machine never becomes master.
		keepsBackup bool
	}{
		{name: "higher priority master: accepted", preempt: true, peerPrio: 150,
			wantMasterAt: time.Second + 3*iv + skewOf(prio, iv), keepsBackup: true},
		{name: "equal priority master: accepted, no preemption", preempt: true, peerPrio: prio,
			wantMasterAt: time.Second + 3*iv + skewOf(prio, iv), keepsBackup: true},
		{name: "lower priority master, preempt: discarded, take over at master down", preempt: true, peerPrio: 50,
			wantMasterAt: 3*iv + skewOf(prio, iv)},
		{name: "lower priority master, no preempt: accepted", preempt: false, peerPrio: 50,
			wantMasterAt: time.Second + 3*iv + skewOf(prio, iv), keepsBackup: true},
		{name: "priority 0: take over after skew time", preempt: true, peerPrio: 0,
			wantMasterAt: time.Second + skewOf(prio, iv)},
		{name: "priority 0 with no preempt: take over after skew time too", preempt: false, peerPrio: 0,
			wantMasterAt: time.Second + skewOf(prio, iv)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, prio, iv, c.preempt, c.delay)
			h.recv(time.Second, srcB, c.peerPrio, 100)
			h.advance(20 * time.Second)
			require.Equal(t, Master, h.m.state)
			assert.Equal(t, t0.Add(c.wantMasterAt), h.becameMasterAt())
			if c.peerPrio == 0 {
				assert.Contains(t, h.events[len(h.events)-1].Reason, "priority 0")
			} else {
				assert.Contains(t, h.events[len(h.events)-1].Reason, "master down interval")
			}

			h = newHarness(t, prio, iv, c.preempt, c.delay)
			for i := 1; i <= 20; i++ {
				h.recv(time.Duration(i)*iv, srcB, c.peerPrio, 100)
			}
			if c.keepsBackup {
				assert.Equal(t, Backup, h.m.state, "a master advertising every interval keeps us backup")
			} else {
				assert.Equal(t, Master, h.m.state)
			}
		})
	}
}

func TestBackupFollowsMasterInterval(t *testing.T) {
	// The master down interval uses the master's advertised interval, not
	// ours (RFC 5798 Master_Adver_Interval).
	h := newHarness(t, 100, time.Second, true, 0)
	h.recv(time.Second, srcB, 200, 10) // master advertises every 100 ms
	h.advance(20 * time.Second)
	require.Equal(t, Master, h.m.state)
	assert.Equal(t, t0.Add(time.Second+300*time.Millisecond+skewOf(100, 100*time.Millisecond)), h.becameMasterAt())
}

func TestPreemptDelay(t *testing.T) {
	const iv = time.Second
	h := newHarness(t, 200, iv, true, 5*time.Second)
	// A lower-priority master advertises every second from 1 s on.
	for i := 1; i <= 30 && h.m.state == Backup; i++ {
		h.recv(time.Duration(i)*iv, srcB, 100, 100)
	}
	require.Equal(t, Master, h.m.state)
	at := h.becameMasterAt().Sub(t0)
	// Adverts are accepted until 5 s after the first (at 1 s): the advert
	// at 6 s is the first discarded, so the timer set by the one at 5 s
	// runs out.
	assert.Equal(t, 5*time.Second+3*iv+skewOf(200, iv), at)

	// Without the delay, the same sequence preempts at the first master
	// down interval.
	h = newHarness(t, 200, iv, true, 0)
	for i := 1; i <= 30 && h.m.state == Backup; i++ {
		h.recv(time.Duration(i)*iv, srcB, 100, 100)
	}
	assert.Equal(t, 3*iv+skewOf(200, iv), h.becameMasterAt().Sub(t0))
}

func masterHarness(t *testing.T, prio uint8) *harness {
	h := newHarness(t, prio, time.Second, true, 0)
	h.advance(4 * time.Second)
	require.Equal(t, Master, h.m.state)
	h.sent = nil
	return h
}

func TestMasterTransitions(t *testing.T) {
	cases := []struct {
		name      string
		src       netip.Addr
		peerPrio  uint8
		wantState State
		wantKind  Kind
		wantSent  []uint8
	}{
		{"higher priority: become backup", srcB, 150, Backup, BecameBackup, nil},
		{"equal priority, higher address: become backup", srcB, 100, Backup, BecameBackup, nil},
		{"equal priority, lower address: stay master, reassert", netip.MustParseAddr("192.0.2.0"), 100, Master, Reasserted, nil},
		{"lower priority: stay master, reassert", srcB, 50, Master, Reasserted, nil},
		{"priority 0: answer with an advertisement at once", srcB, 0, Master, BecameMaster, []uint8{100}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := masterHarness(t, 100)
			h.recv(4*time.Second+time.Millisecond, c.src, c.peerPrio, 100)
			assert.Equal(t, c.wantState, h.m.state)
			assert.Equal(t, c.wantKind, h.lastKind())
			assert.Equal(t, c.wantSent, h.sent)
			if c.wantState == Backup {
				e := h.events[len(h.events)-1]
				assert.Equal(t, c.src, e.Peer)
				assert.Equal(t, Master, e.Prev)
				// No more advertisements as backup.
				h.advance(4*time.Second + 3*time.Second)
				assert.Empty(t, h.sent)
			}
		})
	}
}

func TestReassertedIsRateLimited(t *testing.T) {
	h := masterHarness(t, 100)
	for i := range 10 {
		h.recv(4*time.Second+time.Duration(i)*100*time.Millisecond, srcB, 50, 100)
	}
	n := 0
	for _, e := range h.events {
		if e.Kind == Reasserted {
			n++
		}
	}
	assert.Equal(t, 1, n, "one Reasserted per master down interval")
	h.recv(10*time.Second, srcB, 50, 100)
	assert.Equal(t, Reasserted, h.lastKind(), "again after the master down interval")
}

func TestStop(t *testing.T) {
	h := masterHarness(t, 100)
	var out output
	h.m.stop(h.now, "bye", &out)
	h.take(&out)
	assert.Equal(t, []uint8{0}, h.sent, "a stopping master sends priority 0")
	assert.Equal(t, Stopped, h.lastKind())
	assert.Equal(t, Initialize, h.m.state)
	assert.True(t, h.m.next().IsZero())

	h = newHarness(t, 100, time.Second, true, 0)
	out = output{}
	h.m.stop(h.now, "bye", &out)
	h.take(&out)
	assert.Empty(t, h.sent, "a stopping backup sends nothing")
	assert.Equal(t, Stopped, h.lastKind())
}

func TestFault(t *testing.T) {
	h := masterHarness(t, 100)
	var out output
	h.m.fault(h.now, "socket", &out)
	h.take(&out)
	assert.Equal(t, Fault, h.m.state)
	assert.Equal(t, BecameFault, h.lastKind())
	h.advance(20 * time.Second)
	assert.Empty(t, h.sent, "no advertisements in Fault")
}
