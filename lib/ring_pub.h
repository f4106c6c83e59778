/* SPDX-License-Identifier: MIT */
/*
 * The publisher's hot path, inline: a claim on a ring whose tail this
 * publisher owns, and the commit.  What else a claim may need (taking the
 * tail, sharing it, the CAS) is in ring_pub.c, out of line.  Called across
 * files, a publish's frames were stores too, queued behind the record's in
 * a store buffer that drains only as fast as the subscriber's core hands
 * the record's lines back (docs/benchmarks.md, Findings 2).
 */
#ifndef RINGCAST_RING_PUB_H
#define RINGCAST_RING_PUB_H

#include <errno.h>

#include "barrier.h"
#include "ring.h"

/* ring_pub.c: the claim's other paths, for need (aligned record) bytes */
int rc_ring_claim_slow(struct rc_ring *r, uint64_t need, uint64_t *pos);
/* Recompute the cached limit from the tethered subscribers; returns it. */
uint64_t rc_ring_refresh_limit(struct rc_ring *r);
/* Give up owning the tail (another publisher raised tail.shared). */
void rc_ring_give_tail(struct rc_ring *r);

/*
 * Exclusive claims.  The locked CAS is a full barrier: it waits for the
 * previous record's stores, to lines a busy subscriber holds, to drain,
 * and that wait was nearly all of a publisher's time (perf: 97% of claim
 * samples right after the cmpxchg16b).  So a publisher alone on a ring
 * takes ownership of the tail (tail.owner, by CAS, once) and then moves it
 * with one plain 16-byte store per message.
 *
 * A second publisher sets tail.shared, runs membarrier() (fence.c), and
 * then looks at the owner's pub slot.  The owner stores its claim (BUSY,
 * with its end) before it reads tail.shared on every claim, so wherever
 * the barrier lands in the owner's instruction stream, either that claim
 * store is before it and visible (the newcomer waits until tail reaches
 * the claim's end: the owner's last plain store is done), or the owner's
 * load of shared is after it and sees the flag (the owner gives the tail
 * up and CASes like everyone else).  shared stays set until the daemon sees no
 * publisher left, so ownership is never taken again meanwhile.
 *
 * The 16-byte store keeps (pos, seq) one value for readers of the pair
 * (rc_ring_live): aligned 16-byte SSE stores are atomic on every x86
 * processor with AVX (Intel SDM 3A 9.1.1; AMD APM 2, 7.3.2).  Without
 * AVX, or without membarrier, or under TSan (which cannot see either),
 * publishers always CAS.
 */
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#include <immintrin.h>
#define RC_HAVE_EXCLUSIVE 1

static inline void rc_tail_store16(struct rc_ring_tail *t, uint64_t pos, uint64_t seq)
{
	/* An x86 store is a release store (TSO); keep the compiler in order too. */
	atomic_signal_fence(memory_order_release);
	_mm_store_si128((__m128i *)t, _mm_set_epi64x((long long)seq, (long long)pos));
}

static inline bool rc_exclusive_possible(const struct rc_ring *r)
{
	return r->light_commit && __builtin_cpu_supports("avx");
}

/*
 * The owner's claim, (start | BUSY, end) in one 16-byte store: atomic for
 * the same reason as the tail's, so the daemon and a newcomer never see a
 * claim with another claim's end (the shared path needs three stores for
 * that, see slot_claim in ring_pub.c).  A release store on x86, like the tail's.
 */
static inline void rc_slot_claim_owner(struct rc_pub_slot *ps, uint64_t pos, uint64_t end)
{
	atomic_signal_fence(memory_order_release);
	_mm_store_si128((__m128i *)ps, _mm_set_epi64x((long long)end, (long long)(pos | RC_CLAIM_BUSY)));
}
#else
#define RC_HAVE_EXCLUSIVE 0
static inline void rc_tail_store16(struct rc_ring_tail *t, uint64_t pos, uint64_t seq)
{
	(void)t, (void)pos, (void)seq;
}

static inline bool rc_exclusive_possible(const struct rc_ring *r)
{
	(void)r;
	return false;
}

static inline void rc_slot_claim_owner(struct rc_pub_slot *ps, uint64_t pos, uint64_t end)
{
	(void)ps, (void)pos, (void)end;
}
#endif

static inline uint64_t rc_pad_for(const struct rc_ring *r, uint64_t pos, uint64_t need)
{
	/* A record never straddles the end of the ring: pad to the start. */
	return (pos & r->mask) + need > r->cap ? r->cap - (pos & r->mask) : 0;
}

/*
 * A claim of [pos, pos + pad + need) went through with seq: write the
 * padding record if the ring's end needs one, and the record's seq.
 * Returns the record's position.
 */
static RC_HOT_INLINE uint64_t rc_claim_place(struct rc_ring *r, uint64_t pos, uint64_t pad,
					      uint64_t seq)
{
	if (pad) {
		struct rc_rec *p = rc_ring_rec(r, pos);

		/* Pairs with the reader's acquire load of the commit word. */
		rc_store_release(&p->commit,
				 rc_commit_word(r->salt, pos, RC_REC_PAD | pad));
	}
	rc_ring_rec(r, pos + pad)->seq = seq;
	return pos + pad;
}

/*
 * The owner announces its claim [p, end) in its slot, then looks at
 * tail.shared, in that order (the comment at the top).  False: another
 * publisher wants in; the caller gives the tail up (rc_ring_give_tail)
 * and claims shared.
 */
static RC_HOT_INLINE bool rc_owner_announce(struct rc_ring *r, uint64_t p, uint64_t end)
{
	rc_slot_claim_owner(&r->hdr->pubs[r->pub_slot], p, end);
	return !rc_load_relaxed(&r->hdr->tail.shared);
}

/*
 * The owner moves the tail to end, after rc_owner_announce(), for a claim
 * of n records; returns the first one's seq (the others follow it).  No
 * fence after the store: the one load it must precede, the scan of the
 * subscriber slots (pair #5), fences itself (rc_ring_min_tethered), and
 * that scan runs once per ring's worth of data, not per message.
 */
static RC_HOT_INLINE uint64_t rc_owner_advance(struct rc_ring *r, uint64_t end, uint64_t n)
{
	uint64_t seq = r->x_seq;

	rc_tail_store16(&r->hdr->tail, end, seq + n);
	r->x_pos = end;
	r->x_seq = seq + n;
	return seq;
}

/*
 * Claim need bytes as the tail's owner: 0 (*pos_out is the record's
 * position), -EAGAIN (full), or 1 (we gave the tail up: claim shared).
 */
static RC_HOT_INLINE int rc_claim_exclusive(struct rc_ring *r, uint64_t need, uint64_t *pos_out)
{
	uint64_t p = r->x_pos, pad = rc_pad_for(r, p, need), end = p + pad + need;

	if (end > r->limit && end > rc_ring_refresh_limit(r))
		return -EAGAIN;
	if (!rc_owner_announce(r, p, end)) {
		rc_ring_give_tail(r);
		return 1;
	}
	*pos_out = rc_claim_place(r, p, pad, rc_owner_advance(r, end, 1));
	return 0;
}

/*
 * Reserve a record for len payload bytes: *pos is its position, its seq
 * field is filled.  Returns 0, -EAGAIN (a tethered subscriber has not read
 * the space yet) or -EMSGSIZE.
 */
static RC_HOT_INLINE int rc_ring_claim(struct rc_ring *r, size_t len, uint64_t *pos_out)
{
	uint64_t need;

	if (len > r->max_payload)
		return -EMSGSIZE;
	need = rc_align(sizeof(struct rc_rec) + len);
	if (r->exclusive) {
		int ret = rc_claim_exclusive(r, need, pos_out);

		if (ret <= 0)
			return ret;
	}
	return rc_ring_claim_slow(r, need, pos_out);
}

/*
 * Write the header fields of the record at pos other than seq (written at
 * the claim) and commit; returns its commit word, still to be stored.
 */
static RC_HOT_INLINE uint64_t rc_ring_write_header(struct rc_ring *r, uint64_t pos, size_t len,
						   uint32_t client_id, uint16_t flags,
						   uint64_t publish_ns)
{
	struct rc_rec *rec = rc_ring_rec(r, pos);

	rec->publish_ns = publish_ns;
	rec->client_id = client_id;
	rec->origin_node = 0;
	rec->flags = flags;
	return rc_commit_word(r->salt, pos, (uint32_t)(sizeof(*rec) + len));
}

/*
 * Write the header of the record at pos, then its commit word.  The
 * release store of commit pairs with the reader's acquire load of the
 * word; rc_ring_commit_done() must follow.
 */
static RC_HOT_INLINE void rc_ring_write_commit(struct rc_ring *r, uint64_t pos, size_t len,
					       uint32_t client_id, uint16_t flags,
					       uint64_t publish_ns)
{
	uint64_t word = rc_ring_write_header(r, pos, len, client_id, flags, publish_ns);

	rc_store_release(&rc_ring_rec(r, pos)->commit, word);
}

/*
 * Is a light commit enough?  Asked after the commit store, never before.
 *
 * When a subscriber of the ring may sleep, the commit store must be
 * ordered before our load of ctl->sleepers, against the subscriber's
 * sleepers increment and re-check (rc_ring_sleep_prepare): one side must
 * see the other or a wake-up is lost.  That StoreLoad order is a full
 * fence, which stalls us on every record line a busy subscriber holds, so
 * we pay it only on rings whose ctl->fenced says a subscriber may sleep.
 * A subscriber raises fenced and then runs membarrier() (rc_fence_heavy)
 * before it first sleeps: wherever that barrier lands in our instruction
 * stream, either our light commit is before it and visible to the
 * subscriber, or our fenced load is after it and sees the flag.  Without
 * membarrier (light_commit false) every commit is fenced.
 */
static RC_HOT_INLINE bool rc_commit_light(struct rc_ring *r)
{
	return r->light_commit && !rc_load_relaxed(&r->ctl->fenced);
}

/* Our claim is done: pairs with the daemon's acquire loads in repair. */
static RC_HOT_INLINE void rc_ring_end_claim(struct rc_ring *r)
{
	rc_store_release(&r->hdr->pubs[r->pub_slot].claim, 0);
}

/*
 * After the commit store (rc_ring_write_commit, or an abort's padding
 * word): end our claim and ring sleepers (bells may be NULL).
 */
static RC_HOT_INLINE void rc_ring_commit_done(struct rc_ring *r, struct rc_bells_hdr *bells)
{
	uint32_t sleepers = 0;

	/*
	 * The fenced path reads sleepers with a seq_cst read-modify-write:
	 * a full barrier on x86 (lock xadd), and in C11 terms the sleeper's
	 * increment either precedes it (we see the count) or reads from it
	 * (the sleeper then sees our commit).
	 */
	if (!rc_commit_light(r))
		sleepers = atomic_fetch_add(&r->ctl->sleepers, 0);
	rc_ring_end_claim(r);
	if (sleepers)
		rc_ring_wake(r, bells);
}

/*
 * Publish the record at pos (its seq written at the claim, the other
 * header fields here from the arguments), then wake sleeping subscribers.
 * bells: the node's bells file (may be NULL).
 */
static RC_HOT_INLINE void rc_ring_commit(struct rc_ring *r, uint64_t pos, size_t len,
					 uint32_t client_id, uint16_t flags, uint64_t publish_ns,
					 struct rc_bells_hdr *bells)
{
	rc_ring_write_commit(r, pos, len, client_id, flags, publish_ns);
	rc_ring_commit_done(r, bells);
}

#endif /* RINGCAST_RING_PUB_H */
