//go:build !linux || !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package decap

// Program is a loaded, unattached decapsulation program (for tests).
type Program struct{}

// Load fails with ErrUnsupported on this platform.
func Load(*Config) (*Program, error) { return nil, ErrUnsupported }

// Close does nothing here.
func (p *Program) Close() error { return nil }

// Attach fails with ErrUnsupported on this platform.
func Attach(string, *Config) (*Status, error) { return nil, ErrUnsupported }

// Detach fails with ErrUnsupported on this platform.
func Detach(string) error { return ErrUnsupported }

// Get fails with ErrUnsupported on this platform.
func Get(string) (*Status, error) { return nil, ErrUnsupported }
