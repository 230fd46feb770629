//go:build linux

package dsr

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/internal/afpacket"
)

// PacketConfig configures ListenPacket. A nil *PacketConfig means all
// defaults.
type PacketConfig struct {
	// Fanout, when non-zero, joins a PACKET_FANOUT group with this id in
	// hash mode: open one PacketForwarder per core with the same Fanout and
	// the kernel spreads the traffic over them, each flow always to the
	// same one. Zero means no fanout (a single queue sees everything).
	Fanout uint16
	// ReceiveBuffer is the socket receive buffer in bytes. A larger buffer
	// absorbs longer bursts before the kernel drops (see
	// PacketStats.KernelDrops). Zero means DefaultReceiveBuffer: the
	// system default (about 200 KiB) holds only three GSO super-frames,
	// so a single fast upload overflows it. Negative keeps the system
	// default.
	ReceiveBuffer int
	// VIPs selects the traffic the kernel passes to the forwarder: ARP,
	// IPv6 neighbour solicitations and packets to these addresses. Empty
	// means only ARP and neighbour solicitations until SetVIPs is called
	// (a Balancer calls it when it serves the forwarder); VIP traffic that
	// arrives before then is dropped, so pass the VIPs here when they are
	// known.
	VIPs []netip.Addr
	// BatchSize is the most frames moved per system call. Zero means 64.
	BatchSize int
}

// DefaultReceiveBuffer is the receive buffer a PacketForwarder asks for when
// PacketConfig.ReceiveBuffer is zero. With CAP_NET_ADMIN it is granted past
// net.core.rmem_max; without, the kernel caps it there.
const DefaultReceiveBuffer = 8 << 20

func receiveBuffer(n int) int {
	switch {
	case n == 0:
		return DefaultReceiveBuffer
	case n < 0:
		return 0
	}
	return n
}

// PacketStats are a PacketForwarder's counters since it was opened.
type PacketStats struct {
	// Received and Sent count frames handed to and accepted from the
	// caller.
	Received, Sent uint64
	// Truncated counts frames dropped because they did not fit their
	// Frame.Buf.
	Truncated uint64
	// OwnSource counts frames dropped because their source MAC was the
	// interface's own.
	OwnSource uint64
	// Invalid counts frames whose offload state the kernel could not
	// describe, dropped.
	Invalid uint64
	// KernelDrops counts frames the kernel dropped because the receive
	// buffer was full: the forwarder did not keep up.
	KernelDrops uint64
	// SendDrops counts frames dropped on transmit because the kernel had no
	// room for them (a full transmit queue).
	SendDrops uint64
}

// PacketForwarder is a Forwarder on a Linux packet socket (AF_PACKET). It
// moves frames in batches of one system call, keeps our own transmissions
// and non-VIP traffic out with kernel-side filtering, and carries each
// frame's offload state (partial checksum, GSO super-frame) from receive to
// transmit so the kernel finishes what the original sender left to it. A
// VLAN tag the kernel stripped on receive is put back into the frame.
//
// Like every Forwarder it is one queue: ReadBatch from one goroutine,
// WriteBatch from one goroutine. Open several with PacketConfig.Fanout to
// use several cores.
type PacketForwarder struct {
	conn   *afpacket.Conn
	ifname string
	rmsgs  []afpacket.Message
	wmsgs  []afpacket.Message
}

var _ Forwarder = (*PacketForwarder)(nil)

// ListenPacket opens a PacketForwarder on the interface ifname. It needs
// CAP_NET_RAW. The socket belongs to the network namespace of the calling
// thread.
func ListenPacket(ifname string, cfg *PacketConfig) (*PacketForwarder, error) {
	if cfg == nil {
		cfg = &PacketConfig{}
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("dsr: packet forwarder: %w", err)
	}
	filter, err := afpacket.VIPFilterRaw(cfg.VIPs)
	if err != nil {
		return nil, fmt.Errorf("dsr: packet forwarder on %s: %w", ifname, err)
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = 64
	}
	conn, err := afpacket.Listen(ifi, &afpacket.Config{
		Filter:        filter,
		FanoutGroup:   cfg.Fanout,
		ReceiveBuffer: receiveBuffer(cfg.ReceiveBuffer),
		BatchSize:     batch,
	})
	if err != nil {
		return nil, fmt.Errorf("dsr: packet forwarder: %w", err)
	}
	return &PacketForwarder{
		conn:   conn,
		ifname: ifname,
		rmsgs:  make([]afpacket.Message, batch),
		wmsgs:  make([]afpacket.Message, batch),
	}, nil
}

// ReadBatch implements Forwarder. Each Frame.Buf should have a capacity of
// MaxFrameSize: shorter buffers make large (GSO) frames count as truncated.
// The frames' Buf slices may be exchanged among frames[:len(frames)].
func (p *PacketForwarder) ReadBatch(frames []Frame) (int, error) {
	n := min(len(frames), len(p.rmsgs))
	msgs := p.rmsgs[:n]
	for i := range msgs {
		msgs[i].Buf = frames[i].Buf
	}
	k, err := p.conn.ReadBatch(msgs)
	for i := range msgs {
		frames[i].Buf = msgs[i].Buf
		msgs[i].Buf = nil
	}
	for i := range k {
		frames[i].N = msgs[i].N
		frames[i].Offload = offloadFromVNet(msgs[i].VNet)
	}
	if err != nil {
		return 0, fmt.Errorf("dsr: read from %s: %w", p.ifname, err)
	}
	return k, nil
}

// WriteBatch implements Forwarder. A frame the kernel has no room for (a
// full transmit queue: ENOBUFS) is dropped and counted in
// PacketStats.SendDrops, and the rest are still sent.
func (p *PacketForwarder) WriteBatch(frames []Frame) (int, error) {
	sent, done := 0, 0
	for done < len(frames) {
		n := min(len(frames)-done, len(p.wmsgs))
		msgs := p.wmsgs[:n]
		for i := range msgs {
			f := &frames[done+i]
			msgs[i] = afpacket.Message{Buf: f.Buf, N: f.N, VNet: vnetFromOffload(f.Offload)}
		}
		k, err := p.conn.WriteBatch(msgs)
		for i := range msgs {
			msgs[i].Buf = nil
		}
		sent += k
		done += n
		if err != nil {
			return sent, fmt.Errorf("dsr: write to %s: %w", p.ifname, err)
		}
	}
	return sent, nil
}

// SetReadDeadline implements Forwarder.
func (p *PacketForwarder) SetReadDeadline(t time.Time) error {
	return p.conn.SetReadDeadline(t)
}

// HardwareAddr implements Forwarder: the interface's MAC address.
func (p *PacketForwarder) HardwareAddr() net.HardwareAddr { return p.conn.HardwareAddr() }

// SetVIPs replaces the kernel filter so that exactly ARP, IPv6 neighbour
// solicitations and traffic to vips reach the forwarder. The Balancer calls
// it whenever its set of VIPs changes.
func (p *PacketForwarder) SetVIPs(vips []netip.Addr) error {
	filter, err := afpacket.VIPFilterRaw(vips)
	if err != nil {
		return fmt.Errorf("dsr: packet forwarder on %s: %w", p.ifname, err)
	}
	if err := p.conn.SetBPF(filter); err != nil {
		return fmt.Errorf("dsr: packet forwarder on %s: %w", p.ifname, err)
	}
	return nil
}

// Stats returns the forwarder's counters. It may be called from any
// goroutine.
func (p *PacketForwarder) Stats() PacketStats {
	s, _ := p.conn.Stats() // on error the locally kept counters are still right
	return PacketStats{
		Received:    s.Received,
		Sent:        s.Sent,
		Truncated:   s.Truncated,
		OwnSource:   s.OwnSource,
		Invalid:     s.Invalid,
		KernelDrops: s.KernelDrops,
		SendDrops:   s.SendDrops,
	}
}

// Close closes the socket; a blocked ReadBatch returns an error.
func (p *PacketForwarder) Close() error { return p.conn.Close() }

// The Offload flag bits and GSO types are defined with the virtio_net_hdr
// values, so conversion is a plain copy; the tests pin that equivalence.
func offloadFromVNet(h afpacket.VNetHeader) Offload {
	return Offload{
		Flags:          OffloadFlags(h.Flags),
		GSOType:        GSOType(h.GSOType),
		HeaderLen:      h.HdrLen,
		GSOSize:        h.GSOSize,
		ChecksumStart:  h.CsumStart,
		ChecksumOffset: h.CsumOffset,
	}
}

func vnetFromOffload(o Offload) afpacket.VNetHeader {
	return afpacket.VNetHeader{
		Flags:      uint8(o.Flags),
		GSOType:    uint8(o.GSOType),
		HdrLen:     o.HeaderLen,
		GSOSize:    o.GSOSize,
		CsumStart:  o.ChecksumStart,
		CsumOffset: o.ChecksumOffset,
	}
}
