package health_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/health"
)

// A Monitor checks each (backend, checker) pair once, however many services
// register it, and reports state changes.
func ExampleMonitor() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	backend := health.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(l.Addr().(*net.TCPAddr).Port)}

	events := make(chan health.Event, 1)
	m := health.NewMonitor(&health.MonitorConfig{
		Interval: time.Second,
		Rise:     2,
		Fall:     3,
		OnEvent:  func(e health.Event) { events <- e },
	})
	// Two services share the backend and bring equal checkers: one check.
	k1, _ := m.Add(backend, &health.TCPChecker{})
	k2, _ := m.Add(backend, &health.TCPChecker{})
	fmt.Println("same check:", k1 == k2, "registrations:", len(m.Targets()))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	e := <-events
	fmt.Println("backend up:", e.Up)
	cancel()
	<-done
	// Output:
	// same check: true registrations: 1
	// backend up: true
}

// Any function can be a checker.
func ExampleCheckerFunc() {
	always := health.CheckerFunc(func(ctx context.Context, t health.Target) error { return nil })
	fmt.Println(always.Check(context.Background(), health.Target{}))
	// Output: <nil>
}

func ExampleHTTPChecker() {
	c := &health.HTTPChecker{
		HTTPS:              true,
		Path:               "/healthz",
		Host:               "www.example.com", // Host header and SNI
		StatusMin:          200,
		StatusMax:          299,
		BodyContains:       "ok",
		InsecureSkipVerify: true, // backends with self-signed certificates
	}
	_ = c // m.Add(target, c)
}

// The DSR-path checker runs on the balancer's segment interface and needs
// the backend's MAC and the VIP in the target.
func ExampleNewDSRPathChecker() {
	c, err := health.NewDSRPathChecker(&health.DSRPathConfig{Interface: "eth0"})
	if err != nil {
		return // no such interface, no CAP_NET_RAW, or not Linux
	}
	defer c.Close()
	mac, _ := net.ParseMAC("02:00:00:00:00:21")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = c.Check(ctx, health.Target{
		Addr: netip.MustParseAddr("192.0.2.21"),
		Port: 80,
		VIP:  netip.MustParseAddr("192.0.2.100"),
		MAC:  mac,
	})
	fmt.Println(err == nil)
}

// On a trunk, the DSR-path checker probes a backend of VLAN 10 with tagged
// frames, from a probe source it claims on that VLAN.
func ExampleNewDSRPathChecker_vlan() {
	c, err := health.NewDSRPathChecker(&health.DSRPathConfig{
		Interface:   "trunk0",
		VLANSources: map[uint16][]netip.Addr{10: {netip.MustParseAddr("198.51.100.250")}},
	})
	if err != nil {
		return // no such interface, no CAP_NET_RAW, or not Linux
	}
	defer c.Close()
	mac, _ := net.ParseMAC("02:00:00:00:00:21")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = c.Check(ctx, health.Target{
		Addr: netip.MustParseAddr("198.51.100.21"),
		Port: 80,
		VIP:  netip.MustParseAddr("192.0.2.100"),
		MAC:  mac,
		VLAN: 10,
	})
	fmt.Println(err == nil)
}
