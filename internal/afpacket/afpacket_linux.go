//go:build linux

package afpacket

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// auxSpace is the control buffer size for one PACKET_AUXDATA message.
var auxSpace = unix.CmsgSpace(sizeofAuxdata)

const sizeofAuxdata = int(unsafe.Sizeof(unix.TpacketAuxdata{}))

// Conn is a batched packet socket bound to one interface. ReadBatch and
// WriteBatch may each be used by one goroutine at a time (a read and a
// write may run concurrently); Stats, SetBPF, SetReadDeadline and Close may
// be called from any goroutine.
type Conn struct {
	pc  *packet.Conn
	rc  syscall.RawConn
	mac net.HardwareAddr

	batch int

	// Receive state, preallocated so a batch allocates nothing. readFn is
	// a method value created once: a closure per call would escape.
	rhdrs  []unix.Mmsghdr
	riov   []unix.Iovec // 2 per message: virtio header, frame
	rvnet  []byte       // VNetHeaderLen per message
	rctrl  []byte       // auxSpace per message
	rvlen  int
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	// Transmit state, likewise.
	whdrs   []unix.Mmsghdr
	wiov    []unix.Iovec
	wvnet   []byte
	wvlen   int
	wdone   int  // frames of the batch dealt with: sent or dropped
	wdrops  int  // frames of the batch dropped (ENOBUFS, persistent EAGAIN)
	wwaited bool // the current frame already waited for the poller once
	werr    error
	writeFn func(fd uintptr) bool

	received, sent, sendDrops, truncated, ownSource, invalid atomic.Uint64

	statsMu                    sync.Mutex
	kernelPackets, kernelDrops uint64
}

// Listen opens a raw packet socket for all protocols on ifi, with
// PACKET_IGNORE_OUTGOING (we never read our own or the host's
// transmissions), PACKET_VNET_HDR (offload state travels with each frame)
// and PACKET_AUXDATA (VLAN tags stripped by the kernel are put back).
//
// On Linux the socket is bound to the network namespace of the calling
// thread; once open it may be used from any goroutine.
func Listen(ifi *net.Interface, cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = defaultBatchSize
	}
	pc, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: cfg.Filter})
	if err != nil {
		return nil, fmt.Errorf("afpacket: listen on %s: %w", ifi.Name, err)
	}
	c, err := newConn(pc, ifi, batch, cfg)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("afpacket: %s: %w", ifi.Name, err)
	}
	return c, nil
}

func newConn(pc *packet.Conn, ifi *net.Interface, batch int, cfg *Config) (*Conn, error) {
	rc, err := pc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var mac net.HardwareAddr
	if a, ok := pc.LocalAddr().(*packet.Addr); ok {
		mac = a.HardwareAddr
	}
	if len(mac) == 0 {
		mac = ifi.HardwareAddr
	}
	c := &Conn{
		pc:    pc,
		rc:    rc,
		mac:   mac,
		batch: batch,
		rhdrs: make([]unix.Mmsghdr, batch),
		riov:  make([]unix.Iovec, 2*batch),
		rvnet: make([]byte, VNetHeaderLen*batch),
		rctrl: make([]byte, auxSpace*batch),
		whdrs: make([]unix.Mmsghdr, batch),
		wiov:  make([]unix.Iovec, 2*batch),
		wvnet: make([]byte, VNetHeaderLen*batch),
	}
	c.readFn = c.doRead
	c.writeFn = c.doWrite

	opts := []struct {
		name  string
		level int
		opt   int
		val   int
	}{
		{"PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1},
		{"PACKET_VNET_HDR", unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1},
		{"PACKET_AUXDATA", unix.SOL_PACKET, unix.PACKET_AUXDATA, 1},
	}
	if cfg.FanoutGroup != 0 {
		opts = append(opts, struct {
			name  string
			level int
			opt   int
			val   int
		}{"PACKET_FANOUT", unix.SOL_PACKET, unix.PACKET_FANOUT,
			int(cfg.FanoutGroup) | (unix.PACKET_FANOUT_HASH|unix.PACKET_FANOUT_FLAG_DEFRAG)<<16})
	}
	for _, o := range opts {
		if err := c.setsockopt(o.level, o.opt, o.val); err != nil {
			return nil, fmt.Errorf("setsockopt %s: %w", o.name, err)
		}
	}
	if cfg.ReceiveBuffer > 0 {
		if err := c.setsockopt(unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.ReceiveBuffer); err != nil {
			if err := c.setsockopt(unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.ReceiveBuffer); err != nil {
				return nil, fmt.Errorf("setsockopt SO_RCVBUF: %w", err)
			}
		}
	}

	for i := range batch {
		h := &c.rhdrs[i].Hdr
		h.Iov = &c.riov[2*i]
		h.SetIovlen(2)
		c.riov[2*i].Base = &c.rvnet[VNetHeaderLen*i]
		c.riov[2*i].SetLen(VNetHeaderLen)
		w := &c.whdrs[i].Hdr
		w.Iov = &c.wiov[2*i]
		w.SetIovlen(2)
		c.wiov[2*i].Base = &c.wvnet[VNetHeaderLen*i]
		c.wiov[2*i].SetLen(VNetHeaderLen)
	}
	return c, nil
}

func (c *Conn) setsockopt(level, opt, val int) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), level, opt, val)
	})
	if err != nil {
		return err
	}
	return serr
}

// HardwareAddr is the MAC address of the interface the Conn is bound to.
func (c *Conn) HardwareAddr() net.HardwareAddr { return c.mac }

// SetBPF attaches (replacing any previous) classic BPF filter.
func (c *Conn) SetBPF(filter []bpf.RawInstruction) error {
	if err := c.pc.SetBPF(filter); err != nil {
		return fmt.Errorf("afpacket: attach filter: %w", err)
	}
	return nil
}

// SetReadDeadline makes a blocked or future ReadBatch fail with an error
// wrapping os.ErrDeadlineExceeded once t has passed; zero disables it.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// Close closes the socket; blocked calls return an error.
func (c *Conn) Close() error { return c.pc.Close() }

// ReadBatch receives up to len(msgs) frames (at most the configured batch
// size), blocking until at least one arrived or the read deadline passed.
// Frames that do not fit their buffer, frames sent from the interface's own
// MAC and frames the kernel cannot describe are counted and dropped, never
// returned. To keep the returned frames in msgs[:n] without copying them,
// ReadBatch may swap Buf slices between entries of msgs.
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	vlen := min(len(msgs), c.batch)
	if vlen == 0 {
		return 0, nil
	}
	for {
		for i := range vlen {
			buf := msgs[i].Buf[:cap(msgs[i].Buf)]
			msgs[i].Buf = buf
			iov := &c.riov[2*i+1]
			if len(buf) > 0 {
				iov.Base = &buf[0]
			} else {
				iov.Base = nil
			}
			iov.SetLen(len(buf))
			h := &c.rhdrs[i].Hdr
			h.Control = &c.rctrl[auxSpace*i]
			h.SetControllen(auxSpace)
			h.Flags = 0
			c.rhdrs[i].Len = 0
		}
		c.rvlen = vlen
		if err := c.rc.Read(c.readFn); err != nil {
			return 0, err
		}
		if c.rerr != nil {
			err := c.rerr
			c.rerr = nil
			return 0, fmt.Errorf("afpacket: recvmmsg: %w", err)
		}
		if n := c.collect(msgs, c.rn); n > 0 {
			c.received.Add(uint64(n))
			return n, nil
		}
		// Everything received was dropped: wait for more.
	}
}

// invalidRetries bounds how often one ReadBatch retries after the kernel
// failed to describe a frame (EINVAL), so a persistent EINVAL, which would
// mean a bug here, surfaces as an error instead of a spin.
const invalidRetries = 64

// Both batch calls are made with RawSyscall6, not Syscall6. They never
// sleep (MSG_DONTWAIT; waiting is the poller's job), but a batch of large
// frames keeps the kernel copying for a long while (64 full-size frames:
// on the order of 100 µs). Syscall6 tells the Go scheduler the thread may
// block, and once such a call outlives a scheduler tick the runtime may
// hand the goroutine's P to another thread; when the call returns, the
// goroutine has to win a P back, and often continues on another thread
// while its own goes to sleep. Those are extra wake-ups and thread
// switches per batch, mostly with large frames, and with 1514-byte frames
// they cost a single-core forwarder about a fifth of its capacity
// (docs/PERFORMANCE.md, "Data path"). The price: while a call runs, its P
// runs no other goroutine and a stop-the-world waits for it (a batch of
// GSO super-frames may take about a millisecond), which suits a thread
// that exists to forward. TestBatchCallsAreRaw keeps it so.

func (c *Conn) doRead(fd uintptr) bool {
	for retries := 0; ; {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rhdrs[0])),
			uintptr(c.rvlen), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			c.rn = int(n)
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		case unix.EINVAL:
			// The kernel consumed a frame it could not convert to a
			// virtio_net_hdr (packet_rcv_vnet).
			c.invalid.Add(1)
			if retries++; retries < invalidRetries {
				continue
			}
		}
		c.rerr = os.NewSyscallError("recvmmsg", errno)
		return true
	}
}

// collect validates the n received messages, drops the bad ones and
// compacts the good ones into msgs[:k].
func (c *Conn) collect(msgs []Message, n int) int {
	k := 0
	for i := range n {
		mh := &c.rhdrs[i]
		total := int(mh.Len)
		if mh.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.truncated.Add(1)
			continue
		}
		if total < VNetHeaderLen+14 {
			c.invalid.Add(1)
			continue
		}
		m := &msgs[i]
		m.N = total - VNetHeaderLen
		m.VNet = decodeVNet(c.rvnet[VNetHeaderLen*i:])
		if len(c.mac) == 6 && [6]byte(m.Buf[6:12]) == [6]byte(c.mac) {
			c.ownSource.Add(1)
			continue
		}
		if tpid, tci, ok := vlanFromAux(c.rctrl[auxSpace*i : auxSpace*i+int(mh.Hdr.Controllen)]); ok {
			if !insertVLAN(m, tpid, tci) {
				c.truncated.Add(1)
				continue
			}
		}
		if k != i {
			msgs[k].Buf, m.Buf = m.Buf, msgs[k].Buf
			msgs[k].N, msgs[k].VNet = m.N, m.VNet
		}
		k++
	}
	return k
}

// vlanFromAux extracts a stripped VLAN tag from a PACKET_AUXDATA control
// message without allocating. It decodes with encoding/binary rather than
// pointer casts so that any input, however malformed, is only bounds-checked
// bytes.
func vlanFromAux(ctrl []byte) (tpid, tci uint16, ok bool) {
	const (
		lenSize    = unix.SizeofCmsghdr - 8 // cmsg_len is a size_t
		offTCI     = 16                     // tpacket_auxdata.tp_vlan_tci
		offTPID    = 18                     // tpacket_auxdata.tp_vlan_tpid
		auxDataLen = 20
	)
	hdr := unix.CmsgLen(0)
	for len(ctrl) >= unix.SizeofCmsghdr {
		var l int
		if lenSize == 8 {
			l64 := binary.NativeEndian.Uint64(ctrl)
			if l64 > uint64(len(ctrl)) {
				return 0, 0, false
			}
			l = int(l64)
		} else {
			l = int(binary.NativeEndian.Uint32(ctrl))
		}
		if l < unix.SizeofCmsghdr || l > len(ctrl) {
			return 0, 0, false
		}
		level := int32(binary.NativeEndian.Uint32(ctrl[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(ctrl[lenSize+4:]))
		if level == unix.SOL_PACKET && typ == unix.PACKET_AUXDATA && l >= hdr+auxDataLen {
			aux := ctrl[hdr:l]
			status := binary.NativeEndian.Uint32(aux)
			if status&unix.TP_STATUS_VLAN_VALID == 0 {
				return 0, 0, false
			}
			tpid = etherTypeVLAN
			if v := binary.NativeEndian.Uint16(aux[offTPID:]); status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && v != 0 {
				tpid = v
			}
			return tpid, binary.NativeEndian.Uint16(aux[offTCI:]), true
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(ctrl) {
			return 0, 0, false
		}
		ctrl = ctrl[next:]
	}
	return 0, 0, false
}

// insertVLAN puts a tag the kernel stripped back behind the MAC addresses so
// the frame reads as it was on the wire, and shifts the offload offsets to
// match. It reports false when the buffer has no room for the tag.
func insertVLAN(m *Message, tpid, tci uint16) bool {
	if m.N < 12 || m.N+4 > cap(m.Buf) {
		return false
	}
	b := m.Buf[:m.N+4]
	copy(b[16:], b[12:m.N])
	binary.BigEndian.PutUint16(b[12:], tpid)
	binary.BigEndian.PutUint16(b[14:], tci)
	m.N += 4
	if m.VNet.Flags&VNetNeedsCsum != 0 {
		m.VNet.CsumStart += 4
	}
	if m.VNet.HdrLen != 0 {
		m.VNet.HdrLen += 4
	}
	return true
}

// WriteBatch transmits msgs[i].Buf[:N] with each frame's VNet header,
// in batches of one sendmmsg each, and returns how many frames the kernel
// accepted.
//
// A frame refused for a transient reason is dropped, counted in
// Stats.SendDrops, and the rest of the batch is still sent: ENOBUFS (the
// device's queue, or a veth peer's ring, is full, which waiting on the
// socket cannot fix) or EAGAIN that persists after the socket reported it
// had room again. A forwarder under overload must lose the frames that do
// not fit, not every frame queued behind them. So n < len(msgs) with a nil
// error means len(msgs)-n frames were dropped this way, not necessarily
// the last ones.
//
// Any other failure (a frame too long for the device, an invalid offload
// header, the socket closed, the device down) stops the batch: the error
// is returned with the count of frames accepted before it, and the frames
// from the failing one on are not sent.
func (c *Conn) WriteBatch(msgs []Message) (int, error) {
	sent := 0
	for done := 0; done < len(msgs); {
		vlen := min(len(msgs)-done, c.batch)
		for i := range vlen {
			m := &msgs[done+i]
			if m.N <= 0 || m.N > len(m.Buf) {
				vlen = i
				c.werr = fmt.Errorf("afpacket: frame %d: length %d outside its buffer of %d bytes", done+i, m.N, len(m.Buf))
				break
			}
			encodeVNet(c.wvnet[VNetHeaderLen*i:], m.VNet)
			iov := &c.wiov[2*i+1]
			iov.Base = &m.Buf[0]
			iov.SetLen(m.N)
		}
		if vlen > 0 {
			c.wvlen, c.wdone, c.wdrops, c.wwaited = vlen, 0, 0, false
			err := c.rc.Write(c.writeFn)
			ok := c.wdone - c.wdrops
			sent += ok
			c.sent.Add(uint64(ok))
			c.sendDrops.Add(uint64(c.wdrops))
			if err != nil {
				c.werr = nil
				return sent, err
			}
			if c.werr == nil {
				done += vlen
				continue
			}
		}
		err := c.werr
		c.werr = nil
		return sent, err
	}
	return sent, nil
}

// doWrite sends frames wdone..wvlen-1 of the prepared batch. wdone counts
// the frames dealt with, sent or dropped; wdrops those dropped.
func (c *Conn) doWrite(fd uintptr) bool {
	for c.wdone < c.wvlen {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.whdrs[c.wdone])),
			uintptr(c.wvlen-c.wdone), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			// sendmmsg reports the frames sent before the first one that
			// failed; the next call starts at that one and sees its error.
			c.wdone += int(n)
			c.wwaited = false
		case unix.EAGAIN:
			if !c.wwaited {
				// Send buffer full: the poller wakes us when it drains.
				c.wwaited = true
				return false
			}
			// Still full after the wake-up: give up on this frame
			// rather than wait for one slot per frame.
			c.dropFrame()
		case unix.ENOBUFS:
			// The queue below the socket is full. Nothing wakes the
			// socket when it drains, and retrying at once would spin.
			c.dropFrame()
		case unix.EINTR:
		default:
			c.werr = fmt.Errorf("afpacket: sendmmsg: %w", os.NewSyscallError("sendmmsg", errno))
			return true
		}
	}
	return true
}

// dropFrame gives up on frame wdone of the batch being sent.
func (c *Conn) dropFrame() {
	c.wdone++
	c.wdrops++
	c.wwaited = false
}

// Stats returns the counters since the Conn was opened. The kernel's
// PACKET_STATISTICS reset on every read, so they are accumulated here.
func (c *Conn) Stats() (Stats, error) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	s := Stats{
		Received:  c.received.Load(),
		Sent:      c.sent.Load(),
		SendDrops: c.sendDrops.Load(),
		Truncated: c.truncated.Load(),
		OwnSource: c.ownSource.Load(),
		Invalid:   c.invalid.Load(),
	}
	ks, err := c.pc.Stats()
	if err != nil {
		s.KernelPackets, s.KernelDrops = c.kernelPackets, c.kernelDrops
		return s, fmt.Errorf("afpacket: PACKET_STATISTICS: %w", err)
	}
	c.kernelPackets += uint64(ks.Packets)
	c.kernelDrops += uint64(ks.Drops)
	s.KernelPackets, s.KernelDrops = c.kernelPackets, c.kernelDrops
	return s, nil
}

// The kernel writes virtio_net_hdr in the legacy (native) byte order for
// packet sockets.
func decodeVNet(b []byte) VNetHeader {
	return VNetHeader{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:]),
		GSOSize:    binary.NativeEndian.Uint16(b[4:]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

func encodeVNet(b []byte, h VNetHeader) {
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
}
