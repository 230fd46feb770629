package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dsrlb/dsrlb/bgp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/vrrp"
)

// Config is the daemon's configuration file.
type Config struct {
	// Interface is the balancer's interface on the segment. Required.
	Interface string `yaml:"interface"`
	// Listen is the address of the metrics endpoint and status page.
	// Empty means 127.0.0.1:9180; "off" disables it.
	Listen string `yaml:"listen"`
	// Workers is the number of forwarding queues (one packet socket each,
	// one fanout group). Zero means the number of CPUs.
	Workers int `yaml:"workers"`
	// Fragments is "drop" (default) or "hash".
	Fragments string `yaml:"fragments"`
	// DataPlane is "packet" (the default: packet sockets, Go decides every
	// frame), "xdp" (an XDP program on the interface forwards the flows of
	// mh and hrw services in the kernel and passes the rest to a packet
	// socket; start fails if it cannot load) or "auto" (XDP where it
	// loads, else packet sockets; the log says which and why).
	DataPlane string `yaml:"dataplane"`
	// XDPPin is where the XDP data plane pins its maps and links, so that
	// a restart keeps established flows (see docs/RESTART.md): a directory
	// in a mounted BPF filesystem, under which the interface gets its own
	// directory. Empty means /sys/fs/bpf/dsrlb when /sys/fs/bpf is a
	// mounted BPF filesystem, else no pinning (the log says why); "off"
	// means no pinning. A daemon that does not pin (packet data plane,
	// "off", or XDP that did not load) removes the pins a previous run
	// left, which detaches its program.
	XDPPin string `yaml:"xdp_pin"`
	// Seed perturbs flow hashing; balancers that must agree use the same.
	Seed uint64 `yaml:"seed"`
	// DrainTimeout bounds the drain on SIGTERM. Zero means 30s.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// FlowTable sizes the flow table and its idle timeouts.
	FlowTable FlowTableConfig `yaml:"flow_table"`
	// ARP configures how the daemon owns the VIPs on the segment.
	ARP ARPConfig `yaml:"arp"`
	// Health configures the health checker shared by all services.
	Health HealthConfig `yaml:"health"`
	// HA makes this balancer one of an active/standby pair (or group) on
	// the segment with VRRPv3: it owns the VIPs only while it is master.
	// Absent means it always owns them.
	HA *HAConfig `yaml:"ha"`
	// Services are the balanced services.
	Services []ServiceConfig `yaml:"services"`
	// BGP announces the VIPs to routers. Absent (no local_as and no peers)
	// means no BGP.
	BGP BGPConfig `yaml:"bgp"`
}

// BGPConfig configures the embedded BGP speaker (package bgp). A VIP is
// announced while every service on it has at least min_healthy healthy
// backends (at least one), and withdrawn first on SIGTERM.
type BGPConfig struct {
	RouterID string `yaml:"router_id"`
	LocalAS  uint32 `yaml:"local_as"`
	// ListenPort is the TCP port to accept peers on. Zero: connect out only.
	ListenPort uint16 `yaml:"listen_port"`
	// NextHop4/NextHop6 replace the session's own address as next hop.
	NextHop4 string          `yaml:"next_hop4"`
	NextHop6 string          `yaml:"next_hop6"`
	Peers    []BGPPeerConfig `yaml:"peers"`
	// VIPs limits the announced VIPs. Empty: every VIP of the services.
	VIPs []string `yaml:"vips"`
}

// BGPPeerConfig is one BGP neighbour.
type BGPPeerConfig struct {
	Address   string   `yaml:"address"`
	AS        uint32   `yaml:"as"`
	Port      uint16   `yaml:"port"`
	HoldTime  Duration `yaml:"hold_time"`
	Keepalive Duration `yaml:"keepalive"`
	// GracefulRestart makes the router keep the routes for restart_time
	// (default 120s) when the daemon dies or is restarted without SIGTERM.
	GracefulRestart bool     `yaml:"graceful_restart"`
	RestartTime     Duration `yaml:"restart_time"`
	// BFD runs BFD with the neighbour (which must run it too).
	BFD bool `yaml:"bfd"`
}

// configured says whether the file has a bgp section with content.
func (c *BGPConfig) configured() bool {
	return c.LocalAS != 0 || c.RouterID != "" || len(c.Peers) > 0
}

// HAConfig is the VRRPv3 virtual router (package vrrp) the balancer takes
// part in. The advertisements carry the services' IPv4 VIPs; IPv6 VIPs
// follow the IPv4 router's state.
type HAConfig struct {
	// VRID is the virtual router id, 1-255, the same on every balancer of
	// the group. Required.
	VRID int `yaml:"vrid"`
	// Priority is 1-254; the highest becomes master. Zero means 100.
	Priority int `yaml:"priority"`
	// AdvertInterval is the advertisement interval, a multiple of 10ms up
	// to 40.95s. Zero means 1s.
	AdvertInterval Duration `yaml:"advert_interval"`
	// Preempt lets a higher-priority balancer take over from a running
	// master. Absent means true (the RFC's default).
	Preempt *bool `yaml:"preempt"`
	// PreemptDelay makes a higher-priority balancer wait this long before
	// it preempts. Zero means at once.
	PreemptDelay Duration `yaml:"preempt_delay"`
}

// FlowTableConfig mirrors the flow-table fields of dsr.Config; zero values
// take dsr's defaults.
type FlowTableConfig struct {
	MaxFlows          int      `yaml:"max_flows"`
	TCPTimeout        Duration `yaml:"tcp_timeout"`
	TCPClosingTimeout Duration `yaml:"tcp_closing_timeout"`
	EmbryonicTimeout  Duration `yaml:"embryonic_timeout"`
	UDPTimeout        Duration `yaml:"udp_timeout"`
}

// ARPConfig configures VIP ownership (package arp). Zero values take the
// package defaults.
type ARPConfig struct {
	// Disabled leaves ARP for the VIPs to something else (and then every
	// backend needs a configured mac). False means the daemon answers ARP
	// for its IPv4 VIPs, announces them and resolves backend MACs.
	Disabled              bool     `yaml:"disabled"`
	AnnounceInterval      Duration `yaml:"announce_interval"`
	ResolveInterval       Duration `yaml:"resolve_interval"`
	ConflictProbeInterval Duration `yaml:"conflict_probe_interval"`
}

// HealthConfig configures the health monitor. Zero values take the package
// defaults (2s interval, 1s timeout, rise 2, fall 3).
type HealthConfig struct {
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Rise     int      `yaml:"rise"`
	Fall     int      `yaml:"fall"`
	// VLANSources are the dsr checks' probe source addresses on VLANs:
	// the balancer has no address there, so the check claims these. A
	// service on a VLAN with a dsr check needs one of its VIP's family.
	VLANSources []VLANSourceConfig `yaml:"vlan_sources"`
}

// VLANSourceConfig gives the dsr check's probe sources on one VLAN: at most
// one IPv4 and one IPv6 address, each an unused address of the backends'
// subnet on that VLAN.
type VLANSourceConfig struct {
	VLAN  uint16   `yaml:"vlan"`
	Addrs []string `yaml:"addrs"`
}

// CheckConfig is one health check of a service's backends.
type CheckConfig struct {
	// Type is tcp, http, https, udp, dns, icmp or dsr (the DSR-path check:
	// a SYN to VIP:port sent to the backend's MAC must draw a SYN-ACK from
	// the VIP).
	Type string `yaml:"type"`
	// Port is the probed port. Zero means the service's port.
	Port uint16 `yaml:"port"`
	// HTTP(S): method, path, Host header, accepted status range ("200-399"),
	// a substring the body must contain, certificate verification off.
	Method   string `yaml:"method"`
	Path     string `yaml:"path"`
	Host     string `yaml:"host"`
	Status   string `yaml:"status"`
	Body     string `yaml:"body"`
	Insecure bool   `yaml:"insecure"`
	// UDP: the datagram to send and a substring the reply must contain.
	Payload string `yaml:"payload"`
	Expect  string `yaml:"expect"`
	// DNS: the name to query.
	Name string `yaml:"name"`
}

// ServiceConfig is one service.
type ServiceConfig struct {
	// Name labels the service in logs, metrics and the status page.
	// Empty means the service key (vip:port/protocol).
	Name     string `yaml:"name"`
	VIP      string `yaml:"vip"`
	Protocol string `yaml:"protocol"` // tcp, udp, tcp+udp
	Port     uint16 `yaml:"port"`     // 0: all ports
	// VLAN is the 802.1Q VLAN ID (1-4094) of the service when the
	// interface is a trunk: only frames tagged with it match, and its
	// backends, their ARP/NDP and their health probes are on that VLAN.
	// Zero (absent) means untagged. The same vip and port may be one
	// service per VLAN.
	VLAN      uint16          `yaml:"vlan"`
	Scheduler string          `yaml:"scheduler"`
	Backends  []BackendConfig `yaml:"backends"`
	// Checks are run against every backend; see CheckConfig.
	Checks []CheckConfig `yaml:"checks"`
	// SlowStart ramps a joining or recovering backend's share up over this
	// long. Zero: no ramp.
	SlowStart Duration `yaml:"slow_start"`
	// DrainTimeout bounds a draining backend's drain. Zero: no deadline.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// FailOpen keeps the last healthy set when every backend fails.
	FailOpen bool `yaml:"fail_open"`
	// MinHealthy logs and counts an event when fewer backends are healthy.
	MinHealthy int `yaml:"min_healthy"`
	// Mode is l2 (default), ipip or gue: L3 DSR encapsulates to the
	// backends' addresses (see l3.go).
	Mode string `yaml:"mode"`
	// GUEPort is the UDP port of gue mode. Zero: 6080.
	GUEPort uint16 `yaml:"gue_port"`
	// Gateway is the next hop toward L3 backends. Empty: the backends are
	// on the segment.
	Gateway string `yaml:"gateway"`
	// Source is the outer source address of L3 modes. Empty: the
	// interface's first global address of the VIP's family.
	Source string `yaml:"source"`
}

// BackendConfig is one real server.
type BackendConfig struct {
	Addr   string `yaml:"addr"`
	MAC    string `yaml:"mac"`
	Weight uint32 `yaml:"weight"`
	State  string `yaml:"state"` // active (default), draining, down
	Mode   string `yaml:"mode"`  // empty: the service's; l2, ipip or gue
}

// Duration is a time.Duration written as "1m30s" in YAML.
type Duration time.Duration

// parseDuration parses a Go duration ("10s", "1m30s"), with messages that
// say how to write one.
func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("%q has no unit: write it like %ss or %sms", s, s, s)
		}
		return 0, fmt.Errorf("%q is not a duration (write it like 10s, 500ms or 1m30s)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Duration(v), nil
}

// Loaded is a parsed and validated configuration, ready for the Balancer.
type Loaded struct {
	// Path is the file's name, as used in errors.
	Path     string
	File     *Config
	Balancer dsr.Config
	// Services have no Checks yet: the daemon builds them from File (the
	// DSR-path checker needs a socket).
	Services []dsr.Service
	Names    map[dsr.ServiceKey]string
	// VLANSources are health.vlan_sources, parsed: the DSR-path
	// checker's probe sources per VLAN.
	VLANSources map[uint16][]netip.Addr
	// BGP is the speaker's configuration, nil without a bgp section;
	// BGPVIPs the VIPs it may announce (nil: all).
	BGP     *bgp.Config
	BGPVIPs map[netip.Addr]bool

	root *yaml.Node // the parsed document, to find the line of a field
}

// LoadConfig reads, parses and validates the file at path. Every error
// is a *ConfigError naming the file, the line and the field.
func LoadConfig(path string) (*Loaded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// offlineDSRChecker stands in for the daemon's DSR-path checker while a
// file is only validated (-check, and before a reload opens anything): the
// library asks it only what it supports (health.SupportOf), which does not
// need its socket.
var offlineDSRChecker health.Checker = (*health.DSRPathChecker)(nil)

// ParseConfig parses and validates a configuration; name is used in errors.
// Errors are *ConfigError values.
func ParseConfig(name string, data []byte) (*Loaded, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(name, data, err)
	}
	if len(root.Content) == 0 {
		return nil, &ConfigError{File: name, Err: errors.New("empty configuration")}
	}
	var cfg Config
	dec := decoder{file: name}
	if err := dec.decode(root.Content[0], reflect.ValueOf(&cfg).Elem(), ""); err != nil {
		return nil, err
	}
	out := &Loaded{Path: name, File: &cfg, Names: map[dsr.ServiceKey]string{}, root: &root}
	fail := func(field string, format string, args ...any) error {
		return out.errorAt(field, fmt.Errorf(format, args...))
	}
	if cfg.Interface == "" {
		return nil, fail("interface", "required: the balancer's interface on the segment, like eth0")
	}
	if cfg.Workers < 0 || cfg.Workers > 256 {
		return nil, fail("workers", "%d out of range 0..256", cfg.Workers)
	}
	switch cfg.Listen {
	case "", "off":
	default:
		if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
			return nil, fail("listen", "%q: want host:port (like 127.0.0.1:9180) or off", cfg.Listen)
		}
	}
	bc := dsr.Config{
		MaxFlows:          cfg.FlowTable.MaxFlows,
		TCPTimeout:        time.Duration(cfg.FlowTable.TCPTimeout),
		TCPClosingTimeout: time.Duration(cfg.FlowTable.TCPClosingTimeout),
		EmbryonicTimeout:  time.Duration(cfg.FlowTable.EmbryonicTimeout),
		UDPTimeout:        time.Duration(cfg.FlowTable.UDPTimeout),
		Seed:              cfg.Seed,
		Workers:           cfg.Workers,
	}
	switch cfg.DataPlane {
	case "", "packet", "xdp", "auto":
	default:
		return nil, out.errorAt("dataplane", oneOf(cfg.DataPlane, "packet", "xdp", "auto"))
	}
	if cfg.XDPPin != "" && cfg.XDPPin != "off" && !filepath.IsAbs(cfg.XDPPin) {
		return nil, fail("xdp_pin", "%q: want an absolute directory in a BPF filesystem (like /sys/fs/bpf/dsrlb), or off", cfg.XDPPin)
	}
	switch cfg.Fragments {
	case "", "drop":
		bc.Fragments = dsr.FragmentsDrop
	case "hash":
		bc.Fragments = dsr.FragmentsHash
	default:
		return nil, out.errorAt("fragments", oneOf(cfg.Fragments, "drop", "hash"))
	}
	if cfg.FlowTable.MaxFlows < 0 || cfg.FlowTable.MaxFlows > 1<<26 {
		return nil, fail("flow_table.max_flows", "%d out of range 0..%d", cfg.FlowTable.MaxFlows, 1<<26)
	}
	if cfg.Health.Rise < 0 {
		return nil, fail("health.rise", "%d is negative", cfg.Health.Rise)
	}
	if cfg.Health.Fall < 0 {
		return nil, fail("health.fall", "%d is negative", cfg.Health.Fall)
	}
	if err := out.parseVLANSources(); err != nil {
		return nil, err
	}
	out.Balancer = bc
	if err := out.checkHA(); err != nil {
		return nil, err
	}

	var checked []dsr.Service // with stand-in checks, for validation only
	for i, sc := range cfg.Services {
		f := fmt.Sprintf("services[%d]", i)
		svc := dsr.Service{Port: sc.Port, Scheduler: sc.Scheduler, SlowStart: time.Duration(sc.SlowStart),
			DrainTimeout: time.Duration(sc.DrainTimeout), FailOpen: sc.FailOpen, MinHealthy: sc.MinHealthy, VLAN: sc.VLAN}
		vip, err := netip.ParseAddr(sc.VIP)
		if err != nil {
			if sc.VIP == "" {
				return nil, fail(f+".vip", "required: the service address")
			}
			return nil, fail(f+".vip", "%q is not an IP address", sc.VIP)
		}
		svc.VIP = vip.Unmap()
		if err := parseL3(&sc, &svc, f, fail); err != nil {
			return nil, err
		}
		switch strings.ToLower(sc.Protocol) {
		case "tcp":
			svc.Protocol = dsr.TCP
		case "udp":
			svc.Protocol = dsr.UDP
		case "tcp+udp", "both":
			svc.Protocol = dsr.TCPAndUDP
		default:
			if sc.Protocol == "" {
				return nil, fail(f+".protocol", "required: tcp, udp or tcp+udp")
			}
			return nil, out.errorAt(f+".protocol", oneOf(sc.Protocol, "tcp", "udp", "tcp+udp"))
		}
		for j, bcfg := range sc.Backends {
			bf := fmt.Sprintf("%s.backends[%d]", f, j)
			addr, err := netip.ParseAddr(bcfg.Addr)
			if err != nil {
				if bcfg.Addr == "" {
					return nil, fail(bf+".addr", "required: the backend's address on the segment")
				}
				return nil, fail(bf+".addr", "%q is not an IP address", bcfg.Addr)
			}
			be := dsr.Backend{Addr: addr.Unmap(), Weight: bcfg.Weight}
			if bcfg.MAC != "" {
				mac, err := net.ParseMAC(bcfg.MAC)
				if err != nil {
					return nil, fail(bf+".mac", "%q is not a MAC address (like 02:00:00:00:00:21)", bcfg.MAC)
				}
				be.MAC = mac
			}
			if err := parseBackendMode(bcfg.Mode, &be, bf, fail); err != nil {
				return nil, err
			}
			switch bcfg.State {
			case "", "active":
			case "draining":
				be.State = dsr.BackendDraining
			case "down":
				be.State = dsr.BackendDown
			default:
				return nil, out.errorAt(bf+".state", oneOf(bcfg.State, "active", "draining", "down"))
			}
			svc.Backends = append(svc.Backends, be)
		}
		withChecks := svc
		withChecks.Checks = nil
		if needsSource(&svc) {
			withChecks.TunnelSource = placeholderSource(svc.VIP) // the daemon uses the interface's
		}
		for j, cc := range sc.Checks {
			c, err := buildChecker(cc, offlineDSRChecker)
			if err != nil {
				return nil, out.within(fmt.Sprintf("%s.checks[%d]", f, j), err)
			}
			if err := out.checkVLANSource(fmt.Sprintf("%s.checks[%d]", f, j), cc, svc); err != nil {
				return nil, err
			}
			withChecks.Checks = append(withChecks.Checks, dsr.HealthCheck{Checker: c, Port: cc.Port})
		}
		checked = append(checked, withChecks)
		name := sc.Name
		if name == "" {
			name = svc.Key().String()
		}
		if _, sameKey := out.Names[svc.Key()]; !sameKey { // else an overlap, reported below
			if err := out.uniqueName(f, name); err != nil {
				return nil, err
			}
		}
		out.Names[svc.Key()] = name
		out.Services = append(out.Services, svc)
	}
	if err := dsr.ValidateServices(checked); err != nil {
		return nil, out.locate(err)
	}
	if err := out.checkVLANsWithHA(); err != nil {
		return nil, err
	}
	if cfg.HA != nil && len(out.HAVIPs()) == 0 {
		return nil, fail("ha", "needs at least one service with an IPv4 VIP: VRRP advertises IPv4 addresses only")
	}
	if err := out.parseBGP(&cfg.BGP); err != nil {
		return nil, err
	}
	return out, nil
}

// checkHA validates the ha section, if any.
func (l *Loaded) checkHA() error {
	ha := l.File.HA
	if ha == nil {
		return nil
	}
	fail := func(field string, format string, args ...any) error {
		return l.errorAt(field, fmt.Errorf(format, args...))
	}
	if ha.VRID < 1 || ha.VRID > 255 {
		if ha.VRID == 0 {
			return fail("ha.vrid", "required: the virtual router id, 1-255, the same on every balancer of the group")
		}
		return fail("ha.vrid", "%d out of range 1..255", ha.VRID)
	}
	if ha.Priority < 0 || ha.Priority > 254 {
		return fail("ha.priority", "%d out of range 1..254 (255 is for the owner of the address, which a balancer never is)", ha.Priority)
	}
	if iv := time.Duration(ha.AdvertInterval); iv != 0 && (iv < vrrp.MinInterval || iv > vrrp.MaxInterval || iv%(10*time.Millisecond) != 0) {
		return fail("ha.advert_interval", "%v: want a multiple of 10ms from %v to %v", iv, vrrp.MinInterval, vrrp.MaxInterval)
	}
	if ha.PreemptDelay != 0 && ha.Preempt != nil && !*ha.Preempt {
		return fail("ha.preempt_delay", "has no effect with preempt: false")
	}
	if l.File.ARP.Disabled {
		return fail("ha", "needs the ARP speaker (arp.disabled: false): the VIPs move by ARP between the balancers")
	}
	return nil
}

// HAVIPs returns the IPv4 VIPs the ha section's advertisements carry:
// every service's, once each, sorted.
func (l *Loaded) HAVIPs() []netip.Addr {
	var out []netip.Addr
	for _, s := range l.Services {
		if s.VIP.Is4() && !slices.Contains(out, s.VIP) {
			out = append(out, s.VIP)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// VRRPConfig returns the vrrp.Config of the ha section (nil without one),
// with OnEvent and Logger left for the daemon to set.
func (l *Loaded) VRRPConfig() *vrrp.Config {
	ha := l.File.HA
	if ha == nil {
		return nil
	}
	return &vrrp.Config{
		Interface:    l.File.Interface,
		VRID:         uint8(ha.VRID),
		Priority:     uint8(ha.Priority),
		Interval:     time.Duration(ha.AdvertInterval),
		NoPreempt:    ha.Preempt != nil && !*ha.Preempt,
		PreemptDelay: time.Duration(ha.PreemptDelay),
		VIPs:         l.HAVIPs(),
	}
}

// parseBGP validates the bgp section into l.BGP.
func (l *Loaded) parseBGP(c *BGPConfig) error {
	if !c.configured() {
		return nil
	}
	addr := func(field, s string, required bool) (netip.Addr, error) {
		if s == "" {
			if required {
				return netip.Addr{}, l.errorAt(field, errors.New("required"))
			}
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, l.errorAt(field, fmt.Errorf("%q is not an IP address", s))
		}
		return a.Unmap(), nil
	}
	bc := &bgp.Config{LocalAS: c.LocalAS, ListenPort: c.ListenPort}
	var err error
	if bc.RouterID, err = addr("bgp.router_id", c.RouterID, true); err != nil {
		return err
	}
	if bc.NextHop4, err = addr("bgp.next_hop4", c.NextHop4, false); err != nil {
		return err
	}
	if bc.NextHop6, err = addr("bgp.next_hop6", c.NextHop6, false); err != nil {
		return err
	}
	for i, pc := range c.Peers {
		f := fmt.Sprintf("bgp.peers[%d]", i)
		p := bgp.Peer{AS: pc.AS, Port: pc.Port, HoldTime: time.Duration(pc.HoldTime), Keepalive: time.Duration(pc.Keepalive)}
		if p.Addr, err = addr(f+".address", pc.Address, true); err != nil {
			return err
		}
		if pc.GracefulRestart {
			p.GracefulRestart = &bgp.GracefulRestart{RestartTime: time.Duration(pc.RestartTime)}
		} else if pc.RestartTime != 0 {
			return l.errorAt(f+".restart_time", errors.New("set, but graceful_restart is false"))
		}
		if pc.BFD {
			p.BFD = &bgp.BFD{}
		}
		bc.Peers = append(bc.Peers, p)
	}
	if _, err := bgp.New(bc); err != nil {
		var ce *bgp.ConfigError
		if errors.As(err, &ce) {
			field := strings.Replace(ce.Field, "graceful_restart.restart_time", "restart_time", 1)
			return l.errorAt("bgp."+field, bgpLibError{ce})
		}
		return l.errorAt("bgp", err)
	}
	vipsOfServices := map[netip.Addr]bool{}
	for _, s := range l.Services {
		vipsOfServices[s.VIP] = true
	}
	for i, s := range c.VIPs {
		f := fmt.Sprintf("bgp.vips[%d]", i)
		a, err := addr(f, s, true)
		if err != nil {
			return err
		}
		if !vipsOfServices[a] {
			return l.errorAt(f, fmt.Errorf("%s is not the VIP of any service", a))
		}
		if l.BGPVIPs == nil {
			l.BGPVIPs = map[netip.Addr]bool{}
		}
		l.BGPVIPs[a] = true
	}
	l.BGP = bc
	return nil
}

// libError reads as the library's message without its field (the
// ConfigError around it names the field in the file's terms) and keeps the
// library's error chain (dsr.ErrInvalidConfig, health.ErrUnsupportedTarget).
type libError struct{ ce *dsr.ConfigError }

func (e libError) Error() string { return e.ce.Err.Error() }
func (e libError) Unwrap() error { return e.ce }

// bgpLibError reads as package bgp's message without its field and keeps
// its chain (bgp.ErrConfig).
type bgpLibError struct{ ce *bgp.ConfigError }

func (e bgpLibError) Error() string { return e.ce.Err.Error() }
func (e bgpLibError) Unwrap() error { return e.ce }

// balancerFields names the file's fields for the dsr.Config fields that
// dsr.New validates.
var balancerFields = map[string]string{
	"MaxFlows":          "flow_table.max_flows",
	"TCPTimeout":        "flow_table.tcp_timeout",
	"TCPClosingTimeout": "flow_table.tcp_closing_timeout",
	"EmbryonicTimeout":  "flow_table.embryonic_timeout",
	"UDPTimeout":        "flow_table.udp_timeout",
	"Fragments":         "fragments",
	"Workers":           "workers",
}

// errorAt returns a *ConfigError for field, at its line in the file.
func (l *Loaded) errorAt(field string, err error) *ConfigError {
	return &ConfigError{File: l.Path, Line: lineOf(l.root, field), Field: field, Err: err}
}

// within places err at field, or at a field below it when err is a
// *ConfigError naming one relative to field.
func (l *Loaded) within(field string, err error) *ConfigError {
	var rel *ConfigError
	if errors.As(err, &rel) && rel.File == "" && rel.Field != "" {
		return l.errorAt(field+"."+rel.Field, rel.Err)
	}
	return l.errorAt(field, err)
}

// locate turns an error of the dsr library that names a field of the
// configuration (a *dsr.ConfigError, "services[i]...") into a *ConfigError
// at that field's line; other errors get the file name.
func (l *Loaded) locate(err error) error {
	var ce *dsr.ConfigError
	if errors.As(err, &ce) {
		if strings.HasPrefix(ce.Field, "services[") {
			return l.errorAt(ce.Field, libError{ce})
		}
		if f, ok := balancerFields[ce.Field]; ok {
			return l.errorAt(f, libError{ce})
		}
	}
	var own *ConfigError
	if errors.As(err, &own) {
		return err
	}
	return &ConfigError{File: l.Path, Err: err}
}

// lineOf finds the line of a field path such as "services[1].backends[0].mac"
// in a YAML document, falling back to the nearest existing parent (or 1).
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if k, rest, ok := strings.Cut(part, "["); ok {
			key = k
			if i, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil {
				idx = i
			}
		}
		next := mapValue(n, key)
		if next == nil {
			return line
		}
		n, line = next, keyLine(n, key)
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func keyLine(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// buildChecker turns a check configuration into a Checker. dsrPath is the
// daemon's DSR-path checker (offlineDSRChecker while validating a file).
// Errors about one of the check's fields are *ConfigError values naming it
// relative to the check.
func buildChecker(c CheckConfig, dsrPath health.Checker) (health.Checker, error) {
	switch c.Type {
	case "tcp":
		return &health.TCPChecker{}, nil
	case "http", "https":
		h := &health.HTTPChecker{HTTPS: c.Type == "https", Method: c.Method, Path: c.Path, Host: c.Host,
			BodyContains: c.Body, InsecureSkipVerify: c.Insecure}
		if c.Status != "" {
			lo, hi, ok := strings.Cut(c.Status, "-")
			if !ok {
				hi = lo
			}
			var err1, err2 error
			h.StatusMin, err1 = strconv.Atoi(lo)
			h.StatusMax, err2 = strconv.Atoi(hi)
			if err1 != nil || err2 != nil || h.StatusMin < 100 || h.StatusMax > 599 || h.StatusMin > h.StatusMax {
				return nil, &ConfigError{Field: "status", Err: fmt.Errorf("%q: want a code or a range like 200-399", c.Status)}
			}
		}
		return h, nil
	case "udp":
		return &health.UDPChecker{Payload: []byte(c.Payload), Expect: []byte(c.Expect)}, nil
	case "dns":
		return &health.DNSChecker{Name: c.Name}, nil
	case "icmp":
		return &health.ICMPChecker{}, nil
	case "dsr":
		return dsrPath, nil
	}
	if c.Type == "" {
		return nil, &ConfigError{Field: "type", Err: errors.New("required: tcp, http, https, udp, dns, icmp or dsr")}
	}
	return nil, &ConfigError{Field: "type", Err: oneOf(c.Type, "tcp", "http", "https", "udp", "dns", "icmp", "dsr")}
}
