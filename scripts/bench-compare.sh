#!/usr/bin/env bash
# Runs the side-by-side comparison benchmarks behind docs/PERFORMANCE.md and
# prints their ratios (medians over the runs). These comparisons used to be
# timed bounds in the test suite, where another process on the machine could
# make them fail; they are measurements, so they live here.
#
#   bash scripts/bench-compare.sh [count]      (default 3 runs of each)
#
# Environment:
#   BASE=<git revision or directory>
#                        also run BenchmarkProcess, BenchmarkProcessSYN and BenchmarkProcessMillionFlows
#                        in that revision (or source tree) and print this tree's
#                        time ÷ BASE's, alternating the two trees run by run
#                        (docs/PERFORMANCE.md uses it for the one-pass versus
#                        two-pass batch comparison).
#   DATAPATH=0           skip the data-path comparison (it needs root and about
#                        a minute per run).
#
# Run it on an otherwise idle machine: every figure is a ratio of two things
# measured in the same run, which cancels much of the noise of a shared
# machine, but not all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-3}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# metric FILE REGEXP UNIT: the median of the values reported with UNIT on
# the benchmark lines of FILE whose name matches REGEXP.
metric() {
	awk -v re="$2" -v unit="$3" '
		$1 ~ re { for (i = 3; i < NF; i++) if ($(i+1) == unit) v[n++] = $i }
		END {
			if (n == 0) { print "nan"; exit }
			# insertion sort; n is small
			for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j+1] = v[j]; v[j+1] = x }
			print (n % 2) ? v[int(n/2)] : (v[n/2-1] + v[n/2]) / 2
		}' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.3f", a / b }'; }

echo "== flow table against a Go map of the same flows (201 alternating rounds per run)"
go test -run '^$' -bench 'VersusGoMap' -benchtime 201x -count "$count" ./internal/flowtable/ >"$out/ft.txt"
printf '%-12s %-24s %10s %10s %8s\n' flows lookups table-ns map-ns ratio
for n in 10000 1000000; do
	for b in Lookup BatchedLookup; do
		f="^Benchmark${b}VersusGoMap/flows=${n}-"
		kind="one at a time"; [ "$b" = BatchedLookup ] && kind="batches of 64"
		printf '%-12s %-24s %10s %10s %8s\n' "$n" "$kind" \
			"$(metric "$out/ft.txt" "$f" table-ns/lookup)" "$(metric "$out/ft.txt" "$f" map-ns/lookup)" \
			"$(metric "$out/ft.txt" "$f" ratio-vs-map)"
	done
done

echo
echo "== scheduler picks against mh (N=1000 backends)"
go test -run '^$' -bench 'BenchmarkPick$|BenchmarkPickBare' -benchtime 2000000x -count "$count" ./scheduler/ >"$out/sched.txt"
mh=$(metric "$out/sched.txt" '^BenchmarkPick/mh/N=1000-' ns/op)
printf '%-10s %8s %8s\n' pick ns ratio
for s in mh hrw rr wrr sh lc wlc; do
	v=$(metric "$out/sched.txt" "^BenchmarkPick/$s/N=1000-" ns/op)
	printf '%-10s %8s %8s\n' "$s" "$v" "$(ratio "$v" "$mh")"
done
for s in sh rr wrr; do
	v=$(metric "$out/sched.txt" "^BenchmarkPickBare/$s/N=1000-" ns/op)
	printf '%-10s %8s %8s\n' "$s bare" "$v" "$(ratio "$v" "$mh")"
done

echo
echo "== health checks: 1000 TCP targets every second on loopback, both ends' kernel work included"
go test -run '^$' -bench 'MonitorCPU1000TCP' -benchtime 1x -count "$count" ./health/ >"$out/health.txt"
probe=$(metric "$out/health.txt" '^BenchmarkMonitorCPU1000TCP/probe-' cpu-%)
conn=$(metric "$out/health.txt" '^BenchmarkMonitorCPU1000TCP/net.Conn-' cpu-%)
printf '%-10s %8s %10s\n' check cpu-% checks/s
printf '%-10s %8s %10s\n' probe "$probe" "$(metric "$out/health.txt" '^BenchmarkMonitorCPU1000TCP/probe-' checks/s)"
printf '%-10s %8s %10s\n' net.Conn "$conn" "$(metric "$out/health.txt" '^BenchmarkMonitorCPU1000TCP/net.Conn-' checks/s)"
echo "net.Conn ÷ probe: $(ratio "$conn" "$probe")"

if [ -n "${BASE:-}" ]; then
	echo
	echo "== balancer decision: this tree against $BASE"
	if [ -d "$BASE" ]; then
		base=$(cd "$BASE" && pwd)
	else
		base=$(mktemp -d)
		trap 'rm -rf "$out" "$base"' EXIT
		git archive "$BASE" | tar -x -C "$base"
	fi
	bench='BenchmarkProcess$|BenchmarkProcessSYN$|BenchmarkProcessMillionFlows'
	# Alternate the two trees so that a change in the machine's load lands
	# on both.
	for _ in $(seq "$count"); do
		(cd "$base" && go test -run '^$' -bench "$bench" -benchtime 8000000x ./dsr/) >>"$out/base.txt"
		go test -run '^$' -bench "$bench" -benchtime 8000000x ./dsr/ >>"$out/head.txt"
	done
	printf '%-28s %10s %10s %8s\n' benchmark "$BASE" this ratio
	for b in Process ProcessSYN ProcessMillionFlows; do
		o=$(metric "$out/base.txt" "^Benchmark$b-" ns/op)
		n=$(metric "$out/head.txt" "^Benchmark$b-" ns/op)
		printf '%-28s %10s %10s %8s\n' "$b (ns/frame)" "$o" "$n" "$(ratio "$n" "$o")"
	done
fi

if [ "${DATAPATH:-1}" != 0 ]; then
	echo
	echo "== data path: balancer ÷ bare batched AF_PACKET reflector, CPU per packet at the common rate (one short repetition per run)"
	if [ "$(id -u)" -ne 0 ]; then
		echo "skipped: needs root (network namespaces); the full comparison is: go run ./cmd/dsrbench -reps 5"
	else
		go test -run '^$' -bench 'DataPath' -benchtime 1x -count "$count" ./internal/bench/ >"$out/dp.txt"
		echo "ratio: $(metric "$out/dp.txt" '^BenchmarkDataPath' cpu-ratio-vs-afpacket) (the full run with medians, min-max and every view: go run ./cmd/dsrbench -reps 5)"
	fi
fi
