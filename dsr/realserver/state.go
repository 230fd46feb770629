package realserver

import "net/netip"

// State records what Prepare changed, so that Undo reverts exactly that and
// nothing else. It is plain data and JSON-serialisable: a command-line tool
// keeps it in a file between "prepare" and "undo". Pass the same State to
// repeated Prepare calls: they add only what they change, so the record
// stays correct. The zero value is an empty record.
type State struct {
	// Created lists dummy interfaces Prepare created; Undo deletes them.
	Created []string `json:"created,omitempty"`
	// SetUp lists existing interfaces Prepare brought up; Undo sets them
	// down again.
	SetUp []string `json:"set_up,omitempty"`
	// Added lists addresses Prepare added; Undo deletes them.
	Added []Address `json:"added,omitempty"`
	// Removed lists VIP addresses Prepare removed: from interfaces that do
	// ARP or neighbour discovery, and IPv6 VIPs it re-added without
	// duplicate address detection because they were tentative or
	// dadfailed. Undo adds them back as they were.
	Removed []Address `json:"removed,omitempty"`
	// Proxies lists IPv6 proxy neighbour entries for VIPs that Prepare
	// deleted (ip -6 neigh del proxy ADDR dev IFACE); Undo adds them back.
	Proxies []Address `json:"proxies,omitempty"`
	// Sysctls lists the kernel parameters Prepare wrote, in order, with
	// their values before the first write.
	Sysctls []SysctlChange `json:"sysctls,omitempty"`
	// Decap lists interfaces Prepare attached the decapsulation program
	// to; Undo detaches it.
	Decap []string `json:"decap,omitempty"`
	// Routes lists routes whose advertised MSS Prepare lowered; Undo
	// restores the old value.
	Routes []RouteChange `json:"routes,omitempty"`
	// Commands lists the kernel-path commands Prepare ran that have
	// something to revert; Undo runs their Undo commands in reverse order.
	Commands []Command `json:"commands,omitempty"`
}

// RouteChange is one route whose advmss Prepare set.
type RouteChange struct {
	// Dst is the destination prefix; invalid for the default route.
	Dst netip.Prefix `json:"dst,omitzero"`
	// Gateway is the route's next hop.
	Gateway netip.Addr `json:"gateway"`
	// Interface is its output interface.
	Interface string `json:"interface"`
	// V6 tells the family of a default route.
	V6 bool `json:"v6,omitempty"`
	// Old is the advmss before (0: none); New what Prepare set.
	Old int `json:"old"`
	New int `json:"new"`
}

// Address is an address on an interface.
type Address struct {
	Interface string       `json:"interface"`
	Prefix    netip.Prefix `json:"prefix"`
	// NoDAD records that the IPv6 address carries IFA_F_NODAD (no
	// duplicate address detection). False for IPv4 and for IPv6
	// addresses that run detection.
	NoDAD bool `json:"nodad,omitempty"`
}

// SysctlChange is one kernel parameter written by Prepare.
type SysctlChange struct {
	// Key is in sysctl(8) form: dots separate levels, and dots inside an
	// interface name are written as slashes (net.ipv4.conf.eth0/100.rp_filter).
	Key string `json:"key"`
	// Old is the value before Prepare first wrote Key; Undo restores it.
	Old string `json:"old"`
	// New is the value Prepare wrote; Undo restores Old only while the
	// parameter still has this value.
	New string `json:"new"`
}

// Empty reports whether the record holds nothing to undo.
func (s *State) Empty() bool {
	return s.Len() == 0
}

// Len returns the number of changes the record holds.
func (s *State) Len() int {
	return len(s.Created) + len(s.SetUp) + len(s.Added) + len(s.Removed) + len(s.Proxies) + len(s.Sysctls) +
		len(s.Decap) + len(s.Routes) + len(s.Commands)
}

// recordSysctl notes a write. A key written before keeps its first Old
// value, because that is what the system had before any Prepare.
func (s *State) recordSysctl(key, old, new string) {
	for i := range s.Sysctls {
		if s.Sysctls[i].Key == key {
			s.Sysctls[i].New = new
			return
		}
	}
	s.Sysctls = append(s.Sysctls, SysctlChange{Key: key, Old: old, New: new})
}

// recordAdded notes an added address. If the same address had been removed
// by an earlier Prepare, the two cancel out in the sense that Undo must
// still delete the new one and restore the old one, so both are kept.
func (s *State) recordAdded(a Address) { s.Added = appendUnique(s.Added, a) }

func appendUnique[T comparable](list []T, v T) []T {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
