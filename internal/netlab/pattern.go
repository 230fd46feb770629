package netlab

// PatternByte is byte i of the body served by GET /bytes?n=N. It depends on
// the whole offset (not only i mod 256), so a client can verify a download
// byte-exactly, including lost, duplicated or reordered segments, without
// holding a copy.
func PatternByte(i int64) byte {
	return byte(i) ^ byte(i>>8)*3 ^ byte(i>>16)*5 ^ byte(i>>24)*7
}

// FillPattern writes the pattern bytes for offsets off, off+1, ... into p.
func FillPattern(p []byte, off int64) {
	for j := range p {
		p[j] = PatternByte(off + int64(j))
	}
}

// CheckPattern returns the index in p of the first byte that differs from
// the pattern at offset off, or -1 when p matches.
func CheckPattern(p []byte, off int64) int {
	for j, c := range p {
		if c != PatternByte(off+int64(j)) {
			return j
		}
	}
	return -1
}
