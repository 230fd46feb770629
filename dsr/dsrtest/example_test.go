package dsrtest_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/dsrlb/dsrlb/dsr"

	"github.com/dsrlb/dsrlb/dsr/dsrtest"
)

// ExampleFabric shows the segment's switching: a unicast frame reaches the
// port that owns its destination MAC, a broadcast every other port.
func ExampleFabric() {
	seg := dsrtest.NewFabric()
	a := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	b := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 2})
	c := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 3})

	frame := func(dst net.HardwareAddr, payload string) []byte {
		f := append(append([]byte{}, dst...), a.HardwareAddr()...)
		return append(append(f, 0x88, 0xb5), payload...)
	}
	_ = a.Send(frame(b.HardwareAddr(), "to b"))
	_ = a.Send(frame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "to all"))

	fmt.Println("b received", len(b.Pending()))
	fmt.Println("c received", len(c.Pending()))
	fmt.Println("a received", len(a.Pending()))
	// Output:
	// b received 2
	// c received 1
	// a received 0
}

// ExamplePort_Recv waits for the next frame a port receives.
func ExamplePort_Recv() {
	seg := dsrtest.NewFabric()
	a := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	b := seg.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 2})
	f := append(append([]byte{}, b.HardwareAddr()...), a.HardwareAddr()...)
	_ = a.Send(append(append(f, 0x88, 0xb5), "hello"...))

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pk, err := b.Recv(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s from %s\n", pk.Data[14:], net.HardwareAddr(pk.Data[6:12]))
	// Output:
	// hello from 02:00:00:00:00:01
}

// ExampleFrame builds the frames a client would send to a VIP, with every
// length and checksum right, to feed a Balancer through a Port.
func ExampleFrame() {
	client := net.HardwareAddr{2, 0, 0, 0, 0, 0x0a}
	lb := net.HardwareAddr{2, 0, 0, 0, 0, 1}

	syn := dsrtest.Frame{
		Dst: lb, Src: client,
		From:  netip.MustParseAddrPort("198.51.100.7:40000"),
		To:    netip.MustParseAddrPort("192.0.2.100:80"),
		Flags: dsrtest.FlagSYN,
	}.Bytes()
	query := dsrtest.Frame{
		Dst: lb, Src: client, VLAN: 100, Protocol: dsr.UDP,
		From:    netip.MustParseAddrPort("[2001:db8::7]:5353"),
		To:      netip.MustParseAddrPort("[2001:db8::100]:53"),
		Payload: []byte("query"),
	}.Bytes()
	fmt.Println("SYN over IPv4:", len(syn), "bytes")
	fmt.Println("tagged UDP over IPv6:", len(query), "bytes")

	_, err := dsrtest.Frame{
		From: netip.MustParseAddrPort("198.51.100.7:40000"),
		To:   netip.MustParseAddrPort("[2001:db8::100]:80"),
	}.Marshal()
	fmt.Println(err)
	// Output:
	// SYN over IPv4: 54 bytes
	// tagged UDP over IPv6: 71 bytes
	// dsrtest: bad frame: From 198.51.100.7 and To 2001:db8::100 are of different address families
}
