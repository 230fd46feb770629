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
# The package test (packaging/) verifies the systemd unit with systemd-analyze and
# runs the installed daemon under the unit's user and capabilities with setpriv.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v adduser >/dev/null 2>&1 || need+=(adduser)
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
# The BGP integration tests run the real routers, BIRD 2 and FRR, as child processes in their
# own network namespaces with configurations under a temporary directory. The packages'
# maintainer scripts would start system-wide daemons (bird, frr's watchfrr/zebra/bgpd); a
# temporary policy-rc.d that refuses every start keeps them stopped, and nothing installed
# here may be left running.
routers=()
command -v bird >/dev/null 2>&1 || routers+=(bird2)
[ -x /usr/lib/frr/bgpd ] || routers+=(frr)
if [ "${#routers[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${routers[*]} (run as root to install them)" >&2
		exit 1
	fi
	policy=/usr/sbin/policy-rc.d
	ours=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		ours=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${routers[@]}" >/dev/null
	if [ "$ours" -eq 1 ]; then rm -f "$policy"; fi
	# Belt and braces: where a service manager started them anyway, stop the units.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now bird.service frr.service >/dev/null 2>&1 || true
	fi
fi
go mod download
