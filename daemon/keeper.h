/* SPDX-License-Identifier: MIT */
/*
 * The keeper: a small process that holds the node's shared files while no
 * daemon does, so that a daemon that starts again, even after SIGKILL,
 * adopts the very rings its clients still map.
 *
 * Why a process: the shared files are sealed memfds (ring_format.h,
 * "Sealed"), which no client can shrink or grow, so none can make another
 * fault with SIGBUS or fill a file system.  A memfd has no name in any
 * directory; it lives while some process holds it.  The keeper is that
 * process.  It is forked by the first daemon of a runtime directory,
 * listens on DIR/keeper.sock (0600, in a directory that is the daemon's
 * alone) and talks only to a peer of its own uid.  It exits when that
 * socket or the directory is removed, or on SIGTERM, and then moves the
 * node file's daemon_gen on, so that clients of the files it let go
 * reconnect; killing it forgets the node's topics (the next daemon starts
 * afresh, as on an empty directory).
 *
 * Its protocol, one SOCK_SEQPACKET message each way, a name per file:
 * PUT name + fd (hold it, in place of any file of that name), DROP name,
 * LIST (answered by ENTRY name + fd for each file held, then END).
 */
#ifndef RINGCASTD_KEEPER_H
#define RINGCASTD_KEEPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rcd_log;

#define RCD_KEEPER_SOCK "keeper.sock"
#define RCD_KEEPER_NAME_MAX 32

/* One message of the keeper's protocol, as it is on the wire (one host: native order). */
enum rcd_keeper_op {
	RCD_KEEPER_PUT = 1,   /* + 1 fd: hold it as name */
	RCD_KEEPER_DROP = 2,  /* forget name */
	RCD_KEEPER_LIST = 3,  /* answered by ENTRY for each file, then END */
	RCD_KEEPER_ENTRY = 4, /* + 1 fd: a file held as name */
	RCD_KEEPER_END = 5,
};

struct rcd_keeper_msg {
	uint32_t op;       /* enum rcd_keeper_op */
	uint32_t reserved; /* 0 */
	char name[RCD_KEEPER_NAME_MAX]; /* NUL-terminated; the rest zeros */
};

/*
 * Check a received message: len bytes at buf, nfds descriptors came with
 * it, truncated if the kernel cut it or its descriptors.  0 and *m, or
 * -EBADMSG for anything else: a wrong size, an unknown op, a name not
 * NUL-terminated or not zero-filled after it, a non-zero reserved field,
 * a name where none belongs or none where one does, or descriptors on an
 * op that carries none (or not exactly one on one that does).
 */
int rcd_keeper_decode(const void *buf, size_t len, unsigned nfds, bool truncated,
		      struct rcd_keeper_msg *m);

struct rcd_kept {
	char name[RCD_KEEPER_NAME_MAX];
	int fd; /* -1 once taken */
};

struct rcd_keeper {
	int sock;              /* to the keeper; -1 if there is none */
	int dirfd;             /* the runtime directory (not ours to close) */
	char path[4200];       /* DIR/keeper.sock, for messages */
	char dir[4096];        /* DIR */
	struct rcd_log *log;
	struct rcd_kept *kept; /* what it held when we connected */
	size_t nkept;
};

/*
 * Connect to the keeper of the runtime directory open at dirfd (path: its
 * name, for the socket's address), starting one if there is none, and
 * fetch the files it holds (rcd_keeper_take()).  0 or negative errno
 * (logged).
 */
int rcd_keeper_open(struct rcd_keeper *k, int dirfd, const char *dir, struct rcd_log *log);

/* The fd of the file named name that the keeper held at open, now the caller's; -1 if none. */
int rcd_keeper_take(struct rcd_keeper *k, const char *name);

/*
 * Have the keeper hold fd as name (fd stays the caller's too).  0 or
 * negative errno (-EPIPE: the keeper is gone; rcd_keeper_lost() replaces
 * it).
 */
int rcd_keeper_put(struct rcd_keeper *k, const char *name, int fd);

/* Have the keeper forget name. */
void rcd_keeper_drop(struct rcd_keeper *k, const char *name);

/*
 * Did the keeper die since the last call?  Then a new one is started and
 * true returned: the caller puts every file again.
 */
bool rcd_keeper_lost(struct rcd_keeper *k);

/* Close the connection and every file not taken.  The keeper lives on. */
void rcd_keeper_close(struct rcd_keeper *k);

/*
 * The keeper's own main(): ringcastd runs it when its first argument is
 * RCD_KEEPER_ARG (the daemon starts it so; nobody else has a reason to).
 */
#define RCD_KEEPER_ARG "--be-keeper"
/*
 * Its name, in ps and in /proc/PID/cmdline: not "ringcastd", so that an
 * admin's `pkill ringcastd` or `killall -9 ringcastd` stops the daemon
 * and leaves the node's files to the next one, as it did when they were
 * files in the runtime directory.
 */
#define RCD_KEEPER_NAME "ringcast-keeper"
int rcd_keeper_main(int argc, char **argv);

#endif /* RINGCASTD_KEEPER_H */
