// SPDX-License-Identifier: MIT
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
 * ring_daemon.c).
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
#include "ring.h"

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

static uint64_t refresh_limit(struct rc_ring *r)
{
	r->limit = rc_ring_min_tethered(r) + r->cap;
	return r->limit;
}

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

static inline void tail_store16(struct rc_ring_tail *t, uint64_t pos, uint64_t seq)
{
	/* An x86 store is a release store (TSO); keep the compiler in order too. */
	atomic_signal_fence(memory_order_release);
	_mm_store_si128((__m128i *)t, _mm_set_epi64x((long long)seq, (long long)pos));
}

static bool exclusive_possible(const struct rc_ring *r)
{
	return r->light_commit && __builtin_cpu_supports("avx");
}
#else
#define RC_HAVE_EXCLUSIVE 0
static inline void tail_store16(struct rc_ring_tail *t, uint64_t pos, uint64_t seq)
{
	(void)t, (void)pos, (void)seq;
}

static bool exclusive_possible(const struct rc_ring *r)
{
	(void)r;
	return false;
}
#endif

/* Record the claim [pos, end) in our slot; see the header comment of ring_daemon.c. */
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

static inline uint64_t pad_for(const struct rc_ring *r, uint64_t pos, uint64_t need)
{
	/* A record never straddles the end of the ring: pad to the start. */
	return (pos & r->mask) + need > r->cap ? r->cap - (pos & r->mask) : 0;
}

/* Try to become the tail's owner; true if we are. */
static bool take_tail(struct rc_ring *r)
{
	struct rc_ring_tail *t = &r->hdr->tail;
	uint32_t none = 0;

	if (!exclusive_possible(r) || rc_load_relaxed(&t->shared))
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

static void give_tail(struct rc_ring *r)
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

static int claim_exclusive(struct rc_ring *r, uint64_t need, uint64_t *pos, uint64_t *seq)
{
	uint64_t p = r->x_pos, pad = pad_for(r, p, need), end = p + pad + need;

	if (end > r->limit && end > refresh_limit(r))
		return -EAGAIN;
	slot_claim(&r->hdr->pubs[r->pub_slot], p, end);
	/* After the claim store, as the comment above requires. */
	if (rc_load_relaxed(&r->hdr->tail.shared)) {
		give_tail(r);
		return 1; /* claim again, shared */
	}
	*pos = p;
	*seq = r->x_seq;
	tail_store16(&r->hdr->tail, end, r->x_seq + 1);
	r->x_pos = end;
	r->x_seq++;
	return 0;
}

static int claim_shared(struct rc_ring *r, uint64_t need, uint64_t *pos, uint64_t *seq)
{
	struct rc_pub_slot *ps = &r->hdr->pubs[r->pub_slot];
	rc_u128 cur, seen;

	/* A torn read of the pair only costs one failed CAS, which returns the real one. */
	cur = tail_pair(rc_load_relaxed(&r->hdr->tail.pos), rc_load_relaxed(&r->hdr->tail.seq));
	for (;;) {
		uint64_t p = (uint64_t)cur, pad = pad_for(r, p, need), end = p + pad + need;

		if (end > r->limit && end > refresh_limit(r))
			return -EAGAIN;
		slot_claim(ps, p, end);
		seen = tail_cas(&r->hdr->tail, cur, tail_pair(end, (uint64_t)(cur >> 64) + 1));
		if (seen == cur) {
			*pos = p;
			*seq = (uint64_t)(cur >> 64);
			return 0;
		}
		cur = seen;
	}
}

int rc_ring_claim(struct rc_ring *r, size_t len, uint64_t *pos_out)
{
	struct rc_ring_tail *t = &r->hdr->tail;
	uint32_t me = (uint32_t)r->pub_slot + 1, owner;
	uint64_t need, pos, seq, pad;
	int ret;

	if (len > r->max_payload)
		return -EMSGSIZE;
	need = rc_align(sizeof(struct rc_rec) + len);
	if (r->exclusive || (!r->shared_announced && RC_HAVE_EXCLUSIVE && take_tail(r))) {
		ret = claim_exclusive(r, need, &pos, &seq);
		if (ret < 0)
			return ret;
		if (ret == 0)
			goto claimed;
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
	ret = claim_shared(r, need, &pos, &seq);
	if (ret < 0)
		return ret;
claimed:
	pad = pad_for(r, pos, need);
	if (pad) {
		struct rc_rec *p = rc_ring_rec(r, pos);

		/* Pairs with the reader's acquire load of the commit word. */
		rc_store_release(&p->commit, ((uint64_t)(RC_REC_PAD | pad) << 32) | rc_stamp(r->salt, pos));
	}
	rc_ring_rec(r, pos + pad)->seq = seq;
	*pos_out = pos + pad;
	return 0;
}

/*
 * Store a record's commit word, end our claim, and ring sleepers.
 *
 * The commit store pairs with the reader's acquire load of the word.  When
 * a subscriber of the ring may sleep it must also be ordered before our
 * load of ctl->sleepers, against the subscriber's sleepers increment and
 * re-check (rc_ring_sleep_prepare): one side must see the other or a
 * wake-up is lost.  That StoreLoad order is a full fence, which stalls us
 * on every record line a busy subscriber holds, so we pay it only on rings
 * whose ctl->fenced says a subscriber may sleep.  A subscriber raises
 * fenced and then runs membarrier() (rc_fence_heavy) before it first
 * sleeps: wherever that barrier lands in our instruction stream, either our
 * light commit is before it and visible to the subscriber, or our fenced
 * load is after it and sees the flag.  Without membarrier (light_commit
 * false) every commit is fenced.
 */
static inline void publish_word(struct rc_ring *r, _Atomic uint64_t *commit, uint64_t word,
				struct rc_bells_hdr *bells)
{
	uint32_t sleepers = 0;

	rc_store_release(commit, word);
	/*
	 * The fenced path reads sleepers with a seq_cst read-modify-write:
	 * a full barrier on x86 (lock xadd), and in C11 terms the sleeper's
	 * increment either precedes it (we see the count) or reads from it
	 * (the sleeper then sees our commit).
	 */
	if (!r->light_commit || rc_load_relaxed(&r->ctl->fenced))
		sleepers = atomic_fetch_add(&r->ctl->sleepers, 0);
	/* Our claim is done: pairs with the daemon's acquire loads in repair. */
	rc_store_release(&r->hdr->pubs[r->pub_slot].claim, 0);
	if (sleepers)
		rc_ring_wake(r, bells);
}

void rc_ring_commit(struct rc_ring *r, uint64_t pos, size_t len, uint32_t client_id,
		    uint16_t flags, uint64_t publish_ns, struct rc_bells_hdr *bells)
{
	struct rc_rec *rec = rc_ring_rec(r, pos);
	uint64_t word = ((uint64_t)(sizeof(*rec) + len) << 32) | rc_stamp(r->salt, pos);

	rec->publish_ns = publish_ns;
	rec->client_id = client_id;
	rec->origin_node = 0;
	rec->flags = flags;
	publish_word(r, &rec->commit, word, bells);
}

void rc_ring_abort(struct rc_ring *r, uint64_t pos, struct rc_bells_hdr *bells)
{
	struct rc_rec *rec = rc_ring_rec(r, pos);
	uint64_t end = rc_load_relaxed(&r->hdr->pubs[r->pub_slot].end);
	uint64_t word = ((uint64_t)(RC_REC_PAD | (uint32_t)(end - pos)) << 32) | rc_stamp(r->salt, pos);

	/* As in commit: readers skip it, sleepers must hear about it. */
	publish_word(r, &rec->commit, word, bells);
}

void rc_bell_ring(struct rc_bells_hdr *b, uint32_t bell)
{
	_Atomic uint32_t *w;
	uint32_t armed = RC_BELL_ARMED;

	if (!b || bell >= RC_BELLS)
		return;
	w = &b->bells[bell].word;
	/*
	 * The cheap check: only a client that armed its bell is woken, and
	 * only once (ARMED -> RUNG) however many publishers race here.
	 */
	if (rc_load_relaxed(w) != RC_BELL_ARMED)
		return;
	if (atomic_compare_exchange_strong(w, &armed, RC_BELL_RUNG))
		syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void rc_ring_wake(struct rc_ring *r, struct rc_bells_hdr *bells)
{
	uint32_t i, hi = rc_load_acquire(&r->ctl->slots_hi);

	if (hi > RC_SUB_SLOTS)
		hi = RC_SUB_SLOTS;
	for (i = 0; i < hi; i++) {
		struct rc_sub_slot *s = &r->ctl->subs[i];

		/* asleep pairs with the subscriber's seq_cst store before its re-check. */
		if (rc_load_relaxed(&s->state) == RC_SUB_FREE || !rc_load_acquire(&s->asleep))
			continue;
		/*
		 * Take the sleeper off the count as we ring it, so the commits
		 * that follow skip this scan until it sleeps again (it would
		 * otherwise count until it runs, tens of µs on a busy machine).
		 * exchange: its rc_ring_sleep_finish, the daemon's release or
		 * another publisher may race to drop the same count; only one
		 * of us does.
		 */
		if (atomic_exchange(&s->asleep, 0)) {
			atomic_fetch_sub(&r->ctl->sleepers, 1);
			rc_bell_ring(bells, rc_load_relaxed(&s->bell));
		}
	}
}

uint64_t rc_ring_min_tethered(const struct rc_ring *r)
{
	/*
	 * tail is read before the slot states (both seq_cst): a subscriber
	 * that tethers itself stores its state and then reads tail, so a scan
	 * that misses the new state read a tail no later than the one the
	 * subscriber saw.  See rc_ring_sub_retether().
	 */
	uint64_t tail = rc_load_seq_cst(&r->hdr->tail.pos), min = tail;
	uint32_t i, hi = rc_load_acquire(&r->ctl->slots_hi);

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
