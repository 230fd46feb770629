//go:build !linux

package netlab

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
)

// New returns ErrUnsupported: labs need Linux network namespaces.
func New(context.Context, *Config) (*Lab, error) { return nil, ErrUnsupported }

// Close does nothing: no lab can exist on this platform.
func (l *Lab) Close() error { l.labState = nil; return nil }

// Logs returns nothing on this platform.
func (l *Lab) Logs() string { return "" }

// StartServer returns ErrUnsupported.
func (l *Lab) StartServer(int) error { return ErrUnsupported }

// StopServer returns ErrUnsupported.
func (l *Lab) StopServer(int) error { return ErrUnsupported }

// RunChildIfRequested returns at once: there are no netlab children here.
func RunChildIfRequested() {}

// Privileged reports false: labs need Linux.
func Privileged() (ok bool, why string) { return false, "network namespaces need Linux" }

// SweepLeftovers does nothing on this platform.
func SweepLeftovers(*slog.Logger) ([]string, error) { return nil, nil }

// Do returns ErrUnsupported.
func (h *Host) Do(func() error) error { _ = h.lab; return ErrUnsupported }

// Command returns a command whose Start fails with ErrUnsupported.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Err = ErrUnsupported
	return cmd
}

// DialContext returns ErrUnsupported.
func (h *Host) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, ErrUnsupported
}

// Listen returns ErrUnsupported.
func (h *Host) Listen(context.Context, string, string) (net.Listener, error) {
	return nil, ErrUnsupported
}

// ListenPacket returns ErrUnsupported.
func (h *Host) ListenPacket(context.Context, string, string) (net.PacketConn, error) {
	return nil, ErrUnsupported
}

// HTTPClient returns a client whose dials fail with ErrUnsupported.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: h.DialContext}}
}

// LinkStats returns ErrUnsupported.
func (h *Host) LinkStats() (LinkStats, error) { return LinkStats{}, ErrUnsupported }

// SetNeighbor returns ErrUnsupported.
func (h *Host) SetNeighbor(netip.Addr, net.HardwareAddr) error { return ErrUnsupported }

// DelNeighbor returns ErrUnsupported.
func (h *Host) DelNeighbor(netip.Addr) error { return ErrUnsupported }

// Sysctl returns ErrUnsupported.
func (h *Host) Sysctl(string, string) error { return ErrUnsupported }

// ReadSysctl returns ErrUnsupported.
func (h *Host) ReadSysctl(string) (string, error) { return "", ErrUnsupported }

// Addrs returns ErrUnsupported.
func (h *Host) Addrs(string) ([]netip.Prefix, error) { return nil, ErrUnsupported }

// labState is empty: no lab can exist on this platform.
type labState struct{}

// AddExternal returns ErrUnsupported.
func (l *Lab) AddExternal(*Host, netip.Prefix) (*Host, error) { return nil, ErrUnsupported }

// AddRoute returns ErrUnsupported.
func (h *Host) AddRoute(netip.Prefix, netip.Addr) error { return ErrUnsupported }
