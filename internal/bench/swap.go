package bench

// swapMAC exchanges the destination and source addresses of an Ethernet
// frame in place: the whole per-frame work of the bare reflectors. Frames
// shorter than a header are left alone.
func swapMAC(f []byte) {
	if len(f) < 12 {
		return
	}
	var tmp [6]byte
	copy(tmp[:], f[0:6])
	copy(f[0:6], f[6:12])
	copy(f[6:12], tmp[:])
}
