#!/usr/bin/env bash
# Regenerates the XDP program's committed object and Go bindings
# (internal/xdp/xdp_bpfel.{o,go}, and the benchmark-only
# internal/xdp/xdpbench_bpfel_test.{o,go}) with clang and fails when they differ from
# what is committed: the committed files must be exactly what the C source
# compiles to. Compiling twice must also give identical bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

files=(internal/xdp/xdp_bpfel.o internal/xdp/xdp_bpfel.go
	internal/xdp/xdpbench_bpfel_test.o internal/xdp/xdpbench_bpfel_test.go)
go generate ./internal/xdp
first=$(sha256sum "${files[@]}")
go generate ./internal/xdp
second=$(sha256sum "${files[@]}")
if [ "$first" != "$second" ]; then
	echo "FAIL: two regenerations of the XDP program differ (the build is not reproducible):" >&2
	diff <(echo "$first") <(echo "$second") >&2 || true
	exit 1
fi
if ! git diff --exit-code --stat -- "${files[@]}"; then
	echo "FAIL: the committed XDP program differs from its source; run scripts/bpf-generate.sh and commit the result" >&2
	exit 1
fi
echo "XDP program: committed output matches its source ($(clang --version | head -1))"

# The real server's L3 decapsulation program (internal/decap), checked the
# same way.
decap=(internal/decap/decap_bpfel.o internal/decap/decap_bpfel.go)
go generate ./internal/decap
first=$(sha256sum "${decap[@]}")
go generate ./internal/decap
second=$(sha256sum "${decap[@]}")
if [ "$first" != "$second" ]; then
	echo "FAIL: two regenerations of the decapsulation program differ (the build is not reproducible)" >&2
	exit 1
fi
if ! git diff --exit-code --stat -- "${decap[@]}"; then
	echo "FAIL: the committed decapsulation program differs from its source; run scripts/bpf-generate.sh and commit the result" >&2
	exit 1
fi
echo "decapsulation program: committed output matches its source"
