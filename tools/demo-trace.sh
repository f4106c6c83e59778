#!/usr/bin/env bash
# The traced part of `make demo` (tools/demo.sh runs it with RINGCAST_SOCKET
# pointing at the demo's daemon): `ringcast trace` watches a fan-out
# benchmark; its eBPF latency histogram is shown beside the benchmark's own
# percentiles, and a pinned map is read with bpftool.  Not root, or no BPF
# here: it says why and skips (exit 0).
# Usage: tools/demo-trace.sh BUILD_DIR WORK_DIR
set -euo pipefail

build=${1:?usage: demo-trace.sh BUILD_DIR WORK_DIR}
dir=${2:?usage: demo-trace.sh BUILD_DIR WORK_DIR}
rc="$build/ringcast"
topic=demo.traced
pins=/sys/fs/bpf/ringcast-demo-$$
trace_pid=""

stop_trace() {
	if [ -n "$trace_pid" ]; then
		kill -INT "$trace_pid" 2>/dev/null || true
		wait "$trace_pid" 2>/dev/null || true
		trace_pid=""
	fi
}
trap stop_trace EXIT

if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: tracing needs root.  What 'ringcast trace' says:"
	"$rc" trace --duration 1 2>&1 | sed 's/^/  /' || true
	exit 0
fi

echo "\$ ringcast trace --topic $topic --sample 1 --cumulative --pin-dir $pins &"
"$rc" trace --topic "$topic" --sample 1 --cumulative --interval 1h --pin-dir "$pins" \
	>"$dir/trace.out" 2>"$dir/trace.err" &
trace_pid=$!
for _ in $(seq 100); do
	grep -q 'Ctrl-C to end' "$dir/trace.err" 2>/dev/null && break
	if ! kill -0 "$trace_pid" 2>/dev/null; then
		trace_pid=""
		echo "skipped: ringcast trace could not start here:"
		sed 's/^/  /' "$dir/trace.err"
		exit 0
	fi
	sleep 0.1
done
grep -q 'Ctrl-C to end' "$dir/trace.err" || { echo "demo-trace: ringcast trace did not start" >&2; exit 1; }
sed 's/^/  /' "$dir/trace.err"

echo "\$ ringcast bench --subs 2 --count 20000 --rate 10000 --wait sleep --topic $topic --json"
timeout 60 "$rc" bench --subs 2 --count 20000 --rate 10000 --wait sleep --topic "$topic" --json \
	>"$dir/bench.json"

echo "\$ bpftool map dump pinned $pins/deliveries    (while tracing)"
bpftool map dump pinned "$pins/deliveries"
stop_trace

echo
echo "--- eBPF (ringcast trace, Ctrl-C'd): publish-to-deliver latency ---"
sed -n '/^topic /,$p' "$dir/trace.out"
echo "--- the benchmark's own percentiles, same run (and their log2 buckets) ---"
python3 - "$dir/bench.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
lat = b["latency_ns"]
for k in ("p50", "p90", "p99", "max"):
    v = lat[k]
    lo = 1 << (v.bit_length() - 1) if v > 1 else 0
    hi = (1 << v.bit_length()) - 1 if v > 1 else 1
    print(f"     {k:<4} {v:>12,} ns   in bucket {lo:>10} -> {hi}")
print(f"     {b['count'] * b['subs']:,} deliveries measured by bench ({b['subs']} subscribers)")
EOF
