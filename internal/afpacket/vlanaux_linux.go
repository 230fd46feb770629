package afpacket

// VLANFromAux extracts a VLAN tag the kernel stripped from a received frame
// out of the PACKET_AUXDATA control message of a recvmsg on a packet socket
// with PACKET_AUXDATA enabled: its TPID (0x8100 unless the kernel reports
// another) and Tag Control Information. ok is false when ctrl holds no
// auxiliary data or no tag. It never allocates and never panics, whatever
// ctrl holds. Sockets other than Conn's (the ARP and neighbour discovery
// sockets) use it to see frames as they were on the wire.
func VLANFromAux(ctrl []byte) (tpid, tci uint16, ok bool) { return vlanFromAux(ctrl) }

// AuxSpace is the size of a control buffer for one PACKET_AUXDATA message.
var AuxSpace = auxSpace
