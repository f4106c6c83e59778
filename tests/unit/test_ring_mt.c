// SPDX-License-Identifier: MIT
/*
 * Many publisher threads against many subscriber threads on one small
 * ring (so it wraps and fills constantly).  Every subscriber must see
 * every message exactly once, untorn, in per-publisher order, with seq
 * increasing by one.  Also built and run under TSan (make test-tsan).
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_publishers_many_subscribers),
	};

	return cmocka_run_group_tests_name("ring_mt", tests, NULL, NULL);
}
