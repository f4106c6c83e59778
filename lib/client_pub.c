// SPDX-License-Identifier: MIT
/*
 * Publishing: the broadcast family and zero-copy claim/commit/abort.
 * The fast path is a topic lookup (the last topic is remembered), a claim
 * on the ring, a copy, and a commit: no system call unless a subscriber
 * of the topic is asleep.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "client.h"
#include "ring_pub.h"
#include "trace.h"

/* An unaligned 8-byte load the compiler may not assume aligned. */
typedef uint64_t __attribute__((may_alias, aligned(1))) rc_u64_una;

/*
 * Is topic the topic t names?  It compares len + 1 bytes (the NUL too)
 * eight at a time, inline: strcmp through the PLT, or a byte loop, took a
 * sixth to a third of a publish.  A hit skips the strnlen and lookup of
 * the general path (t's name was checked when t was made).
 *
 * A word may run past the end of a shorter caller's string, which is why
 * ASan must not instrument this, but never onto an unmapped page: the
 * word at i is read only after topic[0..i) matched name's non-NUL bytes,
 * so topic[i] is in the string, and only if the word stays in topic[i]'s
 * page (4096: no page is smaller; a larger one only makes this cautious);
 * otherwise that word is compared a byte at a time.  Bytes past
 * the first difference never change the answer.
 */
__attribute__((no_sanitize_address)) static inline bool is_topic(const struct rc_topic *t,
								  const char *topic)
{
	size_t n = t->len + 1, i;

	for (i = 0; i < n; i += 8) {
		size_t k = n - i < 8 ? n - i : 8, j;
		uint64_t a, b, mask = ~0ull;

		/* The first k bytes in memory: the low ones on a little-endian machine. */
		if (k < 8)
			mask = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? (1ull << (8 * k)) - 1 :
									 ~0ull << (8 * (8 - k));

		if (((uintptr_t)(topic + i) & 4095) > 4096 - 8) {
			for (j = 0; j < k; j++)
				if (topic[i + j] != t->name[i + j])
					return false;
			continue;
		}
		a = *(const rc_u64_una *)(topic + i);
		b = *(const rc_u64_una *)(t->name + i);
		if ((a ^ b) & mask)
			return false;
	}
	return true;
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
	if (!t->publishing) {
		ret = rc_topic_open_pub(rc, t, false);
		if (ret < 0)
			return ret;
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

static inline int publish(struct ringcast *rc, const char *topic, const void *data, size_t len,
			  uint16_t flags)
{
	struct rc_topic *t;
	uint64_t pos, now;
	int ret;

	if (!data && len)
		return -EINVAL;
	ret = pub_topic(rc, topic, &t);
	if (ret < 0)
		return ret;
	if (t->claim_open)
		return -EBUSY;
	rc_client_check_daemon(rc);
	now = rc_clock_ns(rc->bells);
	ret = claim(rc, t, len, &pos);
	if (ret < 0)
		return ret;
	if (len)
		memcpy(rc_ring_rec(&t->pub, pos) + 1, data, len);
	rc_ring_commit(&t->pub, pos, len, rc->client_id, flags, now, rc->bells);
	RC_TRACE_PUBLISH(rc, t, pos, len);
	return 0;
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
	ret = pub_topic(rc, topic, &t);
	if (ret < 0)
		return ret;
	/* One claim per topic at a time: the pub slot describes one claim. */
	if (t->claim_open)
		return -EBUSY;
	rc_client_check_daemon(rc);
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

int ringcast_commit(struct ringcast_claim *c)
{
	struct rc_topic *t = claim_topic(c);

	if (!t)
		return -EINVAL;
	rc_ring_commit(&t->pub, c->_pos, c->len, t->rc->client_id, (uint16_t)c->_flags,
		       rc_clock_ns(t->rc->bells), t->rc->bells);
	RC_TRACE_PUBLISH(t->rc, t, c->_pos, c->len);
	t->claim_open = false;
	c->_topic = NULL;
	return 0;
}

int ringcast_abort(struct ringcast_claim *c)
{
	struct rc_topic *t = claim_topic(c);

	if (!t)
		return -EINVAL;
	rc_ring_abort(&t->pub, c->_pos, t->rc->bells);
	t->claim_open = false;
	c->_topic = NULL;
	return 0;
}

long ringcast_max_msg(struct ringcast *rc, const char *topic)
{
	struct rc_topic *t;
	int ret = pub_topic(rc, topic, &t);

	return ret < 0 ? ret : (long)t->pub.max_payload;
}
