package bench

import "net/netip"

func ipAt(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }
