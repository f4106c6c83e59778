/* SPDX-License-Identifier: MIT */
/*
 * Reading a topic ring.  Nothing read from shared memory is trusted: every
 * length, alignment and position is checked against the geometry the
 * mapper validated, and a record is only believed when its commit word
 * carries this position's stamp.
 *
 * A tethered reader reads records in place: publishers never claim past
 * its position + capacity (ring_pub.c), so what it sees cannot change
 * under it.  An untethered reader has no such promise; it copies a record
 * out and then checks with rc_ring_still_valid() that no publisher may
 * have claimed the space meanwhile (a seqlock-style check on tail).
 */
#include <errno.h>

#include "barrier.h"
#include "ring_sub.h"

int rc_ring_peek_slow(const struct rc_ring *r, uint64_t *posp, struct rc_view *v, bool tethered)
{
	uint64_t pos = *posp, skipped = 0;

	for (;;) {
		uint64_t off = pos & r->mask, tail;
		uint32_t lf;

		if (pos & (RC_REC_ALIGN - 1))
			return -EBADMSG;
		lf = rc_rec_committed(r, pos);
		if (!lf) {
			if (tethered)
				return 0;
			tail = rc_load_acquire(&r->hdr->tail.pos);
			if (tail < pos)
				return -EBADMSG; /* a reader can never be ahead of every claim */
			if (tail - pos > r->cap)
				return -ESTALE;
			return 0;
		}
		if (!(lf & RC_REC_PAD))
			return rc_rec_view(r, pos, lf, v);
		lf &= ~RC_REC_PAD;
		if (lf < RC_REC_ALIGN || lf % RC_REC_ALIGN || lf > r->cap - off)
			return -EBADMSG;
		pos += lf;
		*posp = pos;
		/* More than a lap of padding is no ring we wrote. */
		skipped += lf;
		if (skipped > r->cap)
			return -EBADMSG;
	}
}

void rc_ring_live(const struct rc_ring *r, uint64_t *pos, uint64_t *seq)
{
	uint64_t t1, s;

	/*
	 * pos and seq move together in one 16-byte CAS but a read-only mapping
	 * cannot CAS to read them.  Every claim strictly increases pos, so if
	 * pos is the same before and after reading seq, the pair is one value.
	 * rc_ring_sub_attach tethers first and fences before calling us
	 * (pair #5 in docs/ring-format.md): it then reads a tail no earlier
	 * than a publisher's scan that missed its state store.
	 */
	do {
		t1 = rc_load_seq_cst(&r->hdr->tail.pos);
		s = rc_load_acquire(&r->hdr->tail.seq);
	} while (rc_load_acquire(&r->hdr->tail.pos) != t1);
	*pos = t1;
	*seq = s;
}

bool rc_ring_still_valid(const struct rc_ring *r, uint64_t pos)
{
	/*
	 * Order the copy's loads before the tail load.  A publisher claims
	 * (moves tail past pos + capacity) before it writes over pos, so if
	 * tail has not passed it, the copy was not overwritten.
	 */
	rc_smp_rmb();
	return rc_load_acquire(&r->hdr->tail.pos) - pos <= r->cap;
}

int rc_ring_sleep_enable(struct rc_ring *r)
{
	_Atomic uint32_t *fenced = &r->ctl->fenced;
	uint32_t f = rc_load_relaxed(fenced);

	/*
	 * From now on publishers of this ring fence their commits; the
	 * membarrier makes sure none is still running on the light path
	 * unseen (see rc_commit_light in ring_pub.h).
	 *
	 * fenced only grows (until the daemon resets it), once per slot
	 * that sleeps: a plain increment would wrap to 0 after 2^32 of
	 * them, and publishers would then commit light while we sleep
	 * (lost wake-ups).  So it saturates at UINT32_MAX, which is as
	 * non-zero as any count.  seq_cst like the fetch_add it replaces;
	 * the pairing with the publisher's relaxed load of fenced
	 * (rc_commit_light) is the membarrier below, not this ordering.
	 */
	while (f != UINT32_MAX && !atomic_compare_exchange_weak(fenced, &f, f + 1))
		;
	return rc_fence_heavy();
}

/*
 * The number each arming stores in its slot's asleep: odd, so never 0,
 * and a different one from the arming before (it wraps after 2^31
 * armings in this process).  A publisher that saw one arming takes the
 * sleeper off the count only from that arming (rc_ring_wake).
 */
static _Atomic uint32_t arm_seq;

void rc_ring_sleep_prepare(struct rc_ring *r)
{
	struct rc_sub_slot *s = &r->ctl->subs[r->sub_slot];
	uint32_t armed = (atomic_fetch_add_explicit(&arm_seq, 1, memory_order_relaxed) << 1) | 1;

	/*
	 * Counted once however often we arm: ringcast_fd() may have armed
	 * this ring already when ringcast_wait() arms it again, and a second
	 * increment would be one that no finish ever drops (publishers would
	 * then scan for sleepers on every commit).  So only the exchange
	 * that moves asleep from 0 counts; it races with a publisher's CAS
	 * or the daemon's exchange to 0, and whichever comes second sees the
	 * other's value.  Armed already, the new number makes a publisher
	 * that saw the old one leave the count alone (it rang before we
	 * armed again, perhaps).  seq_cst: the increment is ordered before
	 * the caller's re-check of the ring, against the publisher's commit
	 * then sleepers load (rc_ring_commit_done); asleep is visible to a
	 * publisher that sees the count (it is stored before the increment).
	 */
	if (atomic_exchange(&s->asleep, armed) == 0)
		atomic_fetch_add(&r->ctl->sleepers, 1);
}

void rc_ring_sleep_finish(struct rc_ring *r)
{
	struct rc_sub_slot *s = &r->ctl->subs[r->sub_slot];

	/* exchange: the daemon's release may race to drop the same count. */
	if (atomic_exchange(&s->asleep, 0))
		atomic_fetch_sub(&r->ctl->sleepers, 1);
}

bool rc_ring_sub_retether(struct rc_ring *r, uint64_t pos, uint64_t *safe_from)
{
	struct rc_sub_slot *s = &r->ctl->subs[r->sub_slot];
	uint32_t expect = RC_SUB_UNTETHERED;

	if (rc_load_acquire(&r->hdr->tail.pos) != pos)
		return false;
	if (!atomic_compare_exchange_strong(&s->state, &expect, RC_SUB_TETHERED))
		return false;
	/*
	 * Pair #5: the full fence orders our state store before the tail
	 * load, and pairs with the fence between the publisher's tail store
	 * and its scan (rc_ring_min_tethered).  A scan that missed our state
	 * read a tail no later than this one, so no cached limit passes
	 * this tail + cap.  (The CAS is a locked instruction on x86, but in
	 * C11 only the fence orders it before a load of another field.)
	 */
	rc_smp_mb();
	*safe_from = rc_load_seq_cst(&r->hdr->tail.pos);
	return true;
}
