//go:build !linux

package sysctl

// Read returns ErrUnsupported: only Linux has /proc/sys.
func Read(Key) (string, error) { return "", ErrUnsupported }

// ReadInt returns ErrUnsupported: only Linux has /proc/sys.
func ReadInt(Key) (int, error) { return 0, ErrUnsupported }

// Write returns ErrUnsupported: only Linux has /proc/sys.
func Write(Key, string) error { return ErrUnsupported }

// WriteInt returns ErrUnsupported: only Linux has /proc/sys.
func WriteInt(Key, int) error { return ErrUnsupported }
