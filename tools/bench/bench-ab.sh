#!/usr/bin/env bash
# A/B of the fast paths: an older build's CLI and daemon against this tree's,
# each against its own private daemon, interleaved, ROUNDS times:
# 1->1 spinning flat out, 1->1 paced at 10k msg/s, fan-out to 16 sleepers.
# One JSON line per run in OUT (docs/benchmarks.md, Findings 6).
#   tools/bench/bench-ab.sh OUT ROUNDS [BASE_BUILD_DIR]   (default /tmp/base/build)
set -u
out=${1:-/tmp/ab.jsonl}; rounds=${2:-3}
: > "$out"
run() { # tag builddir args...
	local tag=$1 b=$2; shift 2
	local d; d=$(mktemp -d /dev/shm/rc-ab-XXXXXX)
	"$b/ringcastd" --socket "$d/s" --runtime-dir "$d/run" --node ab --publish '*' --subscribe '*' 2>"$d/log" &
	local pid=$!
	for i in $(seq 100); do [ -S "$d/s" ] && break; sleep 0.05; done
	"$b/ringcast" bench --socket "$d/s" "$@" --json 2>/dev/null | sed "s/^{/{\"ab\":\"$tag\",/" >> "$out"
	kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
}
base=${3:-/tmp/base/build}
new=$(cd "$(dirname "$0")/../.." && pwd)/build
for r in $(seq "$rounds"); do
	for v in base new; do
		b=$base; [ $v = new ] && b=$new
		pace=""; [ $v = new ] && pace="--pace spin"
		run $v $b --subs 1 --size 64 --wait spin --duration 2
		run $v $b --subs 1 --size 64 --wait spin --rate 10k --duration 3 $pace
		run $v $b --subs 16 --size 64 --wait sleep --duration 2
	done
done
