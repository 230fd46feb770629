#!/usr/bin/env bash
# Runs the micro-benchmarks behind docs/PERFORMANCE.md and summarises them
# with benchstat (medians and spread over several runs).
#   bash scripts/bench-micro.sh [count]        (default 6 runs each)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-6}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # package, benchmark regexp, benchtime
	go test -run '^$' -bench "$2" -benchtime "$3" -count "$count" -benchmem "$1" | tee -a "$out/all.txt" >/dev/null
}
run ./dsr/ 'BenchmarkProcess$|BenchmarkProcessMillionFlows' 2000000x
run ./internal/frame/ 'BenchmarkParse|BenchmarkSetMACs' 2000000x
run ./internal/flowtable/ 'BenchmarkLookup$|BenchmarkGoMapLookup|BenchmarkHash' 2000000x
run ./scheduler/ 'BenchmarkPick$|BenchmarkPickBare' 2000000x
run ./scheduler/ 'BenchmarkBuild' 20x

go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out/all.txt"
