/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the node clock (lib/clock.c): the daemon's fit publishes a
 * line that readers follow, that stays with CLOCK_MONOTONIC and never
 * goes back, and readers do not trust a line that is being written or is
 * too old.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ring.h"

/* Documented bound on the line's error (include/ringcast.h, docs/ring-format.md). */
#define TOLERANCE_NS 1000

struct env {
	struct rc_node_hdr *b;
	struct rc_clock_fit fit;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	int fd = -1;

	if (rc_node_create(&fd) < 0)
		return -1;
	if (rc_node_map(fd, true, &e->b) < 0)
		return -1;
	close(fd);
	rc_clock_fit_init(&e->fit);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	rc_node_unmap(e->b);
	free(e);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The x86-64 machines here have an invariant TSC; elsewhere there is nothing to fit. */
static bool fit_usable(struct env *e)
{
#if defined(__x86_64__)
	if (!e->fit.usable)
		fail_msg("this x86-64 machine's TSC is not invariant (constant_tsc, nonstop_tsc)");
	return true;
#else
	assert_false(e->fit.usable);
	return false;
#endif
}

/* Tick until the first line is out (the samples must span 10 ms). */
static void first_line(struct env *e)
{
	rc_clock_fit_tick(&e->fit, e->b);
	assert_int_equal(atomic_load(&e->b->clock_mult), 0);
	sleep_ms(12);
	rc_clock_fit_tick(&e->fit, e->b);
	assert_int_not_equal(atomic_load(&e->b->clock_mult), 0);
	assert_int_equal(atomic_load(&e->b->clock_seq) & 1, 0);
}

/* rc_clock_ns(b) lies within the clock_gettime() calls around it, give or take the tolerance. */
static void assert_follows(struct env *e, int rounds)
{
	int i;

	for (i = 0; i < rounds; i++) {
		uint64_t a = rc_now_ns(), c = rc_clock_ns(e->b), d = rc_now_ns();

		if (c + TOLERANCE_NS < a || c > d + TOLERANCE_NS)
			fail_msg("node clock %llu outside [%llu, %llu] by more than %d ns",
				 (unsigned long long)c, (unsigned long long)a, (unsigned long long)d,
				 TOLERANCE_NS);
	}
}

static void test_line_follows_monotonic(void **state)
{
	struct env *e = *state;
	uint64_t last = 0;
	int tick, i;

	if (!fit_usable(e))
		return;
	first_line(e);
	assert_follows(e, 10000);
	/* Ticks re-fit the line: it keeps following, and never goes back across a re-fit. */
	for (tick = 0; tick < 30; tick++) {
		int64_t err;

		for (i = 0; i < 1000; i++) {
			uint64_t c = rc_clock_ns(e->b);

			if (c < last)
				fail_msg("node clock went back: %llu after %llu", (unsigned long long)c,
					 (unsigned long long)last);
			last = c;
		}
		sleep_ms(2);
		err = rc_clock_fit_tick(&e->fit, e->b);
		if (err > TOLERANCE_NS || err < -TOLERANCE_NS)
			fail_msg("tick %d: the line was %lld ns off", tick, (long long)err);
		assert_follows(e, 1000);
	}
}

/* A line: what rc_clock_ns() gives with it, now. */
static void set_line(struct env *e, uint32_t seq, uint64_t mult, uint64_t tsc, uint64_t ns)
{
	atomic_store(&e->b->clock_mult, mult);
	atomic_store(&e->b->clock_tsc, tsc);
	atomic_store(&e->b->clock_ns, ns);
	atomic_store(&e->b->clock_seq, seq);
}

static void test_reader_trusts_only_a_whole_fresh_line(void **state)
{
	struct env *e = *state;
	uint64_t mult, a, c, d;

	if (!fit_usable(e))
		return;
	first_line(e);
	mult = atomic_load(&e->b->clock_mult);
#if defined(__x86_64__)
	/* A fresh whole line an hour ahead: the reader follows it (so the cases below test something). */
	a = rc_now_ns();
	set_line(e, 2, mult, rc_tsc(), a + 3600000000000ull);
	c = rc_clock_ns(e->b);
	assert_true(c >= a + 3600000000000ull && c < a + 3600000000000ull + 1000000000ull);

	/* The same line while the daemon writes (seq odd): clock_gettime instead. */
	set_line(e, 3, mult, rc_tsc(), a + 3600000000000ull);
	a = rc_now_ns();
	c = rc_clock_ns(e->b);
	d = rc_now_ns();
	assert_true(c >= a && c <= d);

	/* A line older than RC_CLOCK_MAX_AGE cycles (the daemon stopped): not trusted. */
	set_line(e, 4, mult, rc_tsc() - RC_CLOCK_MAX_AGE - 1, a + 3600000000000ull);
	a = rc_now_ns();
	c = rc_clock_ns(e->b);
	d = rc_now_ns();
	assert_true(c >= a && c <= d);

	/* No line (mult 0), and no node file at all. */
	set_line(e, 6, 0, rc_tsc(), a + 3600000000000ull);
	a = rc_now_ns();
	c = rc_clock_ns(e->b);
	d = rc_now_ns();
	assert_true(c >= a && c <= d);
	a = rc_now_ns();
	c = rc_clock_ns(NULL);
	d = rc_now_ns();
	assert_true(c >= a && c <= d);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_line_follows_monotonic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_trusts_only_a_whole_fresh_line, setup, teardown),
	};

	return cmocka_run_group_tests_name("test_clock", tests, NULL, NULL);
}
