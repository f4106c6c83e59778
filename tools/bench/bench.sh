#!/usr/bin/env bash
# make bench: ringcast against ZeroMQ, nng, Redis and Unix sockets, in one
# run, then docs/benchmarks.md and its plots (tools/bench/bench_md.py).
#
#   tools/bench/bench.sh [BUILD_DIR]
#
# Five sweeps of `ringcast bench --sweep`, every transport at every point
# (in an order that rotates), repeated ROUNDS times with the rounds
# interleaved across the sweeps, so that drift on a noisy machine hits all
# transports and all figures alike:
#   lat1    64 B, 1 subscriber, spin: paced at RATE msg/s for LAT_DURATION s
#   lat     64 B, LAT_SUBS sleeping subscribers, paced likewise
#   tput    SIZES, 1 subscriber, spin and sleep, flat out for DURATION s;
#           ringcast also with BATCH messages a call (--batch)
#   fan     64 B, FANOUT_SUBS sleeping subscribers, flat out for DURATION s
#   wake    64 B, FANOUT_SUBS spinning and sleeping subscribers, paced at
#           WAKE_RATE msg/s: the publisher's cost while subscribers are busy
#           (ringcast makes no system call) and when each message wakes them
# Environment (defaults in brackets):
#   TRANSPORTS [all]  ROUNDS [3]  RATE [10000]  WAKE_RATE [1000]
#   DURATION [0.5]  LAT_DURATION [1]  SIZES [8,64,512,4Ki,32Ki,256Ki,1Mi]  BATCH [16]
#   LAT_SUBS [1,2,4,8,16]  FANOUT_SUBS [1,2,4,8,16,64]
#   PACE [bench's default: sleep at these rates]: spin or sleep, --pace of
#   the paced sweeps (lat1, lat, wake)
#   OUT [BUILD/bench]: the CSVs;  DOC [docs/benchmarks.md]  IMG [docs/img]
#   NO_DOC=1: measure only, leave docs/ alone
# Sizes are bytes or Ki/Mi (as numfmt --from=auto reads them: 4Ki, 1Mi).
set -euo pipefail
build=${1:-build}
transports=${TRANSPORTS:-all}
rounds=${ROUNDS:-3}
rate=${RATE:-10000}
wake_rate=${WAKE_RATE:-1000}
dur=${DURATION:-0.5}
lat_dur=${LAT_DURATION:-1}
sizes=${SIZES:-8,64,512,4Ki,32Ki,256Ki,1Mi}
lat_subs=${LAT_SUBS:-1,2,4,8,16}
fan_subs=${FANOUT_SUBS:-1,2,4,8,16,64}
batch=${BATCH:-16}
pace=${PACE:-}
out=${OUT:-$build/bench}
doc=${DOC:-docs/benchmarks.md}
img=${IMG:-docs/img}

mkdir -p "$out"
rm -f "$out"/*.csv
dir=$(mktemp -d /dev/shm/ringcast-bench-XXXXXX)
cleanup() {
	if [ -n "${daemon:-}" ]; then
		kill "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Rings of 16 MiB, or room for 16 messages where that is more (ZeroMQ
# queues 1000, a Unix socket about 200 KiB).  The daemon's default 1 MiB
# holds under a millisecond of 64 B messages flat out: on a 2-CPU machine
# a subscriber that loses a time slice to the coordinator or the daemon
# then stops the publisher, which cost a third of the 1 -> 1 throughput
# (docs/benchmarks.md, Findings).  Capacity is a per-topic setting.
conf="$dir/ringcastd.conf"
: >"$conf"
for s in ${sizes//,/ }; do
	bytes=$(numfmt --from=auto "$s")
	cap=16777216
	while [ $((cap)) -lt $((16 * (bytes + 32))) ]; do cap=$((cap * 2)); done
	printf '[topic "ringcast.bench.s%s"]\ncapacity = %s\n\n' "$bytes" "$cap" >>"$conf"
done
# Private copies: other people's rebuilds of $build must not swap binaries under a run.
mkdir -p "$dir/bin/bench-peers"
# The CLI finds libringcast.so.0 beside itself (its rpath is $ORIGIN).
cp -P "$build/ringcastd" "$build/ringcast" "$build"/libringcast.so* "$dir/bin/"
cp "$build"/bench-peers/*.so "$dir/bin/bench-peers/" 2>/dev/null || true
bin="$dir/bin"
"$bin/ringcastd" --socket "$dir/sock" --runtime-dir "$dir/run" --node bench --config "$conf" -q &
daemon=$!
for _ in $(seq 100); do [ -S "$dir/sock" ] && break; sleep 0.05; done
export RINGCAST_SOCKET="$dir/sock"

echo "bench: $(nproc) CPUs, $(uname -r); transports $transports, $rounds rounds; CSVs in $out" >&2
start=$(date +%s)
# Other work on the machine moves these numbers a lot: the report says how
# much CPU it took, as the machine's busy time (/proc/stat) less our own.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
busy_start=$(busy_ticks)
sweep() { # NAME ROUND ARGS...
	local name=$1 round=$2
	shift 2
	echo "bench: round $round/$rounds, $name: $*" >&2
	# A failed run is a row with ok=0 (and a warning): the report shows it, the sweep goes on.
	"$bin/ringcast" bench --sweep --transport "$transports" --csv "$out/$name.r$round.csv" "$@" >&2 || true
}
for r in $(seq "$rounds"); do
	sweep lat1 "$r" --size 64 --subs 1 --wait spin --rate "$rate" ${pace:+--pace "$pace"} --duration "$lat_dur"
	sweep lat "$r" --size 64 --subs "$lat_subs" --wait sleep --rate "$rate" ${pace:+--pace "$pace"} --duration "$lat_dur"
	sweep tput "$r" --size "$sizes" --subs 1 --wait spin,sleep --duration "$dur" --batch "1,$batch"
	sweep fan "$r" --size 64 --subs "$fan_subs" --wait sleep --duration "$dur"
	sweep wake "$r" --size 64 --subs "$fan_subs" --wait spin,sleep --rate "$wake_rate" ${pace:+--pace "$pace"} --duration "$dur"
done
took=$(( $(date +%s) - start ))
busy=$(( $(busy_ticks) - busy_start ))
# `times`: its second line is the reaped children's user and system time, as 1m2.345s.
# Not in a pipeline: that would run it in a subshell, which has no children.
times >"$dir/times"
ours=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, t, "m"); n += t[1] * 60 + t[2] } print n }' "$dir/times")
other=$(awk -v b="$busy" -v hz="$(getconf CLK_TCK)" -v o="$ours" 'BEGIN { x = b / hz - o; printf "%.0f", x < 0 ? 0 : x }')
cap=$(( took * $(nproc) ))
echo "bench: measured in $took s; other work on the machine used $other of its $cap CPU-seconds" >&2
[ "${NO_DOC:-0}" = 1 ] && exit 0

# What the report says about the run: the machine, the versions, the settings.
{
	echo "cpus=$(nproc)"
	echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "virt=$(systemd-detect-virt 2>/dev/null || echo unknown)"
	echo "kernel=$(uname -r)"
	echo "memory=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
	echo "compiler=$(${CC:-gcc} --version | head -1)"
	for p in libzmq5 libnng1 redis-server libhiredis0.14 gnuplot-nox; do
		echo "pkg_$p=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '?')"
	done
	echo "rounds=$rounds"
	echo "rate=$rate"
	echo "wake_rate=$wake_rate"
	echo "duration=$dur"
	echo "lat_duration=$lat_dur"
	echo "batch=$batch"
	echo "date=$(date -u +%Y-%m-%d)"
	echo "took=$took"
	echo "other_cpu=$other of $cap CPU-seconds"
	echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes')"
	echo "command=TRANSPORTS=$transports ROUNDS=$rounds RATE=$rate WAKE_RATE=$wake_rate DURATION=$dur LAT_DURATION=$lat_dur SIZES=$sizes LAT_SUBS=$lat_subs FANOUT_SUBS=$fan_subs BATCH=$batch${pace:+ PACE=$pace} make bench"
	echo "ringcastd_conf=$(tr '\n' ' ' <"$conf")"
} >"$out/machine.txt"
python3 tools/bench/bench_md.py --csv-dir "$out" --doc "$doc" --img "$img"
