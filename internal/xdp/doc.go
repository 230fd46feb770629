// Package xdp holds the kernel half of the XDP data plane: a BPF program
// (bpf/xdp.c, compiled with bpf2go into xdp_bpfel.o and its Go bindings)
// that runs the forwarding plan the Go control plane writes into its maps,
// and a typed API to load it, fill its maps and run it.
package xdp
