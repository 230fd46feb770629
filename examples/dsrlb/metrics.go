package main

import (
	"net/netip"
	"runtime"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/vrrp"
)

// newRegistry returns the registry behind /metrics: the daemon's own
// families plus the Go runtime and process collectors.
func newRegistry(d *daemon) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(d),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// collector exports the Balancer's and the ARP/NDP speaker's counters on
// every scrape, straight from their Stats (which never pause forwarding).
// Every family is present from the start: label sets for the known
// services, backends, VIPs and reasons are exported with zero values, so
// that alerts can be written before anything went wrong.
type collector struct {
	d *daemon

	received, forwarded, drops, malformed, flows, capacity, stateless         *prometheus.Desc
	svcPackets, svcBytes, svcFlows, svcRescheduled, svcHealthy, svcMinHealthy *prometheus.Desc
	bePackets, beBytes, beFlows, beActive, beState, beUp, beResolved, beSYN   *prometheus.Desc
	beWeight                                                                  *prometheus.Desc
	healthEvents, vipConflicts, reloads, reloadOK, reloadTime, buildInfo      *prometheus.Desc
	dataPlane, xdpFrames                                                      *prometheus.Desc
	arpEnabled, arpReceived, arpReplies, arpAnnounce, arpResolve, arpProbes   *prometheus.Desc
	arpConflictPackets, arpSocketErrors, arpDrops                             *prometheus.Desc
	haState, haMaster, haAdverts                                              *prometheus.Desc
	bgpSessionUp, bgpAnnounced                                                *prometheus.Desc
	l3Encapsulated, l3Segmented, l3TooBig                                     *prometheus.Desc
}

func newCollector(d *daemon) *collector {
	svc := []string{"service"}
	be := []string{"service", "backend"}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		d:              d,
		received:       desc("dsrlb_frames_received_total", "Frames handed to the balancer by its forwarders."),
		l3Encapsulated: desc("dsrlb_l3_encapsulated_total", "Frames forwarded encapsulated to L3 (ipip, gue) backends; a GSO super-frame counts once."),
		l3Segmented:    desc("dsrlb_l3_segmented_total", "GSO super-frames cut into encapsulated segments."),
		l3TooBig:       desc("dsrlb_l3_too_big_total", "Packets too big once encapsulated, by outcome (answered with ICMP too-big, rate_limited, unanswered).", "outcome"),
		forwarded:      desc("dsrlb_frames_forwarded_total", "Frames forwarded to a backend."),
		drops:          desc("dsrlb_drops_total", "Frames not forwarded, by reason.", "reason"),
		malformed:      desc("dsrlb_malformed_total", "Frames that failed to parse, by parser error.", "error"),
		flows:          desc("dsrlb_flows", "Flows in the flow table."),
		capacity:       desc("dsrlb_flow_capacity", "Flow table capacity."),
		stateless:      desc("dsrlb_stateless_flows_total", "New flows forwarded without state because the flow table was full."),
		svcPackets:     desc("dsrlb_service_packets_total", "Packets forwarded for a service.", svc...),
		svcBytes:       desc("dsrlb_service_bytes_total", "Bytes forwarded for a service.", svc...),
		svcFlows:       desc("dsrlb_service_flows_total", "Flows created for a service.", svc...),
		svcRescheduled: desc("dsrlb_service_rescheduled_flows_total", "Flows moved because their backend went down or away.", svc...),
		svcHealthy:     desc("dsrlb_service_healthy_backends", "Backends of a service that are active, healthy and resolved.", svc...),
		svcMinHealthy:  desc("dsrlb_service_min_healthy_backends", "The service's min_healthy (0: not set).", svc...),
		bePackets:      desc("dsrlb_backend_packets_total", "Packets forwarded to a backend.", be...),
		beBytes:        desc("dsrlb_backend_bytes_total", "Bytes forwarded to a backend.", be...),
		beFlows:        desc("dsrlb_backend_flows_total", "Flows assigned to a backend.", be...),
		beActive:       desc("dsrlb_backend_active_flows", "Flows of a backend in the flow table.", be...),
		beState:        desc("dsrlb_backend_state", "Backend state: 1 for the current one.", append(be, "state")...),
		beUp:           desc("dsrlb_backend_healthy", "1 when the backend's health checks pass (or it has none), 0 when they fail.", be...),
		beResolved:     desc("dsrlb_backend_resolved", "1 when the backend's MAC address is known (configured or resolved), 0 while it takes no flows for want of one.", be...),
		beSYN:          desc("dsrlb_backend_syn_retransmits_total", "SYNs seen again on flows the backend already holds (clients retrying: a sign of a DSR black hole).", be...),
		beWeight:       desc("dsrlb_backend_weight", "The backend's configured weight.", be...),
		healthEvents:   desc("dsrlb_health_events_total", "Backend health state changes, by service, backend and result.", "service", "backend", "result"),
		vipConflicts:   desc("dsrlb_arp_conflicts_total", "Conflict events: another host seen claiming a VIP (deduplicated per VIP and MAC over the conflict probe interval).", "vip"),
		reloads:        desc("dsrlb_config_reloads_total", "Configuration reloads, by result.", "result"),
		reloadOK:       desc("dsrlb_config_last_reload_successful", "1 when the last reload was applied (or none was tried), 0 when it was rejected."),
		reloadTime:     desc("dsrlb_config_last_reload_timestamp_seconds", "When the configuration was last loaded or reloaded (successfully or not), in Unix seconds."),
		buildInfo:      desc("dsrlb_build_info", "Always 1; the labels say what the daemon was built from.", "version", "revision", "goversion"),
		dataPlane:      desc("dsrlb_dataplane", "1 for the data plane in use (packet sockets, or XDP with packet sockets for what it passes up).", "dataplane"),
		xdpFrames: desc("dsrlb_xdp_frames_total",
			"Frames the XDP program decided: forwarded in the kernel, passed up to the Go path (by reason) or dropped (by reason). Zero with the packet data plane.", "verdict", "reason"),
		arpEnabled:   desc("dsrlb_arp_enabled", "1 when the daemon owns its VIPs by ARP and neighbour discovery, 0 when arp.disabled is set (the counters of dsrlb_arp_* then stay 0)."),
		arpReceived:  desc("dsrlb_arp_received_frames_total", "ARP and neighbour discovery frames read by the speaker."),
		arpReplies:   desc("dsrlb_arp_replies_total", "ARP replies and solicited Neighbor Advertisements sent for VIPs."),
		arpAnnounce:  desc("dsrlb_arp_announcements_total", "Gratuitous ARPs and unsolicited Neighbor Advertisements sent for VIPs."),
		arpResolve:   desc("dsrlb_arp_resolve_requests_total", "ARP requests and Neighbor Solicitations sent to resolve backend MACs."),
		bgpSessionUp: desc("dsrlb_bgp_session_up", "1 while the BGP session with the peer is established (only with a bgp section).", "peer"),
		bgpAnnounced: desc("dsrlb_bgp_announced", "1 while the VIP's host route is announced by BGP, 0 while withdrawn (only with a bgp section).", "vip"),
		arpProbes:    desc("dsrlb_arp_conflict_probes_total", "Requests sent for our own VIPs to find other hosts claiming them."),
		arpConflictPackets: desc("dsrlb_arp_conflict_packets_total",
			"Packets in which another MAC claimed a VIP (every packet; dsrlb_arp_conflicts_total counts deduplicated events)."),
		arpSocketErrors: desc("dsrlb_arp_socket_errors_total", "Failed socket calls of the speaker, by operation.", "op"),
		arpDrops:        desc("dsrlb_arp_drops_total", "ARP and neighbour discovery frames not acted upon, by reason.", "reason"),
		haState:         desc("dsrlb_vrrp_state", "VRRP state of this balancer (ha section): 1 for the current one.", "vrid", "state"),
		haMaster:        desc("dsrlb_vrrp_became_master_total", "Times this balancer became VRRP master.", "vrid"),
		haAdverts:       desc("dsrlb_vrrp_advertisements_total", "VRRP advertisements sent, and valid ones received for our virtual router.", "vrid", "direction"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.b.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	bool01 := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	counter(c.received, st.Received)
	counter(c.forwarded, st.Forwarded)
	for _, r := range dsr.DropReasons() {
		counter(c.drops, st.Drops[r], r.String())
	}
	for _, e := range dsr.MalformedReasons() {
		counter(c.malformed, st.Malformed[e], e)
	}
	gauge(c.flows, float64(st.Flows))
	gauge(c.capacity, float64(st.FlowCapacity))
	counter(c.stateless, st.Stateless)
	counter(c.l3Encapsulated, st.L3.Encapsulated)
	counter(c.l3Segmented, st.L3.Segmented)
	counter(c.l3TooBig, st.L3.TooBigAnswered, "answered")
	counter(c.l3TooBig, st.L3.TooBigLimited, "rate_limited")
	counter(c.l3TooBig, st.L3.TooBigUnanswered, "unanswered")

	v := c.d.view()
	for _, s := range st.Services {
		name := v.name(s.Key)
		conf := v.configured[s.Key]
		counter(c.svcPackets, s.Packets, name)
		counter(c.svcBytes, s.Bytes, name)
		counter(c.svcFlows, s.Flows, name)
		counter(c.svcRescheduled, s.Rescheduled, name)
		gauge(c.svcHealthy, float64(healthyCount(s)), name)
		gauge(c.svcMinHealthy, float64(conf.MinHealthy), name)
		for i, b := range s.Backends {
			addr := b.Addr.String()
			counter(c.bePackets, b.Packets, name, addr)
			counter(c.beBytes, b.Bytes, name, addr)
			counter(c.beFlows, b.Flows, name, addr)
			counter(c.beSYN, b.SYNRetransmits, name, addr)
			gauge(c.beActive, float64(b.ActiveFlows), name, addr)
			for _, state := range []dsr.BackendState{dsr.BackendActive, dsr.BackendDraining, dsr.BackendDown} {
				gauge(c.beState, bool01(b.State == state), name, addr, state.String())
			}
			gauge(c.beUp, bool01(b.Healthy), name, addr)
			gauge(c.beResolved, bool01(b.MAC != nil), name, addr)
			if i < len(conf.Backends) && conf.Backends[i].Addr == b.Addr {
				gauge(c.beWeight, float64(effectiveWeight(conf.Backends[i].Weight)), name, addr)
			}
		}
	}
	for k, n := range v.healthEvents {
		counter(c.healthEvents, n, v.name(k.svc), k.addr.String(), k.result)
	}
	for vip, n := range v.conflictCounts {
		counter(c.vipConflicts, n, vip.String())
	}
	counter(c.reloads, v.reloadOK, "ok")
	counter(c.reloads, v.reloadFailed, "failed")
	gauge(c.reloadOK, bool01(v.lastReload.At.IsZero() || v.lastReload.OK))
	loaded := v.lastReload.At
	if loaded.IsZero() {
		loaded = c.d.started
	}
	gauge(c.reloadTime, float64(loaded.UnixNano())/1e9)
	gauge(c.buildInfo, 1, c.d.version, c.d.revision, runtime.Version())
	for _, p := range []string{"packet", "xdp"} {
		gauge(c.dataPlane, bool01(c.d.plane == p), p)
	}
	xs := st.XDP
	if xs == nil {
		xs = &dsr.XDPStats{}
	}
	counter(c.xdpFrames, xs.Forwarded, "forwarded", "")
	for _, r := range dsr.XDPPassReasons() {
		counter(c.xdpFrames, xs.Passed[r], "passed", r)
	}
	for _, r := range dsr.XDPDropReasons() {
		counter(c.xdpFrames, xs.Dropped[r], "dropped", r)
	}

	var as arp.Stats
	if c.d.speaker != nil {
		as = c.d.speaker.Stats()
	}
	gauge(c.arpEnabled, bool01(c.d.speaker != nil))
	counter(c.arpReceived, as.Received)
	counter(c.arpReplies, as.Replies)
	counter(c.arpAnnounce, as.Announcements)
	counter(c.arpResolve, as.ResolveRequests)
	counter(c.arpProbes, as.ConflictProbes)
	counter(c.arpConflictPackets, as.Conflicts)
	counter(c.arpSocketErrors, as.ReadErrors, "read")
	counter(c.arpSocketErrors, as.WriteErrors, "write")
	for _, r := range arp.DropReasons() {
		counter(c.arpDrops, as.Drops[r], r.String())
	}
	if v.ha.enabled {
		vrid := strconv.Itoa(int(v.ha.vrid))
		for _, s := range []vrrp.State{vrrp.Initialize, vrrp.Backup, vrrp.Master, vrrp.Fault} {
			gauge(c.haState, bool01(v.ha.state == s), vrid, s.String())
		}
		counter(c.haMaster, v.ha.becameMaster, vrid)
		counter(c.haAdverts, v.ha.sent, vrid, "sent")
		counter(c.haAdverts, v.ha.received, vrid, "received")
	}

	if c.d.bgp != nil {
		for _, p := range c.d.bgp.Peers() {
			gauge(c.bgpSessionUp, bool01(p.Up), p.Addr.String())
		}
		announced := map[netip.Addr]bool{}
		for _, p := range c.d.bgp.Announced() {
			announced[p.Addr()] = true
		}
		for _, vip := range c.d.bgpVIPs() {
			gauge(c.bgpAnnounced, bool01(announced[vip]), vip.String())
		}
	}
}

// effectiveWeight is a configured weight as the schedulers use it (zero
// means 1).
func effectiveWeight(w uint32) uint32 {
	if w == 0 {
		return 1
	}
	return w
}

// healthyCount is the number of a service's backends that can take new
// flows: active, healthy and with a known MAC.
func healthyCount(s dsr.ServiceStats) int {
	n := 0
	for _, b := range s.Backends {
		if b.State == dsr.BackendActive && b.Healthy && b.MAC != nil {
			n++
		}
	}
	return n
}
