/* SPDX-License-Identifier: MIT */
/*
 * Publishing: the broadcast family and zero-copy claim/commit/abort.
 * The fast path is a topic lookup (the last topic is remembered), a claim
 * on the ring, a copy, and a commit: no system call unless a subscriber
 * of the topic is asleep.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "client.h"
#include "copy.h"
#include "ring_pub.h"
#include "trace.h"

/* An unaligned 8-byte load the compiler may not assume aligned. */
typedef uint64_t __attribute__((may_alias, aligned(1))) rc_u64_una;

/*
 * Is topic the topic t names?  It compares name and its NUL eight bytes
 * at a time, inline: strcmp through the PLT, or a byte loop, took a sixth
 * to a third of a publish.  A hit skips the strnlen and lookup of the
 * general path (t's name was checked when t was made).
 *
 * The words may run past the end of a shorter caller's string, which is
 * why ASan must not instrument this, but never onto an unmapped page.
 * When all of them lie in topic[0]'s page (RC_PAGE_MIN: no page is
 * smaller; a larger one only makes this cautious) they are read at once and their
 * differences OR-ed, with no branch per word.  Otherwise the word at i is
 * read only after topic[0..i) matched name's non-NUL bytes, so topic[i]
 * is in the string, and only if it stays in topic[i]'s page; if not, that
 * word is compared a byte at a time.  Bytes past the first difference
 * never change the answer.
 */
__attribute__((no_sanitize_address)) static inline uint64_t word_at(const char *s, size_t i)
{
	return *(const rc_u64_una *)(s + i * 8);
}

static __attribute__((noinline, no_sanitize_address)) bool
is_topic_at_page_end(const struct rc_topic *t, const char *topic)
{
	for (size_t i = 0; i < t->words; i++) {
		uint64_t mask = i + 1 == t->words ? t->last_mask : ~0ull;

		if (((uintptr_t)(topic + i * 8) & (RC_PAGE_MIN - 1)) > RC_PAGE_MIN - 8) {
			size_t k = t->len + 1 - i * 8;

			for (size_t j = 0; j < k && j < 8; j++)
				if (topic[i * 8 + j] != t->name[i * 8 + j])
					return false;
		} else if ((word_at(topic, i) ^ word_at(t->name, i)) & mask) {
			return false;
		}
	}
	return true;
}

/* Do all of is_topic's words lie in topic[0]'s page? */
static inline bool topic_words_in_page(const struct rc_topic *t, const char *topic)
{
	return ((uintptr_t)topic & (RC_PAGE_MIN - 1)) <= RC_PAGE_MIN - 8 * (size_t)t->words;
}

/* is_topic() when topic_words_in_page(): all words at once. */
__attribute__((no_sanitize_address)) static inline bool is_topic_in_page(const struct rc_topic *t,
									  const char *topic)
{
	uint64_t diff = 0;
	size_t i, last = t->words - 1;

	for (i = 0; i < last; i++)
		diff |= word_at(topic, i) ^ word_at(t->name, i);
	return !(diff | ((word_at(topic, last) ^ word_at(t->name, last)) & t->last_mask));
}

static inline bool is_topic(const struct rc_topic *t, const char *topic)
{
	return topic_words_in_page(t, topic) ? is_topic_in_page(t, topic) :
					       is_topic_at_page_end(t, topic);
}

/* t->words and t->last_mask, from t->len: is_topic's view of the name. */
static void topic_words(struct rc_topic *t)
{
	size_t n = t->len + 1, k = n % 8;

	t->words = (uint32_t)((n + 7) / 8);
	/* The first k bytes in memory: the low ones on a little-endian machine. */
	if (!k)
		t->last_mask = ~0ull;
	else if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
		t->last_mask = (1ull << (8 * k)) - 1;
	else
		t->last_mask = ~0ull << (8 * (8 - k));
}

/* The general path of pub_topic(): look the topic up, open it for publishing. */
static __attribute__((noinline)) int pub_topic_slow(struct ringcast *rc, const char *topic,
						    struct rc_topic **out)
{
	struct rc_topic *t = rc->last;
	size_t len;
	int ret;

	ret = rc_topic_check(topic, &len);
	if (ret < 0)
		return ret;
	if (!t || t->len != len || memcmp(t->name, topic, len)) {
		t = rc_topic_get(rc, topic, len, true);
		if (!t)
			return -ENOMEM;
	}
	/*
	 * Not with a claim open: a new mapping would pull the claim's
	 * memory from under it (pub_begin() then says -EBUSY).
	 */
	if (!t->publishing && !t->claim_open) {
		ret = rc_topic_open_pub(rc, t, false);
		if (ret < 0)
			return ret;
		topic_words(t);
		t->publishing = true;
	}
	rc->last = t;
	*out = t;
	return 0;
}

static RC_HOT_INLINE int pub_topic(struct ringcast *rc, const char *topic, struct rc_topic **out)
{
	struct rc_topic *t;

	if (!rc)
		return -EINVAL;
	t = rc->last;
	/* Publishers mostly repeat the topic of their last call. */
	if (t && t->publishing && topic && is_topic(t, topic)) {
		*out = t;
		return 0;
	}
	return pub_topic_slow(rc, topic, out);
}

/*
 * What every publish and zero-copy claim starts with: the topic, open for
 * publishing, with no zero-copy claim open on it (the pub slot describes
 * one claim at a time), and the daemon checked.
 */
static int pub_begin(struct ringcast *rc, const char *topic, struct rc_topic **out)
{
	int ret = pub_topic(rc, topic, out);

	if (ret < 0)
		return ret;
	if ((*out)->claim_open)
		return -EBUSY;
	rc_client_check_daemon(rc);
	return 0;
}

/* The ring was full: retry up to the send timeout while tethered subscribers catch up. */
static __attribute__((noinline)) int claim_wait(struct ringcast *rc, struct rc_topic *t, size_t len,
						uint64_t *pos)
{
	uint64_t deadline = 0;
	unsigned spins = 0;
	int ret = -EAGAIN;

	do {
		uint64_t now;

		if (rc->send_timeout_ms <= 0)
			return ret;
		now = rc_now_ns();
		if (!deadline)
			deadline = now + (uint64_t)rc->send_timeout_ms * 1000000ull;
		else if (now >= deadline)
			return ret;
		/* Spin briefly (a subscriber is usually just behind), then yield. */
		if (++spins < 64)
			rc_cpu_relax();
		else if (spins < 256)
			sched_yield();
		else
			nanosleep(&(struct timespec){ 0, 20000 }, NULL);
	} while ((ret = rc_ring_claim(&t->pub, len, pos)) == -EAGAIN);
	return ret;
}

static RC_HOT_INLINE int claim(struct ringcast *rc, struct rc_topic *t, size_t len, uint64_t *pos)
{
	int ret = rc_ring_claim(&t->pub, len, pos);

	return ret == -EAGAIN ? claim_wait(rc, t, len, pos) : ret;
}

/* A publish from its claim on: copy, commit, trace.  now: the stamp, read before the claim. */
static int publish_claim(struct ringcast *rc, struct rc_topic *t, const void *data, size_t len,
			 uint16_t flags, uint64_t now)
{
	uint64_t pos;
	int ret;

	ret = claim(rc, t, len, &pos);
	if (ret < 0)
		return ret;
	if (len)
		memcpy(rc_ring_rec(&t->pub, pos) + 1, data, len);
	rc_ring_commit(&t->pub, pos, len, rc->client_id, flags, now, rc->bells);
	RC_TRACE_PUBLISH(rc, t, pos, len);
	return 0;
}

/*
 * The whole publish, done the general way: for every publish that the
 * fast path in publish() gives up on before it claims anything.
 */
static __attribute__((noinline)) int publish_slow(struct ringcast *rc, const char *topic,
						  const void *data, size_t len, uint16_t flags)
{
	struct rc_topic *t;
	int ret;

	if (!data && len)
		return -EINVAL;
	ret = pub_begin(rc, topic, &t);
	if (ret < 0)
		return ret;
	return publish_claim(rc, t, data, len, flags, rc_clock_ns(rc->node_hdr));
}

/* publish() announced its claim and found another publisher wanting the tail. */
static __attribute__((noinline)) int publish_shared(struct ringcast *rc, struct rc_topic *t,
						    const void *data, size_t len, uint16_t flags,
						    uint64_t now)
{
	rc_ring_give_tail(&t->pub);
	return publish_claim(rc, t, data, len, flags, now);
}

/* publish() committed: a subscriber may sleep, or the publish probe is on. */
static __attribute__((noinline)) int publish_done_slow(struct ringcast *rc, struct rc_topic *t,
						       uint64_t pos, size_t len)
{
	rc_ring_commit_done(&t->pub, rc->bells);
	RC_TRACE_PUBLISH(rc, t, pos, len);
	return 0;
}

_Static_assert(RC_CAPACITY_MIN / 2 - sizeof(struct rc_rec) >= RC_COPY_SHORT_MAX,
	       "a short message fits every ring");

/*
 * What the fast paths below need besides room in the ring: the last
 * topic, open for publishing with no zero-copy claim open, a ring whose
 * tail we own, the daemon we connected to, and the node clock's line
 * usable (*now: the stamp).  Inline, so publish() keeps no frame.
 */
static RC_HOT_INLINE bool fast_ok(struct ringcast *rc, const char *topic, uint64_t *now)
{
	struct rc_topic *t;

	return rc && (t = rc->last) && t->publishing && !t->claim_open && t->pub.exclusive && topic &&
	       topic_words_in_page(t, topic) && is_topic_in_page(t, topic) && rc_client_daemon_same(rc) &&
	       rc_clock_line_ns(rc->node_hdr, now);
}

/*
 * Write the whole record at p, claimed by the fast path with seq: payload,
 * seq (what rc_claim_place() does for the general claim: no padding
 * here), the other header fields, and last its commit word.
 */
static RC_HOT_INLINE void put_rec(struct ringcast *rc, struct rc_ring *r, uint64_t p, uint64_t seq,
				  const void *data, size_t len, uint16_t flags, uint64_t now)
{
	struct rc_rec *rec = rc_ring_rec(r, p);

	if (len <= RC_COPY_SHORT_MAX)
		rc_copy_short(rec + 1, data, len);
	else
		memcpy(rec + 1, data, len);
	rec->seq = seq;
	rc_ring_write_commit(r, p, len, rc->client_id, flags, now);
}

/*
 * The publish of a short message, to the last topic, on a ring whose tail
 * we own, with room and no padding needed, and the node clock's line
 * usable: nearly every publish of a busy publisher.  Every other case goes
 * to an out-of-line function by a tail call, before anything is written
 * (publish_slow), or at the two points after where the general path
 * would branch too (publish_shared, publish_done_slow).
 *
 * No call is left, so the compiler keeps no frame: a frame's pushes are
 * stores, and every store of a publish waits in the store buffer behind
 * the record's, whose lines a busy subscriber holds.  docs/benchmarks.md
 * (Findings 2) has what that cost and what this gained.
 */
static RC_HOT_INLINE int publish(struct ringcast *rc, const char *topic, const void *data,
				 size_t len, uint16_t flags)
{
	struct rc_topic *t;
	struct rc_ring *r;
	uint64_t now, need, p, end;

	if (!data || len > RC_COPY_SHORT_MAX || !fast_ok(rc, topic, &now))
		return publish_slow(rc, topic, data, len, flags);
	t = rc->last;
	r = &t->pub;
	need = rc_align(sizeof(struct rc_rec) + len);
	p = r->x_pos;
	end = p + need;
	/* Room below the cached limit, and no padding: else the general claim. */
	if (end > r->limit || rc_pad_for(r, p, need))
		return publish_slow(rc, topic, data, len, flags);
	if (!rc_owner_announce(r, p, end))
		return publish_shared(rc, t, data, len, flags, now);
	put_rec(rc, r, p, rc_owner_advance(r, end, 1), data, len, flags, now);
	if (!rc_commit_light(r) || RC_TRACE_PUBLISH_ENABLED())
		return publish_done_slow(rc, t, p, len);
	rc_ring_end_claim(r);
	return 0;
}

/*
 * How many of msgs[0..n) one claim at the tail we own can take: the ones
 * up to the cached limit (refreshed once, when the next would pass it),
 * without a wrap, each valid.  *end: where that claim ends.  The message
 * that stops it gets the general path, which says what is wrong with it
 * or waits for room.
 */
static unsigned many_fit(struct rc_ring *r, const struct iovec *msgs, unsigned n, uint64_t *end)
{
	uint64_t p = r->x_pos, e = p;
	unsigned k;

	for (k = 0; k < n; k++) {
		size_t len = msgs[k].iov_len;
		uint64_t next;

		if (len > r->max_payload || (!msgs[k].iov_base && len))
			break;
		next = e + rc_align(sizeof(struct rc_rec) + len);
		if (rc_pad_for(r, p, next - p) || (next > r->limit && next > rc_ring_refresh_limit(r)))
			break;
		e = next;
	}
	*end = e;
	return k;
}

/* The claim of msgs[0..k) at p ended with their commits: wake-ups and probes, as publish_done_slow(). */
static __attribute__((noinline)) void many_done_slow(struct ringcast *rc, struct rc_topic *t,
						     uint64_t p, const struct iovec *msgs, unsigned k)
{
	rc_ring_commit_done(&t->pub, rc->bells);
	for (unsigned i = 0; i < k; i++) {
		RC_TRACE_PUBLISH(rc, t, p, msgs[i].iov_len);
		p += rc_align(sizeof(struct rc_rec) + msgs[i].iov_len);
	}
}

/*
 * Publish from msgs[0]: as many as fit one claim at the tail we own, with
 * one stamp, one announcement and one look at sleepers for all of them;
 * or, where the fast path does not apply or takes fewer than two, the
 * first alone through publish().  Returns how many (>= 1) or an error.
 */
static int publish_many(struct ringcast *rc, const char *topic, const struct iovec *msgs, unsigned n)
{
	struct rc_topic *t;
	struct rc_ring *r;
	uint64_t now, start, p, end, seq;
	unsigned k;
	int ret;

	if (fast_ok(rc, topic, &now)) {
		t = rc->last;
		r = &t->pub;
		start = r->x_pos;
		k = many_fit(r, msgs, n, &end);
		if (k >= 2 && rc_owner_announce(r, start, end)) {
			p = start;
			seq = rc_owner_advance(r, end, k);
			/* Each record is committed as soon as it is written: a subscriber may start on it. */
			for (unsigned i = 0; i < k; i++) {
				put_rec(rc, r, p, seq + i, msgs[i].iov_base, msgs[i].iov_len, 0, now);
				p += rc_align(sizeof(struct rc_rec) + msgs[i].iov_len);
			}
			if (!rc_commit_light(r) || RC_TRACE_PUBLISH_ENABLED())
				many_done_slow(rc, t, start, msgs, k);
			else
				rc_ring_end_claim(r);
			return (int)k;
		}
	}
	ret = publish(rc, topic, msgs[0].iov_base, msgs[0].iov_len, 0);
	return ret < 0 ? ret : 1;
}

int ringcast_broadcast_many(struct ringcast *rc, const char *topic, const struct iovec *msgs,
			    unsigned n)
{
	unsigned done = 0;

	if (!msgs && n)
		return -EINVAL;
	if (n > INT_MAX)
		n = INT_MAX;
	while (done < n) {
		int ret = publish_many(rc, topic, msgs + done, n - done);

		if (ret < 0)
			return done ? (int)done : ret;
		done += (unsigned)ret;
	}
	return (int)done;
}

int ringcast_broadcast(struct ringcast *rc, const char *topic, const void *data, size_t len)
{
	return publish(rc, topic, data, len, 0);
}

int ringcast_broadcast_from(struct ringcast *rc, const char *topic, const void *data, size_t len)
{
	return publish(rc, topic, data, len, RC_REC_F_FROM);
}

int ringcast_local_broadcast(struct ringcast *rc, const char *topic, const void *data, size_t len)
{
	return publish(rc, topic, data, len, RC_REC_F_LOCAL);
}

int ringcast_local_broadcast_from(struct ringcast *rc, const char *topic, const void *data,
				  size_t len)
{
	return publish(rc, topic, data, len, RC_REC_F_LOCAL | RC_REC_F_FROM);
}

int ringcast_direct_broadcast(struct ringcast *rc, const char *node, const char *topic,
			      const void *data, size_t len)
{
	if (!rc || !node)
		return -EINVAL;
	/* Until the cluster link exists the only node we can reach is our own. */
	if (strcmp(node, rc->node))
		return -EHOSTUNREACH;
	return publish(rc, topic, data, len, RC_REC_F_LOCAL);
}

int ringcast_claim(struct ringcast *rc, const char *topic, size_t len, struct ringcast_claim *c)
{
	struct rc_topic *t;
	uint64_t pos;
	int ret;

	if (!c)
		return -EINVAL;
	ret = pub_begin(rc, topic, &t);
	if (ret < 0)
		return ret;
	ret = claim(rc, t, len, &pos);
	if (ret < 0)
		return ret;
	t->claim_open = true;
	c->data = rc_ring_rec(&t->pub, pos) + 1;
	c->len = len;
	c->_topic = t;
	c->_pos = pos;
	c->_flags = 0;
	return 0;
}

static struct rc_topic *claim_topic(struct ringcast_claim *c)
{
	struct rc_topic *t = c ? c->_topic : NULL;

	return t && t->claim_open ? t : NULL;
}

/*
 * Has the daemon expired the claim at pos?  It does when it takes our pub
 * slot back: a restarted daemon whose reap grace passed before we came
 * back for the slot (daemon/duties.c), or one that saw our connection
 * close.  It marks the slot's claim DEAD, pads what we claimed
 * (rc_ring_repair_pub), then frees the slot, which another publisher may
 * get.  Each step leaves a slot that no longer holds a BUSY claim from at
 * most pos to past it: no later claim starts below the tail we moved.
 */
static bool claim_expired(const struct rc_ring *r, uint64_t pos)
{
	const struct rc_pub_slot *ps = &r->hdr->pubs[r->pub_slot];
	/* Pairs with the daemon's fetch_or of DEAD and its release stores freeing the slot. */
	uint64_t c = rc_load_acquire(&ps->claim);

	return (c & (RC_CLAIM_BUSY | RC_CLAIM_DEAD)) != RC_CLAIM_BUSY ||
	       (c & ~(RC_CLAIM_BUSY | RC_CLAIM_DEAD)) > pos || rc_load_relaxed(&ps->end) <= pos;
}

static void claim_close(struct rc_topic *t, struct ringcast_claim *c)
{
	t->claim_open = false;
	c->_topic = NULL;
}

/*
 * The claim expired: it is over, and the slot is not ours any more, so
 * the next publish to the topic opens it again (pub_topic_slow) with a
 * fresh mapping and publisher state.
 */
static int claim_stale(struct rc_topic *t, struct ringcast_claim *c)
{
	claim_close(t, c);
	t->publishing = false;
	return -ESTALE;
}

int ringcast_commit(struct ringcast_claim *c)
{
	struct rc_topic *t = claim_topic(c);
	uint64_t word;

	if (!t)
		return -EINVAL;
	/*
	 * Checked before the header is written: once the daemon has padded
	 * the space, subscribers move past it and publishers may reuse it.
	 */
	if (claim_expired(&t->pub, c->_pos))
		return claim_stale(t, c);
	word = rc_ring_write_header(&t->pub, c->_pos, c->len, t->rc->client_id,
				    (uint16_t)c->_flags, rc_clock_ns(t->rc->node_hdr));
	if (!rc_ring_settle(&t->pub, c->_pos, word, t->rc->bells))
		return claim_stale(t, c);
	RC_TRACE_PUBLISH(t->rc, t, c->_pos, c->len);
	claim_close(t, c);
	return 0;
}

int ringcast_abort(struct ringcast_claim *c)
{
	struct rc_topic *t = claim_topic(c);

	if (!t)
		return -EINVAL;
	if (claim_expired(&t->pub, c->_pos) ||
	    !rc_ring_abort(&t->pub, c->_pos, c->len, t->rc->bells))
		return claim_stale(t, c);
	claim_close(t, c);
	return 0;
}

long ringcast_max_msg(struct ringcast *rc, const char *topic)
{
	struct rc_topic *t;
	int ret = pub_topic(rc, topic, &t);

	return ret < 0 ? ret : (long)t->pub.max_payload;
}
