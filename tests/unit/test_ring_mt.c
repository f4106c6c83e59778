/* SPDX-License-Identifier: MIT */
/*
 * Many publisher threads against many subscriber threads on one small
 * ring (so it wraps and fills constantly).  Every subscriber must see
 * every message exactly once, untorn, in per-publisher order, with seq
 * increasing by one.  Also built and run under TSan (make test-tsan).
 *
 * And two litmus tests of flow control's pair #5 (docs/ring-format.md):
 * a publisher that owns the tail (plain tail stores) against a subscriber
 * that tethers itself, by the daemon's attach or its own re-tether.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "barrier.h"
#include "ring_fixture.h"

#define PUBS 3
#define SUBS 3

struct shared {
	struct fixture f;
	struct rc_ring daemon;
	uint64_t per_pub;
	_Atomic int errors;
};

struct worker {
	struct shared *sh;
	struct rc_ring r;
	uint32_t id;
	uint64_t pos;
	char why[160];
};

static size_t msg_len(uint32_t id, uint64_t n)
{
	return 12 + (size_t)((n * 7 + id * 13) % 180);
}

static uint8_t pattern(uint32_t id, uint64_t n, size_t i)
{
	return (uint8_t)(id * 31 + n * 17 + i);
}

static void *pub_main(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[256];
	uint64_t n, pos;

	for (n = 0; n < w->sh->per_pub; n++) {
		size_t len = msg_len(w->id, n), i;
		int ret;

		while ((ret = rc_ring_claim(&w->r, len, &pos)) == -EAGAIN)
			sched_yield();
		if (ret < 0) {
			snprintf(w->why, sizeof(w->why), "claim: %s", strerror(-ret));
			atomic_fetch_add(&w->sh->errors, 1);
			return NULL;
		}
		memcpy(buf, &w->id, 4);
		memcpy(buf + 4, &n, 8);
		for (i = 12; i < len; i++)
			buf[i] = pattern(w->id, n, i);
		memcpy(rc_ring_rec(&w->r, pos) + 1, buf, len);
		rc_ring_commit(&w->r, pos, len, w->id, 0, 0, NULL);
	}
	return NULL;
}

static void *sub_main(void *arg)
{
	struct worker *w = arg;
	uint64_t next[PUBS] = { 0 }, got = 0, want = w->sh->per_pub * PUBS, seq = 0, last_seq = 0;
	uint8_t buf[256];
	size_t len;

	while (got < want) {
		int ret = consume(&w->r, &w->pos, buf, &len, &seq);
		uint32_t id;
		uint64_t n;
		size_t i;

		if (ret == 0) {
			sched_yield();
			continue;
		}
		if (ret < 0) {
			snprintf(w->why, sizeof(w->why), "peek: %s", strerror(-ret));
			goto fail;
		}
		memcpy(&id, buf, 4);
		memcpy(&n, buf + 4, 8);
		if (id >= PUBS || n != next[id] || len != msg_len(id, n)) {
			snprintf(w->why, sizeof(w->why), "pub %u: got #%lu len %zu, want #%lu", id,
				 (unsigned long)n, len, (unsigned long)(id < PUBS ? next[id] : 0));
			goto fail;
		}
		for (i = 12; i < len; i++)
			if (buf[i] != pattern(id, n, i)) {
				snprintf(w->why, sizeof(w->why), "torn payload at byte %zu of pub %u #%lu", i, id, (unsigned long)n);
				goto fail;
			}
		if (last_seq && seq != last_seq + 1) {
			snprintf(w->why, sizeof(w->why), "seq %lu after %lu", (unsigned long)seq, (unsigned long)last_seq);
			goto fail;
		}
		last_seq = seq;
		next[id]++;
		got++;
	}
	return NULL;
fail:
	atomic_fetch_add(&w->sh->errors, 1);
	return NULL;
}

static void test_many_publishers_many_subscribers(void **state)
{
	struct shared sh = { 0 };
	struct worker pubs[PUBS], subs[SUBS];
	pthread_t tp[PUBS], ts[SUBS];
	const char *env = getenv("RINGCAST_MT_MESSAGES");
	int i;

	sh.per_pub = env ? strtoull(env, NULL, 10) : 200000;
	assert_int_equal(fixture_make(&sh.f, RC_CAPACITY_MIN, 0), 0);
	assert_int_equal(rc_ring_map(&sh.daemon, sh.f.ring_fd, sh.f.ctl_fd, true), 0);
	for (i = 0; i < SUBS; i++) {
		memset(&subs[i], 0, sizeof(subs[i]));
		subs[i].sh = &sh;
		subs[i].id = (uint32_t)i;
		assert_int_equal(fixture_sub(&sh.f, &sh.daemon, &subs[i].r, 100 + (uint32_t)i), 0);
		subs[i].pos = atomic_load(&subs[i].r.ctl->subs[subs[i].r.sub_slot].pos);
	}
	for (i = 0; i < PUBS; i++) {
		memset(&pubs[i], 0, sizeof(pubs[i]));
		pubs[i].sh = &sh;
		pubs[i].id = (uint32_t)i;
		assert_int_equal(fixture_pub(&sh.f, &pubs[i].r, (uint32_t)i + 1), 0);
		/* One may start as the tail's owner; the others take it over (ring_pub.c). */
		pubs[i].r.light_commit = rc_fence_register();
	}
	for (i = 0; i < SUBS; i++)
		pthread_create(&ts[i], NULL, sub_main, &subs[i]);
	for (i = 0; i < PUBS; i++)
		pthread_create(&tp[i], NULL, pub_main, &pubs[i]);
	for (i = 0; i < PUBS; i++)
		pthread_join(tp[i], NULL);
	for (i = 0; i < SUBS; i++)
		pthread_join(ts[i], NULL);
	for (i = 0; i < PUBS; i++)
		if (pubs[i].why[0])
			print_error("publisher %d: %s\n", i, pubs[i].why);
	for (i = 0; i < SUBS; i++)
		if (subs[i].why[0])
			print_error("subscriber %d: %s\n", i, subs[i].why);
	assert_int_equal(atomic_load(&sh.errors), 0);
	/* Every claim was committed: the tail's seq counts them all. */
	assert_int_equal(atomic_load(&sh.daemon.hdr->tail.seq), 1 + sh.per_pub * PUBS);
	for (i = 0; i < SUBS; i++)
		rc_ring_unmap(&subs[i].r);
	for (i = 0; i < PUBS; i++)
		rc_ring_unmap(&pubs[i].r);
	rc_ring_unmap(&sh.daemon);
	fixture_free(&sh.f);
}

/*
 * Pair #5 is store buffering: the publisher stores tail and then loads
 * each slot's state (rc_ring_min_tethered); a subscriber tethering itself
 * stores state and then loads tail.  Without a full fence on both sides,
 * each side's load may pass its own store, both read the old value, and
 * the publisher computes a limit from a tail the new subscriber never saw:
 * it may overwrite records the subscriber has yet to read.
 *
 * Each iteration is a tight two-thread handshake: the publisher releases
 * the subscriber side, publishes one record (owner path, a plain 16-byte
 * tail store where the CPU allows it) and rescans the limit; the other
 * thread attaches (or re-tethers) a slot at the same moment.  Small random
 * delays on both sides sweep the two windows across each other.  The
 * invariant: limit <= the new subscriber's start + capacity.
 */
#define LITMUS_ITERS 300000 /* per test; RINGCAST_LITMUS_ITERS overrides */

enum litmus_kind { LITMUS_ATTACH, LITMUS_RETETHER };

struct litmus {
	struct fixture f;
	struct rc_ring daemon, pub, sub;
	enum litmus_kind kind;
	uint64_t iters;
	_Atomic uint64_t go;   /* publisher: iteration i may start */
	_Atomic uint64_t done; /* subscriber side: iteration i's start is in */
	uint64_t start;        /* where the subscriber starts, 0 if it did not tether */
	uint64_t from;         /* re-tether: the tail it caught up with */
	unsigned slot;
};

static uint32_t litmus_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void litmus_delay(uint32_t *x)
{
	unsigned n = litmus_rand(x) % 32;

	while (n--)
		rc_cpu_relax();
}

/* Spin for *a to reach v; yield now and then so a busy machine still gets there. */
static void litmus_wait(_Atomic uint64_t *a, uint64_t v)
{
	unsigned spins = 0;

	while (atomic_load_explicit(a, memory_order_acquire) != v)
		if (++spins % 1024 == 0)
			sched_yield();
		else
			rc_cpu_relax();
}

static void *litmus_sub_main(void *arg)
{
	struct litmus *l = arg;
	uint32_t x = 0x9e3779b9;
	uint64_t i;

	for (i = 1; i <= l->iters; i++) {
		uint64_t safe = 0;

		litmus_wait(&l->go, i);
		litmus_delay(&x);
		l->start = 0;
		if (l->kind == LITMUS_ATTACH) {
			int slot = rc_ring_sub_attach(&l->daemon, 2, 1, 0, 0, 0, NULL, NULL);

			if (slot >= 0) {
				l->slot = (unsigned)slot;
				l->start = atomic_load(&l->daemon.ctl->subs[slot].pos);
			}
		} else if (rc_ring_sub_retether(&l->sub, l->from, &safe)) {
			/* Reads in place only from safe on; before it, by copy. */
			l->start = safe;
		}
		atomic_store_explicit(&l->done, i, memory_order_release);
	}
	return NULL;
}

static void litmus_run(enum litmus_kind kind)
{
	struct litmus *l = calloc(1, sizeof(*l));
	const char *env = getenv("RINGCAST_LITMUS_ITERS");
	uint64_t i, bad = 0, raced = 0, first_bad_limit = 0, first_bad_start = 0;
	uint32_t x = 0x2545f491;
	pthread_t th;

	assert_non_null(l);
	l->kind = kind;
	l->iters = env ? strtoull(env, NULL, 10) : LITMUS_ITERS;
#if defined(__SANITIZE_THREAD__)
	/* TSan looks for races, not reorderings (it cannot see them): fewer rounds. */
	if (!env)
		l->iters = 20000;
#endif
	assert_int_equal(fixture_make(&l->f, RC_CAPACITY_MIN, 0), 0);
	assert_int_equal(rc_ring_map(&l->daemon, l->f.ring_fd, l->f.ctl_fd, true), 0);
	assert_int_equal(fixture_pub(&l->f, &l->pub, 1), 0);
	/* The lone publisher takes the tail when it can: the plain-store path. */
	l->pub.light_commit = rc_fence_register();
	if (kind == LITMUS_RETETHER) {
		assert_int_equal(fixture_sub(&l->f, &l->daemon, &l->sub, 2), 0);
		l->slot = (unsigned)l->sub.sub_slot;
	}
	pthread_create(&th, NULL, litmus_sub_main, l);
	for (i = 1; i <= l->iters; i++) {
		uint64_t pos, limit;

		if (kind == LITMUS_RETETHER) {
			struct rc_sub_slot *s = &l->daemon.ctl->subs[l->slot];

			/*
			 * The daemon untethered it; it caught up with the tail
			 * (its pos is there) and tries to tether again.
			 */
			l->from = atomic_load(&l->daemon.hdr->tail.pos);
			atomic_store(&s->pos, l->from);
			atomic_store(&s->state, RC_SUB_UNTETHERED);
		}
		atomic_store_explicit(&l->go, i, memory_order_release);
		litmus_delay(&x);
		assert_int_equal(rc_ring_claim(&l->pub, 8, &pos), 0);
		rc_ring_commit(&l->pub, pos, 8, 1, 0, 0, NULL);
		/* What a claim past the cached limit runs (ring_pub.h). */
		limit = rc_ring_refresh_limit(&l->pub);
		litmus_wait(&l->done, i);
		if (l->start) {
			raced++;
			if (limit > l->start + l->pub.cap) {
				if (!bad++) {
					first_bad_limit = limit;
					first_bad_start = l->start;
				}
			}
			if (kind == LITMUS_ATTACH)
				rc_ring_sub_release(&l->daemon, l->slot);
		}
	}
	pthread_join(th, NULL);
	print_message("%s: %lu violations in %lu iterations (%lu tethered)%s\n",
		      kind == LITMUS_ATTACH ? "attach" : "retether", (unsigned long)bad,
		      (unsigned long)l->iters, (unsigned long)raced,
		      l->pub.exclusive ? "" : ", the publisher CASed the tail");
	if (bad)
		fail_msg("limit %lu > start %lu + capacity %lu: a publisher may overwrite what a "
			 "tethered subscriber has yet to read", (unsigned long)first_bad_limit,
			 (unsigned long)first_bad_start, (unsigned long)l->pub.cap);
	if (kind == LITMUS_RETETHER)
		rc_ring_unmap(&l->sub);
	rc_ring_unmap(&l->pub);
	rc_ring_unmap(&l->daemon);
	fixture_free(&l->f);
	free(l);
}

static void test_pair5_attach(void **state)
{
	litmus_run(LITMUS_ATTACH);
}

static void test_pair5_retether(void **state)
{
	litmus_run(LITMUS_RETETHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_publishers_many_subscribers),
		cmocka_unit_test(test_pair5_attach),
		cmocka_unit_test(test_pair5_retether),
	};

	return cmocka_run_group_tests_name("ring_mt", tests, NULL, NULL);
}
