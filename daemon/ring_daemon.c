/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of a ring: handing out and taking back slots,
 * untethering stalled subscribers, and repairing the claim of a publisher
 * that died between claim and commit.
 *
 * Crash repair.  A dead publisher's slot says which claim it was making
 * (claim = start | BUSY, end).  Three cases:
 *  - tail never passed start: its CAS never happened; nothing to do.
 *  - the record(s) in [start, end) are committed: it died after commit.
 *  - a record in there is not committed.  Then either the dead publisher
 *    won the CAS, or it lost it to another publisher that has not
 *    committed yet.  A live publisher keeps claim = start | BUSY in its
 *    slot from before its CAS until after its commit, and empties the
 *    slot when a claim fails, so if no live slot claims start, the record
 *    is the dead one's and we turn it into padding; otherwise we look
 *    again at the next tick.  A claim the tail has lapped is left alone.
 * Padding is written with a CAS from the value we found, so a publisher
 * that commits at the last moment wins and nothing is overwritten.
 */
#include <errno.h>
#include <stdlib.h>

#include "barrier.h"
#include "ring_daemon.h"

/* Our own: clients can write the file's slots_hi. */
static uint32_t slots_hi(const struct rc_ring *r)
{
	return r->subs_hi;
}

static bool sub_held(const struct rc_ring *r, unsigned i)
{
	return r->sub_held[i / 64] & (1ull << (i % 64));
}

static void sub_hold(struct rc_ring *r, unsigned i, bool held)
{
	if (held)
		r->sub_held[i / 64] |= 1ull << (i % 64);
	else
		r->sub_held[i / 64] &= ~(1ull << (i % 64));
}

void rc_ring_adopt_slots(struct rc_ring *r)
{
	unsigned i;

	/*
	 * Acquire pairs with the previous daemon's seq_cst store of state
	 * (rc_ring_sub_attach) and release store of client_id
	 * (rc_ring_pub_attach).  A slot a client forged is taken too, and
	 * released with the dead ones: no record of ours names its client.
	 */
	for (i = 0; i < RC_SUB_SLOTS; i++)
		if (rc_load_acquire(&r->ctl->subs[i].state) != RC_SUB_FREE) {
			sub_hold(r, i, true);
			r->subs_hi = i + 1;
		}
	for (i = 0; i < RC_PUB_SLOTS; i++)
		if (rc_load_acquire(&r->hdr->pubs[i].client_id) != 0)
			r->pub_held |= 1ull << i;
}

int rc_ring_sub_attach(struct rc_ring *r, uint32_t client_id, uint32_t pid, uint32_t uid,
		       uint32_t bell, uint64_t now_ns, uint64_t *start_pos, uint64_t *start_seq)
{
	unsigned i;

	for (i = 0; i < RC_SUB_SLOTS; i++) {
		struct rc_sub_slot *s = &r->ctl->subs[i];
		uint64_t pos, seq;

		/* Ours to give, whatever the line says (a client may have written it). */
		if (sub_held(r, i))
			continue;
		sub_hold(r, i, true);
		rc_store_relaxed(&s->client_id, client_id);
		rc_store_relaxed(&s->pid, pid);
		rc_store_relaxed(&s->uid, uid);
		rc_store_relaxed(&s->bell, bell);
		rc_store_relaxed(&s->delivered, 0);
		rc_store_relaxed(&s->lost, 0);
		rc_store_relaxed(&s->asleep, 0);
		rc_store_relaxed(&s->moved_ns, now_ns);
		rc_ring_live(r, &pos, &seq);
		rc_store_relaxed(&s->pos, pos);
		rc_store_relaxed(&s->seq, seq);
		if (i + 1 > r->subs_hi)
			r->subs_hi = i + 1;
		/* Ours, again: a client may have lowered it.  Pairs with scans' acquire. */
		if (r->subs_hi != rc_load_relaxed(&r->ctl->slots_hi))
			rc_store_release(&r->ctl->slots_hi, r->subs_hi);
		/*
		 * Tether, then move pos up to the tail read after: a publisher
		 * whose scan missed the new state read a tail no later than
		 * that (rc_ring_min_tethered), so its cached limit cannot pass
		 * pos + capacity.  Until the second store pos is only lower.
		 * Pair #5: the full fence between our state store and the tail
		 * load pairs with the one between the publisher's tail store
		 * and its scan; a seq_cst store and load alone do not order
		 * against the tail owner's plain store.
		 */
		rc_store_seq_cst(&s->state, RC_SUB_TETHERED);
		rc_smp_mb();
		rc_ring_live(r, &pos, &seq);
		rc_store_release(&s->seq, seq);
		rc_store_release(&s->pos, pos);
		if (r->seen)
			r->seen[i] = (struct rc_seen){ pos, now_ns };
		/* For the reply: the line is the subscriber's to write from now on. */
		if (start_pos)
			*start_pos = pos;
		if (start_seq)
			*start_seq = seq;
		return (int)i;
	}
	return -ENOSPC;
}

void rc_ring_sub_release(struct rc_ring *r, unsigned slot)
{
	struct rc_sub_slot *s;

	if (slot >= RC_SUB_SLOTS)
		return;
	s = &r->ctl->subs[slot];
	/* The owner is gone or has stopped reading: its sleeper count is ours to drop. */
	if (atomic_exchange(&s->asleep, 0))
		atomic_fetch_sub(&r->ctl->sleepers, 1);
	rc_store_relaxed(&s->client_id, 0);
	/* Publishers stop counting it at their next scan (their seq_cst load). */
	rc_store_seq_cst(&s->state, RC_SUB_FREE);
	sub_hold(r, slot, false);
	/*
	 * The last subscriber gone: publishers may commit light again.  Only
	 * the daemon attaches subscribers, so none can be arming meanwhile;
	 * a new one raises the count again before it first sleeps.
	 */
	for (slot = 0; slot < slots_hi(r); slot++)
		if (sub_held(r, slot))
			return;
	rc_store_release(&r->ctl->fenced, 0);
}

int rc_ring_pub_attach(struct rc_ring *r, uint32_t client_id, uint32_t pid)
{
	unsigned i;

	for (i = 0; i < RC_PUB_SLOTS; i++) {
		struct rc_pub_slot *p = &r->hdr->pubs[i];

		/* Ours to give, whatever the header says (publishers can write it). */
		if (r->pub_held & (1ull << i))
			continue;
		r->pub_held |= 1ull << i;
		rc_store_relaxed(&p->claim, 0);
		rc_store_relaxed(&p->end, 0);
		rc_store_relaxed(&p->pid, pid);
		/* The client learns the slot from our reply, after this store. */
		rc_store_release(&p->client_id, client_id);
		return (int)i;
	}
	return -ENOSPC;
}

/* Free a publisher's slot; the last one out resets the tail's sharing state. */
static void release_pub(struct rc_ring *r, unsigned slot)
{
	struct rc_pub_slot *p = &r->hdr->pubs[slot];
	uint32_t owner = slot + 1;
	unsigned i;

	/* A dead owner's last tail store is visible: its claim ended or was repaired. */
	atomic_compare_exchange_strong(&r->hdr->tail.owner, &owner, 0);
	rc_store_relaxed(&p->claim, 0);
	rc_store_relaxed(&p->end, 0);
	rc_store_relaxed(&p->pid, 0);
	rc_store_release(&p->client_id, 0);
	r->pub_held &= ~(1ull << slot);
	/* Only the daemon attaches publishers, so none can appear meanwhile. */
	for (i = 0; i < RC_PUB_SLOTS; i++)
		if (r->pub_held & (1ull << i))
			return;
	rc_store_release(&r->hdr->tail.shared, 0);
}

/* Does a publisher other than the dead one still claim start? */
static bool live_claim_at(const struct rc_ring *r, unsigned dead, uint64_t start)
{
	unsigned i;

	for (i = 0; i < RC_PUB_SLOTS; i++) {
		/* Pairs with the release store of claim: slot_claim() or rc_slot_claim_owner(). */
		uint64_t c = rc_load_acquire(&r->hdr->pubs[i].claim);

		if (i != dead && (c & RC_CLAIM_BUSY) && !(c & RC_CLAIM_DEAD) &&
		    (c & ~(RC_CLAIM_BUSY | RC_CLAIM_DEAD)) == start)
			return true;
	}
	return false;
}

/*
 * Pad what is left uncommitted of the dead claim [start, end) of client
 * owner.  A claim holds one record, perhaps after its wrap padding, or
 * several (the owner's ringcast_broadcast_many()), committed in order: we
 * step over the owner's committed records and pad from the first record
 * not committed to the claim's end, or to the ring's end and then on from
 * the ring's start (padding never straddles the end either).  Any other
 * committed record means the claim was never the owner's (it lost the
 * CAS to that record's publisher): we stop there.  Sets *repaired if it
 * wrote padding; 0 or -EBADMSG (a committed length that leaves the claim).
 */
static int pad_claim(struct rc_ring *r, uint64_t start, uint64_t end, uint32_t owner, bool *repaired)
{
	uint64_t pos = start;

	while (pos < end) {
		struct rc_rec *rec = rc_ring_rec(r, pos);
		uint64_t off = pos & r->mask, seg = end - pos, word, step;
		uint32_t lf;

		if (seg > r->cap - off)
			seg = r->cap - off;
		word = rc_load_acquire(&rec->commit);
		lf = (uint32_t)(word >> 32);
		if ((uint32_t)word != rc_stamp(r->salt, pos) || lf == 0) {
			/*
			 * seq_cst like a commit; the CAS fails only if the
			 * word changed (a commit at the last moment), and
			 * then we look at what is there.
			 */
			if (atomic_compare_exchange_strong(&rec->commit, &word,
				rc_commit_word(r->salt, pos, RC_REC_PAD | (uint32_t)seg))) {
				*repaired = true;
				pos += seg;
			}
			continue;
		}
		step = rc_align(lf & ~RC_REC_PAD);
		if (step < RC_REC_ALIGN || step > seg || (!(lf & RC_REC_PAD) && step < sizeof(*rec)))
			return -EBADMSG;
		/* Committed: step over the claim's own wrap padding or the owner's record. */
		if (lf & RC_REC_PAD ? pos != start || step != r->cap - off :
				      rec->client_id != owner) /* ordered by the acquire of commit */
			return 0;
		pos += step;
	}
	return 0;
}

int rc_ring_repair_pub(struct rc_ring *r, unsigned slot, struct rc_bells_hdr *bells)
{
	struct rc_pub_slot *p;
	uint64_t c, start, end, tail;
	bool repaired = false;
	int ret = 0;

	if (slot >= RC_PUB_SLOTS)
		return -EINVAL;
	p = &r->hdr->pubs[slot];
	/* The owner is dead: no one else writes its claim now. */
	c = atomic_fetch_or(&p->claim, RC_CLAIM_DEAD);
	if (!(c & RC_CLAIM_BUSY))
		goto done;
	start = c & ~(RC_CLAIM_BUSY | RC_CLAIM_DEAD);
	end = rc_load_relaxed(&p->end); /* ordered by the acquire above */
	if (end <= start || end - start > r->cap || (start | end) & (RC_REC_ALIGN - 1))
		return -EBADMSG;
	/*
	 * Pairs with the claim's CAS (a full barrier) or the owner's tail
	 * store.  Had the claim gone through, tail would be at end or past:
	 * it only grows.
	 */
	tail = rc_load_acquire(&r->hdr->tail.pos);
	if (tail < end)
		goto done;
	/*
	 * Lapped: [start, end) holds later records now, whoever claimed it.
	 * Padding there would overwrite one (a claim the dead publisher
	 * never made, say, which a slot can only show if it is stale).
	 */
	if (tail - start > r->cap)
		goto done;
	if (live_claim_at(r, slot, start))
		return 0;
	ret = pad_claim(r, start, end, rc_load_relaxed(&p->client_id), &repaired);
	if (repaired)
		rc_ring_wake(r, bells);
	if (ret < 0)
		return ret;
done:
	release_pub(r, slot);
	return 1;
}

unsigned rc_ring_free_unowned(struct rc_ring *r, bool all)
{
	uint32_t shown = rc_load_relaxed(&r->ctl->slots_hi);
	unsigned i, n = 0, hi;

	/*
	 * Publishers scan up to the file's slots_hi, so a slot above it
	 * cannot stall or fool them: look as far as they do, or we do, and
	 * at every slot when all.
	 */
	hi = all || shown > RC_SUB_SLOTS ? RC_SUB_SLOTS : shown;
	if (hi < r->subs_hi)
		hi = r->subs_hi;
	for (i = 0; i < hi; i++) {
		struct rc_sub_slot *s = &r->ctl->subs[i];

		if (sub_held(r, i) || rc_load_relaxed(&s->state) == RC_SUB_FREE)
			continue;
		/* Not counted in sleepers by anyone we know of: leave the count be. */
		rc_store_relaxed(&s->asleep, 0);
		rc_store_relaxed(&s->client_id, 0);
		rc_store_seq_cst(&s->state, RC_SUB_FREE);
		n++;
	}
	if (rc_load_relaxed(&r->ctl->slots_hi) != r->subs_hi)
		rc_store_release(&r->ctl->slots_hi, r->subs_hi);
	return n;
}

int rc_ring_untether_stalled(struct rc_ring *r, uint64_t now_ns,
			     void (*untethered)(struct rc_ring *r, unsigned slot, void *ctx), void *ctx)
{
	uint64_t timeout = (uint64_t)r->tether_timeout_ms * 1000000ull;
	uint64_t tail = rc_load_acquire(&r->hdr->tail.pos);
	uint32_t i, hi = slots_hi(r);
	int n = 0;

	if (!r->seen) {
		r->seen = calloc(RC_SUB_SLOTS, sizeof(*r->seen));
		if (!r->seen)
			return -ENOMEM;
		/* First look (or first since an adoption): everyone starts moving now. */
		for (i = 0; i < RC_SUB_SLOTS; i++) {
			r->seen[i] = (struct rc_seen){ rc_load_acquire(&r->ctl->subs[i].pos), now_ns };
			rc_store_relaxed(&r->ctl->subs[i].moved_ns, now_ns);
		}
	}
	for (i = 0; i < hi; i++) {
		struct rc_sub_slot *s = &r->ctl->subs[i];
		uint32_t expect = RC_SUB_TETHERED;
		uint64_t pos;

		if (rc_load_acquire(&s->state) != RC_SUB_TETHERED)
			continue;
		pos = rc_load_acquire(&s->pos);
		/*
		 * Past the furthest position seen, or caught up (holding no one
		 * back): not stalled.  Only forward counts, so a pos moved back
		 * and forth is no progress.  moved_ns is for stat to show.
		 */
		if (pos > r->seen[i].pos || pos >= tail) {
			r->seen[i] = (struct rc_seen){ pos > r->seen[i].pos ? pos : r->seen[i].pos,
						       now_ns };
			rc_store_relaxed(&s->moved_ns, now_ns);
			continue;
		}
		if (timeout == 0 || now_ns - r->seen[i].ns < timeout)
			continue;
		/* CAS: the subscriber may be re-tethering or the slot released. */
		if (atomic_compare_exchange_strong(&s->state, &expect, RC_SUB_UNTETHERED)) {
			n++;
			if (untethered)
				untethered(r, i, ctx);
		}
	}
	return n;
}
