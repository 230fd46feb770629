//go:build !linux || !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"io"

	"github.com/dsrlb/dsrlb/internal/flowtable"
)

// Program is the loaded XDP program; on this platform Load always fails.
type Program struct{}

// Load returns ErrUnsupported on this platform.
func Load(*Config) (*Program, error) { return nil, ErrUnsupported }

// Close returns ErrUnsupported.
func (p *Program) Close() error { return ErrUnsupported }

// Attach returns ErrUnsupported.
func (p *Program) Attach(int) (io.Closer, error) { return nil, ErrUnsupported }

// SetParams returns ErrUnsupported.
func (p *Program) SetParams(Params) error { return ErrUnsupported }

// SetNow returns ErrUnsupported.
func (p *Program) SetNow(flowtable.Tick) error { return ErrUnsupported }

// SetService returns ErrUnsupported.
func (p *Program) SetService(ServiceKey, uint32, bool, []uint32) error { return ErrUnsupported }

// DeleteService returns ErrUnsupported.
func (p *Program) DeleteService(ServiceKey) error { return ErrUnsupported }

// SetBackend returns ErrUnsupported.
func (p *Program) SetBackend(uint32, Backend) error { return ErrUnsupported }

// ClearBackend returns ErrUnsupported.
func (p *Program) ClearBackend(uint32) error { return ErrUnsupported }

// Counters returns ErrUnsupported.
func (p *Program) Counters() (Counters, error) { return Counters{}, ErrUnsupported }

// Run returns ErrUnsupported.
func (p *Program) Run([]byte) (Verdict, []byte, error) { return 0, nil, ErrUnsupported }

// LookupFlow returns ErrUnsupported.
func (p *Program) LookupFlow(flowtable.Key) (Flow, bool, error) { return Flow{}, false, ErrUnsupported }

// DeleteFlow returns ErrUnsupported.
func (p *Program) DeleteFlow(flowtable.Key) (bool, error) { return false, ErrUnsupported }

// Flows returns ErrUnsupported.
func (p *Program) Flows(func(flowtable.Key, Flow) bool) error { return ErrUnsupported }

// FlowsPerBackend returns ErrUnsupported.
func (p *Program) FlowsPerBackend(flowtable.Tick) (map[uint32]int, error) { return nil, ErrUnsupported }

// Expired returns false.
func (p *Program) Expired(uint8, Flow, flowtable.Tick) bool { return false }

// CountersOf returns ErrUnsupported.
func (p *Program) CountersOf([]uint32, []uint32) (Counters, error) { return Counters{}, ErrUnsupported }

// Restore returns the zero Restore.
func (p *Program) Restore() Restore { return Restore{} }

// Slots returns ErrUnsupported.
func (p *Program) Slots() ([]SlotRecord, error) { return nil, ErrUnsupported }

// Remove returns ErrUnsupported.
func Remove(string) error { return ErrUnsupported }

// Services returns nil.
func (p *Program) Services() map[ServiceKey]uint32 { return nil }

// MaxBackendSlots returns 0.
func (p *Program) MaxBackendSlots() int { return 0 }

// MaxServices returns 0.
func (p *Program) MaxServices() int { return 0 }
