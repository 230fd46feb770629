package arp

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/stretchr/testify/require"
)

// fakeConn is an in-memory net.PacketConn carrying Ethernet frames: tests
// push received frames into in and read sent ones from out. It honours read
// deadlines and Close, like a packet socket.
type fakeConn struct {
	in  chan []byte
	out chan sentFrame

	mu        sync.Mutex
	deadline  time.Time
	dlChanged chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

type sentFrame struct {
	dst net.HardwareAddr
	b   []byte
}

func newFakeConn() *fakeConn {
	return &fakeConn{
		in:        make(chan []byte, 64),
		out:       make(chan sentFrame, 1024),
		dlChanged: make(chan struct{}),
		closed:    make(chan struct{}),
	}
}

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "fake" }

func (c *fakeConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, changed := c.deadline, c.dlChanged
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case b := <-c.in:
			return copy(p, b), fakeAddr{}, nil
		case <-c.closed:
			return 0, nil, net.ErrClosed
		case <-changed:
		case <-timeout:
			return 0, nil, os.ErrDeadlineExceeded
		}
	}
}

func (c *fakeConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	a, ok := addr.(*packet.Addr)
	if !ok {
		return 0, &net.AddrError{Err: "not a *packet.Addr", Addr: addr.String()}
	}
	select {
	case c.out <- sentFrame{dst: append(net.HardwareAddr(nil), a.HardwareAddr...), b: append([]byte(nil), p...)}:
		return len(p), nil
	default:
		return 0, os.ErrDeadlineExceeded
	}
}

func (c *fakeConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeConn) LocalAddr() net.Addr                { return fakeAddr{} }
func (c *fakeConn) SetDeadline(t time.Time) error      { return c.SetReadDeadline(t) }
func (c *fakeConn) SetWriteDeadline(t time.Time) error { return nil }
func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.dlChanged)
	c.dlChanged = make(chan struct{})
	return nil
}

var (
	ourMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	ourIP     = netip.MustParseAddr("192.0.2.2")
	vip       = netip.MustParseAddr("192.0.2.100")
	vip2      = netip.MustParseAddr("192.0.2.101")
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10}
	clientIP  = netip.MustParseAddr("192.0.2.10")
	srvMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x20}
	srvMAC2   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x2f}
	srvIP     = netip.MustParseAddr("192.0.2.20")
	srvIP2    = netip.MustParseAddr("192.0.2.21")
	t0        = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// testSpeaker returns a Speaker on a fakeConn whose clock is *now.
func testSpeaker(t *testing.T, cfg *Config) (*Speaker, *fakeConn, *time.Time) {
	t.Helper()
	c := Config{HardwareAddr: ourMAC, IP: ourIP}
	if cfg != nil {
		c = *cfg
		if c.HardwareAddr == nil {
			c.HardwareAddr = ourMAC
		}
		if !c.IP.IsValid() {
			c.IP = ourIP
		}
	}
	conn := newFakeConn()
	s, err := New(conn, &c)
	require.NoError(t, err)
	now := t0
	s.now = func() time.Time { return now }
	return s, conn, &now
}

// step feeds one frame to the core at time now and returns the effects.
func (s *Speaker) step(fr []byte, now time.Time) batch {
	var b batch
	s.mu.Lock()
	s.handle(fr, now, &b)
	s.mu.Unlock()
	return b
}

// tickAt runs the timer step at now.
func (s *Speaker) tickAt(now time.Time) (batch, time.Time) {
	var b batch
	s.mu.Lock()
	next := s.tick(now, &b)
	s.mu.Unlock()
	return b, next
}

// arpFrame builds an Ethernet frame with mdlayher/ethernet and mdlayher/arp,
// independently of the code under test.
func arpFrame(t testing.TB, ethDst, ethSrc net.HardwareAddr, op arp.Operation, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	t.Helper()
	p := &arp.Packet{HardwareType: 1, ProtocolType: uint16(ethernet.EtherTypeIPv4), HardwareAddrLength: 6, IPLength: 4,
		Operation: op, SenderHardwareAddr: sha, SenderIP: spa, TargetHardwareAddr: tha, TargetIP: tpa}
	pb, err := p.MarshalBinary()
	require.NoError(t, err)
	f := &ethernet.Frame{Destination: ethDst, Source: ethSrc, EtherType: ethernet.EtherTypeARP, Payload: pb}
	fb, err := f.MarshalBinary()
	require.NoError(t, err)
	return fb
}

// request is a broadcast who-has tpa from sha/spa.
func request(t testing.TB, sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	return arpFrame(t, ethernet.Broadcast, sha, arp.OperationRequest, sha, spa, make(net.HardwareAddr, 6), tpa)
}

// reply is a unicast is-at from sha/spa to tha/tpa.
func reply(t testing.TB, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	return arpFrame(t, tha, sha, arp.OperationReply, sha, spa, tha, tpa)
}

// decoded is a sent frame parsed back with mdlayher's parsers.
type decoded struct {
	eth *ethernet.Frame
	arp *arp.Packet
}

func decode(t testing.TB, b []byte) decoded {
	t.Helper()
	var f ethernet.Frame
	require.NoError(t, f.UnmarshalBinary(b))
	require.Equal(t, ethernet.EtherTypeARP, f.EtherType)
	var p arp.Packet
	require.NoError(t, p.UnmarshalBinary(f.Payload))
	return decoded{eth: &f, arp: &p}
}

func decodeAll(t testing.TB, b batch) []decoded {
	t.Helper()
	out := make([]decoded, len(b.frames))
	for i, f := range b.frames {
		out[i] = decode(t, f.b)
		require.Equal(t, net.HardwareAddr(f.dst[:]), out[i].eth.Destination, "socket address and Ethernet destination agree")
	}
	return out
}
