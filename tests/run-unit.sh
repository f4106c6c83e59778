#!/usr/bin/env bash
# Run every unit test binary in BUILD/tests under a timeout; summary line at the end.
set -u
build=${1:-build}
pass=0 fail=0
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	if timeout "${RINGCAST_TEST_TIMEOUT:-300}" "$t" >"$t.log" 2>&1; then
		pass=$((pass + 1)); echo "  PASS    $name"
	else
		fail=$((fail + 1)); echo "  FAIL    $name"; tail -40 "$t.log"
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
