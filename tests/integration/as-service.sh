#!/usr/bin/env bash
# as-service.sh PROGRAM ARGS...: exec PROGRAM confined as
# daemon/ringcastd.service confines ringcastd, as far as that can be done
# without systemd as PID 1.  make test-unprivileged puts it in front of
# every test daemon (RINGCAST_IT_DAEMON_WRAP).  Root only.
#
#   User=ringcast, Group=ringcast     setpriv: uid and gid ringcast, no
#                                     supplementary groups
#   CapabilityBoundingSet= (empty),   every capability set empty, the
#   AmbientCapabilities= (empty),     bounding set too; no_new_privs
#   NoNewPrivileges=yes
#   PrivateNetwork=yes                a network namespace of its own
#                                     (clients reach the socket by its path)
#   ProtectProc=invisible             a /proc that shows only its own processes
#   ProtectSystem=strict              the system read-only; /dev/shm, where
#                                     the tests keep the daemon's directories,
#                                     stays writable
#   SystemCallFilter=                 the unit's lines as a seccomp filter
#                                     (syscall-filter.py), which kills at a
#                                     call outside them where the unit says
#                                     EPERM: a missing call must show
#
# Not reproduced: PrivateTmp, PrivateDevices (the tests' directories are in
# /dev/shm), the Protect{Kernel*,ControlGroups,Clock,Hostname} mounts and
# filters, RestrictNamespaces and the other seccomp-based settings, UMask,
# the limits.
#
# Each step execs the next, so PROGRAM keeps the caller's pid and its
# parent-death signal (setpriv --pdeathsig=keep: a change of uid clears it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
unit="$here/../../daemon/ringcastd.service"
user=${RINGCAST_IT_DAEMON_USER:-ringcast}

if [ "${1:-}" != --inside ]; then
	[ $# -gt 0 ] || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }
	exec unshare --mount --net --propagation=private "$0" --inside "$@"
fi
shift

mount -t proc -o hidepid=invisible,nosuid,nodev,noexec proc /proc
for d in /*; do
	case "$d" in /dev | /proc | /sys | /mnt | /media) continue ;; esac
	[ -d "$d" ] && [ ! -L "$d" ] || continue
	mount --rbind "$d" "$d"
	mount -o remount,bind,ro "$d"
done

exec setpriv --reuid="$user" --regid="$user" --clear-groups \
	--bounding-set=-all --inh-caps=-all --ambient-caps=-all \
	--no-new-privs --pdeathsig=keep \
	"$here/syscall-filter.py" "$unit" -- "$@"
