/* SPDX-License-Identifier: MIT */
/*
 * it_untether: flow control with nothing silent (invariant 5).
 *
 * A tethered subscriber that stops reading holds the publisher back until
 * the topic's tether timeout (200 ms here); then the daemon untethers it
 * and the publisher runs free.  When the subscriber comes back it has been
 * lapped: it must be told exactly how many messages it missed (msg->lost),
 * resume at the live position, and never see a torn payload, even while
 * the publisher keeps overwriting the ring under it.
 *
 * Accounting: the publisher numbers its messages 0, 1, 2...; the
 * subscriber checks every message's lost against the gap in numbers, so
 * received + lost == sent exactly.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TOPIC "untether.topic"
#define PAYLOAD 200
#define AFTER_RESUME 20000 /* published after the subscriber resumes */

struct ut_msg {
	uint64_t counter;
	uint8_t fill[PAYLOAD - 16];
	uint64_t check;
};

_Static_assert(sizeof(struct ut_msg) == PAYLOAD, "payload size");

static uint64_t ut_sum(const struct ut_msg *m)
{
	uint64_t h = 0xcbf29ce484222325ull ^ m->counter;

	for (size_t i = 0; i < sizeof(m->fill); i++)
		h = (h ^ m->fill[i]) * 0x100000001b3ull;
	return h;
}

static void ut_fill(struct ut_msg *m, uint64_t counter)
{
	m->counter = counter;
	/* Every byte depends on the counter: a torn copy mixes two of them. */
	for (size_t i = 0; i < sizeof(m->fill); i++)
		m->fill[i] = (uint8_t)(counter * 31 + i);
	m->check = ut_sum(m);
}

struct ut_shared {
	_Atomic int ready;
	_Atomic uint64_t total;    /* set before resuming: messages the publisher will have sent */
	_Atomic uint64_t received;
	_Atomic uint64_t lost;
	uint64_t first_counter, first_lost;
	uint64_t torn, bad_lost;
	uint64_t lost_events;
	char error[200];
};

struct ut_cfg {
	const char *sock;
	struct ut_shared *sh;
	int go_fd; /* read end: a byte here means "resume reading" */
};

struct ut_state {
	struct ut_shared *sh;
	int64_t last; /* last counter handled, -1 before the first */
};

static int ut_handler(const struct ringcast_msg *m, void *ctx)
{
	struct ut_state *s = ctx;
	struct ut_shared *sh = s->sh;
	struct ut_msg msg;
	uint64_t gap;

	if (m->len != sizeof(msg)) {
		sh->torn++;
		snprintf(sh->error, sizeof(sh->error), "message of %zu bytes", m->len);
		return 1;
	}
	memcpy(&msg, m->data, sizeof(msg));
	if (msg.check != ut_sum(&msg) || (int64_t)msg.counter <= s->last) {
		sh->torn++;
		snprintf(sh->error, sizeof(sh->error), "torn or stale payload after message %lld "
			 "(counter field %llu)", (long long)s->last, (unsigned long long)msg.counter);
		return 1;
	}
	gap = msg.counter - (uint64_t)(s->last + 1);
	if (s->last < 0) {
		sh->first_counter = msg.counter;
		sh->first_lost = m->lost;
	}
	if (m->lost != gap) {
		sh->bad_lost++;
		if (!sh->error[0])
			snprintf(sh->error, sizeof(sh->error),
				 "message %llu says lost %llu, but %llu were skipped",
				 (unsigned long long)msg.counter, (unsigned long long)m->lost,
				 (unsigned long long)gap);
	}
	sh->lost_events += m->lost != 0;
	atomic_fetch_add(&sh->lost, m->lost);
	atomic_fetch_add(&sh->received, 1);
	s->last = (int64_t)msg.counter;
	return 0;
}

static int ut_subscriber(void *p)
{
	struct ut_cfg *c = p;
	struct ut_shared *sh = c->sh;
	struct ut_state s = { sh, -1 };
	struct ringcast *rc = it_child_open(c->sock);
	uint64_t deadline;
	char b;

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	atomic_store(&sh->ready, 1);
	/* Stop reading: block on the pipe, never touching the ring. */
	IT_CHECK(read(c->go_fd, &b, 1) == 1, "lost the test's pipe");
	deadline = it_now_ns() + 30000000000ull;
	while (sh->torn == 0 && s.last + 1 < (int64_t)atomic_load(&sh->total)) {
		int ret = ringcast_poll(rc, ut_handler, &s, 0);

		IT_CHECK_OK(ret);
		if (ret == 0) {
			IT_CHECK(it_now_ns() < deadline, "stuck after message %lld of %llu", (long long)s.last,
				 (unsigned long long)atomic_load(&sh->total));
			ret = ringcast_wait(rc, 100);
			IT_CHECK(ret == 0 || ret == -ETIMEDOUT, "ringcast_wait = %d (%s)", ret,
				 ringcast_strerror(ret));
		}
	}
	ringcast_close(rc);
	return 0;
}

static int sub_state(struct it_daemon *d, pid_t pid)
{
	struct ringcast_topic_stat *st = NULL;
	struct ringcast *rc = it_open(d);
	int state = 0;
	size_t n = 0;

	IT_ASSERT_OK(ringcast_stat(rc, TOPIC, &st, &n));
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < st[i].n_subs; j++)
			if (st[i].subs[j].pid == (uint32_t)pid)
				state = st[i].subs[j].state;
	ringcast_stat_free(st, n);
	it_close(rc);
	return state;
}

static void test_stalled_subscriber_is_untethered(void **state)
{
	struct it_daemon *d = *state;
	struct ut_shared *sh = it_shared(sizeof(*sh));
	struct ut_cfg cfg;
	struct ringcast *pub;
	struct ut_msg msg;
	uint64_t sent = 0, t_full, t_free = 0, deadline, cap_bytes, at_free, pre_full;
	int go[2], ret, st = 0;
	pid_t sub;

	/* 64 KiB ring: a lap is ~280 messages, so lapping is quick and certain. */
	it_daemon_start(d, "--tether-timeout", "200", "--capacity", "64k", NULL);
	IT_ASSERT(pipe(go) == 0, "pipe: %s", strerror(errno));
	cfg = (struct ut_cfg){ d->sock, sh, go[0] };
	sub = it_fork(ut_subscriber, &cfg);
	close(go[0]);
	deadline = it_now_ns() + 5000000000ull;
	while (!atomic_load(&sh->ready) && it_now_ns() < deadline)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->ready), "subscriber did not subscribe");

	pub = it_open(d);
	/* Tethered: the publisher stops at a full ring, within one ring's worth. */
	while ((ret = ringcast_broadcast(pub, TOPIC, (ut_fill(&msg, sent), &msg), sizeof(msg))) == 0)
		IT_ASSERT(++sent < 100000, "never blocked: the subscriber is not holding the ring");
	IT_ASSERT_ERR(ret, -EAGAIN);
	pre_full = sent;
	t_full = it_now_ns();
	IT_ASSERT(sub_state(d, sub) == RINGCAST_TETHERED, "the subscriber should still be tethered");

	/* After the tether timeout the daemon lets go: publishing resumes. */
	deadline = t_full + 3000000000ull;
	do {
		ret = ringcast_broadcast(pub, TOPIC, (ut_fill(&msg, sent), &msg), sizeof(msg));
		if (ret == 0) {
			sent++;
			t_free = it_now_ns();
			break;
		}
		IT_ASSERT_ERR(ret, -EAGAIN);
		it_sleep_ms(1);
	} while (it_now_ns() < deadline);
	IT_ASSERT(t_free, "the publisher is still blocked 3 s after the ring filled "
		  "(tether timeout 200 ms)");
	printf("  full after %llu messages; untethered %.0f ms later\n",
	       (unsigned long long)pre_full, (double)(t_free - t_full) / 1e6);

	/* Two rings' worth more, without blocking: the subscriber is lapped. */
	cap_bytes = 2 * 65536;
	at_free = sent;
	while ((sent - at_free) * (sizeof(msg) + 32) < cap_bytes) {
		ret = ringcast_broadcast(pub, TOPIC, (ut_fill(&msg, sent), &msg), sizeof(msg));
		IT_ASSERT(ret == 0, "publish %llu after the untether: %d (%s)",
			  (unsigned long long)sent, ret, ringcast_strerror(ret));
		sent++;
	}
	IT_ASSERT(sub_state(d, sub) == RINGCAST_UNTETHERED, "stat does not show the subscriber untethered");

	/* Resume the subscriber while the publisher keeps overwriting the ring. */
	atomic_store(&sh->total, sent + AFTER_RESUME);
	IT_ASSERT(write(go[1], "g", 1) == 1, "write: %s", strerror(errno));
	deadline = it_now_ns() + 30000000000ull;
	for (uint64_t end = sent + AFTER_RESUME; sent < end;) {
		ret = ringcast_broadcast(pub, TOPIC, (ut_fill(&msg, sent), &msg), sizeof(msg));
		if (ret == -EAGAIN) {
			/* It caught up and tethered itself again: flow control is back. */
			IT_ASSERT(it_now_ns() < deadline, "blocked for 30 s at message %llu",
				  (unsigned long long)sent);
			continue;
		}
		IT_ASSERT_OK(ret);
		sent++;
	}
	IT_ASSERT(it_wait(sub, 30000, &st) == 0, "the subscriber did not finish");
	close(go[1]);
	printf("  sent %llu: received %llu, lost %llu in %llu gap(s); first handled #%llu with lost %llu\n",
	       (unsigned long long)sent, (unsigned long long)atomic_load(&sh->received),
	       (unsigned long long)atomic_load(&sh->lost), (unsigned long long)sh->lost_events,
	       (unsigned long long)sh->first_counter, (unsigned long long)sh->first_lost);
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "subscriber failed (see above)");
	IT_ASSERT(sh->torn == 0, "the subscriber saw a torn payload: %s", sh->error);
	IT_ASSERT(sh->first_counter > 0, "the subscriber was never lapped: first message #0");
	IT_ASSERT(sh->first_lost == sh->first_counter,
		  "first message handled is #%llu but says lost %llu (expected %llu)",
		  (unsigned long long)sh->first_counter, (unsigned long long)sh->first_lost,
		  (unsigned long long)sh->first_counter);
	IT_ASSERT(sh->bad_lost == 0, "%llu message(s) with a wrong loss count: %s",
		  (unsigned long long)sh->bad_lost, sh->error);
	IT_ASSERT(atomic_load(&sh->received) + atomic_load(&sh->lost) == sent,
		  "received %llu + lost %llu != sent %llu", (unsigned long long)atomic_load(&sh->received),
		  (unsigned long long)atomic_load(&sh->lost), (unsigned long long)sent);
	it_close(pub);
	it_assert_daemon_alive(d);
}

/* ---- a handler that outlasts the tether timeout ---- */

struct uh_shared {
	_Atomic int ready, done;
	int overwritten;            /* the held message changed under the handler */
	uint64_t held, next, next_lost;
	char error[200];
};

struct uh_cfg {
	const char *sock;
	struct uh_shared *sh;
};

/* Hold the first message for 600 ms (the tether timeout is 200), then note the next one. */
static int uh_handler(const struct ringcast_msg *m, void *ctx)
{
	struct uh_cfg *c = ctx;
	struct uh_shared *sh = c->sh;
	struct ut_msg before, after;

	if (m->len != sizeof(before)) {
		snprintf(sh->error, sizeof(sh->error), "message of %zu bytes", m->len);
		return 1;
	}
	memcpy(&before, m->data, sizeof(before));
	if (atomic_load(&sh->ready) == 1) {
		atomic_store(&sh->ready, 2);
		sh->held = before.counter;
		it_sleep_ms(600);
		memcpy(&after, m->data, sizeof(after));
		sh->overwritten = memcmp(&before, &after, sizeof(before)) != 0;
		return 0;
	}
	if (before.check != ut_sum(&before))
		snprintf(sh->error, sizeof(sh->error), "message after the held one is torn");
	sh->next = before.counter;
	sh->next_lost = m->lost;
	return 1;
}

static int uh_subscriber(void *p)
{
	struct uh_cfg *c = p;
	struct ringcast *rc = it_child_open(c->sock);
	uint64_t deadline = it_now_ns() + 20000000000ull;
	int ret = 0;

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	atomic_store(&c->sh->ready, 1);
	while (!c->sh->next && !c->sh->error[0]) {
		IT_CHECK(it_now_ns() < deadline, "no message after the held one");
		ret = ringcast_wait(rc, 100);
		IT_CHECK(ret == 0 || ret == -ETIMEDOUT, "ringcast_wait = %d", ret);
		IT_CHECK_OK(ringcast_poll(rc, uh_handler, c, 0));
	}
	atomic_store(&c->sh->done, 1);
	ringcast_close(rc);
	return 0;
}

/*
 * A message handed to the handler in place is the subscriber's until the
 * handler returns, unless the handler outlasts the tether timeout: then the
 * daemon untethers the subscriber and publishers may write over it.  That
 * must not pass silently: the message counts as lost, like every one the
 * publisher lapped meanwhile.
 */
static void test_handler_outlasting_tether_timeout(void **state)
{
	struct it_daemon *d = *state;
	struct uh_shared *sh = it_shared(sizeof(*sh));
	struct uh_cfg cfg = { d->sock, sh };
	uint64_t sent = 0, deadline;
	struct ringcast *pub;
	struct ut_msg msg;
	pid_t sub;
	int ret;

	it_daemon_start(d, "--tether-timeout", "200", "--capacity", "64k", NULL);
	sub = it_fork(uh_subscriber, &cfg);
	deadline = it_now_ns() + 5000000000ull;
	while (!atomic_load(&sh->ready) && it_now_ns() < deadline)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->ready), "subscriber did not subscribe");
	pub = it_open(d);
	deadline = it_now_ns() + 20000000000ull;
	while (!atomic_load(&sh->done) && it_now_ns() < deadline) {
		ret = ringcast_broadcast(pub, TOPIC, (ut_fill(&msg, sent), &msg), sizeof(msg));
		if (ret == -EAGAIN)
			continue; /* held back while the subscriber is tethered */
		IT_ASSERT_OK(ret);
		sent++;
	}
	it_expect_exit(sub, 5000, 0, "subscriber");
	printf("  held #%llu (%s under the handler); next #%llu says lost %llu\n",
	       (unsigned long long)sh->held, sh->overwritten ? "overwritten" : "intact",
	       (unsigned long long)sh->next, (unsigned long long)sh->next_lost);
	IT_ASSERT(!sh->error[0], "%s", sh->error);
	IT_ASSERT(sh->overwritten, "the publisher never wrote over the held message (sent %llu)",
		  (unsigned long long)sent);
	IT_ASSERT(sh->next_lost == sh->next - sh->held,
		  "after #%llu was overwritten under its handler, #%llu says lost %llu; expected "
		  "%llu (the held one too)", (unsigned long long)sh->held,
		  (unsigned long long)sh->next, (unsigned long long)sh->next_lost,
		  (unsigned long long)(sh->next - sh->held));
	it_close(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stalled_subscriber_is_untethered, it_setup,
						it_teardown),
		cmocka_unit_test_setup_teardown(test_handler_outlasting_tether_timeout, it_setup,
						it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_untether", tests, NULL, NULL);
}
