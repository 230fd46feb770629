package xdp

// The program is compiled for little-endian targets only (amd64, arm64 and
// the other little-endian architectures); clang is needed only to run this.
// scripts/bpf-generate.sh regenerates and checks the committed output.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror -mcpu=v3" -type flow_key -type flow_entry -type service_key -type service_entry -type backend_entry -type settings -type global_counters -type backend_counters -type service_counters xdp bpf/xdp.c
