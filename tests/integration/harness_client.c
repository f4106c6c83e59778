/* SPDX-License-Identifier: MIT */
/*
 * Clients of the test's daemon: open and close them (teardown closes any
 * a failed test left open), wait for subscribers to appear, and collect
 * messages into an inbox.
 */
#include "harness_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/* ---- clients ---- */

struct ringcast *it_open(struct it_daemon *d)
{
	struct ringcast *rc = NULL;
	int ret = ringcast_open(&rc, d->sock);

	if (ret < 0)
		IT_FAIL("ringcast_open(%s) = %d (%s)", d->sock, ret, ringcast_strerror(ret));
	harness_keep_client(rc);
	return rc;
}

void it_close(struct ringcast *rc)
{
	harness_forget_client(rc);
	ringcast_close(rc);
}

struct ringcast *it_child_open(const char *sock)
{
	struct ringcast *rc = NULL;
	int ret = ringcast_open(&rc, sock);

	if (ret < 0)
		it_child_fail(__FILE__, __LINE__, "ringcast_open(%s) = %d (%s)", sock, ret,
			      ringcast_strerror(ret));
	return rc;
}

bool it_wait_stat(struct it_daemon *d, const char *topic,
		  bool (*pred)(const struct ringcast_topic_stat *st, const void *arg), const void *arg,
		  int timeout_ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct ringcast *rc = NULL;
	bool seen = false;

	do {
		struct ringcast_topic_stat *st = NULL;
		size_t n = 0;

		if (!rc && ringcast_open(&rc, d->sock) < 0)
			rc = NULL;
		if (rc && ringcast_stat(rc, topic, &st, &n) == 0) {
			for (size_t i = 0; i < n && !seen; i++)
				seen = !strcmp(st[i].topic, topic) && pred(&st[i], arg);
			ringcast_stat_free(st, n);
		}
		if (!seen)
			it_sleep_ms(10);
	} while (!seen && it_now_ns() < deadline);
	ringcast_close(rc);
	return seen;
}

struct subs_want {
	size_t min_subs;
	pid_t pid;
};

static bool has_subscribers(const struct ringcast_topic_stat *st, const void *arg)
{
	const struct subs_want *w = arg;
	bool has_pid = w->pid == 0;

	for (size_t j = 0; j < st->n_subs; j++)
		has_pid |= st->subs[j].pid == (uint32_t)w->pid;
	return st->n_subs >= w->min_subs && has_pid;
}

bool it_wait_subscribers(struct it_daemon *d, const char *topic, size_t min_subs, pid_t pid,
			 int timeout_ms)
{
	struct subs_want w = { min_subs, pid };

	return it_wait_stat(d, topic, has_subscribers, &w, timeout_ms);
}

/* ---- inbox ---- */

int it_inbox_handler(const struct ringcast_msg *msg, void *ctx)
{
	struct it_inbox *box = ctx;
	struct it_inbox_msg *m;

	if (box->n >= IT_INBOX_MAX) {
		box->overflow++;
		return 0;
	}
	m = &box->m[box->n++];
	m->topic_len = msg->topic_len;
	memcpy(m->topic, msg->topic, msg->topic_len <= RINGCAST_TOPIC_MAX ? msg->topic_len :
	       RINGCAST_TOPIC_MAX);
	m->len = msg->len;
	memcpy(m->data, msg->data, msg->len < IT_INBOX_DATA ? msg->len : IT_INBOX_DATA);
	m->seq = msg->seq;
	m->publish_ns = msg->publish_ns;
	m->lost = msg->lost;
	snprintf(m->origin, sizeof(m->origin), "%s", msg->origin ? msg->origin : "(null)");
	return 0;
}

int it_inbox_fill(struct ringcast *rc, struct it_inbox *box, int want, int timeout_ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		int ret = ringcast_poll(rc, it_inbox_handler, box, 0);
		uint64_t now;

		if (ret < 0)
			return ret;
		if (box->n + box->overflow >= want)
			break;
		now = it_now_ns();
		if (now >= deadline)
			break;
		ret = ringcast_wait(rc, (int)((deadline - now) / 1000000ull) + 1);
		if (ret < 0 && ret != -ETIMEDOUT)
			return ret;
	}
	return box->n + box->overflow;
}

void *it_waiter_main(void *arg)
{
	struct it_waiter *w = arg;

	atomic_store(&w->tid, gettid());
	w->ret = ringcast_wait(w->rc, w->timeout_ms);
	return NULL;
}

bool it_has_topic(struct it_daemon *d, const char *name)
{
	struct ringcast_topic_stat *st = NULL;
	struct ringcast *rc = it_open(d);
	bool found = false;
	size_t n = 0;

	IT_ASSERT_OK(ringcast_stat(rc, NULL, &st, &n));
	for (size_t i = 0; i < n; i++)
		found |= !strcmp(st[i].topic, name);
	ringcast_stat_free(st, n);
	it_close(rc);
	return found;
}
