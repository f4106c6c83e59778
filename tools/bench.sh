#!/usr/bin/env bash
# make bench: ringcast's fan-out figures on this machine, against a private
# ringcastd.  For each subscriber count (1, 4, 16) and wait mode (spin,
# sleep) it runs a throughput run (flat out) and a latency run (paced),
# writes every run's JSON line to $OUT/runs.jsonl and prints a table.
#   tools/bench.sh BUILD_DIR     (env: COUNT, RATE, SIZE, SUBS, OUT)
set -euo pipefail
build=${1:-build}
count=${COUNT:-2000000}
rate=${RATE:-100000}
size=${SIZE:-64}
subs=${SUBS:-"1 4 16"}
out=${OUT:-$build/bench}
mkdir -p "$out"
dir=$(mktemp -d /dev/shm/ringcast-bench-XXXXXX)
cleanup() {
	[ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
"$build/ringcastd" --socket "$dir/sock" --runtime-dir "$dir/run" --node bench -q &
daemon=$!
for _ in $(seq 100); do [ -S "$dir/sock" ] && break; sleep 0.05; done
export RINGCAST_SOCKET="$dir/sock"
: >"$out/runs.jsonl"
echo "bench: $(nproc) cpus, $(uname -r), ${size}-byte messages; JSON lines in $out/runs.jsonl" >&2
for n in $subs; do
	for wait in spin sleep; do
		# Spinning subscribers need a CPU each; on a small machine they share.
		echo "bench: $n subscriber(s), $wait: throughput ($count flat out), latency ($((rate / 10)) at $rate/s)" >&2
		"$build/ringcast" bench --json --subs "$n" --size "$size" --count "$count" --wait "$wait" \
			--topic "tput.$n.$wait" | sed 's/^{/{"run":"throughput",/' >>"$out/runs.jsonl"
		"$build/ringcast" bench --json --subs "$n" --size "$size" --count $((rate / 10)) --rate "$rate" \
			--wait "$wait" --topic "lat.$n.$wait" | sed 's/^{/{"run":"latency",/' >>"$out/runs.jsonl"
	done
done
python3 - "$out/runs.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def us(ns): return f"{ns/1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
print("| subs | wait | msgs/s per sub | deliveries/s total | publisher ns/msg | p50 | p99 | p99.9 | max | lost |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
by = {(r["run"], r["subs"], r["wait"]): r for r in runs}
for (kind, n, w), r in sorted(by.items(), key=lambda k: (k[0][1], k[0][2], k[0][0])):
    if kind != "throughput":
        continue
    l = by.get(("latency", n, w), r)["latency_ns"]
    print(f"| {n} | {w} | {r['msgs_per_sec_per_sub']/1e6:.2f} M | {r['msgs_per_sec_total']/1e6:.2f} M | "
          f"{r['publisher_ns_per_msg']:.0f} | {us(l['p50'])} | {us(l['p99'])} | {us(l['p999'])} | {us(l['max'])} | "
          f"{r['lost'] + by.get(('latency', n, w), r)['lost']} |")
PY
