package netlab_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"testing"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// A program (or TestMain) that builds labs must let netlab run its child
// roles before doing anything else.
func ExampleRunChildIfRequested() {
	netlab.RunChildIfRequested()
	// ... the program proper: flag parsing, netlab.New, ...
}

// Build a lab and fetch a page from server s1 over the segment. (To reach
// the servers through the VIP, run a balancer in lab.Balancer: see package
// dsr's integration tests.)
func ExampleNew() {
	ctx := context.Background()
	lab, err := netlab.New(ctx, &netlab.Config{Servers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer lab.Close()

	client, s1 := lab.Clients[0], lab.Servers[1]
	hc := client.HTTPClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + netip.AddrPortFrom(s1.IP, 80).String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body)) // s1
}

// Tests use NewT, which skips without root and cleans up after the test.
func ExampleNewT() {
	var t *testing.T // the test's *testing.T
	lab := netlab.NewT(t, &netlab.Config{IPv6: true})
	_ = lab.Balancer // run the balancer in lab.Balancer's namespace
}

// Host.Do runs code inside a host's namespace, for example to open the
// balancer's packet socket there; the socket keeps that namespace.
func ExampleHost_Do() {
	var lab *netlab.Lab // from netlab.New
	err := lab.Balancer.Do(func() error {
		// Sockets created here live in the balancer's namespace.
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Host.Command runs a program inside a host's namespace.
func ExampleHost_Command() {
	var lab *netlab.Lab // from netlab.New
	cmd := lab.Servers[0].Command(context.Background(), "ip", "addr", "show", "dev", "lo")
	cmd.Stdout = os.Stdout
	if err := cmd.Run(); err != nil {
		log.Fatal(err)
	}
}

// Failover tests stop a server's processes and start them again.
func ExampleLab_StopServer() {
	var lab *netlab.Lab // from netlab.New
	if err := lab.StopServer(1); err != nil {
		log.Fatal(err)
	}
	// ... requests to s1 now fail ...
	if err := lab.StartServer(1); err != nil { // returns once s1 listens
		log.Fatal(err)
	}
}
