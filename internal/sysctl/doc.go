// Package sysctl reads and writes kernel parameters under /proc/sys.
//
// A parameter is named by a Key, built from its components (for example
// net, ipv4, conf, eth0.100, rp_filter). Components are kept apart so that a
// component containing a dot, as an interface name may (a VLAN interface
// eth0.100), maps to the right directory: /proc/sys/net/ipv4/conf/eth0.100.
// Keys also parse from and print as sysctl(8) notation, where dots separate
// components and a dot inside a component is written as a slash
// (net.ipv4.conf.eth0/100.rp_filter), and parse from the slash notation that
// sysctl(8) also accepts (net/ipv4/conf/eth0.100/rp_filter).
//
// Read and Write act on the network namespace of the calling OS thread:
// /proc/sys/net resolves against the task that opens the file. A caller
// that moved its thread into another namespace must keep the goroutine
// locked to it (runtime.LockOSThread) for the call.
//
// Keys work on every platform; Read and Write need Linux and return
// ErrUnsupported elsewhere.
package sysctl
