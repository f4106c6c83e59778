/* SPDX-License-Identifier: MIT */
/*
 * One topic's ring as a process sees it: the mapped .ring and .ctl files,
 * and the operations on them.  Shared by libringcast (publish, read) and
 * ringcastd (create, repair, untether, stat).  Internal: not installed.
 */
#ifndef RINGCAST_RING_H
#define RINGCAST_RING_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_format.h"

struct rc_ring {
	struct rc_ring_hdr *hdr; /* start of the .ring mapping */
	uint8_t *data;           /* hdr + RC_RING_HDR_SIZE */
	size_t ring_len;         /* bytes mapped */
	struct rc_ctl_hdr *ctl;
	/* Copied from the header once, checked, never read from it again. */
	uint64_t cap, mask, max_payload, topic_id;
	uint32_t salt, tether_timeout_ms;
	bool writable;
	/*
	 * This process is registered for membarrier (fence.c), so commits
	 * may skip the full fence on rings where no subscriber sleeps.
	 */
	bool light_commit;
	/* publisher-private */
	int pub_slot;       /* -1 when not a publisher */
	uint64_t limit;     /* cached: may claim below this position */
	bool exclusive;     /* we own the tail (tail.owner == pub_slot + 1) */
	bool shared_announced; /* we raised tail.shared: we CAS the tail */
	bool takeover_fenced;  /* ran the membarrier before taking the tail from its owner */
	uint64_t x_pos, x_seq; /* the tail while we own it */
	/* subscriber-private */
	int sub_slot;       /* -1 when not a subscriber */
	/*
	 * daemon-private, per subscriber slot: the furthest position seen
	 * and when it was first seen there.  Not the slot's own pos and
	 * moved_ns, which its subscriber can write: a stalled one could
	 * then look busy and never be untethered.
	 */
	struct rc_seen {
		uint64_t pos, ns;
	} *seen;
	/*
	 * daemon-private: which slots the daemon gave out, and 1 + the
	 * highest subscriber slot it ever gave.  Never the files' state,
	 * client_id or slots_hi, which clients can write: a client that
	 * marked every free slot busy made every later subscribe fail with
	 * -ENOSPC.
	 */
	uint64_t sub_held[RC_SUB_SLOTS / 64];
	uint64_t pub_held;
	uint32_t subs_hi;
};

/*
 * For the per-message paths (ring_pub.h, ring_sub.h): the compiler's
 * inliner weighs these as ordinary calls, and a publish or a delivery
 * needs them flat.
 */
#define RC_HOT_INLINE inline __attribute__((always_inline))

/* What rc_ring_peek() found at a reader's position. */
struct rc_view {
	const struct rc_rec *rec; /* in the ring */
	const void *data;
	size_t len;
	uint64_t next; /* position after this record */
};

/* ---- files (daemon) ---- */

/*
 * Sealed files.  Every shared file is a memfd that its maker seals
 * against shrinking and growing before anyone else holds it, so no holder
 * of a writable descriptor can truncate it (SIGBUS for every other
 * mapper) or grow it (filling memory, or failing the next map's size
 * check).  Punching a hole only zeroes pages, as a write could.  Every
 * mapper refuses a file without these seals (-EBADMSG).
 */
#define RC_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW)

/* 0 if fd is a file sealed with RC_SEALS, -EPERM if not. */
int rc_file_sealed(int fd);

/*
 * Create the files of a topic, sealed memfds labelled <name>.ring and
 * <name>.ctl, for topic (1..255 bytes) with the given capacity (power of
 * two in [RC_CAPACITY_MIN, RC_CAPACITY_MAX]).  Pages are reserved with
 * fallocate, so a lack of memory fails here with -ENOSPC and never later
 * with SIGBUS.  On success the two fds are the caller's
 * (O_RDWR | O_CLOEXEC).
 */
int rc_ring_create(const char *name, const char *topic, size_t topic_len,
		   uint64_t capacity, uint64_t topic_id, uint32_t tether_timeout_ms,
		   int *ring_fd, int *ctl_fd);

/*
 * Map an existing ring: ring_fd read-write when writable, else read-only
 * (PROT_READ); ctl_fd always read-write.  Validates magic, version,
 * sizes, capacity and topic: -EBADMSG if anything is off, -EPROTO for
 * another format version.  The fds stay the caller's; r owns the maps.
 */
int rc_ring_map(struct rc_ring *r, int ring_fd, int ctl_fd, bool writable);
void rc_ring_unmap(struct rc_ring *r);

/* ---- publishing (publisher holding pub_slot) ---- */

/* rc_ring_claim() and rc_ring_commit() are inline: ring_pub.h. */

/* The record claimed at pos. */
static inline struct rc_rec *rc_ring_rec(struct rc_ring *r, uint64_t pos)
{
	return (struct rc_rec *)(r->data + (pos & r->mask));
}
/*
 * Store word (a commit word, or padding) at the claim at pos, unless the
 * daemon's repair padded it first; then end the claim and ring sleepers,
 * as rc_ring_commit() does.  false: the repair won, nothing was written.
 * For zero-copy claims, which a repair may overtake; the inline publish
 * paths own their claim for a few instructions and store plainly.
 */
bool rc_ring_settle(struct rc_ring *r, uint64_t pos, uint64_t word, struct rc_bells_hdr *bells);
/* Turn the claim of len bytes of payload at pos into padding that readers skip (rc_ring_settle). */
bool rc_ring_abort(struct rc_ring *r, uint64_t pos, size_t len, struct rc_bells_hdr *bells);

/* Wake every sleeping subscriber of r (cheap when none sleeps). */
void rc_ring_wake(struct rc_ring *r, struct rc_bells_hdr *bells);

/* ---- reading (subscriber holding sub_slot) ---- */

/*
 * Look at the record at *pos, first moving *pos past any padding.  Returns
 * 1 with *v filled, 0 if nothing is committed there yet, -EBADMSG if the
 * ring is corrupt (a length, alignment or position that cannot be),
 * -ESTALE if *pos was overwritten (lapped: only an untethered reader;
 * a tethered one passes tethered = true and skips that check).
 * rc_ring_peek() in ring_sub.h is the same, with its common cases inline.
 */
int rc_ring_peek_slow(const struct rc_ring *r, uint64_t *pos, struct rc_view *v, bool tethered);

/*
 * For a lapped reader: a consistent (position, sequence) pair at the
 * ring's live tail to resume from.
 */
void rc_ring_live(const struct rc_ring *r, uint64_t *pos, uint64_t *seq);

/*
 * After copying a record read at pos..end out of the ring: true if no
 * publisher can have overwritten it meanwhile (the seqlock-style check
 * an untethered reader needs).
 */
bool rc_ring_still_valid(const struct rc_ring *r, uint64_t pos);

/*
 * A subscriber about to sleep counts itself in ctl->sleepers (after arming
 * its bell) so publishers know to ring; finish undoes it.  Only one of
 * finish and the daemon's release drops the count.
 */
void rc_ring_sleep_prepare(struct rc_ring *r);
/*
 * Before a subscriber first sleeps on r: make publishers fence their
 * commits.  Returns 0, or a negative errno if the membarrier failed (the
 * caller must then not trust its bell and sleep in short slices).
 */
int rc_ring_sleep_enable(struct rc_ring *r);
void rc_ring_sleep_finish(struct rc_ring *r);

/*
 * An untethered subscriber that has caught up (pos == tail) tethers itself
 * again.  Returns true and *safe_from: until the reader passes it, some
 * publisher may still hold a limit computed without us, so read by copy.
 */
bool rc_ring_sub_retether(struct rc_ring *r, uint64_t pos, uint64_t *safe_from);

/* Smallest position a tethered subscriber still needs (tail if none). */
uint64_t rc_ring_min_tethered(const struct rc_ring *r);


/* ---- the asymmetric fence (fence.c) ---- */

/* Register this process; true if publishers here may commit light. */
bool rc_fence_register(void);
/* Make every registered thread run a full barrier (a sleeper, before its re-check). */
int rc_fence_heavy(void);

/* ---- bells ---- */

/* Create the node's bells file. */
int rc_bells_create(int *fd);
int rc_bells_map(int fd, struct rc_bells_hdr **out);
void rc_bells_unmap(struct rc_bells_hdr *b);

/*
 * The node file, likewise.  The daemon maps it writable; clients get an
 * O_RDONLY fd and map it with writable false.
 */
int rc_node_create(int *fd);
int rc_node_map(int fd, bool writable, struct rc_node_hdr **out);
void rc_node_unmap(const struct rc_node_hdr *n);
/* Wake one client's doorbell if it is armed. */
void rc_bell_ring(struct rc_bells_hdr *b, uint32_t bell);

#endif /* RINGCAST_RING_H */
