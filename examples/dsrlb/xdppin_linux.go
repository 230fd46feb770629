package main

import "golang.org/x/sys/unix"

// isBPFFS reports whether dir is a mounted BPF filesystem.
func isBPFFS(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, err
	}
	return uint32(st.Type) == unix.BPF_FS_MAGIC, nil
}
