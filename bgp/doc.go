// Package bgp announces a balancer's VIPs to routers by BGP, so that the
// routers send VIP traffic to it and, with several balancers announcing the
// same VIPs, spread it by ECMP.
//
// A Speaker embeds a BGP implementation (GoBGP) in the process: no external
// routing daemon is needed. It connects to the configured peers, announces
// each VIP as a host route (/32 or /128) and imports nothing: every route a
// peer sends is rejected by the import policy, so the balancer's RIB holds
// only its own announcements.
//
// An Announcer ties a Speaker to a dsr.Balancer: a VIP is announced while
// every service on it has at least MinHealthy healthy, active backends (at
// least one when MinHealthy is 0), and withdrawn as soon as one has not. It
// re-evaluates on the balancer's events and on a short poll of its Stats,
// so a change is on the wire well within a second.
//
// Graceful restart (RFC 4724) is offered to peers that are configured for
// it: when the process dies or is restarted without a clean stop, the peer
// keeps the routes, marked stale, for the restart time, and the restarted
// speaker refreshes them. A clean stop (Run's context cancelled) withdraws
// everything first. BFD (RFC 5880, single hop, the subset GoBGP implements)
// can be enabled per peer for sub-second failure detection; without it, a
// short hold time bounds how long a dead balancer keeps attracting traffic.
//
// Package dsr does not import this package: programs that do not use BGP do
// not build the BGP implementation in.
package bgp
