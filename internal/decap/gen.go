package decap

// The program is compiled for little-endian targets only (amd64, arm64 and
// the other little-endian architectures); clang is needed only to run this.
// scripts/bpf-generate.sh regenerates and checks the committed output.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror -mcpu=v3" -type settings -type addr decap bpf/decap.c
