package sysctl_test

import (
	"fmt"

	"github.com/dsrlb/dsrlb/internal/sysctl"
)

// A VLAN interface eth0.100 is one directory of /proc/sys; sysctl(8) writes
// its dot as a slash.
func ExampleConf() {
	k, err := sysctl.Conf(sysctl.IPv4, "eth0.100", "rp_filter")
	if err != nil {
		panic(err)
	}
	fmt.Println(k)
	fmt.Println(k.Path())
	// Output:
	// net.ipv4.conf.eth0/100.rp_filter
	// /proc/sys/net/ipv4/conf/eth0.100/rp_filter
}

// Both notations of sysctl(8) name the same key.
func ExampleParse() {
	a := sysctl.MustParse("net.ipv6.conf.eth0/100.proxy_ndp")
	b := sysctl.MustParse("net/ipv6/conf/eth0.100/proxy_ndp")
	fmt.Println(a == b, a)
	// Output: true net.ipv6.conf.eth0/100.proxy_ndp
}
