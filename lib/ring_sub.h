/* SPDX-License-Identifier: MIT */
/*
 * The subscriber's per-message path, inline: a committed record, or
 * nothing yet on a ring whose reader is tethered.  Everything else
 * (padding, a record whose header cannot be, the lapping checks of an
 * untethered reader) is rc_ring_peek_slow() in ring_sub.c, which checks
 * the record again from the start.
 */
#ifndef RINGCAST_RING_SUB_H
#define RINGCAST_RING_SUB_H

#include "barrier.h"
#include "ring.h"

static RC_HOT_INLINE int rc_ring_peek(const struct rc_ring *r, uint64_t *pos, struct rc_view *v,
				      bool tethered)
{
	uint64_t off = *pos & r->mask, word;
	const struct rc_rec *rec = (const struct rc_rec *)(r->data + off);
	uint32_t lf;

	if (*pos & (RC_REC_ALIGN - 1))
		return rc_ring_peek_slow(r, pos, v, tethered);
	/* Pairs with the publisher's store of commit (ring_pub.h). */
	word = rc_load_acquire(&rec->commit);
	lf = (uint32_t)(word >> 32);
	if ((uint32_t)word != rc_stamp(r->salt, *pos) || lf == 0) {
		/*
		 * A tethered reader cannot be lapped, and busy-polling readers
		 * land here constantly: leave tail's line to the publishers.
		 */
		if (tethered)
			return 0;
	} else if (lf >= sizeof(*rec) &&
		   lf - sizeof(*rec) <= r->max_payload && rc_align(lf) <= r->cap - off) {
		/* RC_REC_PAD is above any max_payload, so padding goes the slow way. */
		v->rec = rec;
		v->data = rec + 1;
		v->len = lf - sizeof(*rec);
		v->next = *pos + rc_align(lf);
		return 1;
	}
	return rc_ring_peek_slow(r, pos, v, tethered);
}

#endif /* RINGCAST_RING_SUB_H */
