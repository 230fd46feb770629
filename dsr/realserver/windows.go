package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Windows real servers. Windows has no arp_ignore and no VIP on lo: an
// L2 DSR server holds the VIPs on a loopback adapter (the "Microsoft KM-TEST
// Loopback Adapter", which faces no network and so never answers ARP or
// neighbour solicitations for them) and lets the network adapter accept
// packets for an address of another interface and send replies from it
// (the weak host model, off by default since Windows Vista). Windows has no
// IP-in-IP or GUE decapsulation a real server could use, so L3 modes are
// refused. This package cannot configure Windows; WindowsScript prints the
// PowerShell that does.

// ErrWindowsL3 is returned by WindowsScript for L3 modes.
var ErrWindowsL3 = errors.New("realserver: Windows servers support L2 DSR only: Windows cannot decapsulate IPIP or GUE for a VIP on a loopback adapter")

// WindowsConfig describes a Windows L2 DSR server.
type WindowsConfig struct {
	// VIPs are the service addresses. Required.
	VIPs []netip.Addr
	// Mode must be ModeL2 or zero.
	Mode Mode
	// Adapter is the alias of the network adapter facing the balancer's
	// segment. Empty means "Ethernet".
	Adapter string
	// Loopback is the alias the loopback adapter gets. Empty means
	// "dsr-loopback".
	Loopback string
}

// WindowsScript returns the PowerShell commands that prepare (or, with
// check, only verify) a Windows server for L2 DSR with cfg.
func WindowsScript(cfg *WindowsConfig, check bool) (string, error) {
	if cfg == nil || len(cfg.VIPs) == 0 {
		return "", fmt.Errorf("%w: no VIPs", ErrInvalidConfig)
	}
	switch cfg.Mode {
	case "", ModeL2:
	case ModeIPIP, ModeGUE:
		return "", fmt.Errorf("%w (mode %s)", ErrWindowsL3, cfg.Mode)
	default:
		return "", fmt.Errorf("%w: mode %q", ErrInvalidConfig, cfg.Mode)
	}
	nic, lo := cfg.Adapter, cfg.Loopback
	if nic == "" {
		nic = "Ethernet"
	}
	if lo == "" {
		lo = "dsr-loopback"
	}
	for _, n := range []string{nic, lo} {
		if strings.ContainsAny(n, "'\"`$\r\n") {
			return "", fmt.Errorf("%w: adapter name %q", ErrInvalidConfig, n)
		}
	}
	var fams []string
	var vips []netip.Addr
	has4, has6 := false, false
	for _, v := range cfg.VIPs {
		v = v.Unmap()
		if !v.IsValid() || v.IsUnspecified() || v.IsLoopback() || v.IsMulticast() || v.IsLinkLocalUnicast() {
			return "", fmt.Errorf("%w: unusable VIP %v", ErrInvalidConfig, v)
		}
		vips = append(vips, v)
		has4, has6 = has4 || v.Is4(), has6 || v.Is6()
	}
	if has4 {
		fams = append(fams, "IPv4")
	}
	if has6 {
		fams = append(fams, "IPv6")
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	list := make([]string, len(vips))
	for i, v := range vips {
		list[i] = v.String()
	}
	if check {
		w("# dsrlb: verify a Windows server for L2 Direct Server Return (VIPs %s).", strings.Join(list, ", "))
		w("# Run in PowerShell; every line prints what it checks.")
		w("")
		w("# The VIPs on the loopback adapter, as host addresses, SkipAsSource True:")
		w("Get-NetIPAddress -InterfaceAlias '%s' | Format-Table IPAddress,PrefixLength,SkipAsSource", lo)
		w("# Weak host receive and send Enabled on both adapters:")
		w("Get-NetIPInterface -InterfaceAlias '%s','%s' | Format-Table InterfaceAlias,AddressFamily,WeakHostReceive,WeakHostSend", nic, lo)
		w("# The network adapter must not hold a VIP (it would answer ARP for it):")
		for _, v := range vips {
			w("Get-NetIPAddress -InterfaceAlias '%s' -IPAddress %s -ErrorAction SilentlyContinue", nic, v)
		}
		return b.String(), nil
	}
	w("# dsrlb: prepare a Windows server for L2 Direct Server Return (VIPs %s).", strings.Join(list, ", "))
	w("# Run in an elevated PowerShell. Windows cannot do L3 DSR (IPIP/GUE): put its balancer on its segment.")
	w("$ErrorActionPreference = 'Stop'")
	w("")
	w("# 1. A loopback adapter holds the VIPs. Windows has no cmdlet that creates one: install the")
	w("#    Microsoft KM-TEST Loopback Adapter once (devcon.exe comes with the Windows Driver Kit),")
	w("#    then give it the alias used below:")
	w("#      devcon.exe install $env:windir\\inf\\netloop.inf *msloop")
	w("Get-NetAdapter | Where-Object InterfaceDescription -Like 'Microsoft KM-TEST Loopback*' | Select-Object -First 1 | Rename-NetAdapter -NewName '%s'", lo)
	w("")
	w("# 2. The VIPs on the loopback adapter: host prefixes, never the source of the server's own connections.")
	for _, v := range vips {
		bits := 32
		if v.Is6() {
			bits = 128
		}
		w("New-NetIPAddress -InterfaceAlias '%s' -IPAddress %s -PrefixLength %d -SkipAsSource $true", lo, v, bits)
	}
	w("")
	w("# 3. Weak host model: '%s' accepts packets for the VIPs, which belong to '%s',", nic, lo)
	w("#    and the replies, sent from a VIP, leave by '%s'.", nic)
	for _, f := range fams {
		w("Set-NetIPInterface -InterfaceAlias '%s' -AddressFamily %s -WeakHostReceive Enabled -WeakHostSend Enabled", nic, f)
		w("Set-NetIPInterface -InterfaceAlias '%s' -AddressFamily %s -WeakHostReceive Enabled -WeakHostSend Enabled", lo, f)
	}
	w("")
	w("# 4. The loopback adapter never takes routes from the network adapter (highest metric),")
	w("#    and no duplicate address detection holds back an IPv6 VIP (the balancer owns it on the segment).")
	for _, f := range fams {
		if f == "IPv6" {
			w("Set-NetIPInterface -InterfaceAlias '%s' -AddressFamily IPv6 -InterfaceMetric 254 -DadTransmits 0 -RouterDiscovery Disabled", lo)
		} else {
			w("Set-NetIPInterface -InterfaceAlias '%s' -AddressFamily IPv4 -InterfaceMetric 254 -Dhcp Disabled", lo)
		}
	}
	w("")
	w("# ARP and neighbour discovery: nothing to turn off. The loopback adapter faces no network, and")
	w("# Windows answers ARP and neighbour solicitations on '%s' only for its own addresses.", nic)
	w("# Make sure no VIP is also on '%s':", nic)
	for _, v := range vips {
		w("Get-NetIPAddress -InterfaceAlias '%s' -IPAddress %s -ErrorAction SilentlyContinue | Remove-NetIPAddress -Confirm:$false", nic, v)
	}
	return b.String(), nil
}
