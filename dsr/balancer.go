package dsr

import (
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/flowtable"
)

// Balancer is an L2 DSR load balancer: it reads frames addressed to its VIPs
// from one or more Forwarders, picks a backend per flow, rewrites only the
// Ethernet addresses and sends the frame back out. The IP packet is never
// touched, so the backend answers the client directly.
//
// Configuration methods (AddService, SetBackends, …) may be called at any
// time from any goroutine; each change is validated whole and applied
// atomically. Serve runs one forwarding worker; Run runs the control loops.
type Balancer struct {
	cfg   Config
	log   *slog.Logger
	flows *flowtable.Table
	epoch time.Time

	snap atomic.Pointer[snapshot]

	workers     []workerCounters
	nextWorker  atomic.Uint32
	liveWorkers atomic.Int32

	mu       sync.Mutex // serialises configuration changes
	services map[ServiceKey]*svcState
	order    []ServiceKey
	slotGen  []uint16
	free     []uint32

	turnsUsed int   // turn indices handed out (see allocTurn)
	freeTurns []int // turn indices of removed services, for reuse

	fwdMu        sync.Mutex
	forwarders   map[Forwarder]struct{}
	dataPlanes   []dataPlane      // forwarders that decide in the kernel (XDP)
	ftCfg        flowtable.Config // the flow table's timeouts, which data planes share
	filteredVIPs []netip.Addr     // the VIP set the forwarders' filters hold

	// Runtime state, guarded by mu.
	resolved     map[nbKey]net.HardwareAddr // MACs learned by address resolution, per VLAN
	monitor      *health.Monitor
	orphanChecks []health.Key // registrations of removed backends, to remove
	pending      []Event      // events to deliver once mu is released
	ramping      bool         // a backend is in slow start: recompile periodically
	gen          uint64       // the generation of the live plan
	synThreshold int
}

// New returns a Balancer with no services. cfg may be nil.
func New(cfg *Config) (*Balancer, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	var b *Balancer // for OnEvict, which the table calls only once b is set
	ftCfg := flowtable.Config{
		// Flows Insert gives up to make room, or replaces because they
		// expired before the sweep removed them (a client reusing its
		// ports soon after a close does that all the time), end like
		// swept ones: without this their backends would count them as
		// active for ever, and a draining backend would never drain.
		OnEvict:             func(_ flowtable.Key, id uint32) { b.flowEnded(b.snap.Load(), id) },
		MaxFlows:            c.MaxFlows,
		TCPTimeout:          c.TCPTimeout,
		TCPEmbryonicTimeout: c.EmbryonicTimeout,
		TCPClosingTimeout:   c.TCPClosingTimeout,
		UDPTimeout:          c.UDPTimeout,
		UDPEmbryonicTimeout: c.EmbryonicTimeout,
		OtherTimeout:        c.UDPTimeout,
	}
	ft, err := flowtable.New(&ftCfg)
	if err != nil {
		return nil, &ConfigError{Field: "flow table", Err: err}
	}
	ftCfg.OnEvict = nil // data planes read only the timeouts
	b = &Balancer{
		ftCfg:        ftCfg,
		cfg:          c,
		log:          c.Logger,
		flows:        ft,
		epoch:        c.Clock(),
		workers:      make([]workerCounters, c.Workers),
		services:     map[ServiceKey]*svcState{},
		forwarders:   map[Forwarder]struct{}{},
		resolved:     map[nbKey]net.HardwareAddr{},
		synThreshold: c.SYNRetransmitThreshold,
	}
	var hc health.MonitorConfig
	if c.Health != nil {
		hc = *c.Health
	}
	if hc.Logger == nil {
		hc.Logger = c.Logger
	}
	hc.OnEvent = b.onHealthEvent
	b.monitor = health.NewMonitor(&hc)
	b.snap.Store(&snapshot{
		services: map[svcLookup]*svcEntry{},
		frag:     map[fragLookup]*svcEntry{},
		vips:     map[[16]byte]struct{}{},
	})
	return b, nil
}

func (b *Balancer) now() flowtable.Tick {
	return flowtable.TickOf(b.cfg.Clock().Sub(b.epoch))
}
