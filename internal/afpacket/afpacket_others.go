//go:build !linux

package afpacket

import (
	"net"
	"time"

	"golang.org/x/net/bpf"
)

// Conn is a batched packet socket; on this platform it cannot be opened.
type Conn struct{}

// Listen returns ErrUnsupported: packet sockets exist only on Linux.
func Listen(ifi *net.Interface, cfg *Config) (*Conn, error) { return nil, ErrUnsupported }

// HardwareAddr returns nil on this platform.
func (c *Conn) HardwareAddr() net.HardwareAddr { return nil }

// SetBPF returns ErrUnsupported on this platform.
func (c *Conn) SetBPF(filter []bpf.RawInstruction) error { return ErrUnsupported }

// SetReadDeadline returns ErrUnsupported on this platform.
func (c *Conn) SetReadDeadline(t time.Time) error { return ErrUnsupported }

// Close returns ErrUnsupported on this platform.
func (c *Conn) Close() error { return ErrUnsupported }

// ReadBatch returns ErrUnsupported on this platform.
func (c *Conn) ReadBatch(msgs []Message) (int, error) { return 0, ErrUnsupported }

// WriteBatch returns ErrUnsupported on this platform.
func (c *Conn) WriteBatch(msgs []Message) (int, error) { return 0, ErrUnsupported }

// Stats returns ErrUnsupported on this platform.
func (c *Conn) Stats() (Stats, error) { return Stats{}, ErrUnsupported }
