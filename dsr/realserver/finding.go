package realserver

import (
	"fmt"
	"net/netip"
	"strings"
)

// Severity ranks a Finding. The zero value is invalid, so a Finding built
// by hand without a severity is caught rather than silently treated as
// harmless.
type Severity int

// Severities, in increasing order, so callers may compare them.
const (
	// Info is a fact worth knowing that needs no action.
	Info Severity = iota + 1
	// Warning may break the service under some conditions.
	Warning
	// Error breaks DSR for the VIP: traffic is dropped or the VIP is
	// stolen from the balancer.
	Error
)

var severityNames = [...]string{Info: "info", Warning: "warning", Error: "error"}

// String returns "info", "warning" or "error".
func (s Severity) String() string {
	if s < Info || s > Error {
		return fmt.Sprintf("Severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText encodes the severity as its name, so JSON output stays
// readable and stable if the numeric values ever change.
func (s Severity) MarshalText() ([]byte, error) {
	if s < Info || s > Error {
		return nil, fmt.Errorf("realserver: invalid severity %d", int(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText decodes a name written by MarshalText.
func (s *Severity) UnmarshalText(b []byte) error {
	for v := Info; v <= Error; v++ {
		if string(b) == severityNames[v] {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("realserver: unknown severity %q", b)
}

// Stable finding codes. Scripts and monitoring may match on them; they
// never change meaning.
const (
	// CodeVIPMissing: the VIP is not on the VIP interface, so the kernel
	// drops the requests the balancer forwards.
	CodeVIPMissing = "vip-missing"
	// CodeVIPOnARPInterface: the VIP is on an interface that does ARP, so
	// the server answers ARP for it and steals it from the balancer.
	CodeVIPOnARPInterface = "vip-on-arp-interface"
	// CodeInterfaceDown: the VIP interface is down, so its addresses are
	// not local and VIP traffic is dropped.
	CodeInterfaceDown = "interface-down"
	// CodeARPIgnore: the effective arp_ignore lets the server answer ARP
	// for the VIP.
	CodeARPIgnore = "arp-ignore"
	// CodeARPAnnounce: the effective arp_announce lets the server use the
	// VIP as the source of its own ARP requests, which teaches neighbours
	// the server's MAC for the VIP.
	CodeARPAnnounce = "arp-announce"
	// CodeRPFilterStrict: strict reverse-path filtering drops requests
	// whose client is routed back through another interface.
	CodeRPFilterStrict = "rp-filter-strict"
	// CodeNotListening: nothing listens on VIP:port or a wildcard address.
	CodeNotListening = "not-listening"
	// CodeARPConflict: a host other than the balancer answers ARP for the
	// VIP on the segment.
	CodeARPConflict = "arp-conflict"
	// CodeARPNoOwner: nobody answers ARP for the VIP on the segment.
	CodeARPNoOwner = "arp-no-owner"
	// CodeBalancerSilent: the expected balancer MAC does not answer ARP
	// (IPv4) or neighbour solicitations (IPv6) for the VIP.
	CodeBalancerSilent = "balancer-silent"
	// CodeNoSegment: no interface facing the segment was found, so the
	// per-interface checks did not run.
	CodeNoSegment = "no-segment"
	// CodeARPUnchecked: the ARP probe did not run; the reason is in the
	// message.
	CodeARPUnchecked = "arp-unchecked"

	// IPv6 counterparts. Neighbour discovery (NDP) plays the part of ARP.

	// CodeVIPTentative: the IPv6 VIP is on the VIP interface but still
	// tentative (duplicate address detection has not finished, or cannot
	// run because the interface has no carrier), so the kernel does not
	// accept traffic for it.
	CodeVIPTentative = "vip-tentative"
	// CodeVIPDADFailed: duplicate address detection found the IPv6 VIP in
	// use elsewhere (as it is, on the balancer), so the kernel will never
	// use it.
	CodeVIPDADFailed = "vip-dad-failed"
	// CodeVIPOnNDPInterface: the IPv6 VIP is on an interface that does
	// neighbour discovery, so the server answers neighbour solicitations
	// for it and steals it from the balancer.
	CodeVIPOnNDPInterface = "vip-on-ndp-interface"
	// CodeIPv6Disabled: disable_ipv6 is set on the VIP interface (which
	// then cannot hold the VIP) or on a segment interface (which then
	// drops IPv6 frames).
	CodeIPv6Disabled = "ipv6-disabled"
	// CodeIPv6Unavailable: the kernel has no IPv6 (booted with
	// ipv6.disable=1), so nothing about the IPv6 VIPs could be checked.
	CodeIPv6Unavailable = "ipv6-unavailable"
	// CodeProxyNDP: proxy_ndp is on for a segment interface, so any proxy
	// neighbour entry for a VIP (added by hand or by a daemon) makes the
	// server answer for it. An error when the server answers for a VIP
	// now (forwarding on and a proxy entry for the VIP), else a warning.
	CodeProxyNDP = "proxy-ndp"
	// CodeProxyNeighbour: a proxy neighbour entry for a VIP exists. An
	// error when it makes the server answer (proxy_ndp and forwarding on
	// for its interface), else a warning: one sysctl away.
	CodeProxyNeighbour = "proxy-neighbour"
	// CodeNDPConflict: a host other than the balancer answers neighbour
	// solicitations for the VIP on the segment.
	CodeNDPConflict = "ndp-conflict"
	// CodeNDPNoOwner: nobody answers neighbour solicitations for the VIP
	// on the segment.
	CodeNDPNoOwner = "ndp-no-owner"
	// CodeNDPUnchecked: the neighbour-discovery probe did not run; the
	// reason is in the message.
	CodeNDPUnchecked = "ndp-unchecked"
)

// Finding is one observation of Check.
type Finding struct {
	// Severity says how bad it is.
	Severity Severity `json:"severity"`
	// Code is a stable identifier, one of the Code constants.
	Code string `json:"code"`
	// VIP is the service address concerned, if any.
	VIP netip.Addr `json:"vip,omitzero"`
	// Interface is the interface concerned, if any.
	Interface string `json:"interface,omitempty"`
	// Message explains what is wrong and why it matters.
	Message string `json:"message"`
	// Fix lists the commands a human would type to fix it, in order.
	// They use ip(8) and sysctl(8) because that is what an operator knows,
	// even though this package itself uses netlink. Empty for Info.
	Fix []string `json:"fix,omitempty"`
}

// String renders the finding on one line: severity, code, message and fix.
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-7s %s: %s", f.Severity, f.Code, f.Message)
	if len(f.Fix) > 0 {
		b.WriteString(" | fix: ")
		b.WriteString(strings.Join(f.Fix, "; "))
	}
	return b.String()
}

// Report is the result of Check. Findings come in a fixed order (by check,
// then VIP in configuration order, then interface name), so the JSON form is
// stable for identical configurations.
type Report struct {
	// Findings is never nil after Check, so JSON shows [] rather than null.
	Findings []Finding `json:"findings"`
}

// OK reports whether there is no Error finding. Warnings and Info do not
// count: a server can serve with them.
func (r *Report) OK() bool { return r.Count(Error) == 0 }

// Count returns the number of findings of severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Codes returns the codes of the findings of at least severity min, in
// report order; handy for tests and scripts.
func (r *Report) Codes(min Severity) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity >= min {
			out = append(out, f.Code)
		}
	}
	return out
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }
