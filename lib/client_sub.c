/* SPDX-License-Identifier: MIT */
/*
 * Subscribing and delivery.  ringcast_poll() walks the subscribed topics
 * round-robin and hands each record to the handler in place (tethered) or
 * from a private copy (untethered, or just re-tethered).  After a batch
 * of messages it publishes its new position in its sub slot: that release
 * store is what lets publishers reuse the space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "client.h"
#include "ring_sub.h"
#include "trace.h"

/* Records read between two stores of our position (see store_progress). */
#define RC_SUB_BATCH 64u

/*
 * Make rc->copy, where untethered reads land, hold size bytes.  Checked
 * at every copy, not only at subscribe: a topic re-opened after a daemon
 * restart may map a new ring with larger records than the old one.
 */
static int copy_fit(struct ringcast *rc, size_t size)
{
	uint8_t *c;

	if (size <= rc->copy_cap)
		return 0;
	c = realloc(rc->copy, size);
	if (!c)
		return -ENOMEM;
	rc->copy = c;
	rc->copy_cap = size;
	return 0;
}

int ringcast_subscribe(struct ringcast *rc, const char *topic)
{
	struct rc_topic *t;
	size_t len;
	int ret;

	if (!rc)
		return -EINVAL;
	ret = rc_topic_check(topic, &len);
	if (ret < 0)
		return ret;
	t = rc_topic_get(rc, topic, len, true);
	if (!t)
		return -ENOMEM;
	if (t->subscribed)
		return -EALREADY;
	if (rc->n_subs == rc->subs_cap) {
		size_t cap = rc->subs_cap ? rc->subs_cap * 2 : 8;
		struct rc_topic **s = realloc(rc->subs, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		rc->subs = s;
		rc->subs_cap = cap;
	}
	ret = rc_topic_open_sub(rc, t, false);
	if (ret < 0)
		return ret;
	/* Sized now so that a first untethered read does not fail for memory. */
	if (copy_fit(rc, t->sub.max_payload + sizeof(struct rc_rec)) < 0) {
		rc_topic_close_sub(rc, t);
		return -ENOMEM;
	}
	t->subscribed = true;
	t->sleep_enabled = false;
	t->pending_lost = 0;
	rc->subs[rc->n_subs++] = t;
	return 0;
}

void rc_topic_close_sub(struct ringcast *rc, struct rc_topic *t)
{
	struct rc_msg req = { .type = RC_MSG_UNSUBSCRIBE }, rep;
	size_t i;

	req.topic.topic = t->name;
	req.topic.topic_len = (uint16_t)t->len;
	/* Best effort: if the daemon is gone, our closed socket releases the slot. */
	rc_client_request(rc, &req, &rep, NULL, NULL);
	rc_ring_unmap(&t->sub);
	for (i = 0; i < rc->n_subs; i++)
		if (rc->subs[i] == t) {
			memmove(&rc->subs[i], &rc->subs[i + 1], (rc->n_subs - i - 1) * sizeof(t));
			rc->n_subs--;
			break;
		}
	t->subscribed = false;
}

int ringcast_unsubscribe(struct ringcast *rc, const char *topic)
{
	struct rc_topic *t;
	size_t len;
	int ret;

	if (!rc)
		return -EINVAL;
	ret = rc_topic_check(topic, &len);
	if (ret < 0)
		return ret;
	t = rc_topic_get(rc, topic, len, false);
	if (!t || !t->subscribed)
		return -ENOENT;
	rc_topic_close_sub(rc, t);
	return 0;
}

static struct rc_sub_slot *my_slot(struct rc_topic *t)
{
	return &t->sub.ctl->subs[t->sub.sub_slot];
}

/* n messages lost: stat shows it now; the handler hears of it with the next message. */
static void count_lost(struct rc_topic *t, uint64_t n)
{
	struct rc_sub_slot *s = my_slot(t);

	t->pending_lost += n;
	rc_store_relaxed(&s->lost, rc_load_relaxed(&s->lost) + n);
}

/* Lapped: resume at the live tail and remember exactly how many we skipped. */
static void jump_live(struct rc_topic *t)
{
	struct rc_sub_slot *s = my_slot(t);
	uint64_t pos, seq;

	rc_ring_live(&t->sub, &pos, &seq);
	if (seq > t->next_seq)
		count_lost(t, seq - t->next_seq);
	t->pos = pos;
	t->next_seq = seq;
	rc_store_release(&s->pos, pos);
}

/*
 * After a handler that had the record at pos in place: was it overwritten
 * under the handler?  Only if the daemon untethered us meanwhile, for a
 * handler that outlasted the tether timeout: publishers then reuse space
 * we have not released.  Then the message counts as lost, as it would
 * had we been lapped before reading it, and the rest is read by copy.
 *
 * The state load is the filter that keeps the tail's line, which the
 * publisher writes all the time, out of the common path.  A publisher
 * writes over pos only after it saw us untethered, so a handler that read
 * its bytes is followed by a state load that sees it too (x86 keeps loads
 * in order; rc_ring_still_valid fences before it reads the tail).
 */
static void lost_under_handler(struct rc_topic *t, uint64_t pos)
{
	if (rc_load_acquire(&my_slot(t)->state) == RC_SUB_TETHERED)
		return;
	t->untethered = true;
	if (!rc_ring_still_valid(&t->sub, pos))
		count_lost(t, 1);
}

/* Re-read our slot's tether state; re-tether when caught up. */
static void track_tether(struct rc_topic *t)
{
	uint32_t state = rc_load_acquire(&my_slot(t)->state);

	if (state == RC_SUB_UNTETHERED) {
		t->untethered = true;
		if (rc_ring_sub_retether(&t->sub, t->pos, &t->safe_from))
			t->untethered = false;
	} else {
		t->untethered = false;
	}
}

/*
 * Publish how far we have read: delivered records since the last call,
 * and our position, whose release store is what lets publishers reuse the
 * space (pairs with rc_ring_min_tethered's acquire).  Done once per batch,
 * not per record: a publisher waiting for space reads this line, and
 * every store of ours would have to take it back.
 */
static void store_progress(struct rc_topic *t, unsigned delivered)
{
	struct rc_sub_slot *s = my_slot(t);

	rc_store_relaxed(&s->delivered, rc_load_relaxed(&s->delivered) + delivered);
	rc_store_relaxed(&s->seq, t->next_seq);
	rc_store_release(&s->pos, t->pos);
}

/*
 * Deliver up to max of t's records.  Returns how many were handled, even
 * when it stopped on an error: *err is then that error (0 otherwise).
 */
static unsigned poll_topic(struct ringcast *rc, struct rc_topic *t, ringcast_handler handler,
			   void *ctx, unsigned max, bool *stop, int *err)
{
	unsigned n = 0, stored = 0;
	uint64_t stored_pos = t->pos;

	*err = 0;
	track_tether(t);
	while (n < max) {
		const struct rc_rec *rec;
		struct rc_view v;
		struct ringcast_msg m;
		uint64_t at; /* the record's position, for lost_under_handler() */
		bool in_place = true;
		int ret = rc_ring_peek(&t->sub, &t->pos, &v, !t->untethered);

		if (ret == -ESTALE) {
			jump_live(t);
			continue;
		}
		if (ret < 0) {
			*err = ret;
			break;
		}
		if (ret == 0) {
			if (t->untethered)
				track_tether(t);
			break;
		}
		rec = v.rec;
		if (t->untethered || t->pos < t->safe_from) {
			/* No tether protects this record: copy it, then check it was not overwritten. */
			if (copy_fit(rc, sizeof(*rec) + v.len) < 0) {
				*err = -ENOMEM; /* unread: the next poll tries again */
				break;
			}
			memcpy(rc->copy, v.rec, sizeof(*rec) + v.len);
			if (!rc_ring_still_valid(&t->sub, t->pos)) {
				jump_live(t);
				continue;
			}
			rec = (const struct rc_rec *)rc->copy;
			v.data = rec + 1;
			in_place = false;
		}
		/*
		 * seq only goes up.  A lower one is a record of an earlier lap
		 * whose stamp happens to match (salted, so 1 in 2^32 and only
		 * 32 GiB of positions apart): not committed yet, come back.
		 */
		if (rec->seq < t->next_seq)
			break;
		at = t->pos;
		t->pos = v.next;
		t->next_seq = rec->seq + 1;
		if ((rec->flags & RC_REC_F_FROM) && rec->client_id == rc->client_id)
			continue;
		m.topic = t->name;
		m.topic_len = t->len;
		m.data = v.data;
		m.len = v.len;
		m.seq = rec->seq;
		m.publish_ns = rec->publish_ns;
		m.origin = rc->node;
		m.lost = t->pending_lost;
		t->pending_lost = 0;
		n++;
		RC_TRACE_DELIVER(rc, t, &m);
		*stop = handler(&m, ctx) != 0;
		if (in_place)
			lost_under_handler(t, at);
		if (*stop)
			break;
		/*
		 * After the handler: until now the record had to stay where
		 * it is.  A batch at most RC_SUB_BATCH long, so a subscriber
		 * that never catches up still frees space as it goes.
		 */
		if (n - stored >= RC_SUB_BATCH) {
			store_progress(t, n - stored);
			stored = n;
			stored_pos = t->pos;
		}
	}
	if (n != stored || t->pos != stored_pos)
		store_progress(t, n - stored);
	return n;
}

int ringcast_poll(struct ringcast *rc, ringcast_handler handler, void *ctx, unsigned max)
{
	unsigned total = 0;
	bool stop = false;
	size_t i, left;
	int err = 0;

	if (!rc || !handler)
		return -EINVAL;
	if (max == 0)
		max = ~0u;
	rc_client_check_daemon(rc);
	rc_client_fd_reap(rc);
	if (rc->poll_err) {
		/* A topic dropped by the last poll, which had messages to count. */
		err = rc->poll_err;
		rc->poll_err = 0;
		goto out;
	}
	/* An unsubscribe may have left rr past the end. */
	if (rc->rr >= rc->n_subs)
		rc->rr = 0;
	/* i < n_subs: the index wraps by one comparison, not a division per poll. */
	for (i = rc->rr, left = rc->n_subs; left && total < max && !stop; left--) {
		struct rc_topic *t = rc->subs[i];
		int terr;

		total += poll_topic(rc, t, handler, ctx, max - total, &stop, &terr);
		if (terr == -EBADMSG) {
			/*
			 * The header's promise: a corrupt ring's topic is
			 * dropped and the others go on.  Left subscribed,
			 * every poll would stop at it again and every wait
			 * would find it to be work (a busy loop).  The drop
			 * moves the next topic to i.
			 */
			rc_topic_close_sub(rc, t);
			err = terr;
			if (i >= rc->n_subs)
				i = 0;
			continue;
		}
		if (terr < 0) {
			err = terr;
			break;
		}
		i = i + 1 < rc->n_subs ? i + 1 : 0;
	}
	if (rc->n_subs)
		rc->rr = rc->rr + 1 < rc->n_subs ? rc->rr + 1 : 0;
	/*
	 * One return value: a count or an error.  A drop is reported exactly
	 * once, by the next poll when this one has messages to count (the
	 * dropped topic cannot raise it again).  -ENOMEM needs no such care:
	 * the message stays unread and the next poll meets it again.
	 */
	if (err == -EBADMSG && total) {
		rc->poll_err = err;
		err = 0;
	}
out:
	rc_client_fd_rearm(rc);
	return err && !total ? err : (int)total;
}

int rc_client_has_work(struct ringcast *rc)
{
	size_t i;

	/* A drop to report is work: ringcast_poll() must get to say it. */
	if (rc->poll_err)
		return 1;
	for (i = 0; i < rc->n_subs; i++) {
		struct rc_topic *t = rc->subs[i];
		struct rc_view v;
		uint64_t pos = t->pos;

		/*
		 * Anything but "nothing yet" is work: poll reports errors too,
		 * and drops a corrupt topic as it does, so -EBADMSG is work
		 * only until the next poll.
		 */
		if (rc_ring_peek(&t->sub, &pos, &v, !t->untethered) != 0)
			return 1;
	}
	return 0;
}
