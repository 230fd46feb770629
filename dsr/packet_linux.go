//go:build linux

package dsr

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/internal/afpacket"
)

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
	mtu    int
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
		mtu:    ifi.MTU,
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

// MTU returns the interface's IP MTU when the forwarder was opened: the
// limit of packets encapsulated for L3 backends (see Config.MTU).
func (p *PacketForwarder) MTU() int { return p.mtu }

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
