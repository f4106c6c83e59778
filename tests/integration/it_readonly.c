/* SPDX-License-Identifier: MIT */
/*
 * it_readonly: subscribers map ring data read-only (invariant 7).  A
 * subscriber that writes to msg->data in its handler must die with
 * SIGSEGV instead of corrupting what other subscribers read; the daemon
 * and the other subscribers go on as if nothing happened.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TOPIC "ro.topic"
#define NMSG 1000

struct ro_shared {
	_Atomic int ready[2];
	_Atomic int wrote;        /* the writer's store went through: must never */
	_Atomic uint64_t received;
	char error[160];
};

struct ro_cfg {
	const char *sock;
	struct ro_shared *sh;
};

static int ro_write_handler(const struct ringcast_msg *m, void *ctx)
{
	struct ro_shared *sh = ctx;

	/* The forbidden store; volatile so the compiler cannot drop it. */
	((volatile char *)m->data)[0] = 'X';
	atomic_store(&sh->wrote, 1);
	return 0;
}

static int ro_writer(void *p)
{
	struct ro_cfg *c = p;
	struct ringcast *rc = it_child_open(c->sock);

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	atomic_store(&c->sh->ready[0], 1);
	for (int i = 0; i < 100; i++) {
		int ret = ringcast_wait(rc, 100);

		IT_CHECK(ret == 0 || ret == -ETIMEDOUT, "ringcast_wait = %d", ret);
		IT_CHECK_OK(ringcast_poll(rc, ro_write_handler, c->sh, 0));
		if (atomic_load(&c->sh->wrote))
			break;
	}
	/* Still alive: the write went through (or nothing came). */
	return atomic_load(&c->sh->wrote) ? 0 : 2;
}

struct ro_reader_state {
	struct ro_shared *sh;
	uint64_t next;
	bool bad;
};

static int ro_read_handler(const struct ringcast_msg *m, void *ctx)
{
	struct ro_reader_state *s = ctx;
	char want[32];
	int n = snprintf(want, sizeof(want), "msg-%llu", (unsigned long long)s->next);

	if (m->len != (size_t)n || memcmp(m->data, want, (size_t)n) || m->lost) {
		snprintf(s->sh->error, sizeof(s->sh->error), "got '%.*s' (lost %llu), expected '%s'",
			 (int)(m->len < 40 ? m->len : 40), (const char *)m->data,
			 (unsigned long long)m->lost, want);
		s->bad = true;
		return 1;
	}
	s->next++;
	atomic_store(&s->sh->received, s->next);
	return 0;
}

static int ro_reader(void *p)
{
	struct ro_cfg *c = p;
	struct ro_reader_state s = { c->sh, 0, false };
	struct ringcast *rc = it_child_open(c->sock);
	uint64_t deadline = it_now_ns() + 20000000000ull;

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	atomic_store(&c->sh->ready[1], 1);
	while (s.next < NMSG && !s.bad && it_now_ns() < deadline) {
		int ret = ringcast_wait(rc, 100);

		IT_CHECK(ret == 0 || ret == -ETIMEDOUT, "ringcast_wait = %d", ret);
		IT_CHECK_OK(ringcast_poll(rc, ro_read_handler, &s, 0));
	}
	IT_CHECK(!s.bad, "reader: %s", c->sh->error);
	IT_CHECK(s.next == NMSG, "reader got %llu of %d", (unsigned long long)s.next, NMSG);
	ringcast_close(rc);
	return 0;
}

static void publish_n(struct ringcast *pub, uint64_t from, uint64_t to)
{
	char buf[32];

	for (uint64_t i = from; i < to; i++) {
		int n = snprintf(buf, sizeof(buf), "msg-%llu", (unsigned long long)i);

		IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, buf, (size_t)n));
	}
}

static void test_writing_subscriber_dies(void **state)
{
	struct it_daemon *d = *state;
	struct ro_shared *sh = it_shared(sizeof(*sh));
	struct ro_cfg cfg = { d->sock, sh };
	struct ringcast *pub, *check;
	pid_t writer, reader;
	uint64_t deadline;
	char why[64];
	int st;

	it_daemon_start(d, NULL);
	writer = it_fork(ro_writer, &cfg);
	reader = it_fork(ro_reader, &cfg);
	deadline = it_now_ns() + 5000000000ull;
	while ((!atomic_load(&sh->ready[0]) || !atomic_load(&sh->ready[1])) && it_now_ns() < deadline)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->ready[0]) && atomic_load(&sh->ready[1]), "subscribers not ready");

	pub = it_open(d);
	/* A send timeout: the reader is tethered and may lag a little. */
	IT_ASSERT_OK(ringcast_set_send_timeout(pub, 2000));
	publish_n(pub, 0, 1);
	IT_ASSERT(it_wait(writer, 5000, &st) == 0, "the writing subscriber neither died nor finished");
	IT_ASSERT(!atomic_load(&sh->wrote), "a subscriber wrote into msg->data and lived: ring data "
		  "is mapped writable");
	IT_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
		  "the writing subscriber %s, expected death by SIGSEGV",
		  it_status_str(st, why, sizeof(why)));

	/* The others go on: the reader gets everything, in order, unmodified. */
	publish_n(pub, 1, NMSG);
	it_expect_exit(reader, 20000, 0, "the other subscriber");
	it_assert_daemon_alive(d);
	check = it_open(d);
	IT_ASSERT(it_wait_subscribers(d, TOPIC, 0, 0, 2000), "stat of %s fails after the crash", TOPIC);
	{
		struct it_inbox box = { 0 };

		IT_ASSERT_OK(ringcast_subscribe(check, TOPIC));
		publish_n(pub, NMSG, NMSG + 1);
		IT_ASSERT(it_inbox_fill(check, &box, 1, 2000) == 1, "a new subscriber got nothing");
	}
	it_close(check);
	it_close(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writing_subscriber_dies, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_readonly", tests, NULL, NULL);
}
