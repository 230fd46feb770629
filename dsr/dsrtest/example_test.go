package dsrtest_test

import (
	"context"
	"fmt"
	"net"
	"time"

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
