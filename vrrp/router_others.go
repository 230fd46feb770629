//go:build !linux

package vrrp

// New validates cfg and returns ErrUnsupported: the raw IPv4 socket VRRP
// needs is implemented for Linux only. The protocol core is portable.
func New(cfg *Config) (*Router, error) {
	if _, err := cfg.settings(); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}
