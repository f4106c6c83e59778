#!/usr/bin/env bash
# ringcast demo: a private ringcastd, four subscribers receiving hand-published
# messages, a fan-out benchmark, and the daemon's statistics.
# Usage: tools/demo.sh BUILD_DIR      (what `make demo` runs)
# RINGCAST_DEMO_DAEMON_WRAP, if set, is a command put in front of ringcastd
# (split at blanks), and RINGCAST_DEMO_DAEMON_USER the user it runs the
# daemon as, who is given the demo's directory.  As root, to run the daemon
# as its systemd unit would (docs/testing.md):
#   RINGCAST_DEMO_DAEMON_WRAP=tests/integration/as-service.sh \
#   RINGCAST_DEMO_DAEMON_USER=ringcast make demo
# Everything lives in a temporary directory under /dev/shm, removed at exit;
# the daemon and every client are stopped on any exit.  Exit status is
# non-zero if any step fails.
set -euo pipefail

build=${1:-build}
rc="$build/ringcast"
rcd="$build/ringcastd"
for b in "$rc" "$rcd"; do
	[ -x "$b" ] || { echo "demo: $b is missing; run make first" >&2; exit 1; }
done

read -r -a wrap <<<"${RINGCAST_DEMO_DAEMON_WRAP:-}"
dir=$(mktemp -d /dev/shm/ringcast-demo.XXXXXX)
daemon_pid=""
sub_pids=()

cleanup() {
	local status=$?
	for p in "${sub_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		# A clean shutdown takes a moment; do not leave it behind if it hangs.
		for _ in $(seq 20); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
	if [ "$status" -ne 0 ]; then echo "demo: FAILED (exit $status)" >&2; fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "demo: $*" >&2
	if [ -s "$dir/daemon.log" ]; then
		echo "--- ringcastd log (last 20 lines) ---" >&2
		tail -20 "$dir/daemon.log" >&2
	fi
	exit 1
}

heading() { printf '\n== %s ==\n' "$*"; }

# Every command below finds the daemon through this variable.
export RINGCAST_SOCKET="$dir/sock"

heading "start ringcastd (node 'demo', private socket and runtime dir)"
if [ -n "${RINGCAST_DEMO_DAEMON_USER:-}" ]; then
	# The daemon creates its socket and runtime dir in here.
	chown "$RINGCAST_DEMO_DAEMON_USER:" "$dir" || fail "cannot give $dir to $RINGCAST_DEMO_DAEMON_USER"
	chmod 0755 "$dir"
fi
"${wrap[@]}" "$rcd" --socket "$dir/sock" --runtime-dir "$dir/run" --node demo >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do
	[ -S "$dir/sock" ] && break
	kill -0 "$daemon_pid" 2>/dev/null || fail "ringcastd exited at start"
	sleep 0.1
done
[ -S "$dir/sock" ] || fail "ringcastd did not create $dir/sock within 5 s"
echo "ringcastd pid $daemon_pid, socket $dir/sock, user $(ps -o user= -p "$daemon_pid")"

heading "4 subscribers on 'demo.chat', 4 messages from 'ringcast pub'"
for i in 1 2 3 4; do
	json=()
	[ "$i" -eq 4 ] && json=(--json)
	"$rc" sub --count 4 --timeout 10s "${json[@]}" demo.chat >"$dir/sub$i.out" 2>"$dir/sub$i.err" &
	sub_pids+=($!)
done
# Publish only once all four are subscribed: a subscriber sees messages
# published after it subscribed.
subscribed=no
for _ in $(seq 50); do
	st=$("$rc" stat --json demo.chat 2>/dev/null || true)
	if [[ $st == *'"subscribers":4,'* ]]; then subscribed=yes; break; fi
	sleep 0.1
done
[ "$subscribed" = yes ] || fail "the 4 subscribers did not show up in 'ringcast stat demo.chat'"

echo "\$ ringcast pub demo.chat 'hello from ringcast pub'"
"$rc" pub demo.chat 'hello from ringcast pub' || fail "pub failed"
echo "\$ printf 'line one\\nline two\\ntab\\there, bell\\a\\n' | ringcast pub -v demo.chat"
printf 'line one\nline two\ntab\there, bell\a\n' | "$rc" pub -v demo.chat || fail "pub from stdin failed"

for i in 1 2 3 4; do
	wait "${sub_pids[$((i - 1))]}" || fail "subscriber $i failed: $(cat "$dir/sub$i.err")"
done
sub_pids=()
for i in 1 2 3 4; do
	n=$(wc -l <"$dir/sub$i.out")
	[ "$n" -eq 4 ] || fail "subscriber $i printed $n messages, not 4"
	if [ "$i" -eq 4 ]; then echo "subscriber $i (--json):"; else echo "subscriber $i:"; fi
	sed "s/^/  sub$i| /" "$dir/sub$i.out"
	sed "s/^/  sub$i (stderr)| /" "$dir/sub$i.err"
done

heading "fan-out benchmark: 1 publisher -> 4 sleeping subscribers, 200000 x 64 B at 200k msg/s"
echo "\$ ringcast bench --subs 4 --count 200000 --rate 200000 --wait sleep --per-sub"
timeout 40 "$rc" bench --subs 4 --count 200000 --rate 200000 --wait sleep --per-sub \
	|| fail "bench failed (exit $?)"

heading "ringcast stat"
"$rc" stat || fail "stat failed"

# ---- traced run (eBPF; tools/demo-trace.sh, docs/tracing.md) ----
heading "ringcast trace watching a benchmark: eBPF histogram beside bench's percentiles"
"$(dirname "$0")/demo-trace.sh" "$build" "$dir" || fail "the traced run failed"
# ---- end of the traced run ----

heading "done: every step passed"
