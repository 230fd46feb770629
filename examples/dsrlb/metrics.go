package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsrlb/dsrlb/dsr"
)

// collector exports the Balancer's counters on every scrape, straight from
// dsr.Balancer.Stats (which never pauses forwarding).
type collector struct {
	d *daemon

	received, forwarded, drops, malformed, flows, capacity, stateless *prometheus.Desc
	svcPackets, svcBytes, svcFlows, svcRescheduled                    *prometheus.Desc
	bePackets, beBytes, beFlows, beActive, beState, beUp, beResolved  *prometheus.Desc
	healthEvents, arpConflicts, reloads                               *prometheus.Desc
}

func newCollector(d *daemon) *collector {
	svc := []string{"service"}
	be := []string{"service", "backend"}
	return &collector{
		d:              d,
		received:       prometheus.NewDesc("dsrlb_frames_received_total", "Frames handed to the balancer by its forwarders.", nil, nil),
		forwarded:      prometheus.NewDesc("dsrlb_frames_forwarded_total", "Frames forwarded to a backend.", nil, nil),
		drops:          prometheus.NewDesc("dsrlb_drops_total", "Frames not forwarded, by reason.", []string{"reason"}, nil),
		malformed:      prometheus.NewDesc("dsrlb_malformed_total", "Frames that failed to parse, by parser error.", []string{"error"}, nil),
		flows:          prometheus.NewDesc("dsrlb_flows", "Flows in the flow table.", nil, nil),
		capacity:       prometheus.NewDesc("dsrlb_flow_capacity", "Flow table capacity.", nil, nil),
		stateless:      prometheus.NewDesc("dsrlb_stateless_flows_total", "New flows forwarded without state because the flow table was full.", nil, nil),
		svcPackets:     prometheus.NewDesc("dsrlb_service_packets_total", "Packets forwarded for a service.", svc, nil),
		svcBytes:       prometheus.NewDesc("dsrlb_service_bytes_total", "Bytes forwarded for a service.", svc, nil),
		svcFlows:       prometheus.NewDesc("dsrlb_service_flows_total", "Flows created for a service.", svc, nil),
		svcRescheduled: prometheus.NewDesc("dsrlb_service_rescheduled_flows_total", "Flows moved because their backend went down or away.", svc, nil),
		bePackets:      prometheus.NewDesc("dsrlb_backend_packets_total", "Packets forwarded to a backend.", be, nil),
		beBytes:        prometheus.NewDesc("dsrlb_backend_bytes_total", "Bytes forwarded to a backend.", be, nil),
		beFlows:        prometheus.NewDesc("dsrlb_backend_flows_total", "Flows assigned to a backend.", be, nil),
		beActive:       prometheus.NewDesc("dsrlb_backend_active_flows", "Flows of a backend in the flow table.", be, nil),
		beState:        prometheus.NewDesc("dsrlb_backend_state", "Backend state: 1 for the current one.", append(be, "state"), nil),
		beUp:           prometheus.NewDesc("dsrlb_backend_healthy", "1 when the backend's health checks pass (or it has none), 0 when they fail.", be, nil),
		beResolved:     prometheus.NewDesc("dsrlb_backend_resolved", "1 when the backend's MAC address is known (configured or resolved), 0 while it takes no flows for want of one.", be, nil),
		healthEvents:   prometheus.NewDesc("dsrlb_health_events_total", "Health state changes, by result.", []string{"backend", "result"}, nil),
		arpConflicts:   prometheus.NewDesc("dsrlb_arp_conflicts_total", "Other hosts seen claiming a VIP.", []string{"vip"}, nil),
		reloads:        prometheus.NewDesc("dsrlb_config_reloads_total", "Configuration reloads, by result.", []string{"result"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.b.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.received, st.Received)
	counter(c.forwarded, st.Forwarded)
	for _, r := range dsr.DropReasons() {
		counter(c.drops, st.Drops[r], r.String())
	}
	for e, v := range st.Malformed {
		counter(c.malformed, v, e)
	}
	gauge(c.flows, float64(st.Flows))
	gauge(c.capacity, float64(st.FlowCapacity))
	counter(c.stateless, st.Stateless)
	names := c.d.names()
	for _, s := range st.Services {
		name := names[s.Key]
		counter(c.svcPackets, s.Packets, name)
		counter(c.svcBytes, s.Bytes, name)
		counter(c.svcFlows, s.Flows, name)
		counter(c.svcRescheduled, s.Rescheduled, name)
		for _, b := range s.Backends {
			addr := b.Addr.String()
			counter(c.bePackets, b.Packets, name, addr)
			counter(c.beBytes, b.Bytes, name, addr)
			counter(c.beFlows, b.Flows, name, addr)
			gauge(c.beActive, float64(b.ActiveFlows), name, addr)
			for _, state := range []dsr.BackendState{dsr.BackendActive, dsr.BackendDraining, dsr.BackendDown} {
				v := 0.0
				if b.State == state {
					v = 1
				}
				gauge(c.beState, v, name, addr, state.String())
			}
			healthy := 1.0
			if !b.Healthy {
				healthy = 0
			}
			gauge(c.beUp, healthy, name, addr)
			resolved := 0.0
			if b.MAC != nil {
				resolved = 1
			}
			gauge(c.beResolved, resolved, name, addr)
		}
	}
	for k, v := range c.d.healthEventCounts() {
		counter(c.healthEvents, v, k[0], k[1])
	}
	for vip, v := range c.d.conflictCounts() {
		counter(c.arpConflicts, v, vip)
	}
	ok, failed := c.d.reloadCounts()
	counter(c.reloads, ok, "ok")
	counter(c.reloads, failed, "failed")
}
