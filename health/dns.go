package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSChecker counts a target healthy when a DNS query over UDP to
// Target.Addr:Target.Port (53 when zero) draws a response with the query's
// ID, the same question, and RCODE success — and, when Expect is set, an
// answer record holding that address.
type DNSChecker struct {
	// Name is the queried name, fully qualified or not. Empty means the root
	// ".", which every server can answer without recursion.
	Name string
	// Type is the query type. Zero means A (TypeNS for the root).
	Type dnsmessage.Type
	// RecursionDesired sets the RD bit. False suits authoritative servers.
	RecursionDesired bool
	// Expect, when valid, must appear as an A or AAAA answer.
	Expect netip.Addr
	// Timeout bounds the wait when ctx has no deadline. Zero means 1 s.
	Timeout time.Duration
}

// query builds the request and returns it with its ID and question.
func (c *DNSChecker) query() ([]byte, uint16, dnsmessage.Question, error) {
	name := c.Name
	if name == "" {
		name = "."
	}
	if name[len(name)-1] != '.' {
		name += "."
	}
	typ := c.Type
	if typ == 0 {
		typ = dnsmessage.TypeA
		if name == "." {
			typ = dnsmessage.TypeNS
		}
	}
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, 0, dnsmessage.Question{}, err
	}
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	q := dnsmessage.Question{Name: n, Type: typ, Class: dnsmessage.ClassINET}
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: c.RecursionDesired},
		Questions: []dnsmessage.Question{q},
	}
	b, err := msg.Pack()
	return b, id, q, err
}

// Check implements Checker.
func (c *DNSChecker) Check(ctx context.Context, t Target) error {
	if !t.Addr.IsValid() {
		return fmt.Errorf("health: dns check of %v: %w", t, ErrTargetIncomplete)
	}
	req, id, q, err := c.query()
	if err != nil {
		return fmt.Errorf("health: dns check of %v: building query: %w", t, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", t.AddrPort(53).String())
	if err != nil {
		return fmt.Errorf("health: dns check of %v: %w", t, err)
	}
	defer conn.Close()
	var verdict error
	_, err = exchange(ctx, conn, req, c.Timeout, func(b []byte) bool {
		ok, v := c.judge(b, id, q)
		if ok {
			verdict = v
		}
		return ok
	})
	if err != nil {
		return fmt.Errorf("health: dns check of %v: %w", t, err)
	}
	if verdict != nil {
		return fmt.Errorf("health: dns check of %v: %w", t, verdict)
	}
	return nil
}

// judge reports whether b is the response to our query (same ID and
// question; other datagrams are ignored as strays) and, if so, the verdict.
func (c *DNSChecker) judge(b []byte, id uint16, q dnsmessage.Question) (bool, error) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil || h.ID != id || !h.Response {
		return false, nil
	}
	got, err := p.Question()
	if err != nil || got.Type != q.Type || got.Class != q.Class || !equalFoldName(got.Name, q.Name) {
		return false, nil
	}
	if h.RCode != dnsmessage.RCodeSuccess {
		return true, fmt.Errorf("rcode %v: %w", h.RCode, ErrUnexpectedResponse)
	}
	if !c.Expect.IsValid() {
		return true, nil
	}
	if err := p.SkipAllQuestions(); err != nil {
		return true, fmt.Errorf("malformed response: %w", err)
	}
	want := c.Expect.Unmap()
	for {
		rh, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			return true, fmt.Errorf("no answer %v: %w", want, ErrUnexpectedResponse)
		}
		if err != nil {
			return true, fmt.Errorf("malformed response: %w", err)
		}
		switch rh.Type {
		case dnsmessage.TypeA:
			r, err := p.AResource()
			if err != nil {
				return true, fmt.Errorf("malformed response: %w", err)
			}
			if netip.AddrFrom4(r.A) == want {
				return true, nil
			}
		case dnsmessage.TypeAAAA:
			r, err := p.AAAAResource()
			if err != nil {
				return true, fmt.Errorf("malformed response: %w", err)
			}
			if netip.AddrFrom16(r.AAAA) == want {
				return true, nil
			}
		default:
			if err := p.SkipAnswer(); err != nil {
				return true, fmt.Errorf("malformed response: %w", err)
			}
		}
	}
}

// equalFoldName compares DNS names case-insensitively (ASCII), as servers
// may echo the question with 0x20 case randomisation.
func equalFoldName(a, b dnsmessage.Name) bool {
	if a.Length != b.Length {
		return false
	}
	for i := 0; i < int(a.Length); i++ {
		x, y := a.Data[i], b.Data[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// CheckKey implements Keyer.
func (c *DNSChecker) CheckKey() string {
	return fmt.Sprintf("dns name=%q type=%v rd=%t expect=%v timeout=%v", c.Name, c.Type, c.RecursionDesired, c.Expect, c.Timeout)
}
