#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the benchmarks need.
# Idempotent; does nothing when everything is present.
set -euo pipefail

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
# The daemon's status page is rendered in a real headless browser.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Regenerating the XDP program (scripts/bpf-generate.sh) needs clang,
# llvm-strip and the libbpf headers; building and running it does not.
command -v clang >/dev/null 2>&1 || need+=(clang llvm libbpf-dev)
# The VRRP interop tests run the real keepalived as the other router.
command -v keepalived >/dev/null 2>&1 || [ -x /usr/sbin/keepalived ] || need+=(keepalived)
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${need[*]} (run as root to install them)" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# promtool (shipped in the prometheus package) lints the daemon's /metrics.
# Without recommends: the tool, not the exporters the package suggests.
if ! command -v promtool >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing package: prometheus (for promtool; run as root to install it)" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
go mod download
