/* SPDX-License-Identifier: MIT */
/*
 * Publishing into a topic ring: claim, commit, abort, and waking the
 * subscribers that sleep.
 *
 * Claim.  tail holds (next position, next seq) and publishers move both
 * with one 16-byte CAS, so positions and sequence numbers are handed out
 * in the same order and seq is strictly increasing in ring order.  Before
 * the CAS a publisher records the claim it is attempting in its pub slot
 * (claim = start | BUSY, end); the CAS is a full barrier, so anyone who
 * sees the new tail also sees the slot.  That is what lets the daemon
 * repair the claim of a publisher that dies before committing (see
 * daemon/ring_daemon.c).
 *
 * The claim of a publisher that owns the tail, and the commit, are inline
 * in ring_pub.h; so is why a lone publisher owns the tail.
 *
 * Commit.  The record's first word, written last, is
 * (length << 32) | stamp(pos): a reader that loads it with acquire sees
 * the header and payload the publisher wrote before (release).  The
 * stamp ties the word to this lap, so bytes left from an earlier lap never
 * look committed.
 *
 * Flow control.  A publisher may claim below limit = (smallest position a
 * tethered subscriber still has to read) + capacity.  It caches the limit
 * and rescans the subscriber slots only when a claim would cross it, so
 * the cost of a scan is spread over a ring's worth of messages and does
 * not grow per message with the number of subscribers.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "barrier.h"
#include "ring_pub.h"

typedef unsigned __int128 rc_u128;

static inline rc_u128 tail_pair(uint64_t pos, uint64_t seq)
{
	return ((rc_u128)seq << 64) | pos;
}

/*
 * The CAS on (pos, seq).  GCC's __sync builtin inlines cmpxchg16b with
 * -mcx16 (the __atomic one would call libatomic).  It is a full barrier:
 * it orders the pub slot stores before it, which the daemon's repair
 * relies on (its acquire load of tail.pos pairs with this).
 */
static inline rc_u128 tail_cas(struct rc_ring_tail *t, rc_u128 old, rc_u128 new)
{
	return __sync_val_compare_and_swap((rc_u128 *)t, old, new);
}

uint64_t rc_ring_refresh_limit(struct rc_ring *r)
{
	r->limit = rc_ring_min_tethered(r) + r->cap;
	return r->limit;
}

/* Record the claim [pos, end) in our slot; see the header comment of daemon/ring_daemon.c. */
static inline void slot_claim(struct rc_pub_slot *ps, uint64_t pos, uint64_t end)
{
	/*
	 * claim = 0 first, so a publisher killed between the end and claim
	 * stores never leaves a claim paired with a stale end.  The release
	 * on claim orders end before it for the daemon.
	 */
	rc_store_relaxed(&ps->claim, 0);
	rc_store_relaxed(&ps->end, end);
	rc_store_release(&ps->claim, pos | RC_CLAIM_BUSY);
}

/* Try to become the tail's owner; true if we are. */
static bool take_tail(struct rc_ring *r)
{
	struct rc_ring_tail *t = &r->hdr->tail;
	uint32_t none = 0;

	if (!rc_exclusive_possible(r) || rc_load_relaxed(&t->shared))
		return false;
	if (!atomic_compare_exchange_strong(&t->owner, &none, (uint32_t)r->pub_slot + 1))
		return false;
	/* Re-check after owning: a newcomer may have raised shared meanwhile. */
	if (rc_load_seq_cst(&t->shared)) {
		uint32_t me = (uint32_t)r->pub_slot + 1;

		atomic_compare_exchange_strong(&t->owner, &me, 0);
		return false;
	}
	/* Pairs with the CAS or 16-byte store that last moved the tail. */
	do {
		r->x_pos = rc_load_acquire(&t->pos);
		r->x_seq = rc_load_acquire(&t->seq);
	} while (rc_load_acquire(&t->pos) != r->x_pos);
	r->exclusive = true;
	return true;
}

void rc_ring_give_tail(struct rc_ring *r)
{
	uint32_t me = (uint32_t)r->pub_slot + 1;

	r->exclusive = false;
	/* Our last tail store is before this (release), for the next CAS. */
	atomic_compare_exchange_strong(&r->hdr->tail.owner, &me, 0);
}

/*
 * Another publisher owns the tail (we have raised tail.shared already):
 * returns 0 once the tail is free for CAS, -EAGAIN while the owner is
 * mid-claim.
 */
static int share_tail(struct rc_ring *r, uint32_t owner)
{
	uint64_t c;

	if (!r->takeover_fenced) {
		/* Without the barrier we cannot know the owner saw the flag. */
		if (rc_fence_heavy() < 0)
			return -EAGAIN;
		r->takeover_fenced = true;
	}
	if (owner > RC_PUB_SLOTS)
		return -EBADMSG;
	/*
	 * The owner's claim (its release store, with end before it) tells
	 * whether its tail store may still come: only between its claim
	 * store and its tail store, a window of a few instructions.  Once
	 * tail reaches the claim's end, the owner is done with the tail.
	 */
	c = rc_load_acquire(&r->hdr->pubs[owner - 1].claim);
	if ((c & RC_CLAIM_BUSY) && !(c & RC_CLAIM_DEAD) &&
	    rc_load_acquire(&r->hdr->tail.pos) < rc_load_relaxed(&r->hdr->pubs[owner - 1].end))
		return -EAGAIN;
	atomic_compare_exchange_strong(&r->hdr->tail.owner, &owner, 0);
	return 0;
}

static int claim_shared(struct rc_ring *r, uint64_t need, uint64_t *pos_out)
{
	struct rc_pub_slot *ps = &r->hdr->pubs[r->pub_slot];
	rc_u128 cur, seen;

	/* A torn read of the pair only costs one failed CAS, which returns the real one. */
	cur = tail_pair(rc_load_relaxed(&r->hdr->tail.pos), rc_load_relaxed(&r->hdr->tail.seq));
	for (;;) {
		uint64_t p = (uint64_t)cur, pad = rc_pad_for(r, p, need), end = p + pad + need;

		if (end > r->limit && end > rc_ring_refresh_limit(r))
			return -EAGAIN;
		slot_claim(ps, p, end);
		seen = tail_cas(&r->hdr->tail, cur, tail_pair(end, (uint64_t)(cur >> 64) + 1));
		if (seen == cur) {
			*pos_out = rc_claim_place(r, p, pad, (uint64_t)(cur >> 64));
			return 0;
		}
		cur = seen;
	}
}

static int claim_slow(struct rc_ring *r, uint64_t need, uint64_t *pos_out)
{
	struct rc_ring_tail *t = &r->hdr->tail;
	uint32_t me = (uint32_t)r->pub_slot + 1, owner;
	int ret;

	if (r->exclusive || (!r->shared_announced && RC_HAVE_EXCLUSIVE && take_tail(r))) {
		ret = rc_claim_exclusive(r, need, pos_out);
		if (ret <= 0)
			return ret;
		/* We gave the tail up: from now on we CAS like everyone. */
	}
	if (!r->shared_announced) {
		/*
		 * Whoever CASes the tail raises shared first (seq_cst), then
		 * reads owner (seq_cst): against take_tail's CAS of owner and
		 * re-read of shared, one of us sees the other.
		 */
		rc_store_seq_cst(&t->shared, 1);
		r->shared_announced = true;
	}
	owner = rc_load_seq_cst(&t->owner);
	if (owner != 0 && owner != me) {
		ret = share_tail(r, owner);
		if (ret < 0)
			return ret;
	}
	return claim_shared(r, need, pos_out);
}

/*
 * rc_ring_claim (ring_pub.h), which checked len, when we do not own the
 * tail or gave it up.  A claim that fails may have announced a position
 * in our slot first (a lost CAS, or an owner that gave the tail up), and
 * that position is someone else's now.  Left there, it would tell the
 * daemon's repair that we still claim it (daemon/ring_daemon.c): the real
 * winner's repair would wait on us, and ours, after we die, would pad a
 * record of a later lap.  So a failed claim ends with the slot empty.
 */
int rc_ring_claim_slow(struct rc_ring *r, uint64_t need, uint64_t *pos_out)
{
	int ret = claim_slow(r, need, pos_out);

	if (ret < 0)
		rc_ring_end_claim(r);
	return ret;
}

bool rc_ring_settle(struct rc_ring *r, uint64_t pos, uint64_t word, struct rc_bells_hdr *bells)
{
	struct rc_rec *rec = rc_ring_rec(r, pos);
	uint64_t old = rc_load_relaxed(&rec->commit);

	/*
	 * A CAS from the word that was there, because the daemon's repair
	 * pads by CAS from that same word (pad_claim in daemon/ring_daemon.c): of a
	 * repair racing a late commit exactly one lands, and a subscriber
	 * never reads padding where the publisher then reports a message
	 * published.  This lap's stamp already there: only the repair's
	 * padding can be.  The CAS is seq_cst, so it is also the release
	 * store that pairs with the reader's acquire load of commit.
	 */
	if ((uint32_t)old == rc_stamp(r->salt, pos))
		return false;
	if (!atomic_compare_exchange_strong(&rec->commit, &old, word))
		return false;
	rc_ring_commit_done(r, bells);
	return true;
}

bool rc_ring_abort(struct rc_ring *r, uint64_t pos, size_t len, struct rc_bells_hdr *bells)
{
	/*
	 * The end comes from the record's own length, not from our pub slot,
	 * which the daemon may have freed (any wrap padding of the claim
	 * comes before pos).
	 */
	uint64_t need = rc_align(sizeof(struct rc_rec) + len);

	return rc_ring_settle(r, pos, rc_commit_word(r->salt, pos, RC_REC_PAD | (uint32_t)need),
			      bells);
}

void rc_bell_ring(struct rc_bells_hdr *b, uint32_t bell)
{
	_Atomic uint32_t *w;
	uint32_t v;

	if (!b || bell >= RC_BELLS)
		return;
	w = &b->bells[bell].word;
	/*
	 * IDLE: the client is awake, and looks at its rings before it sleeps
	 * again.  ARMED: ring it, once (ARMED -> RUNG) however many
	 * publishers race here, and wake it.  RUNG: someone rang it, and we
	 * still FUTEX_WAKE, because that ringer may have been killed between
	 * its CAS and its system call: the word says RUNG to every later
	 * publisher while the client sleeps on in the kernel.  rc_ring_wake
	 * gets here only for a client still counted as a sleeper, and takes
	 * it off the count right after, so a word found RUNG costs one more
	 * system call per ring, not one per message.
	 */
	v = rc_load_relaxed(w);
	if (v == RC_BELL_ARMED)
		atomic_compare_exchange_strong(w, &v, RC_BELL_RUNG); /* failed: v is the word now */
	if (v == RC_BELL_IDLE)
		return;
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void rc_ring_wake(struct rc_ring *r, struct rc_bells_hdr *bells)
{
	uint32_t i, hi = rc_load_acquire(&r->ctl->slots_hi);

	if (hi > RC_SUB_SLOTS)
		hi = RC_SUB_SLOTS;
	for (i = 0; i < hi; i++) {
		struct rc_sub_slot *s = &r->ctl->subs[i];
		uint32_t armed;

		if (rc_load_relaxed(&s->state) == RC_SUB_FREE)
			continue;
		/* Pairs with the exchange in rc_ring_sleep_prepare, before its count and re-check. */
		armed = rc_load_acquire(&s->asleep);
		if (!armed)
			continue;
		/*
		 * Ring first, then take the sleeper off the count (so the
		 * commits that follow skip this scan until it sleeps again;
		 * counted, it would cost them a scan until it runs, tens of
		 * µs on a busy machine).  A publisher can be killed at any
		 * instruction, and in this order every prefix leaves the
		 * sleeper counted, or rung and woken: killed before the CAS
		 * on the bell or before FUTEX_WAKE, it is still counted and
		 * the next commit rings it (rc_bell_ring wakes a word it
		 * finds RUNG); killed after, it is awake.  Taking the count
		 * first, as we once did, left a window where it was neither.
		 *
		 * The CAS is from the arming we saw (each arming stores its
		 * own non-zero number): if the sleeper woke meanwhile and
		 * armed again, that arming keeps its count, which only its
		 * own finish, the daemon's release or a later ring drops.
		 * An exchange would take it, and a sleeper we did not ring
		 * would sleep uncounted.  Whoever moves asleep to 0 drops
		 * the count, so it drops once.
		 */
		rc_bell_ring(bells, rc_load_relaxed(&s->bell));
		if (atomic_compare_exchange_strong(&s->asleep, &armed, 0))
			atomic_fetch_sub(&r->ctl->sleepers, 1);
	}
}

uint64_t rc_ring_min_tethered(const struct rc_ring *r)
{
	uint64_t tail, min;
	uint32_t i, hi;

	/*
	 * Pair #5 (docs/ring-format.md), store buffering: we stored tail
	 * (the owner with a plain 16-byte store, rc_owner_advance) and now
	 * load the slot states; a subscriber tethering itself stores its
	 * state and then loads tail (rc_ring_sub_attach through
	 * rc_ring_live, rc_ring_sub_retether).  Without a full fence on
	 * both sides, both loads may pass their stores: we miss the new
	 * tether while it starts from a tail older than ours, and our limit
	 * overruns it (test_ring_mt: hundreds of times in 100 000 rounds).
	 * This fence pairs with the one after the subscriber's state store:
	 * if our scan misses its state, it reads a tail no earlier than our
	 * last store.  Scans run once per ring's worth of data (a claim
	 * that crosses the cached limit), never per message.
	 */
	rc_smp_mb();
	tail = rc_load_seq_cst(&r->hdr->tail.pos);
	min = tail;
	hi = rc_load_acquire(&r->ctl->slots_hi);

	if (hi > RC_SUB_SLOTS)
		hi = RC_SUB_SLOTS;
	for (i = 0; i < hi; i++) {
		const struct rc_sub_slot *s = &r->ctl->subs[i];
		uint64_t p;

		if (rc_load_seq_cst(&s->state) != RC_SUB_TETHERED)
			continue;
		/* Pairs with the subscriber's release store after it consumed. */
		p = rc_load_acquire(&s->pos);
		if (p < min)
			min = p;
	}
	return min;
}
