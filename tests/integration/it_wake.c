/* SPDX-License-Identifier: MIT */
/*
 * it_wake: sleeping and waking, where a process on the other side may die
 * or misbehave.
 *
 *  - ringcast_fd() and ringcast_wait() on one client count it once in a
 *    ring's sleepers (a second count is one nobody drops).
 *  - ringcast_poll() reaps the fd's pending wait even when a reconnect
 *    gave the client a new bell, in a new bells file.
 *  - A subscriber asleep, in ringcast_wait(-1) or on ringcast_fd(), gets
 *    what is published after a waker took it off the count and died
 *    before ringing its bell: every futex sleep is bounded.
 *
 * The dead waker is played by the test through the publisher's own
 * mapping of the ring's ctl file (it_pub_ring), as a dying publisher
 * would leave it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "../in_futex.h"

/* The file format (docs/ring-format.md): the ctl file's sleeper counts. */
#include "../../lib/ring_format.h"

#define TOPIC "wake.topic"
#define MESSAGES 100
#define BOUND_MS 10000 /* generous: the broken code never gets there */

static bool ringcast_fd_supported(struct it_daemon *d)
{
	struct ringcast *rc = it_open(d);
	int fd = ringcast_fd(rc);

	it_close(rc);
	return fd != -EOPNOTSUPP;
}

/* ---- one count for the fd's wait and ringcast_wait's ---- */


static int count_msgs(const struct ringcast_msg *m, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

static void test_fd_and_wait_count_once(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct it_waiter w = { .timeout_ms = BOUND_MS };
	struct pollfd pfd;
	uint64_t until;
	pthread_t th;
	int fd, n = 0;

	it_daemon_start(d, NULL);
	if (!ringcast_fd_supported(d))
		it_skip("ringcast_fd: this kernel has no IORING_OP_FUTEX_WAIT");
	pub = it_open(d);
	sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, TOPIC));
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "a", 1)); /* pub maps the ring */
	IT_ASSERT(ringcast_poll(sub, count_msgs, &n, 0) == 1, "the first message did not arrive");
	fd = ringcast_fd(sub);
	IT_ASSERT_OK(fd);
	IT_ASSERT(it_pub_sleepers(pub) == 1, "the fd's wait counts %u sleepers, expected 1",
		  it_pub_sleepers(pub));

	/* ringcast_wait() while the fd's wait is armed: still one sleeper. */
	w.rc = sub;
	IT_ASSERT(pthread_create(&th, NULL, it_waiter_main, &w) == 0, "pthread_create");
	until = it_now_ns() + 5000000000ull;
	while (!(atomic_load(&w.tid) && test_in_futex(getpid(), atomic_load(&w.tid))) &&
	       it_now_ns() < until)
		it_sleep_ms(1);
	IT_ASSERT(test_in_futex(getpid(), atomic_load(&w.tid)), "ringcast_wait never went to sleep");
	n = (int)it_pub_sleepers(pub);
	if (n != 1) {
		IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "b", 1)); /* let it go */
		pthread_join(th, NULL);
		IT_FAIL("one subscriber asleep in ringcast_wait and on its fd counts %d "
			"sleepers: the extra count is never dropped", n);
	}
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "b", 1));
	pthread_join(th, NULL);
	IT_ASSERT(w.ret == 0, "ringcast_wait = %d (%s)", w.ret, ringcast_strerror(w.ret));

	/* The fd saw the same ring; poll reaps it, reads, and arms it once again. */
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	IT_ASSERT(poll(&pfd, 1, BOUND_MS) == 1, "the fd is not readable with a message waiting");
	n = 0;
	IT_ASSERT(ringcast_poll(sub, count_msgs, &n, 0) == 1 && n == 1,
		  "ringcast_poll found %d message(s), expected 1", n);
	IT_ASSERT(it_pub_sleepers(pub) == 1, "after poll re-armed the fd: %u sleepers, expected 1",
		  it_pub_sleepers(pub));

	/* A ringcast_wait() that times out leaves the fd's wait armed and counted. */
	IT_ASSERT_ERR(ringcast_wait(sub, 20), -ETIMEDOUT);
	IT_ASSERT(it_pub_sleepers(pub) == 1, "after ringcast_wait timed out: %u sleepers, "
		  "expected the fd's 1", it_pub_sleepers(pub));
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "c", 1));
	IT_ASSERT(poll(&pfd, 1, BOUND_MS) == 1, "the fd missed a message after ringcast_wait");
	n = 0;
	IT_ASSERT(ringcast_poll(sub, count_msgs, &n, 0) == 1, "the message after the wait is lost");
	it_close(sub);
	it_close(pub);
}

/* ---- the fd's wait reaped after a reconnect with a new bell ---- */

struct rn_shared {
	_Atomic int ready, restarted, polled;
};

struct rn_cfg {
	const char *sock;
	struct rn_shared *sh;
};

static int rn_child(void *p)
{
	struct rn_cfg *c = p;
	struct ringcast *rc = it_child_open(c->sock);
	struct pollfd pfd;
	int fd, n = 0, got = 0;

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	fd = ringcast_fd(rc);
	IT_CHECK_OK(fd);
	atomic_store(&c->sh->ready, 1);
	while (!atomic_load(&c->sh->restarted))
		it_sleep_ms(1);
	/* The old daemon is gone: this request reconnects (new bells file, new bell). */
	IT_CHECK_OK(ringcast_subscribe(rc, "wake.other"));
	/* Reaps the fd's wait, which sleeps on a word of the old bells file. */
	n = ringcast_poll(rc, count_msgs, &got, 0);
	IT_CHECK(n >= 0, "ringcast_poll after the reconnect: %s", ringcast_strerror(n));
	atomic_store(&c->sh->polled, 1);
	/* And the fd, re-armed on the new bell, still says when a message comes. */
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (got == 0) {
		n = poll(&pfd, 1, BOUND_MS);
		IT_CHECK(n == 1, "the fd was not readable within %d ms of the publish", BOUND_MS);
		n = ringcast_poll(rc, count_msgs, &got, 0);
		IT_CHECK(n >= 0, "ringcast_poll: %s", ringcast_strerror(n));
	}
	ringcast_close(rc);
	return 0;
}

/* Empty the runtime dir, so the next daemon starts afresh: a new bells file. */
static void wipe_rundir(struct it_daemon *d)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", d->rundir);
	IT_ASSERT(system(cmd) == 0, "%s failed", cmd);
}

static void test_fd_reaped_after_new_bell(void **state)
{
	struct it_daemon *d = *state;
	struct rn_shared *sh = it_shared(sizeof(*sh));
	struct rn_cfg cfg = { d->sock, sh };
	struct ringcast *pub;
	uint64_t until;
	pid_t child;

	it_daemon_start(d, NULL);
	if (!ringcast_fd_supported(d))
		it_skip("ringcast_fd: this kernel has no IORING_OP_FUTEX_WAIT");
	child = it_fork(rn_child, &cfg);
	until = it_now_ns() + 5000000000ull;
	while (!atomic_load(&sh->ready) && it_now_ns() < until)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->ready), "the subscriber did not arm its fd");
	it_daemon_kill(d);
	wipe_rundir(d);
	it_daemon_restart(d);
	atomic_store(&sh->restarted, 1);
	until = it_now_ns() + BOUND_MS * 1000000ull;
	while (!atomic_load(&sh->polled) && it_daemon_alive(d) && it_now_ns() < until)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->polled),
		  "ringcast_poll did not return within %d ms of a reconnect: it waits for the "
		  "fd's wait on the old bell", BOUND_MS);
	IT_ASSERT(it_wait_subscribers(d, TOPIC, 1, child, 5000),
		  "the subscriber is not on the new daemon");
	pub = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "next", 4));
	it_expect_exit(child, BOUND_MS + 5000, 0, "subscriber");
	it_close(pub);
}

/* ---- a waker that dies after taking a sleeper off the count ---- */

struct dw_shared {
	_Atomic int ready;
	_Atomic int got;
};

struct dw_cfg {
	const char *sock;
	struct dw_shared *sh;
	bool use_fd;
};

static int dw_count(const struct ringcast_msg *m, void *ctx)
{
	struct dw_shared *sh = ctx;

	atomic_fetch_add(&sh->got, 1);
	return 0;
}

/* Sleep without a timeout (ringcast_wait(-1), or poll(fd, -1)) until all arrived. */
static int dw_sleeper(void *p)
{
	struct dw_cfg *c = p;
	struct ringcast *rc = it_child_open(c->sock);
	struct pollfd pfd = { .events = POLLIN };

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	if (c->use_fd) {
		pfd.fd = ringcast_fd(rc);
		IT_CHECK_OK(pfd.fd);
	}
	atomic_store(&c->sh->ready, 1);
	while (atomic_load(&c->sh->got) < MESSAGES) {
		if (c->use_fd)
			IT_CHECK(poll(&pfd, 1, -1) == 1, "poll: %s", strerror(errno));
		else
			IT_CHECK_OK(ringcast_wait(rc, -1));
		IT_CHECK_OK(ringcast_poll(rc, dw_count, c->sh, 0));
	}
	ringcast_close(rc);
	return 0;
}

/*
 * What a publisher did before it rang (the old order of rc_ring_wake):
 * take each sleeper off the count, then die before rc_bell_ring.  Returns
 * how many it took.
 */
static unsigned dead_waker(struct ringcast *pub)
{
	struct rc_ctl_hdr *ctl;
	uint32_t i, hi;
	unsigned n = 0;

	it_pub_ring(pub, &ctl, NULL);
	hi = atomic_load(&ctl->slots_hi);
	for (i = 0; i < hi && i < RC_SUB_SLOTS; i++)
		if (atomic_exchange(&ctl->subs[i].asleep, 0)) {
			atomic_fetch_sub(&ctl->sleepers, 1);
			n++;
		}
	return n;
}

static void dead_waker_case(void **state, bool use_fd)
{
	struct it_daemon *d = *state;
	struct dw_shared *sh = it_shared(sizeof(*sh));
	struct dw_cfg cfg = { d->sock, sh, use_fd };
	struct ringcast *pub;
	unsigned taken = 0;
	uint64_t until;
	pid_t child;
	int i;

	it_daemon_start(d, NULL);
	if (use_fd && !ringcast_fd_supported(d))
		it_skip("ringcast_fd: this kernel has no IORING_OP_FUTEX_WAIT");
	pub = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "before", 6)); /* maps the ring; unread */
	child = it_fork(dw_sleeper, &cfg);
	until = it_now_ns() + 5000000000ull;
	/*
	 * Asleep: counted, and blocked in futex(2) (ringcast_wait) or with
	 * its FUTEX_WAIT submitted (the fd) and itself in poll(2).  A sleeper
	 * that wakes every so often may be between two sleeps when we strike:
	 * strike again until one lands.
	 */
	while (!taken && it_now_ns() < until) {
		if (atomic_load(&sh->ready) && it_pub_sleepers(pub) > 0 &&
		    (use_fd || test_in_futex(child, child)))
			taken = dead_waker(pub);
		else
			it_sleep_ms(1);
	}
	IT_ASSERT(taken == 1, "the subscriber never went to sleep (took %u)", taken);
	for (i = 0; i < MESSAGES; i++)
		IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, &i, sizeof(i)));
	until = it_now_ns() + BOUND_MS * 1000000ull;
	while (atomic_load(&sh->got) < MESSAGES && it_now_ns() < until)
		it_sleep_ms(5);
	IT_ASSERT(atomic_load(&sh->got) == MESSAGES,
		  "the sleeper received %d of %d messages within %d ms: still asleep after "
		  "its waker died", atomic_load(&sh->got), MESSAGES, BOUND_MS);
	it_expect_exit(child, 5000, 0, "sleeper");
	it_close(pub);
}

static void test_wait_survives_dead_waker(void **state)
{
	dead_waker_case(state, false);
}

static void test_fd_survives_dead_waker(void **state)
{
	dead_waker_case(state, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fd_and_wait_count_once, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_fd_reaped_after_new_bell, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_wait_survives_dead_waker, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_fd_survives_dead_waker, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_wake", tests, NULL, NULL);
}
