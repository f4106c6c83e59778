/* SPDX-License-Identifier: MIT */
/*
 * The topic registry: every ring the daemon owns, found by topic name, and
 * the node-wide bells file with its allocators (client ids, bell indexes).
 *
 * A topic is a pair of sealed memfds named after its 64-bit id,
 * "<%016x id>.ring" and ".ctl", held by the keeper (keeper.h) as well as
 * by the daemon.  The id is the hash of the
 * topic bytes keyed by the node's topic key (topic_key.h), probed upwards
 * on the (rare) collision with another topic; the topic name stored in
 * the ring, not the file name, is the truth, so ids never need to be
 * recomputed.  At start the registry
 * re-adopts every ring a previous daemon left with the keeper, so clients
 * that kept publishing and reading through a daemon restart lose nothing.
 *
 * Topics are never removed while the daemon runs: a struct rcd_topic
 * pointer stays valid until rcd_registry_close().
 */
#ifndef RINGCASTD_REGISTRY_H
#define RINGCASTD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "keeper.h"
#include "ring.h"
#include "ring_daemon.h"
#include "topic_key.h"

struct rcd_config;
struct rcd_log;

_Static_assert(RC_PUB_SLOTS <= 64, "pending repairs are a 64-bit mask per topic");

struct rcd_topic {
	struct rcd_topic *hnext; /* hash chain */
	struct rcd_topic *next;  /* every topic, in registration order */
	uint64_t hash;           /* keyed hash of name (topic_key.h): the hash bucket */
	uint64_t id;             /* names the files; hash unless probed */
	char file[17];           /* "%016" PRIx64 of id */
	int ring_fd, ctl_fd;     /* O_RDWR | O_CLOEXEC, ours */
	uid_t owner;             /* who made it, charged for it; (uid_t)-1: adopted, nobody */
	uint64_t idle_since_ns;  /* reclaim.c: since when nobody has it open (0: in use) */
	bool used;               /* reclaim.c: scratch, within one look */
	bool forged_logged;      /* duties.c: said once that a client forged its slots */
	struct rc_ring ring;     /* the daemon's writable mapping */
	/* duties.c: pub slots of dead publishers whose repair is pending */
	uint64_t repairs;        /* bit i: pub slot i (RC_PUB_SLOTS <= 64) */
	uint64_t repairs_since_ns;
	bool repairs_late;       /* warned that they take too long */
	/*
	 * Our own copy of the name: publishers can write the ring header, so
	 * the copy in shared memory is not trusted after registration.
	 */
	size_t len;
	char name[RINGCAST_TOPIC_MAX + 1];
};

struct rcd_registry {
	const struct rcd_config *cfg;
	struct rcd_log *log;
	int dirfd;                 /* the runtime directory, ours alone (rundir.h) */
	int lock_fd;               /* DIR/ringcastd.lock, flock'ed: one daemon per dir */
	int bells_fd;              /* O_RDWR */
	struct rc_bells_hdr *bells;
	int node_fd;               /* O_RDWR; clients get O_RDONLY ones */
	int lives_fd;              /* DIR/clients: our records of clients (lives.h) */
	struct rc_node_hdr *node;  /* ours alone to write */
	struct rcd_keeper keeper;  /* holds the files across our restarts */
	struct rcd_topic_key key;  /* ids are hashes keyed by it; never leaves the daemon */
	uint64_t gen;              /* this daemon's daemon_gen */
	bool announced;            /* gen stored in the node file */
	uint32_t next_id;          /* next client id; mirrored in the node file */
	uint64_t fs_bytes;         /* size of the runtime dir's file system (fstatvfs) */
	struct rcd_topic **buckets;
	size_t nbuckets, ntopics;
	struct rcd_topic *first, *last;
	unsigned skipped;          /* ring files not adopted at start */
	/* bells: taken by a connected client, or referenced by orphan slots */
	uint8_t bell_live[RC_BELLS / 8];
	uint16_t bell_orphan_refs[RC_BELLS];
	unsigned bell_cursor;
};

/*
 * mkdir -p: create path and its missing parents with mode.  0 (also when
 * it exists as a directory) or negative errno.
 */
int rcd_mkdirs(const char *path, unsigned mode);

/*
 * Open the runtime directory (created if missing), refusing one that is
 * not the daemon's alone (-EPERM), and lock it against a second daemon
 * (-EBUSY) (rundir.h); load or create the topic key (a key file that is
 * not the daemon's alone: -EPERM); create or adopt the node and bells
 * files (reg->gen is the next daemon_gen, not yet stored), then map and
 * register every ring found there.  Rings that are not the daemon's own
 * files or do not validate are logged and skipped; node and bells files
 * that are not its own are replaced.  On error *reg is cleaned up and why
 * is logged.
 */
int rcd_registry_open(struct rcd_registry *reg, const struct rcd_config *cfg,
		      struct rcd_log *log);
/*
 * Publish this daemon's generation in the bells file, once everything is
 * ready to serve: clients that see it reconnect and resume their slots.
 */
void rcd_registry_announce(struct rcd_registry *reg);
/*
 * The tick's check that the keeper lives: one that died is replaced and
 * given every file again, so that a later restart still finds them.
 */
void rcd_registry_check_keeper(struct rcd_registry *reg);
/* Rewrite the bells header if a client destroyed it. */
void rcd_registry_bells_heal(struct rcd_registry *reg);
/* Unmap and close everything; the keeper keeps the files for the next daemon. */
void rcd_registry_close(struct rcd_registry *reg);

/* The topic named name[0..len), or NULL. */
struct rcd_topic *rcd_registry_find(struct rcd_registry *reg, const char *name, size_t len);
/*
 * Find or create the topic (capacity and tether timeout from the config).
 * 0 and *out, or -ENOSPC (tmpfs full), -ENOMEM, or another negative errno
 * from creating the files.
 */
int rcd_registry_get(struct rcd_registry *reg, const char *name, size_t len,
		     struct rcd_topic **out);

/*
 * Forget t and remove its files: the caller made sure that no client,
 * orphan or pending repair refers to it.  t is freed.
 */
void rcd_registry_remove(struct rcd_registry *reg, struct rcd_topic *t);

/*
 * May uid make one more topic, name[0..len)?  0, or -EDQUOT with
 * *topics and *bytes what it holds and *max_topics, *max_bytes its share.
 * Root and the daemon's own uid are not counted.  Call before
 * rcd_registry_get() creates the topic, and rcd_registry_charge() after.
 */
int rcd_registry_uid_room(const struct rcd_registry *reg, uid_t uid, const char *name,
			  size_t len, uint32_t *topics, uint64_t *bytes, uint32_t *max_topics,
			  uint64_t *max_bytes);
void rcd_registry_charge(struct rcd_topic *t, uid_t uid);

/*
 * A new fd for a client: the ring file read-only (O_RDONLY, for
 * subscribers) or read-write, or the ctl file (always read-write).  The fd
 * is the caller's (O_CLOEXEC).  fd or negative errno.
 */
int rcd_topic_ring_fd(struct rcd_registry *reg, const struct rcd_topic *t, bool writable);
int rcd_topic_ctl_fd(const struct rcd_topic *t);
/*
 * A new read-write fd of the bells file, the caller's.  Rewrites the
 * file's header first if a client destroyed it, so new clients can map it.
 */
int rcd_registry_bells_fd(struct rcd_registry *reg);

/*
 * A new read-only fd of the node file (daemon_gen, clock, trace rate),
 * the caller's.
 */
int rcd_registry_node_fd(struct rcd_registry *reg);
/* Set the node's trace sampling rate; returns the rate before. */
uint32_t rcd_registry_trace_sample(struct rcd_registry *reg, uint32_t n);

/* Next client id from the node file (persists across restarts; never 0). */
uint32_t rcd_registry_next_client_id(struct rcd_registry *reg);

/* Bells.  get: a free index or -ENOSPC; take: claim a given one (-EBUSY). */
int rcd_bell_get(struct rcd_registry *reg);
int rcd_bell_take(struct rcd_registry *reg, uint32_t bell);
void rcd_bell_put(struct rcd_registry *reg, uint32_t bell);
bool rcd_bell_live(const struct rcd_registry *reg, uint32_t bell);
/* Orphan slots keep their bell reserved: delta +1 or -1. */
void rcd_bell_orphan_ref(struct rcd_registry *reg, uint32_t bell, int delta);

#endif /* RINGCASTD_REGISTRY_H */
