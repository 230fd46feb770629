package dsr

import (
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/scheduler"
)

// svcState is the control plane's record of one service: its configuration,
// the runtime state that outlives configuration changes, and the scheduler
// last compiled for it.
type svcState struct {
	svc      Service // validated; owned (no caller shares its slices)
	stats    *serviceStats
	backends map[netip.Addr]*beState
	turn     int // see svcEntry.turn; kept for the service's life
	runtime  svcRuntime

	// The scheduler is rebuilt only when its inputs change, so that a change
	// elsewhere keeps stateful schedulers (rr position, lc counts) intact.
	sched      scheduler.Scheduler
	fragSched  scheduler.Scheduler // see svcEntry.frag
	schedName  string
	schedCfg   scheduler.Config
	schedInput []scheduler.Backend
	schedGen   uint64 // the plan generation that built sched
}

// svcRuntime is what the health policy of a service remembers from one plan
// to the next.
type svcRuntime struct {
	belowMin    bool
	failOpen    bool
	lastHealthy map[netip.Addr]bool // the last non-empty healthy, active set
}

// beState is the control plane's record of one backend of one service.
type beState struct {
	id    uint32
	stats *backendStats

	// Runtime state, kept across configuration changes for as long as the
	// backend stays in its service.
	joined      time.Time            // added, or recovered: slow start counts from here
	failing     map[health.Key]error // health checks currently failing
	checks      []health.Key         // registrations in the monitor
	drainSince  time.Time            // when it became draining (zero: not draining)
	drainedSent bool                 // the drained event was sent
	synSeen     uint64               // SYN retransmits at the last control tick
	flowsSeen   uint64               // flows at the last control tick
	suspectAt   time.Time            // last SYN-retransmit suspicion event
}

// healthy reports whether every check of the backend passes (or has no
// result yet).
func (bs *beState) healthy() bool {
	return bs.healthError() == nil
}

// healthError is the reason of a failing check, or nil.
func (bs *beState) healthError() error {
	for _, err := range bs.failing {
		if err != errHealthUnknown {
			return err
		}
	}
	return nil
}

// macOf is the hardware address of a backend on vlan: the configured one,
// else the one address resolution learned on that VLAN, else nil. The
// result is shared, not copied.
func macOf(be *Backend, vlan uint16, resolved map[nbKey]net.HardwareAddr) net.HardwareAddr {
	if be.MAC != nil {
		return be.MAC
	}
	return resolved[nbKey{addr: be.Addr, vlan: vlan}]
}
