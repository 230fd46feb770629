package realserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"

	"github.com/dsrlb/dsrlb/dsr/realserver"
)

// Prepare a server for the VIP 192.0.2.100 and keep the record, so that a
// later Undo (possibly in another process) reverts exactly this.
func ExamplePrepare() {
	cfg := &realserver.Config{VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	var st realserver.State
	if err := realserver.Prepare(cfg, &st); err != nil {
		log.Fatal(err) // st still records a partial Prepare: Undo it
	}
	b, _ := json.Marshal(&st)
	if err := os.WriteFile("/run/dsr-state.json", b, 0o600); err != nil {
		log.Fatal(err)
	}
}

// Undo what a recorded Prepare changed.
func ExampleUndo() {
	b, err := os.ReadFile("/run/dsr-state.json")
	if err != nil {
		log.Fatal(err)
	}
	var st realserver.State
	if err := json.Unmarshal(b, &st); err != nil {
		log.Fatal(err)
	}
	if err := realserver.Undo(&st); err != nil {
		log.Fatal(err)
	}
}

// Check a server and print each finding with its fix.
func ExampleCheck() {
	cfg := &realserver.Config{
		VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100")},
		Port: 80,
	}
	r, err := realserver.Check(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range r.Findings {
		fmt.Println(f) // error   vip-missing: ... | fix: ip addr add 192.0.2.100/32 dev lo
	}
	if !r.OK() {
		os.Exit(1)
	}
}

// Check a dual-stack server: the IPv4 VIP gets the ARP checks, the IPv6 VIP
// the neighbour-discovery ones, and each family's owner on the segment is
// probed and compared with the balancer's MAC.
func ExampleCheck_dualStack() {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	cfg := &realserver.Config{
		VIPs:        []netip.Addr{netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8:1::100")},
		Port:        80,
		BalancerMAC: mac,
	}
	r, err := realserver.Check(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range r.Findings {
		fmt.Println(f) // error   proxy-ndp: proxy_ndp is on for eth0 ... | fix: sysctl -w net.ipv6.conf.eth0.proxy_ndp=0
	}
	if !r.OK() {
		os.Exit(1)
	}
}
