/* SPDX-License-Identifier: MIT */
/*
 * The daemon's own record of its clients, and how it learns that one died
 * without its socket (docs/security.md, "Who is alive").
 *
 * For every client that says HELLO the daemon writes a small file,
 * clients/<id> in the runtime directory (the directory is 0700 and the
 * files 0600, the daemon's), with what it knows of the client: pid, uid,
 * doorbell.  It then opens the file read-only once more, takes a read
 * lock on it through that open file description (an OFD lock), and gives
 * the descriptor to the client in HELLO_OK.  The lock belongs to the open
 * file description, so it lasts exactly as long as the client holds the
 * descriptor: the kernel drops it when the client dies, whether or not a
 * daemon is running.
 *
 * A daemon started after another finds the records left behind: a
 * record whose lock is gone is a dead client, whose slots it releases
 * (and whose half-made claims it repairs) at once instead of waiting for
 * the reap grace; only a recorded, live client may resume an identity,
 * and its pid, uid and doorbell come from the record, never from the
 * slots in files that clients can write.
 */
#ifndef RINGCASTD_LIVES_H
#define RINGCASTD_LIVES_H

#include <stdbool.h>
#include <stdint.h>

struct rcd_life {
	uint32_t client_id, pid, uid, bell;
};

/* Open (creating it if missing) DIR/clients; -errno, or the fd. */
int rcd_lives_open(int dirfd);

/*
 * Write the record of a client and return a read-only descriptor holding
 * its life lock, for the client (negative errno on failure).
 */
int rcd_lives_record(int lives_fd, const struct rcd_life *l);

/* Forget a client whose socket we saw close. */
void rcd_lives_forget(int lives_fd, uint32_t client_id);

/* Read a record: 0, -ENOENT (none) or -EBADMSG (not one of ours). */
int rcd_lives_read(int lives_fd, uint32_t client_id, struct rcd_life *out);

/*
 * Does some process still hold the client's life lock?  false also when
 * there is no record, or it cannot be checked.
 */
bool rcd_lives_alive(int lives_fd, uint32_t client_id);

#endif /* RINGCASTD_LIVES_H */
