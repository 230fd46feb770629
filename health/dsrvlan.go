package health

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// vlanSource is the DSR-path checker's pair of probe sources on one VLAN.
type vlanSource struct{ v4, v6 netip.Addr }

// maxVLAN is the largest VLAN ID; 4095 is reserved by 802.1Q.
const maxVLAN = 4094

// parseVLANSources checks DSRPathConfig.VLANSources.
func parseVLANSources(in map[uint16][]netip.Addr) (map[uint16]vlanSource, error) {
	out := make(map[uint16]vlanSource, len(in))
	for vlan, addrs := range in {
		if vlan == 0 || vlan > maxVLAN {
			return nil, fmt.Errorf("DSRPathConfig.VLANSources: VLAN %d out of range 1..%d", vlan, maxVLAN)
		}
		var s vlanSource
		for _, a := range addrs {
			a = a.Unmap().WithZone("")
			switch {
			case !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
				return nil, fmt.Errorf("DSRPathConfig.VLANSources[%d]: %v is not a unicast address", vlan, a)
			case a.Is4() && s.v4.IsValid(), a.Is6() && s.v6.IsValid():
				return nil, fmt.Errorf("DSRPathConfig.VLANSources[%d]: more than one %s address", vlan, familyOf(a))
			case a.Is4():
				s.v4 = a
			default:
				s.v6 = a
			}
		}
		out[vlan] = s
	}
	return out, nil
}

// tagFrame returns the untagged Ethernet frame b with an 802.1Q tag for
// vlan (priority 0) after its addresses; b itself when vlan is 0.
func tagFrame(b []byte, vlan uint16) []byte {
	if vlan == 0 || len(b) < 12 {
		return b
	}
	out := make([]byte, 0, len(b)+4)
	out = append(out, b[:12]...)
	out = binary.BigEndian.AppendUint16(out, 0x8100)
	out = binary.BigEndian.AppendUint16(out, vlan&0x0fff)
	return append(out, b[12:]...)
}

// frameVLAN is the VLAN ID of a frame's 802.1Q tag, 0 when it has none.
func frameVLAN(b []byte) uint16 {
	if len(b) >= 16 && binary.BigEndian.Uint16(b[12:]) == 0x8100 {
		return binary.BigEndian.Uint16(b[14:]) & 0x0fff
	}
	return 0
}
