/* SPDX-License-Identifier: MIT */
/*
 * What the harness's own files share; tests include harness.h only.
 *
 *  harness.c          the records of what a test started or created, the
 *                     fixtures and the emergency cleanup that undo them
 *  harness_janitor.c  the process that cleans up when the test cannot
 *  harness_proc.c     helper processes: fork, spawn, wait, kill
 *  harness_daemon.c   ringcastd: start, wait until ready, stop
 *  harness_client.c   clients, subscriber counts, the message inbox
 *  harness_lib.c      inside a client: the one file that reaches into lib/
 *  harness_util.c     time, shared memory, reading and writing fds
 */
#ifndef RINGCAST_IT_HARNESS_INTERNAL_H
#define RINGCAST_IT_HARNESS_INTERNAL_H

#include "harness.h"

#define HARNESS_MAX_MOUNTS 4 /* tracked by the test and by the janitor */

/* ---- records (harness.c) ---- */

/* Set in every helper process: the records belong to the test process. */
extern bool harness_in_child;

/* Record a child for teardown; if the record is full, kill it and fail the test. */
void harness_track(pid_t pid);
/* Forget a child that was reaped. */
void harness_untrack(pid_t pid);
/* Is pid one of the recorded children? */
bool harness_tracks(pid_t pid);
/* In a fresh child: forget the parent's cleanup duties and cmocka's handlers. */
void harness_child_reset(pid_t parent);
/* Record a client for teardown to close; if full, close it and fail the test. */
void harness_keep_client(struct ringcast *rc);
/* Forget a client (the caller closes it). */
void harness_forget_client(struct ringcast *rc);

/* ---- the daemon (harness_daemon.c) ---- */

/* 1 and the ids of $RINGCAST_IT_DAEMON_USER, 0 when it is not set, -ENOENT: no such user. */
int harness_daemon_user(uid_t *uid, gid_t *gid);

/* ---- the janitor (harness_janitor.c) ---- */

/* Start the janitor; without one (pipe or fork failed) nothing else changes. */
void harness_janitor_start(void);
/* Tell the janitor: 'D'/'d' a directory appears/is gone, 'M'/'m' a mount. */
void harness_janitor_say(char op, const char *path);
/* In a helper: let go of the janitor's pipe (its EOF must mean the test is gone). */
void harness_janitor_detach(void);
/* rm -rf dir, not crossing into mounts. */
void harness_rm_tree(const char *dir);

#endif /* RINGCAST_IT_HARNESS_INTERNAL_H */
