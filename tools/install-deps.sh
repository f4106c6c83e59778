#!/usr/bin/env bash
# Install the Debian 12 packages ringcast needs that are not yet present.
# Usage: tools/install-deps.sh [build|bench]   (default: build)
# Uses apt-get directly as root, through sudo otherwise.  Nothing is
# downloaded from anywhere but the distribution's archive.
set -euo pipefail

build_pkgs=(build-essential liburing-dev libbpf-dev libelf-dev zlib1g-dev clang llvm
	libclang-rt-14-dev bpftool libcmocka-dev systemtap-sdt-dev libsodium-dev
	pkg-config iproute2 util-linux strace python3 bpftrace python3-seccomp systemd passwd)
bench_pkgs=(libzmq3-dev libnng-dev redis-server libhiredis-dev gnuplot-nox)

case "${1:-build}" in
build) want=("${build_pkgs[@]}") ;;
bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 [build|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
