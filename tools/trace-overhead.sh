#!/usr/bin/env bash
# What tracing costs: `ringcast bench` throughput with no tracer, then with
# `ringcast trace --sample N` for N = 1, 64, 1024, one run each, on a
# private ringcastd.  Prints one table (docs/tracing.md quotes it).
# Usage: tools/trace-overhead.sh [BUILD_DIR] [BENCH OPTIONS...]
#   default bench options: --subs 1 --wait spin --duration 3
# Needs root (the tracer does).  Exit status non-zero if a step fails.
set -euo pipefail

build=${1:-build}
shift || true
bench_opts=("$@")
[ ${#bench_opts[@]} -gt 0 ] || bench_opts=(--subs 1 --wait spin --duration 3)
rc="$build/ringcast"
rcd="$build/ringcastd"
for b in "$rc" "$rcd"; do
	[ -x "$b" ] || { echo "trace-overhead: $b is missing; run make first" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "trace-overhead: needs root (for ringcast trace)" >&2; exit 1; }

dir=$(mktemp -d /dev/shm/ringcast-traceov.XXXXXX)
daemon_pid="" trace_pid=""
cleanup() {
	local status=$?
	[ -n "$trace_pid" ] && kill -INT "$trace_pid" 2>/dev/null && wait "$trace_pid" 2>/dev/null
	if [ -n "$daemon_pid" ]; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$rcd" --socket "$dir/sock" --runtime-dir "$dir/run" --node traceov -q >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do [ -S "$dir/sock" ] && break; sleep 0.1; done
[ -S "$dir/sock" ] || { echo "trace-overhead: ringcastd did not start" >&2; cat "$dir/daemon.log" >&2; exit 1; }
export RINGCAST_SOCKET="$dir/sock"

# Start `ringcast trace --sample N` and wait until its probes are attached.
start_trace() {
	"$rc" trace --sample "$1" --no-pin --interval 1h --cumulative --json \
		>"$dir/trace.json" 2>"$dir/trace.err" &
	trace_pid=$!
	for _ in $(seq 100); do
		grep -q 'Ctrl-C to end' "$dir/trace.err" 2>/dev/null && return 0
		kill -0 "$trace_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "trace-overhead: ringcast trace did not start:" >&2
	cat "$dir/trace.err" >&2
	exit 1
}

stop_trace() {
	kill -INT "$trace_pid"
	wait "$trace_pid"
	trace_pid=""
}

report() { # label bench.json [trace.json]
	python3 - "$@" <<'EOF'
import json, sys
label, bench = sys.argv[1], json.load(open(sys.argv[2]))
traced = "-"
if len(sys.argv) > 3:
    lines = [l for l in open(sys.argv[3]) if l.strip()]
    tops = {t["topic"]: t for t in json.loads(lines[-1])["topics"]} if lines else {}
    t = tops.get(bench["topic"])
    traced = str(t["deliveries"]) if t else "0"
base = float(open(sys.argv[2] + ".base").read()) if len(sys.argv) > 3 else bench["msgs_per_sec_per_sub"]
mps = bench["msgs_per_sec_per_sub"]
print(f"{label:<12} {mps:>14,.0f} {100.0 * mps / base:>8.1f}% {bench['publisher_ns_per_msg']:>11.1f}"
      f" {bench['latency_ns']['p50']:>12,} {bench['latency_ns']['p99']:>12,} {traced:>10}")
EOF
}

echo "\$ ringcast bench ${bench_opts[*]}   (one run per row; $(nproc) CPUs, $(uname -r))"
printf '%-12s %14s %9s %11s %12s %12s %10s\n' tracing msgs/s/sub "vs none" "pub ns/msg" \
	"p50 ns" "p99 ns" traced
"$rc" bench "${bench_opts[@]}" --topic traceov.none --json >"$dir/none.json"
python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['msgs_per_sec_per_sub'])" \
	"$dir/none.json" >"$dir/base"
report none "$dir/none.json"
for n in 1 64 1024; do
	start_trace "$n"
	"$rc" bench "${bench_opts[@]}" --topic "traceov.$n" --json >"$dir/s$n.json"
	stop_trace
	cp "$dir/base" "$dir/s$n.json.base"
	report "1 in $n" "$dir/s$n.json" "$dir/trace.json"
done
