package netlab

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
)

// withDefaults fills in the documented zero values of cfg and rejects
// configurations that would break the address plan.
func withDefaults(cfg *Config) (Config, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Servers == 0 {
		c.Servers = 3
	}
	if c.Clients == 0 {
		c.Clients = 1
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 80
	}
	if c.UDPPort == 0 {
		c.UDPPort = 9000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Servers < 0 || c.Servers > MaxServers {
		return c, fmt.Errorf("netlab: Servers=%d out of range 1..%d", c.Servers, MaxServers)
	}
	if c.Clients < 0 || c.Clients > MaxClients {
		return c, fmt.Errorf("netlab: Clients=%d out of range 1..%d", c.Clients, MaxClients)
	}
	if len(c.VIPs) == 0 {
		c.VIPs = []netip.Addr{DefaultVIP4}
		if c.IPv6 {
			c.VIPs = append(c.VIPs, DefaultVIP6)
		}
	} else {
		c.VIPs = slices.Clone(c.VIPs)
	}
	for i, v := range c.VIPs {
		v = v.Unmap()
		c.VIPs[i] = v
		switch {
		case !v.IsValid() || v.IsUnspecified() || v.IsMulticast() || v.IsLoopback():
			return c, fmt.Errorf("netlab: invalid VIP %v", v)
		case v.Is6() && !c.IPv6:
			return c, fmt.Errorf("netlab: IPv6 VIP %v needs Config.IPv6", v)
		case v.Is4() && Prefix4.Contains(v) && v.As4()[3] < 100 && v.As4()[3] != 0:
			return c, fmt.Errorf("netlab: VIP %v collides with the host address plan (.1-.99)", v)
		}
	}
	return c, nil
}
