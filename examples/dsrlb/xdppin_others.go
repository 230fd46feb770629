//go:build !linux

package main

// isBPFFS reports false: there is no BPF filesystem on this platform.
func isBPFFS(string) (bool, error) { return false, nil }
