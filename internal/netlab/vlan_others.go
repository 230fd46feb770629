//go:build !linux

package netlab

// SetAccessVLAN returns ErrUnsupported outside Linux.
func (l *Lab) SetAccessVLAN(*Host, uint16) error { return ErrUnsupported }

// SetTrunkVLANs returns ErrUnsupported outside Linux.
func (l *Lab) SetTrunkVLANs(*Host, ...uint16) error { return ErrUnsupported }
