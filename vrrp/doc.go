// Package vrrp runs active/standby balancers on one Ethernet segment with
// VRRP version 3 (RFC 5798) for IPv4, wire-compatible with keepalived and
// routers that speak VRRPv3.
//
// A Router (New, Run) takes part in one virtual router on one interface:
// virtual router id, priority 1–254, advertisement interval in
// centiseconds, preemption (on by default; NoPreempt, PreemptDelay), the
// master down timer of 3 × the master's interval plus a skew of
// ((256 − priority) × interval) / 256, advertisements to 224.0.0.18 with IP
// protocol 112 and TTL 255 and a checksum over the IPv4 pseudo-header, and
// on a clean stop a priority 0 advertisement so that the backup takes over
// after its skew time instead of the master down interval. Received
// advertisements with a TTL other than 255, a bad checksum or another
// version are counted (Stats) and dropped. Transitions are events delivered
// to Config.OnEvent, never scripts.
//
// IPv6 virtual routers are not implemented: an IPv6 VIP in Config.VIPs is
// refused with ErrIPv6. (A balancer's IPv6 VIPs can still follow the IPv4
// router's state through a Gate, which serves every VIP it is given.)
//
// # Which MAC the master uses
//
// RFC 5798 gives the master the virtual MAC 00-00-5E-00-01-{VRID}. This
// package, like keepalived without use_vmac, uses each balancer's own
// interface MAC instead: the balancer's ARP speaker (package arp) answers
// with the interface MAC, and the forwarder sends from it, so taking the
// virtual MAC would need a macvlan device or a promiscuous interface and a
// second source MAC on the forwarding path, for no gain on a segment where
// the new master's burst of gratuitous ARPs moves the clients and the
// switch within one round trip. Flows survive the change of MAC because
// balancers with the same dsr.Config.Seed pick the same backends.
//
// # With a balancer
//
// A Gate ties a Router to an *arp.Speaker: it has the methods dsr.Config.ARP
// takes, serves the VIPs only while the Router is master, sends the burst of
// gratuitous ARPs (and unsolicited Neighbor Advertisements) at once on
// becoming master and again when a split brain heals (Reasserted), and stops
// answering on becoming backup. The refresh after the burst is the
// speaker's announce interval (arp.Config.AnnounceInterval).
//
// New opens a raw socket and needs CAP_NET_RAW on Linux; on other
// platforms it returns ErrUnsupported. The protocol core is portable.
package vrrp
