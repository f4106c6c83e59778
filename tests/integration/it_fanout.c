/* SPDX-License-Identifier: MIT */
/*
 * it_fanout: one ring, many processes.  Every subscriber process must get
 * every message of every publisher, in that publisher's order, with seq
 * strictly increasing and nothing lost (tethered subscribers hold the
 * publishers back instead).  Subscribers come in both kinds the design
 * has: busy-polling (ringcast_poll in a loop) and sleeping (ringcast_wait),
 * because the wake-up path of one and the no-wake-up path of the other are
 * different code.  Also the zero-copy path: an aborted claim is never
 * delivered, a committed one is.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define TOPIC "fan.out"
#define NSUBS 4
#define MAX_PUBS 3
#define DEADLINE_MS 60000 /* per process; a correct run takes a few seconds */
#define FAN_MAGIC 0xfa40u

/* A message: who sent it, its number in that sender's stream, and a check. */
struct fan_msg {
	uint32_t magic;
	uint32_t pub;
	uint64_t counter;
	uint64_t check;
	uint8_t fill[40];
};

static uint64_t fan_check(uint32_t pub, uint64_t counter)
{
	uint64_t x = (counter + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)pub << 56);

	return x ^ (x >> 29);
}

/* Shared between the test and its helpers (MAP_SHARED). */
struct fan_shared {
	_Atomic int ready;      /* subscribers subscribed */
	_Atomic int go;         /* publishers may start */
	struct fan_sub_result {
		_Atomic uint64_t received;
		uint64_t per_pub[MAX_PUBS];
		uint64_t lost;
		uint64_t wakeups; /* ringcast_wait returned 0 (sleepers only) */
		char error[256];
	} subs[NSUBS];
	_Atomic uint64_t sent[MAX_PUBS];
};

struct fan_cfg {
	const char *sock;
	struct fan_shared *sh;
	int npubs;
	uint64_t per_pub;
	int index;  /* of this helper */
	bool spin;  /* subscriber: busy-poll rather than sleep */
};

struct fan_state {
	struct fan_sub_result *res;
	int npubs;
	uint64_t next[MAX_PUBS];
	uint64_t last_seq;
	bool failed;
};

static int fan_handler(const struct ringcast_msg *m, void *ctx)
{
	struct fan_state *s = ctx;
	struct fan_msg f;

	if (s->failed)
		return 1;
	if (m->len != sizeof(f)) {
		snprintf(s->res->error, sizeof(s->res->error), "message of %zu bytes, expected %zu",
			 m->len, sizeof(f));
		goto bad;
	}
	memcpy(&f, m->data, sizeof(f));
	if (f.magic != FAN_MAGIC || f.pub >= (uint32_t)s->npubs ||
	    f.check != fan_check(f.pub, f.counter)) {
		snprintf(s->res->error, sizeof(s->res->error),
			 "corrupt payload: magic %#x pub %u counter %llu", f.magic, f.pub,
			 (unsigned long long)f.counter);
		goto bad;
	}
	if (f.counter != s->next[f.pub]) {
		snprintf(s->res->error, sizeof(s->res->error),
			 "publisher %u: message %llu arrived, expected %llu", f.pub,
			 (unsigned long long)f.counter, (unsigned long long)s->next[f.pub]);
		goto bad;
	}
	if (m->seq <= s->last_seq) {
		snprintf(s->res->error, sizeof(s->res->error), "seq %llu after seq %llu",
			 (unsigned long long)m->seq, (unsigned long long)s->last_seq);
		goto bad;
	}
	if (m->lost) {
		snprintf(s->res->error, sizeof(s->res->error), "lost = %llu before seq %llu",
			 (unsigned long long)m->lost, (unsigned long long)m->seq);
		s->res->lost += m->lost;
		goto bad;
	}
	s->next[f.pub]++;
	s->last_seq = m->seq;
	s->res->per_pub[f.pub]++;
	atomic_fetch_add(&s->res->received, 1);
	return 0;
bad:
	s->failed = true;
	return 1;
}

static int fan_subscriber(void *p)
{
	struct fan_cfg *c = p;
	struct fan_sub_result *res = &c->sh->subs[c->index];
	struct fan_state s = { .res = res, .npubs = c->npubs };
	uint64_t want = c->per_pub * (uint64_t)c->npubs;
	uint64_t deadline = it_now_ns() + DEADLINE_MS * 1000000ull;
	struct ringcast *rc = it_child_open(c->sock);
	unsigned idle = 0;

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	atomic_fetch_add(&c->sh->ready, 1);
	while (atomic_load(&res->received) < want && !s.failed) {
		int n = ringcast_poll(rc, fan_handler, &s, 0);

		IT_CHECK_OK(n);
		if (n > 0) {
			idle = 0;
			continue;
		}
		IT_CHECK(it_now_ns() < deadline, "subscriber %d (%s): %llu of %llu messages by the deadline",
			 c->index, c->spin ? "busy-poll" : "sleeping",
			 (unsigned long long)atomic_load(&res->received), (unsigned long long)want);
		if (c->spin) {
			/* Never sleep; but on two cores let the publisher run now and then. */
			if (++idle % 256 == 0)
				sched_yield();
			else
				it_cpu_relax();
		} else {
			int ret = ringcast_wait(rc, 1000);

			IT_CHECK(ret == 0 || ret == -ETIMEDOUT, "ringcast_wait = %d (%s)", ret,
				 ringcast_strerror(ret));
			res->wakeups += ret == 0;
		}
	}
	IT_CHECK(!s.failed, "subscriber %d (%s): %s", c->index, c->spin ? "busy-poll" : "sleeping",
		 res->error);
	ringcast_close(rc);
	return 0;
}

static int fan_publisher(void *p)
{
	struct fan_cfg *c = p;
	uint64_t deadline = it_now_ns() + DEADLINE_MS * 1000000ull;
	struct ringcast *rc = it_child_open(c->sock);
	struct fan_msg f = { .magic = FAN_MAGIC, .pub = (uint32_t)c->index };

	memset(f.fill, 0x5a, sizeof(f.fill));
	/* Wait in broadcast while a tethered subscriber catches up. */
	IT_CHECK_OK(ringcast_set_send_timeout(rc, 1000));
	while (!atomic_load(&c->sh->go))
		it_sleep_ms(1);
	for (uint64_t i = 0; i < c->per_pub; i++) {
		int ret;

		f.counter = i;
		f.check = fan_check(f.pub, i);
		while ((ret = ringcast_broadcast(rc, TOPIC, &f, sizeof(f))) == -EAGAIN)
			IT_CHECK(it_now_ns() < deadline, "publisher %d: ring still full at message %llu",
				 c->index, (unsigned long long)i);
		IT_CHECK_OK(ret);
		atomic_store(&c->sh->sent[c->index], i + 1);
	}
	ringcast_close(rc);
	return 0;
}

/* nspin busy-polling and NSUBS - nspin sleeping subscribers; npubs publishers. */
static void run_fanout(struct it_daemon *d, int npubs, uint64_t per_pub, int nspin)
{
	struct fan_shared *sh = it_shared(sizeof(*sh));
	struct fan_cfg subs[NSUBS], pubs[MAX_PUBS];
	pid_t sub_pid[NSUBS], pub_pid[MAX_PUBS];
	uint64_t t0, deadline;
	char what[64];

	it_daemon_start(d, NULL);
	for (int i = 0; i < NSUBS; i++) {
		subs[i] = (struct fan_cfg){ d->sock, sh, npubs, per_pub, i, i < nspin };
		sub_pid[i] = it_fork(fan_subscriber, &subs[i]);
	}
	/* Subscribers see only what is published after they subscribed. */
	deadline = it_now_ns() + 5000000000ull;
	while (atomic_load(&sh->ready) < NSUBS && it_now_ns() < deadline)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->ready) == NSUBS, "only %d of %d subscribers subscribed in 5 s",
		  atomic_load(&sh->ready), NSUBS);
	for (int i = 0; i < npubs; i++) {
		pubs[i] = (struct fan_cfg){ d->sock, sh, npubs, per_pub, i, false };
		pub_pid[i] = it_fork(fan_publisher, &pubs[i]);
	}
	t0 = it_now_ns();
	atomic_store(&sh->go, 1);
	for (int i = 0; i < npubs; i++) {
		snprintf(what, sizeof(what), "publisher %d", i);
		it_expect_exit(pub_pid[i], DEADLINE_MS + 5000, 0, what);
	}
	for (int i = 0; i < NSUBS; i++) {
		snprintf(what, sizeof(what), "subscriber %d (%s)", i, i < nspin ? "busy-poll" : "sleeping");
		it_expect_exit(sub_pid[i], DEADLINE_MS + 5000, 0, what);
	}
	printf("  %d publisher(s) x %llu messages to %d subscribers (%d busy-polling) in %.2f s\n",
	       npubs, (unsigned long long)per_pub, NSUBS, nspin, (double)(it_now_ns() - t0) / 1e9);
	for (int i = 0; i < NSUBS; i++) {
		for (int p = 0; p < npubs; p++)
			IT_ASSERT(sh->subs[i].per_pub[p] == per_pub,
				  "subscriber %d got %llu of publisher %d's %llu messages", i,
				  (unsigned long long)sh->subs[i].per_pub[p], p,
				  (unsigned long long)per_pub);
		IT_ASSERT(sh->subs[i].lost == 0, "subscriber %d lost %llu", i,
			  (unsigned long long)sh->subs[i].lost);
		if (i >= nspin)
			printf("  sleeping subscriber %d woke %llu times\n", i,
			       (unsigned long long)sh->subs[i].wakeups);
	}
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

static void test_one_publisher_four_subscribers(void **state)
{
	run_fanout(*state, 1, 100000, 2);
}

static void test_three_publishers(void **state)
{
	run_fanout(*state, 3, 40000, 2);
}

/* All sleeping: every message may need a wake-up, the path busy-pollers never take. */
static void test_sleeping_subscribers_only(void **state)
{
	run_fanout(*state, 1, 20000, 0);
}

static void test_claim_commit_abort(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct ringcast_claim c;
	struct it_inbox box = { 0 };
	static const char *const want[] = { "committed-1", "broadcast", "committed-2" };

	it_daemon_start(d, NULL);
	pub = it_open(d);
	sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, "fan.claim"));

	IT_ASSERT_OK(ringcast_claim(pub, "fan.claim", 7, &c));
	IT_ASSERT(c.data != NULL && c.len == 7, "claim: data %p len %zu", c.data, c.len);
	memcpy(c.data, "aborted", 7);
	IT_ASSERT_OK(ringcast_abort(&c));

	IT_ASSERT_OK(ringcast_claim(pub, "fan.claim", 11, &c));
	memcpy(c.data, "committed-1", 11);
	IT_ASSERT_OK(ringcast_commit(&c));

	IT_ASSERT_OK(ringcast_broadcast(pub, "fan.claim", "broadcast", 9));

	IT_ASSERT_OK(ringcast_claim(pub, "fan.claim", 9, &c));
	memcpy(c.data, "aborted-2", 9);
	IT_ASSERT_OK(ringcast_abort(&c));
	IT_ASSERT_OK(ringcast_claim(pub, "fan.claim", 11, &c));
	memcpy(c.data, "committed-2", 11);
	IT_ASSERT_OK(ringcast_commit(&c));

	IT_ASSERT_OK(it_inbox_fill(sub, &box, 3, 2000));
	/* Anything late would be a delivered abort: look once more. */
	IT_ASSERT_OK(ringcast_poll(sub, it_inbox_handler, &box, 0));
	IT_ASSERT(box.n == 3, "received %d messages, expected the 3 committed ones", box.n);
	for (int i = 0; i < 3; i++) {
		IT_ASSERT(box.m[i].len == strlen(want[i]) &&
			  !memcmp(box.m[i].data, want[i], box.m[i].len),
			  "message %d is '%.*s', expected '%s'", i, (int)box.m[i].len,
			  box.m[i].data, want[i]);
		/* An aborted claim is not a lost message. */
		IT_ASSERT(box.m[i].lost == 0, "message %d: lost = %llu", i,
			  (unsigned long long)box.m[i].lost);
		IT_ASSERT(i == 0 || box.m[i].seq > box.m[i - 1].seq, "seq not increasing at %d", i);
	}
	it_close(pub);
	it_close(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_publisher_four_subscribers, it_setup,
						it_teardown),
		cmocka_unit_test_setup_teardown(test_three_publishers, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_sleeping_subscribers_only, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_claim_commit_abort, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_fanout", tests, NULL, NULL);
}
