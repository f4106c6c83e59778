/* SPDX-License-Identifier: MIT */
/*
 * The runtime directory, and which files in it the daemon trusts
 * (docs/operations.md, "Which files the daemon trusts").
 *
 * A restarted daemon adopts what it finds in the runtime directory: rings
 * with their clients' slots, the bells, the node file with the daemon
 * generation and the client ids.  Whoever could put a file there, or keep
 * a descriptor of one, could hand the next daemon state of their own
 * making.  So the directory must be the daemon's alone (its euid's, not
 * writable by group or others, not reached through a symlink), and a file
 * is adopted only if it is a regular file of the daemon's euid that no one
 * else may open (mode & 077 == 0) and that has no second name elsewhere
 * (one link).  The daemon makes its files 0600 itself.
 *
 * One daemon per directory: the lock is on DIR/ringcastd.lock, a 0600 file
 * of the daemon's, never on the directory itself, which every user who
 * can search it may open and lock first.
 */
#ifndef RINGCASTD_RUNDIR_H
#define RINGCASTD_RUNDIR_H

#include <stddef.h>

struct rcd_log;

#define RCD_LOCK_FILE "ringcastd.lock"

/*
 * Open the runtime directory at path (created 0755, less the umask, with
 * its missing parents), check that it is the daemon's, and lock it
 * against a second daemon through RCD_LOCK_FILE.  Returns the directory's
 * fd (O_RDONLY | O_DIRECTORY | O_CLOEXEC) and the lock's in *lock_fd,
 * both the caller's to close (closing the lock's releases it); or a
 * negative errno (-EPERM: the directory or the lock file is not ours;
 * -EBUSY: another daemon holds the lock), with why logged and nothing
 * left open.
 */
int rcd_rundir_open(const char *path, struct rcd_log *log, int *lock_fd);

/*
 * May the daemon adopt the file open at fd?  0 if it is a regular file
 * owned by the daemon's euid, with no group or other permission and one
 * link; else -EPERM with the reason in why[0..len) (or -errno if fstat
 * fails).
 */
int rcd_file_ours(int fd, char *why, size_t len);

/*
 * rcd_file_ours() for dirfd/name, opened without following a symlink or
 * blocking on a FIFO.  0, -ENOENT when there is no such name, or -EPERM
 * with the reason in why (a symlink, or not ours).
 */
int rcd_name_ours(int dirfd, const char *name, char *why, size_t len);

#endif /* RINGCASTD_RUNDIR_H */
