package health

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Families is a set of IP address families.
type Families uint8

const (
	// IPv4 is the IPv4 family.
	IPv4 Families = 1 << iota
	// IPv6 is the IPv6 family.
	IPv6
	// BothFamilies is IPv4 and IPv6.
	BothFamilies = IPv4 | IPv6
)

// Has reports whether the family of a is in f. The zero Families means both.
func (f Families) Has(a netip.Addr) bool {
	if f == 0 {
		f = BothFamilies
	}
	a = a.Unmap()
	switch {
	case a.Is4():
		return f&IPv4 != 0
	case a.Is6():
		return f&IPv6 != 0
	}
	return false
}

func (f Families) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	case 0, BothFamilies:
		return "IPv4 and IPv6"
	}
	return fmt.Sprintf("Families(%d)", uint8(f))
}

// Support states which targets a checker can probe, so that a configuration
// it cannot work with is refused when it is loaded rather than discovered as
// backends going down once traffic should flow. The zero value supports
// every target.
type Support struct {
	// Name is the checker's name in messages ("tcp", "dsr", …). Empty means
	// "this".
	Name string
	// Families are the address families the checker probes: of the VIP when
	// NeedsVIP is set (the probe reaches the VIP through the backend's MAC),
	// else of the backend address. Zero means both.
	Families Families
	// FamiliesNote says why Families is narrower than the kind of checker
	// could probe and how to widen it (a missing source address, say);
	// Validate adds it to a family error. Empty when there is nothing to add.
	FamiliesNote string
	// NeedsPort is set by checkers that probe a port and have no default.
	NeedsPort bool
	// NeedsVIP is set by checkers that probe the service address through the
	// backend (the DSR-path checker).
	NeedsVIP bool
	// NeedsMAC is set by checkers that address the backend's hardware
	// address. The balancer fills Target.MAC at run time, once the MAC is
	// known, so Validate does not require it.
	NeedsMAC bool
	// HostStack is set by checkers that probe through the host's own IP
	// stack (sockets, routes). Such a probe cannot reach a backend on a
	// VLAN (Target.VLAN non-zero) that the balancer only sees tagged on a
	// trunk: Validate refuses the combination. It does so even where the
	// host happens to have a route to the backend (a VLAN interface, a
	// gateway), since that probe would then take another path than the
	// balancer's forwarded frames and could pass while they are lost; the
	// DSR-path checker, which tags its frames, is the check for VLAN
	// services.
	HostStack bool
	// VLANFamilies, when not nil, are the families the checker can probe
	// on each VLAN of a trunk (targets with a non-zero Target.VLAN): a
	// VLAN missing from it cannot be probed at all. Nil means every VLAN,
	// with Families. The DSR-path checker sets it from the probe sources
	// it has per VLAN (DSRPathConfig.VLANSources).
	VLANFamilies map[uint16]Families
}

// Supporter is implemented by checkers that cannot probe every target. All
// built-in checkers implement it; a checker without it is taken to support
// every target.
type Supporter interface {
	Support() Support
}

// SupportOf returns what c supports: its own statement when it implements
// Supporter, else the zero Support (everything).
func SupportOf(c Checker) Support {
	if s, ok := c.(Supporter); ok {
		return s.Support()
	}
	return Support{}
}

// ErrUnsupportedTarget is wrapped by Validate's errors: the checker cannot
// probe such a target at all, whatever the state of the backend.
var ErrUnsupportedTarget = errors.New("health: the check cannot probe this target")

// Validate reports whether a checker with support s can probe t, as far as
// configuration tells: the families of t.Addr and (if needed) t.VIP, the
// port, and the VLAN. It does not require t.MAC, which is learned at run time. The error
// says what is wrong and how to fix it, and wraps ErrUnsupportedTarget.
func (s Support) Validate(t Target) error {
	name := s.Name
	if name == "" {
		name = "this"
	}
	note := ""
	if s.FamiliesNote != "" {
		note = " (" + s.FamiliesNote + ")"
	}
	var problems []string
	switch {
	case !t.Addr.IsValid():
		problems = append(problems, "the backend has no address")
	case !s.NeedsVIP && !s.Families.Has(t.Addr):
		problems = append(problems, fmt.Sprintf("it probes %s only and backend %s is %s%s", s.Families, t.Addr.Unmap(), familyOf(t.Addr), note))
	}
	if s.NeedsVIP {
		// The probe goes to the VIP through the backend's MAC: the VIP's
		// family is what counts, not the backend address's.
		switch {
		case !t.VIP.IsValid():
			problems = append(problems, "it needs the service's VIP")
		case !s.Families.Has(t.VIP):
			problems = append(problems, fmt.Sprintf("it probes %s only and VIP %s is %s%s", s.Families, t.VIP.Unmap(), familyOf(t.VIP), note))
		}
	}
	if s.HostStack && t.VLAN != 0 {
		problems = append(problems, fmt.Sprintf("it probes through the host's IP stack, which does not reach backends on VLAN %d of the trunk: use the dsr check, which sends tagged frames", t.VLAN))
	}
	if t.VLAN != 0 && s.VLANFamilies != nil {
		fam, ok := s.VLANFamilies[t.VLAN]
		probed := t.Addr
		if s.NeedsVIP {
			probed = t.VIP
		}
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("it has no probe source address on VLAN %d (set DSRPathConfig.VLANSources)", t.VLAN))
		case probed.IsValid() && !fam.Has(probed):
			problems = append(problems, fmt.Sprintf("it has no %s probe source address on VLAN %d (set DSRPathConfig.VLANSources)", familyOf(probed), t.VLAN))
		}
	}
	if s.NeedsPort && t.Port == 0 {
		problems = append(problems, "it needs a port and none is set: the service balances every port, so give the check a port")
	}
	if len(problems) == 0 {
		return nil
	}
	return &unsupportedError{msg: fmt.Sprintf("health: the %s check cannot work: %s", name, strings.Join(problems, "; "))}
}

// unsupportedError is Validate's error: it reads as one sentence and is
// ErrUnsupportedTarget to errors.Is.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string        { return e.msg }
func (e *unsupportedError) Is(target error) bool { return target == ErrUnsupportedTarget }

func familyOf(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// Support implements Supporter: a port on either family.
func (c *TCPChecker) Support() Support { return Support{Name: "tcp", NeedsPort: true, HostStack: true} }

// Support implements Supporter: a port on either family.
func (c *UDPChecker) Support() Support { return Support{Name: "udp", NeedsPort: true, HostStack: true} }

// Support implements Supporter: either family; the port defaults to 53.
func (c *DNSChecker) Support() Support { return Support{Name: "dns", HostStack: true} }

// Support implements Supporter: either family; the port defaults to 80 or
// 443.
func (c *HTTPChecker) Support() Support {
	if c.HTTPS {
		return Support{Name: "https", HostStack: true}
	}
	return Support{Name: "http", HostStack: true}
}

// Support implements Supporter: either family, no port.
func (c *ICMPChecker) Support() Support { return Support{Name: "icmp", HostStack: true} }
