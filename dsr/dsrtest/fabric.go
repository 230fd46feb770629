// Package dsrtest provides an in-memory Ethernet segment for testing code
// that embeds a dsr.Balancer, without root, sockets or namespaces — in the
// spirit of net/http/httptest.
//
// A Fabric is a switch; each Port is a host's link on it and implements
// dsr.Forwarder. Frames written by one port are delivered to the port that
// owns the destination MAC, or flooded to every other port for broadcast,
// multicast and unknown destinations, like a switch that learned every
// port's address. Frames are copied on delivery, so senders may reuse their
// buffers.
//
// Frame builds the frames a client sends (TCP or UDP over IPv4 or IPv6,
// optionally 802.1Q-tagged) with correct lengths and checksums, so tests
// need no packet library of their own.
package dsrtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
)

// ErrClosed is returned by a closed Port.
var ErrClosed = errors.New("dsrtest: port closed")

// Fabric is an in-memory Ethernet segment.
type Fabric struct {
	mu    sync.Mutex
	ports []*Port
}

// NewFabric returns an empty segment.
func NewFabric() *Fabric { return &Fabric{} }

// Packet is one frame as a port received it.
type Packet struct {
	Data    []byte
	Offload dsr.Offload
}

// Port is one host's link on a Fabric. It implements dsr.Forwarder.
type Port struct {
	fabric *Fabric
	mac    net.HardwareAddr

	mu       sync.Mutex
	queue    []Packet
	notify   chan struct{} // closed and replaced when the queue grows
	deadline time.Time
	dlChange chan struct{}
	closed   bool
	sent     int
}

// NewPort attaches a host with the given MAC to the segment.
func (f *Fabric) NewPort(mac net.HardwareAddr) *Port {
	p := &Port{fabric: f, mac: append(net.HardwareAddr(nil), mac...), notify: make(chan struct{}), dlChange: make(chan struct{})}
	f.mu.Lock()
	f.ports = append(f.ports, p)
	f.mu.Unlock()
	return p
}

// HardwareAddr implements dsr.Forwarder.
func (p *Port) HardwareAddr() net.HardwareAddr { return p.mac }

// Send transmits one frame onto the segment.
func (p *Port) Send(frame []byte) error {
	return p.SendOffload(frame, dsr.Offload{})
}

// SendOffload transmits one frame with offload metadata, as a local sender
// with checksum or segmentation offload would hand it over.
func (p *Port) SendOffload(frame []byte, off dsr.Offload) error {
	if len(frame) < 14 {
		return fmt.Errorf("dsrtest: frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	p.mu.Lock()
	closed := p.closed
	p.sent++
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	p.fabric.deliver(p, frame, off)
	return nil
}

func (f *Fabric) deliver(from *Port, frame []byte, off dsr.Offload) {
	f.mu.Lock()
	ports := append([]*Port(nil), f.ports...)
	f.mu.Unlock()
	dst := net.HardwareAddr(frame[0:6])
	group := dst[0]&1 != 0
	if !group {
		for _, p := range ports {
			if p != from && string(p.mac) == string(dst) {
				p.enqueue(frame, off)
				return
			}
		}
	}
	for _, p := range ports {
		if p != from {
			p.enqueue(frame, off)
		}
	}
}

func (p *Port) enqueue(frame []byte, off dsr.Offload) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.queue = append(p.queue, Packet{Data: append([]byte(nil), frame...), Offload: off})
	close(p.notify)
	p.notify = make(chan struct{})
}

// ReadBatch implements dsr.Forwarder: it blocks until at least one frame is
// queued, the read deadline passes or the port is closed.
func (p *Port) ReadBatch(frames []dsr.Frame) (int, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return 0, ErrClosed
		}
		if len(p.queue) > 0 {
			n := 0
			for n < len(frames) && len(p.queue) > 0 {
				pk := p.queue[0]
				if len(pk.Data) > len(frames[n].Buf) {
					p.queue = p.queue[1:]
					continue // like a real socket: never hand out a truncated frame
				}
				frames[n].N = copy(frames[n].Buf, pk.Data)
				frames[n].Offload = pk.Offload
				p.queue = p.queue[1:]
				n++
			}
			p.mu.Unlock()
			if n == 0 {
				continue
			}
			return n, nil
		}
		notify, dlChange, dl := p.notify, p.dlChange, p.deadline
		p.mu.Unlock()
		if err := waitFor(notify, dlChange, dl); err != nil {
			return 0, err
		}
	}
}

// waitFor blocks until notify or dlChange is closed or the deadline dl (if
// set) passes.
func waitFor(notify, dlChange <-chan struct{}, dl time.Time) error {
	var timer <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-notify:
	case <-dlChange:
	case <-timer:
		return os.ErrDeadlineExceeded
	}
	return nil
}

// WriteBatch implements dsr.Forwarder.
func (p *Port) WriteBatch(frames []dsr.Frame) (int, error) {
	for i := range frames {
		if err := p.SendOffload(frames[i].Buf[:frames[i].N], frames[i].Offload); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

// SetReadDeadline implements dsr.Forwarder.
func (p *Port) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deadline = t
	close(p.dlChange)
	p.dlChange = make(chan struct{})
	return nil
}

// Recv returns the next frame the port received, waiting until ctx is done.
func (p *Port) Recv(ctx context.Context) (Packet, error) {
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			pk := p.queue[0]
			p.queue = p.queue[1:]
			p.mu.Unlock()
			return pk, nil
		}
		if p.closed {
			p.mu.Unlock()
			return Packet{}, ErrClosed
		}
		notify := p.notify
		p.mu.Unlock()
		select {
		case <-notify:
		case <-ctx.Done():
			return Packet{}, ctx.Err()
		}
	}
}

// Requeue puts a received frame back at the head of the port's queue.
func (p *Port) Requeue(pk Packet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append([]Packet{pk}, p.queue...)
	close(p.notify)
	p.notify = make(chan struct{})
}

// Pending returns and clears the frames queued on the port without waiting.
func (p *Port) Pending() []Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue = nil
	return q
}

// Sent returns how many frames the port has transmitted.
func (p *Port) Sent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// Close detaches the port: blocked reads return ErrClosed and frames for it
// are discarded.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.notify)
		p.notify = make(chan struct{})
	}
	return nil
}
