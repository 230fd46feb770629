#!/usr/bin/env bash
# Runs the whole test suite. As root it also runs the privileged
# integration tests (network namespaces, packet sockets); with CI=true a
# privileged test that skips fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
go test -race -count=1 -timeout 25m -v ./... >"$log" 2>&1 || status=$?
# Keep the output readable: per-test verbose lines are only shown on failure.
grep -E '^(ok|FAIL|---|panic|\s+--- FAIL|\?)' "$log" | grep -v -E '^--- PASS' || true

skipped=$(grep -E -- '--- SKIP: TestIntegration' "$log" || true)
if [ "$status" -ne 0 ]; then
	echo "--- failures in detail:"
	grep -E -B2 -A30 -- '--- FAIL|^panic|FAIL:' "$log" | head -400
fi
if [ -n "$skipped" ]; then
	echo "privileged tests skipped:"
	echo "$skipped"
	if [ "${CI:-}" = "true" ]; then
		echo "FAIL: privileged tests must run in CI (run as root)"
		status=1
	fi
fi
passed=$(grep -c -E -- '^\s*--- PASS' "$log" || true)
failed=$(grep -c -E -- '^\s*--- FAIL' "$log" || true)
skips=$(grep -c -E -- '^\s*--- SKIP' "$log" || true)
echo "tests: $passed passed, $failed failed, $skips skipped"
exit "$status"
