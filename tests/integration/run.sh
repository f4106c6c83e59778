#!/usr/bin/env bash
# Run every integration test binary ($RINGCAST_BUILD/itests/it_*) one after
# the other, each under a timeout, and print PASS/FAIL per binary and the
# summary line "integration: N passed, M failed".  Exit status 1 if any
# failed (or none was found).
#
# One at a time on purpose: the tests start their own daemons and busy-poll
# on a machine that may have two cores, and it_kill and it_kill_storm measure stalls.
#
#   RINGCAST_BUILD        build directory (default: build; build-asan works too)
#   RINGCAST_IT_TIMEOUT   seconds per binary (default 150)
#   RINGCAST_IT_LOGS      where the outputs go (default $RINGCAST_BUILD/itests/logs)
#   IT_VERBOSE=1          run the daemons with -v
#   RINGCAST_IT_DAEMON_WRAP, RINGCAST_IT_DAEMON_USER: a command in front of
#                         every daemon, and the user it runs the daemon as
#                         (tests/integration/harness.h; make test-unprivileged)
# A failing binary's output is printed; every output is kept in
# $RINGCAST_IT_LOGS/NAME.log.
set -u
build=${RINGCAST_BUILD:-build}
limit=${RINGCAST_IT_TIMEOUT:-150}
export RINGCAST_BUILD=$build

# Sanitizer builds: make UB fail the test instead of printing and going on.
# (Leak checking is ASan's default; callers such as make test-asan may set
# their own options, which win.)
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

logs=${RINGCAST_IT_LOGS:-$build/itests/logs}
mkdir -p "$logs" || exit 1
pass=0 fail=0 found=0
for t in "$build"/itests/it_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	found=1
	name=$(basename "$t")
	log="$logs/$name.log"
	start=$(date +%s%N)
	# -k: a test that ignores SIGTERM (it should not: it cleans up and dies) is killed.
	timeout -k 10 "$limit" "$t" >"$log" 2>&1
	rc=$?
	secs=$(( ($(date +%s%N) - start) / 1000000 ))
	secs="$((secs / 1000)).$(printf '%03d' $((secs % 1000)))s"
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		printf '  PASS    %-16s %8s\n' "$name" "$secs"
		# Skips are passes, but say so: nobody should miss a test that did not run.
		grep '^SKIP:' "$log" | sed 's/^/          /'
	else
		fail=$((fail + 1))
		why="exit $rc"
		[ "$rc" -eq 124 ] && why="timed out after ${limit}s"
		[ "$rc" -gt 128 ] && why="killed by signal $((rc - 128))"
		printf '  FAIL    %-16s %8s  (%s)\n' "$name" "$secs" "$why"
		sed 's/^/    | /' "$log" | tail -n 150
	fi
done
if [ "$found" -eq 0 ]; then
	echo "no integration tests in $build/itests (run make first)"
	fail=$((fail + 1))
fi
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
