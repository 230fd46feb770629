package dsr_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/dsr/dsrtest"
)

// Example runs a Balancer on an in-memory segment: a client's SYN to the VIP
// reaches one of the two servers with only its Ethernet addresses changed.
func Example() {
	seg := dsrtest.NewFabric()
	lb := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	client := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 0x0a})
	web1 := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 0x21})
	web2 := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 0x22})

	b, err := dsr.New(nil)
	if err != nil {
		panic(err)
	}
	err = b.AddService(dsr.Service{
		VIP:      netip.MustParseAddr("192.0.2.100"),
		Protocol: dsr.TCP,
		Port:     80,
		Backends: []dsr.Backend{
			{Addr: netip.MustParseAddr("192.0.2.21"), MAC: web1.HardwareAddr()},
			{Addr: netip.MustParseAddr("192.0.2.22"), MAC: web2.HardwareAddr()},
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go b.Serve(ctx, lb)

	syn := dsrtest.Frame{
		Dst: lb.HardwareAddr(), Src: client.HardwareAddr(),
		From:  netip.MustParseAddrPort("198.51.100.7:40000"),
		To:    netip.MustParseAddrPort("192.0.2.100:80"),
		Flags: dsrtest.FlagSYN,
	}.Bytes()
	_ = client.Send(syn)

	got := make(chan dsrtest.Packet, 2)
	for _, s := range []*dsrtest.Port{web1, web2} {
		go func() {
			if pk, err := s.Recv(ctx); err == nil {
				got <- pk
			}
		}()
	}
	pk := <-got
	fmt.Println("from balancer:", net.HardwareAddr(pk.Data[6:12]))
	fmt.Println("IP packet untouched:", string(pk.Data[14:]) == string(syn[14:]))
	// The service's counters are published before the frame is sent
	// (Stats().Forwarded only after the send returns, so it may lag).
	fmt.Println("packets to the service's backends:", b.Stats().Services[0].Packets)
	// Output:
	// from balancer: 02:00:00:00:00:01
	// IP packet untouched: true
	// packets to the service's backends: 1
}

// ExampleBalancer_SetBackends shows that a bad change is rejected whole with
// the field named, and the running configuration stays.
func ExampleBalancer_SetBackends() {
	b, _ := dsr.New(nil)
	svc := dsr.Service{VIP: netip.MustParseAddr("192.0.2.100"), Protocol: dsr.TCP, Port: 443}
	_ = b.AddService(svc)
	err := b.SetBackends(svc.Key(), []dsr.Backend{
		{Addr: netip.MustParseAddr("192.0.2.21"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x21}},
		{Addr: netip.MustParseAddr("192.0.2.21"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x22}},
	})
	fmt.Println(err)
	fmt.Println("backends still configured:", len(b.Services()[0].Backends))
	// Output:
	// dsr: invalid configuration: services[0].backends[1].addr: 192.0.2.21 duplicates backends[0]
	// backends still configured: 0
}

// ExampleBalancer_Stats reads counters while forwarding runs.
func ExampleBalancer_Stats() {
	b, _ := dsr.New(nil)
	_ = b.AddService(dsr.Service{VIP: netip.MustParseAddr("192.0.2.100"), Protocol: dsr.UDP, Port: 53})
	st := b.Stats()
	for _, s := range st.Services {
		fmt.Println(s.Key, "packets:", s.Packets, "backends:", len(s.Backends))
	}
	fmt.Println("drop reasons:", len(dsr.DropReasons()))
	// Output:
	// 192.0.2.100:53/udp packets: 0 backends: 0
	// drop reasons: 13
}
