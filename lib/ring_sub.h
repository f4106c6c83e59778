/* SPDX-License-Identifier: MIT */
/*
 * The subscriber's per-message path, inline: a committed record, or
 * nothing yet on a ring whose reader is tethered.  Padding, a misaligned
 * position and the lapping checks of an untethered reader are
 * rc_ring_peek_slow() in ring_sub.c, which starts over from the commit
 * word with the same two checks below.
 */
#ifndef RINGCAST_RING_SUB_H
#define RINGCAST_RING_SUB_H

#include "barrier.h"
#include "ring.h"

/*
 * The length word of the record committed at pos (aligned) in this lap,
 * or 0 if nothing is committed there yet.  The acquire load pairs with
 * the publisher's store of commit (ring_pub.h).
 */
static RC_HOT_INLINE uint32_t rc_rec_committed(const struct rc_ring *r, uint64_t pos)
{
	const struct rc_rec *rec = (const struct rc_rec *)(r->data + (pos & r->mask));
	uint64_t word = rc_load_acquire(&rec->commit);

	return (uint32_t)word == rc_stamp(r->salt, pos) ? (uint32_t)(word >> 32) : 0;
}

/*
 * The committed record of lf bytes (not padding) at pos: 1 with *v
 * filled, or -EBADMSG if no record of ours can have that length there.
 * RC_REC_PAD is above any max_payload, so a padding word fails too.
 */
static RC_HOT_INLINE int rc_rec_view(const struct rc_ring *r, uint64_t pos, uint32_t lf,
				     struct rc_view *v)
{
	uint64_t off = pos & r->mask;
	const struct rc_rec *rec = (const struct rc_rec *)(r->data + off);

	if (lf < sizeof(*rec) || lf - sizeof(*rec) > r->max_payload || rc_align(lf) > r->cap - off)
		return -EBADMSG;
	v->rec = rec;
	v->data = rec + 1;
	v->len = lf - sizeof(*rec);
	v->next = pos + rc_align(lf);
	return 1;
}

static RC_HOT_INLINE int rc_ring_peek(const struct rc_ring *r, uint64_t *pos, struct rc_view *v,
				      bool tethered)
{
	uint32_t lf;

	if (*pos & (RC_REC_ALIGN - 1))
		return rc_ring_peek_slow(r, pos, v, tethered);
	lf = rc_rec_committed(r, *pos);
	/*
	 * Nothing yet: a tethered reader cannot be lapped, and busy-polling
	 * readers land here constantly, so only an untethered one goes on
	 * to look at tail.
	 */
	if (!lf)
		return tethered ? 0 : rc_ring_peek_slow(r, pos, v, tethered);
	if (!(lf & RC_REC_PAD))
		return rc_rec_view(r, *pos, lf, v);
	return rc_ring_peek_slow(r, pos, v, tethered);
}

#endif /* RINGCAST_RING_SUB_H */
