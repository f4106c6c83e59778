#!/usr/bin/python3
"""Run a program under the seccomp filter that a systemd unit's
SystemCallFilter= lines describe, as systemd 252 would build it, except
that a call outside the list kills the process (a missing call must not
go unnoticed in a test).  Used by as-service.sh for make test-unprivileged.

  syscall-filter.py UNIT --list               print the allowed calls
  syscall-filter.py UNIT -- PROGRAM ARGS...   exec PROGRAM under the filter

Groups (@system-service, ...) are expanded from `systemd-analyze
syscall-filter`, so the list is the installed systemd's.  Lines are applied
in order: a plain line adds to the allow list (the first one starts it), a
line starting with ~ takes away.  Native architecture only, as
SystemCallArchitectures=native.  Needs python3-seccomp.
"""
import subprocess
import sys


def groups():
    """Every group systemd-analyze knows: name -> its members (calls and groups)."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                         text=True, check=True).stdout
    known, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = known.setdefault(line.strip(), [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())
    return known


def expand(name, known):
    if not name.startswith("@"):
        return {name}
    if name not in known:
        sys.exit(f"syscall-filter: systemd-analyze knows no group {name}")
    calls = set()
    for member in known[name]:
        calls |= expand(member, known)
    return calls


def allowed(unit):
    known = groups()
    calls = None
    for line in open(unit, encoding="utf-8"):
        key, _, val = line.strip().partition("=")
        if key != "SystemCallFilter":
            continue
        deny = val.startswith("~")
        names = set()
        for item in val.lstrip("~").split():
            names |= expand(item, known)
        if deny:
            calls = (calls or set()) - names
        else:
            calls = (calls or set()) | names
    if calls is None:
        sys.exit(f"syscall-filter: {unit} has no SystemCallFilter= line")
    return calls


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in ("--list", "--"):
        sys.exit(__doc__)
    calls = allowed(sys.argv[1])
    if sys.argv[2] == "--list":
        print("\n".join(sorted(calls)))
        return
    import errno
    import os

    import seccomp

    f = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    for name in sorted(calls):
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # a call this architecture does not have (e.g. the *_time64 ones)
    f.load()
    try:
        os.execvp(sys.argv[3], sys.argv[3:])
    except OSError as e:
        sys.exit(f"syscall-filter: exec {sys.argv[3]}: {os.strerror(e.errno or errno.EIO)}")


if __name__ == "__main__":
    main()
