/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of a ring (ring_daemon.c): slots given out and taken
 * back, stalled subscribers untethered, dead publishers' claims repaired.
 * Only ringcastd does these; no client's libringcast carries them.  The
 * ring itself, which both sides map, is lib/ring.h's.
 */
#ifndef RINGCASTD_RING_DAEMON_H
#define RINGCASTD_RING_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

/*
 * A publisher holding pub slot `slot` is gone.  If its claim is still
 * uncommitted and no live publisher claims the same position, turn it into
 * padding and wake subscribers.  Returns 1 if repaired or nothing to do
 * (the slot is released), 0 if it must be retried later (a live publisher
 * still claims that position), negative errno on a corrupt ring.
 */
int rc_ring_repair_pub(struct rc_ring *r, unsigned slot, struct rc_bells_hdr *bells);

/*
 * Slots.  The daemon is the only allocator: it finds a free slot, attaches
 * it to a client, and releases it when the client unsubscribes or its
 * socket closes.  Attach returns the slot index or -ENOSPC, and where the
 * subscriber starts (*start_pos, *start_seq; either may be NULL), which
 * the daemon tells it in its reply: other clients can write the slot.
 */
int rc_ring_sub_attach(struct rc_ring *r, uint32_t client_id, uint32_t pid, uint32_t uid,
		       uint32_t bell, uint64_t now_ns, uint64_t *start_pos, uint64_t *start_seq);
void rc_ring_sub_release(struct rc_ring *r, unsigned slot);
int rc_ring_pub_attach(struct rc_ring *r, uint32_t client_id, uint32_t pid);
/* (rc_ring_repair_pub() releases a pub slot.) */

/*
 * An adopted ring (daemon): take the slots the files show in use as
 * given out, before the orphans are sorted (those of dead clients are
 * then released).
 */
void rc_ring_adopt_slots(struct rc_ring *r);

/*
 * Free the subscriber slots that show a state but that the daemon never
 * gave out: a client wrote them.  Those publishers scan (below the
 * file's slots_hi), or every one when all.  Returns how many.
 */
unsigned rc_ring_free_unowned(struct rc_ring *r, bool all);

/*
 * The daemon's tick for one ring: untether each tethered subscriber whose
 * position has not moved for the topic's tether timeout while data waits
 * for it.  Calls untethered(slot) for each one it untethers (for the log).
 * Returns how many it untethered.
 */
int rc_ring_untether_stalled(struct rc_ring *r, uint64_t now_ns,
			     void (*untethered)(struct rc_ring *r, unsigned slot, void *ctx), void *ctx);

#endif /* RINGCASTD_RING_DAEMON_H */
