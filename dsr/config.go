package dsr

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/scheduler"
)

// Protocol selects which transport a Service balances. The zero value is
// invalid so that a forgotten field is caught by validation.
type Protocol uint8

const (
	// TCP balances TCP only.
	TCP Protocol = iota + 1
	// UDP balances UDP only.
	UDP
	// TCPAndUDP balances both on the same VIP and port (DNS, QUIC with TCP
	// fallback).
	TCPAndUDP
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case TCPAndUDP:
		return "tcp+udp"
	}
	return fmt.Sprintf("Protocol(%d)", uint8(p))
}

func (p Protocol) valid() bool { return p >= TCP && p <= TCPAndUDP }

// BackendState is a backend's administrative or health state. The zero value
// is BackendActive.
type BackendState uint8

const (
	// BackendActive takes new flows and keeps its established ones.
	BackendActive BackendState = iota
	// BackendDraining takes no new flows but keeps its established ones
	// until they end.
	BackendDraining
	// BackendDown takes nothing: its established flows are rescheduled to
	// other backends on their next packet.
	BackendDown
)

func (s BackendState) String() string {
	switch s {
	case BackendActive:
		return "active"
	case BackendDraining:
		return "draining"
	case BackendDown:
		return "down"
	}
	return fmt.Sprintf("BackendState(%d)", uint8(s))
}

// FragmentPolicy says what to do with IP fragments. A non-first fragment has
// no transport header, so it cannot be matched to a flow by port.
type FragmentPolicy uint8

const (
	// FragmentsDrop drops every fragment and counts it. It is the zero
	// value: the safe default, since fragments of one datagram could
	// otherwise reach different servers.
	FragmentsDrop FragmentPolicy = iota
	// FragmentsHash sends every fragment — first or not — to the backend
	// picked from source address, destination address and protocol only, so
	// all fragments of one datagram reach the same server (which reassembles
	// it). Fragments use no flow-table state; the VIP must have exactly one
	// service for the protocol (or one all-ports service) to pick from.
	// The service's scheduler places them when its picks follow the flow
	// (mh, sh, hrw); for the others (rr, wrr, lc, wlc and plugins), whose
	// picks depend on more than the flow and would scatter a datagram's
	// fragments, a Maglev table over the same weighted backends does.
	FragmentsHash
)

func (f FragmentPolicy) String() string {
	switch f {
	case FragmentsDrop:
		return "drop"
	case FragmentsHash:
		return "hash"
	}
	return fmt.Sprintf("FragmentPolicy(%d)", uint8(f))
}

// ServiceKey identifies a service: a VIP, a protocol, a port (0 for all
// ports) and a VLAN (0 for untagged traffic).
type ServiceKey struct {
	VIP      netip.Addr
	Protocol Protocol
	Port     uint16
	// VLAN is the service's VLAN ID; zero is the untagged (native) VLAN.
	VLAN uint16
}

// String formats the key as "vip:port/proto", with "@vlanN" appended for a
// service on VLAN N.
func (k ServiceKey) String() string {
	var s string
	switch {
	case k.Port != 0:
		s = netip.AddrPortFrom(k.VIP, k.Port).String() + "/" + k.Protocol.String()
	case k.VIP.Is6():
		s = "[" + k.VIP.String() + "]:*/" + k.Protocol.String()
	default:
		s = k.VIP.String() + ":*/" + k.Protocol.String()
	}
	return s + vlanSuffix(k.VLAN)
}

// Service is one balanced service: traffic to VIP with Protocol and Port is
// spread over Backends.
type Service struct {
	// VIP is the service address. It must not be configured on the
	// balancer's own host (the kernel would answer it too).
	VIP netip.Addr
	// Protocol is required.
	Protocol Protocol
	// Port is the destination port; zero balances every port of the VIP
	// for Protocol (a more specific service on the same VIP wins).
	Port uint16
	// Scheduler names a registered scheduler (see package scheduler).
	// Empty means scheduler.Default ("mh", Maglev consistent hashing).
	Scheduler string
	// SchedulerConfig is passed to the scheduler. Its zero value is valid.
	SchedulerConfig scheduler.Config
	// Backends are the real servers. An empty list is valid: the service
	// then drops its traffic (counted as no_backend).
	Backends []Backend
	// Checks are health checks run against every backend; a backend is
	// healthy while all of them pass. An unhealthy backend takes no new
	// flows and its established flows are rescheduled. A backend counts as
	// healthy until Health.Fall consecutive failures (health.MonitorConfig.Fall),
	// from its first check on, and is checked only once its MAC is known.
	// Empty means no checks: backends count as healthy.
	Checks []HealthCheck
	// SlowStart ramps the share of new flows of a backend that joins or
	// recovers from 0 to its weight over this duration, so a cold server is
	// not flooded. Zero means no ramp.
	SlowStart time.Duration
	// DrainTimeout bounds the drain of a backend set to BackendDraining:
	// it is reported drained (EventBackendDrained) when its last flow ended
	// or when this long has passed. Zero means no deadline.
	DrainTimeout time.Duration
	// FailOpen keeps sending new flows to the last healthy set of backends
	// when every backend fails its checks, instead of dropping (useful when
	// a shared dependency of the checks failed, not the servers). Zero
	// (false) drops.
	FailOpen bool
	// MinHealthy raises EventBelowMinHealthy when fewer backends are healthy
	// and active, telling the application to withdraw the VIP. Zero
	// disables it.
	MinHealthy int
	// Mode is how frames reach the backends: ModeL2 rewrites MACs on one
	// segment, ModeIPIP and ModeGUE encapsulate the client's packet to the
	// backend's address (L3 DSR, see encap.go). Zero (ModeDefault) is L2.
	Mode Mode
	// TunnelSource is the outer source address of encapsulated packets:
	// the balancer's own address, of the VIP's family. Required when the
	// service or one of its backends uses an L3 mode; ignored otherwise.
	TunnelSource netip.Addr
	// Gateway is the next hop of encapsulated packets, of the VIP's family,
	// on the balancer's segment. The zero Addr means each backend is on the
	// segment itself and is its own next hop. Either way the next hop's MAC
	// is resolved like an L2 backend's (Config.ARP), unless the backend
	// configures MAC, which then names the next hop's MAC.
	Gateway netip.Addr
	// GUEPort is the UDP destination port of ModeGUE packets. Zero means
	// DefaultGUEPort.
	GUEPort uint16
	// VLAN is the 802.1Q VLAN ID (1..MaxVLAN) of the service on a trunk:
	// only frames tagged with it match, forwarded frames keep their tag,
	// and the backends, their ARP/NDP and their health probes are on that
	// VLAN. Zero is the untagged (native) VLAN: the service matches
	// untagged and priority-tagged (VLAN ID 0) frames only. The same VIP
	// and port may be one service per VLAN. See vlan.go for the details.
	VLAN uint16
}

// Key returns the service's key.
func (s *Service) Key() ServiceKey {
	return ServiceKey{VIP: s.VIP.Unmap(), Protocol: s.Protocol, Port: s.Port, VLAN: s.VLAN}
}

// Backend is a real server of a service. It must hold the VIP on a loopback
// interface and must not answer ARP for it (see package dsr/realserver).
type Backend struct {
	// Addr is the server's own address on the segment. It identifies the
	// backend, and is what hashing schedulers and health checks use.
	Addr netip.Addr
	// MAC is the server's hardware address, the destination of forwarded
	// frames. Nil means "not known yet": the backend takes no new flows
	// until a MAC is set (see Balancer.SetBackendMAC). For a backend in an
	// L3 mode it is the MAC of its next hop (Service.Gateway, or the
	// backend itself on the segment).
	MAC net.HardwareAddr
	// Weight is the backend's relative share of new flows. Zero means 1.
	Weight uint32
	// State is the administrative state; zero is BackendActive.
	State BackendState
	// Mode overrides the service's Mode for this backend. Zero
	// (ModeDefault) means the service's mode.
	Mode Mode
}

// MaxWeight is the largest accepted Backend.Weight.
const MaxWeight = 1 << 16

// Config configures a Balancer. A nil *Config means all defaults.
type Config struct {
	// MaxFlows bounds the flow table. Zero means 1<<18 (262144 flows,
	// about 15 MiB). When the table is full of established flows, new flows
	// are still forwarded, but without affinity state (counted).
	MaxFlows int
	// TCPTimeout is the idle timeout of an established TCP flow. Zero
	// means 15 minutes.
	TCPTimeout time.Duration
	// TCPClosingTimeout is the idle timeout after a FIN or RST was seen.
	// Zero means 10 seconds.
	TCPClosingTimeout time.Duration
	// EmbryonicTimeout is the idle timeout of a flow seen only once (a SYN,
	// or a single datagram); short so that floods of new flows expire
	// quickly. Zero means 30 seconds.
	EmbryonicTimeout time.Duration
	// UDPTimeout is the idle timeout of a UDP flow. Zero means 5 minutes.
	UDPTimeout time.Duration
	// Fragments is the fragment policy; zero is FragmentsDrop.
	Fragments FragmentPolicy
	// Seed perturbs the flow hash. Balancers that must agree on picks (for
	// example several balancers behind ECMP running mh) use the same Seed.
	// Zero is a valid seed.
	Seed uint64
	// Workers is the number of forwarding goroutines expected to call
	// Serve concurrently; statistics keep one counter slot per worker so
	// workers never write the same cache line. Zero means runtime.NumCPU().
	// More concurrent Serve calls than Workers are allowed (they share
	// slots).
	Workers int
	// BatchSize is how many frames Serve reads and writes per call. Zero
	// means 64.
	BatchSize int
	// Logger receives control-plane logs. Nil discards them. The data path
	// never logs per packet: it counts.
	Logger *slog.Logger
	// Clock returns the current time. Nil means time.Now. Tests inject a
	// fake clock to drive flow timeouts.
	Clock func() time.Time
	// Health configures the health monitor that Run runs for the services'
	// Checks. Nil means the monitor's defaults (2 s interval, 1 s timeout,
	// rise 2, fall 3). Its OnEvent is the Balancer's own: subscribe to
	// the Balancer's OnEvent instead.
	Health *health.MonitorConfig
	// OnEvent receives events: backend up/down, drained, below minimum
	// healthy, SYN-retransmit suspicion, resolved MACs, VIP conflicts. It is
	// called from the Balancer's control goroutines without locks held, so
	// it may call the Balancer; it should not block for long. Nil discards
	// events (they are still logged).
	OnEvent func(Event)
	// ARP, when set, owns the VIPs on the segment and resolves backend
	// MACs (an *arp.Speaker: ARP for IPv4, neighbour discovery for IPv6):
	// the Balancer keeps its VIP and backend sets in step with the
	// configuration, runs it from Run and follows its events while Run
	// runs, uses the MACs it resolves for backends configured without one,
	// and reports its conflicts as EventVIPConflict. Nil means something
	// else answers ARP for the VIPs and backends need configured MACs.
	ARP Neighbours
	// SYNRetransmitThreshold is how many SYNs retransmitted on existing
	// flows of one backend in one second raise EventSYNRetransmits (when
	// they are also at least half of its new flows). Zero means 20.
	SYNRetransmitThreshold int
	// MTU is the IP MTU of the interface frames to L3 backends leave by:
	// a packet that exceeds it once encapsulated is answered with a
	// too-big error. Zero means the forwarder's interface MTU when it
	// reports one (PacketForwarder does), else 1500.
	MTU int
	// TooBigRate bounds the ICMP too-big answers of L3 modes, per
	// forwarding worker per second (also the burst). Zero means
	// DefaultTooBigRate; negative sends none (they are still counted).
	TooBigRate int
}

// Sentinel errors. Errors returned by the configuration API wrap one of
// these; use errors.Is.
var (
	// ErrInvalidConfig: the change was rejected whole; the running
	// configuration is unchanged. The error is a *ConfigError naming the
	// field.
	ErrInvalidConfig = errors.New("dsr: invalid configuration")
	// ErrNotFound: the named service or backend does not exist.
	ErrNotFound = errors.New("dsr: not found")
	// ErrExists: a service with that key (or an overlapping one) exists.
	ErrExists = errors.New("dsr: already exists")
)

// ConfigError describes a rejected configuration: Field is a path such as
// "services[2].backends[0].mac".
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("dsr: invalid configuration: %s: %v", e.Field, e.Err)
}

// Unwrap lets errors.Is match ErrInvalidConfig and the underlying cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

func fieldErr(field string, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.MaxFlows == 0 {
		out.MaxFlows = 1 << 18
	}
	if out.MaxFlows < 0 || out.MaxFlows > 1<<26 {
		return out, fieldErr("MaxFlows", "%d out of range 1..%d", out.MaxFlows, 1<<26)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TCPTimeout", &out.TCPTimeout, 15 * time.Minute},
		{"TCPClosingTimeout", &out.TCPClosingTimeout, 10 * time.Second},
		{"EmbryonicTimeout", &out.EmbryonicTimeout, 30 * time.Second},
		{"UDPTimeout", &out.UDPTimeout, 5 * time.Minute},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return out, fieldErr(d.name, "negative duration %v", *d.v)
		}
	}
	if out.Fragments > FragmentsHash {
		return out, fieldErr("Fragments", "unknown policy %d", out.Fragments)
	}
	if out.Workers < 0 || out.Workers > 1024 {
		return out, fieldErr("Workers", "%d out of range 0..1024", out.Workers)
	}
	if out.BatchSize < 0 || out.BatchSize > 1024 {
		return out, fieldErr("BatchSize", "%d out of range 0..1024", out.BatchSize)
	}
	if out.BatchSize == 0 {
		out.BatchSize = 64
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Clock == nil {
		out.Clock = time.Now
	}
	if out.MTU < 0 || out.MTU > 65535 || (out.MTU > 0 && out.MTU < 576) {
		return out, fieldErr("MTU", "%d out of range 576..65535", out.MTU)
	}
	if out.SYNRetransmitThreshold < 0 {
		return out, fieldErr("SYNRetransmitThreshold", "negative: %d", out.SYNRetransmitThreshold)
	}
	if out.SYNRetransmitThreshold == 0 {
		out.SYNRetransmitThreshold = 20
	}
	return out, nil
}

// validateService checks one service in isolation. field is its path prefix.
func validateService(field string, s *Service) error {
	if !s.VIP.IsValid() {
		return fieldErr(field+".vip", "missing or invalid address")
	}
	vip := s.VIP.Unmap()
	if vip.IsUnspecified() || vip.IsMulticast() || vip.IsLoopback() || vip.IsLinkLocalUnicast() {
		return fieldErr(field+".vip", "%s is not a unicast service address", vip)
	}
	if s.VLAN > MaxVLAN {
		return fieldErr(field+".vlan", "%d out of range 0..%d (0: untagged)", s.VLAN, MaxVLAN)
	}
	if !s.Protocol.valid() {
		return fieldErr(field+".protocol", "must be TCP, UDP or TCPAndUDP, got %d", s.Protocol)
	}
	name := s.Scheduler
	if name == "" {
		name = scheduler.Default
	}
	if !scheduler.Registered(name) {
		return fieldErr(field+".scheduler", "%q is not registered (known: %v)", name, scheduler.Names())
	}
	for i, hc := range s.Checks {
		if hc.Checker == nil {
			return fieldErr(fmt.Sprintf("%s.checks[%d]", field, i), "nil checker")
		}
	}
	if s.SlowStart < 0 {
		return fieldErr(field+".slow_start", "negative duration %v", s.SlowStart)
	}
	if s.DrainTimeout < 0 {
		return fieldErr(field+".drain_timeout", "negative duration %v", s.DrainTimeout)
	}
	if s.MinHealthy < 0 {
		return fieldErr(field+".min_healthy", "negative: %d", s.MinHealthy)
	}
	if err := validateL3(field, s); err != nil {
		return err
	}
	seen := make(map[netip.Addr]int, len(s.Backends))
	for i := range s.Backends {
		bf := fmt.Sprintf("%s.backends[%d]", field, i)
		be := &s.Backends[i]
		if !be.Addr.IsValid() {
			return fieldErr(bf+".addr", "missing or invalid address")
		}
		a := be.Addr.Unmap()
		if a.IsUnspecified() || a.IsMulticast() {
			return fieldErr(bf+".addr", "%s is not a unicast address", a)
		}
		if a == vip {
			return fieldErr(bf+".addr", "backend address equals the VIP")
		}
		if j, dup := seen[a]; dup {
			return fieldErr(bf+".addr", "%s duplicates backends[%d]", a, j)
		}
		seen[a] = i
		if be.MAC != nil {
			if len(be.MAC) != 6 {
				return fieldErr(bf+".mac", "%s is not a 6-byte Ethernet address", be.MAC)
			}
			if be.MAC[0]&1 != 0 {
				return fieldErr(bf+".mac", "%s is a multicast address", be.MAC)
			}
			if [6]byte(be.MAC) == ([6]byte{}) {
				return fieldErr(bf+".mac", "all-zero address")
			}
		}
		if be.Weight > MaxWeight {
			return fieldErr(bf+".weight", "%d exceeds %d", be.Weight, MaxWeight)
		}
		if be.State > BackendDown {
			return fieldErr(bf+".state", "unknown state %d", be.State)
		}
	}
	// A check that cannot probe this service's backends would take every
	// backend down once traffic should flow: refuse it now.
	for i, hc := range s.Checks {
		sup := health.SupportOf(hc.Checker)
		port := hc.Port
		if port == 0 {
			port = s.Port
		}
		for j := range s.Backends {
			t := health.Target{Addr: s.Backends[j].Addr.Unmap(), Port: port, VIP: vip, VLAN: s.VLAN}
			if err := sup.Validate(t); err != nil {
				return fieldErr(fmt.Sprintf("%s.checks[%d]", field, i), "backends[%d]: %w", j, err)
			}
		}
	}
	return nil
}

// cloneService deep-copies s so the caller's slices can change freely.
func cloneService(s Service) Service {
	s.VIP = s.VIP.Unmap()
	bs := make([]Backend, len(s.Backends))
	for i, b := range s.Backends {
		b.Addr = b.Addr.Unmap()
		if b.MAC != nil {
			b.MAC = append(net.HardwareAddr(nil), b.MAC...)
		}
		bs[i] = b
	}
	s.Backends = bs
	return s
}

// overlaps reports whether two service keys would claim the same packets.
func overlaps(a, b ServiceKey) bool {
	if a.VIP != b.VIP || a.Port != b.Port || a.VLAN != b.VLAN {
		return false
	}
	return a.Protocol == b.Protocol || a.Protocol == TCPAndUDP || b.Protocol == TCPAndUDP
}
