// Package health decides whether the real servers behind a Direct Server
// Return balancer can take traffic.
//
// A Checker probes one Target (a backend, plus the VIP and MAC the DSR data
// path uses to reach it) and returns nil when it is healthy. Checkers are a
// single-method interface so applications can plug in their own; the
// package ships TCP, HTTP(S), UDP, DNS and ICMP checkers, and the DSR-path
// checker, which is the one check only a DSR balancer can make: it sends a
// TCP SYN for VIP:port to the backend's MAC, exactly as forwarded client
// traffic travels, and counts the backend healthy only when the SYN-ACK comes
// back from the VIP. That catches the classic silent DSR failure — a server
// that listens on its own address but lacks the VIP on loopback — which a
// plain TCP or HTTP check to the server's own address cannot see. It probes
// IPv4 and IPv6 VIPs alike (the probe is then an IPv6 frame), one checker for
// both families, from an address of the VIP's family on the balancer's
// interface (a link-local IPv6 address will do); see DSRPathChecker.
//
// Every built-in checker states what it can probe (Support: address families,
// port, VIP, MAC), so a configuration it cannot work with is refused when it
// is loaded, with an error saying what is missing.
//
// A Monitor runs many checks on a schedule: interval with jitter (so a
// thousand targets do not fire in the same millisecond), a per-check timeout,
// and rise/fall counts that turn individual results into Up/Down state
// changes, which it reports as Events. The Monitor de-duplicates identical
// registrations, so when several services share a backend it is checked once.
// A single scheduler goroutine and a bounded worker pool serve all targets;
// there is no goroutine per target.
package health
