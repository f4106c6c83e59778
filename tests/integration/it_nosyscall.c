/* SPDX-License-Identifier: MIT */
/*
 * it_nosyscall: publishing to subscribers that busy-poll makes no system
 * call (design: "a publisher wakes only clients that are asleep, after a
 * cheap check").  The publisher proves it under a seccomp filter that
 * allows exit and exit_group only: the first other system call traps.
 *
 * The filter returns SECCOMP_RET_TRAP rather than KILL_PROCESS so that
 * the process still ends at its first system call, but a SIGSYS handler
 * first records which one (si_syscall) in shared memory: a failure then
 * names the culprit.  The handler itself only calls exit_group.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TOPIC "nosys.topic"
#define NMSG 10000
#define NSUBS 2
#define EXIT_TRAPPED 42

struct ns_shared {
	_Atomic int ready;
	_Atomic int pub_ready;
	_Atomic int go;             /* publisher: start publishing (after seccomp) */
	_Atomic uint64_t received[NSUBS];
	_Atomic uint64_t published;
	_Atomic int trapped_nr;     /* the system call the publisher tried, or -1 */
	_Atomic int publish_error;  /* a negative errno from broadcast, or 0 */
	char sub_error[NSUBS][128];
};

struct ns_cfg {
	const char *sock;
	struct ns_shared *sh;
	int index;
	bool wait_go; /* publisher: spin until sh->go after installing the filter */
};

static struct ns_shared *trap_sh;

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	atomic_store(&trap_sh->trapped_nr, si->si_syscall);
	syscall(SYS_exit_group, EXIT_TRAPPED);
}

struct ns_sub_state {
	struct ns_cfg *c;
	uint64_t next;
	bool bad;
};

static int ns_handler(const struct ringcast_msg *m, void *ctx)
{
	struct ns_sub_state *s = ctx;
	uint64_t v;

	if (m->len != sizeof(v) || m->lost) {
		snprintf(s->c->sh->sub_error[s->c->index], 128, "len %zu lost %llu", m->len,
			 (unsigned long long)m->lost);
		s->bad = true;
		return 1;
	}
	memcpy(&v, m->data, sizeof(v));
	if (v != s->next) {
		snprintf(s->c->sh->sub_error[s->c->index], 128, "message %llu, expected %llu",
			 (unsigned long long)v, (unsigned long long)s->next);
		s->bad = true;
		return 1;
	}
	s->next++;
	atomic_store(&s->c->sh->received[s->c->index], s->next);
	return 0;
}

/* Busy-polls only: never ringcast_wait, so a publisher must never need to ring. */
static int ns_subscriber(void *p)
{
	struct ns_cfg *c = p;
	struct ns_sub_state s = { .c = c };
	uint64_t deadline = it_now_ns() + 30000000000ull;
	struct ringcast *rc = it_child_open(c->sock);
	unsigned idle = 0;

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	atomic_fetch_add(&c->sh->ready, 1);
	/* The warm-up message (0) and NMSG more. */
	while (s.next < NMSG + 1 && !s.bad) {
		int n = ringcast_poll(rc, ns_handler, &s, 0);

		IT_CHECK_OK(n);
		if (n == 0 && ++idle % 256 == 0) {
			/* Yielding is not sleeping: this client's bell stays idle. */
			sched_yield();
			IT_CHECK(it_now_ns() < deadline, "subscriber %d: %llu of %d messages", c->index,
				 (unsigned long long)s.next, NMSG + 1);
		}
	}
	IT_CHECK(!s.bad, "subscriber %d: %s", c->index, c->sh->sub_error[c->index]);
	ringcast_close(rc);
	return 0;
}

static int ns_publisher(void *p)
{
	struct ns_cfg *c = p;
	struct ns_shared *sh = c->sh;
	struct ringcast *rc = it_child_open(c->sock);
	uint64_t v = 0;
	int ret;

	/* Opening the topic talks to the daemon: do it before the filter. */
	IT_CHECK_OK(ringcast_broadcast(rc, TOPIC, &v, sizeof(v)));
	trap_sh = sh;
	ret = it_seccomp_exit_only(on_sigsys);
	IT_CHECK(ret == 0, "seccomp filter: %s", strerror(-ret));
	atomic_store(&sh->pub_ready, 1);

	/* From here on: no stdio, no IT_CHECK (both write); exit_group only. */
	while (c->wait_go && !atomic_load(&sh->go))
		it_cpu_relax();
	for (v = 1; v <= NMSG; v++) {
		/* A full ring is -EAGAIN at once (send timeout 0): spin, do not sleep. */
		while ((ret = ringcast_broadcast(rc, TOPIC, &v, sizeof(v))) == -EAGAIN)
			it_cpu_relax();
		if (ret < 0) {
			atomic_store(&sh->publish_error, ret);
			syscall(SYS_exit_group, 1);
		}
		atomic_store(&sh->published, v);
	}
	syscall(SYS_exit_group, 0);
	return 0; /* not reached */
}

static void test_publish_without_syscalls(void **state)
{
	struct it_daemon *d = *state;
	struct ns_shared *sh = it_shared(sizeof(*sh));
	struct ns_cfg subs[NSUBS], pub;
	pid_t sub_pid[NSUBS], pub_pid;
	uint64_t deadline;
	char why[64];
	int st;

#ifndef IT_AUDIT_ARCH
	it_skip("no seccomp audit arch known for this CPU");
#endif
	atomic_store(&sh->trapped_nr, -1);
	it_daemon_start(d, NULL);
	for (int i = 0; i < NSUBS; i++) {
		subs[i] = (struct ns_cfg){ d->sock, sh, i, false };
		sub_pid[i] = it_fork(ns_subscriber, &subs[i]);
	}
	deadline = it_now_ns() + 5000000000ull;
	while (atomic_load(&sh->ready) < NSUBS && it_now_ns() < deadline)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->ready) == NSUBS, "subscribers not ready");

	pub = (struct ns_cfg){ d->sock, sh, 0, false };
	pub_pid = it_fork(ns_publisher, &pub);
	IT_ASSERT(it_wait(pub_pid, 30000, &st) == 0, "publisher did not finish in 30 s");
	if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_TRAPPED)
		IT_FAIL("the publisher made system call %d after %llu of %d messages "
			 "(see 'ausyscall %d'); publishing to busy-polling subscribers must not",
			 atomic_load(&sh->trapped_nr), (unsigned long long)atomic_load(&sh->published),
			 NMSG, atomic_load(&sh->trapped_nr));
	IT_ASSERT(atomic_load(&sh->pub_ready), "the publisher failed before seccomp (see above)");
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "publisher %s after %llu of %d messages (publish error %d: %s)",
		  it_status_str(st, why, sizeof(why)), (unsigned long long)atomic_load(&sh->published),
		  NMSG, atomic_load(&sh->publish_error),
		  ringcast_strerror(atomic_load(&sh->publish_error)));
	for (int i = 0; i < NSUBS; i++)
		it_expect_exit(sub_pid[i], 30000, 0, "busy-polling subscriber");
	for (int i = 0; i < NSUBS; i++)
		IT_ASSERT(atomic_load(&sh->received[i]) == NMSG + 1,
			  "subscriber %d received %llu of %d", i,
			  (unsigned long long)atomic_load(&sh->received[i]), NMSG + 1);
}

/*
 * The filter itself must work, or the test above proves nothing: a
 * publisher whose subscriber sleeps has to ring it (FUTEX_WAKE), and the
 * trap must catch exactly that.
 */
struct ns_sleeper_cfg {
	const char *sock;
	struct ns_shared *sh;
};

static int ns_sleeper(void *p)
{
	struct ns_sleeper_cfg *c = p;
	struct ringcast *rc = it_child_open(c->sock);
	uint64_t deadline = it_now_ns() + 10000000000ull;
	struct it_inbox box = { 0 };

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	atomic_fetch_add(&c->sh->ready, 1);
	/*
	 * Sleep until the trapped publisher's message.  Its wake-up never
	 * comes (that system call is what trapped), so sleep in slices.
	 */
	while (box.n == 0 && it_now_ns() < deadline) {
		int ret = ringcast_wait(rc, 200);

		IT_CHECK(ret == 0 || ret == -ETIMEDOUT, "ringcast_wait = %d", ret);
		IT_CHECK_OK(ringcast_poll(rc, it_inbox_handler, &box, 0));
	}
	IT_CHECK(box.n >= 1, "the sleeper got no message");
	ringcast_close(rc);
	return 0;
}

/*
 * Wait until pid sleeps in futex(2), per /proc/PID/syscall (its first
 * field is the number of the system call a blocked task is in).  Where
 * that file cannot be read, fall back to a generous pause.
 */
static void wait_in_futex(pid_t pid)
{
	uint64_t deadline = it_now_ns() + 5000000000ull;
	char path[64], buf[64];

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	do {
		FILE *f = fopen(path, "r");
		bool in_futex = false, readable = false;

		if (f) {
			readable = fgets(buf, sizeof(buf), f) != NULL;
			in_futex = readable && atol(buf) == SYS_futex;
			fclose(f);
		}
		if (in_futex)
			return;
		if (!readable) {
			it_sleep_ms(300);
			return;
		}
		it_sleep_ms(2);
	} while (it_now_ns() < deadline);
	IT_FAIL("the sleeping subscriber never went to sleep in futex(2)");
}

static void test_filter_catches_a_wakeup(void **state)
{
	struct it_daemon *d = *state;
	struct ns_shared *sh = it_shared(sizeof(*sh));
	struct ns_sleeper_cfg sc;
	struct ns_cfg pub;
	pid_t sleeper, pub_pid;
	uint64_t deadline;
	char why[64];
	int st;

#ifndef IT_AUDIT_ARCH
	it_skip("no seccomp audit arch known for this CPU");
#endif
	atomic_store(&sh->trapped_nr, -1);
	it_daemon_start(d, NULL);
	/* The publisher opens the topic and arms its filter, then waits for go. */
	pub = (struct ns_cfg){ d->sock, sh, 0, true };
	pub_pid = it_fork(ns_publisher, &pub);
	deadline = it_now_ns() + 5000000000ull;
	while (!atomic_load(&sh->pub_ready) && it_now_ns() < deadline)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->pub_ready), "publisher not ready");
	sc = (struct ns_sleeper_cfg){ d->sock, sh };
	sleeper = it_fork(ns_sleeper, &sc);
	while (atomic_load(&sh->ready) < 1 && it_now_ns() < deadline)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->ready) == 1, "sleeper not ready");
	/* It goes to sleep right after subscribing: wait until it does. */
	wait_in_futex(sleeper);
	atomic_store(&sh->go, 1);
	IT_ASSERT(it_wait(pub_pid, 30000, &st) == 0, "publisher did not finish in 30 s");
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == EXIT_TRAPPED,
		  "a publisher with a sleeping subscriber %s, expected to trap on a futex wake",
		  it_status_str(st, why, sizeof(why)));
	IT_ASSERT(atomic_load(&sh->trapped_nr) == SYS_futex, "trapped on system call %d, expected futex (%d)",
		  atomic_load(&sh->trapped_nr), SYS_futex);
	it_expect_exit(sleeper, 10000, 0, "sleeping subscriber");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_publish_without_syscalls, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_filter_catches_a_wakeup, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_nosyscall", tests, NULL, NULL);
}
