/* SPDX-License-Identifier: MIT */
/*
 * A hostile process writing the shared pages while others read them:
 * whatever it writes, a reader must not use a value other than the one it
 * checked (docs/security.md, "Shared pages").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "barrier.h"
#include "ring_fixture.h"

#define CHECK(x) assert_int_equal((x), 0)
#define MAPS 20000

struct flipper {
	_Atomic uint64_t *capacity;
	_Atomic int stop;
};

/* A publisher that keeps flipping the ring's capacity between two valid powers of two. */
static void *flip_capacity(void *arg)
{
	struct flipper *f = arg;

	while (!rc_load_relaxed(&f->stop)) {
		rc_store_relaxed(f->capacity, RC_CAPACITY_MAX);
		rc_store_relaxed(f->capacity, RC_CAPACITY_MIN);
	}
	return NULL;
}

/*
 * Every mapping that succeeds has the geometry of the file it maps: the
 * capacity it checked against the file's length, never a second read of
 * the flipped field (which once made new subscribers fault).
 */
static void test_map_uses_the_capacity_it_checked(void **state)
{
	struct fixture fx;
	struct rc_ring owner, r;
	struct flipper f = { 0 };
	pthread_t th;
	unsigned i, mapped = 0, refused = 0;
	int fd;

	(void)state;
	CHECK(fixture_make(&fx, RC_CAPACITY_MIN, 0));
	CHECK(rc_ring_map(&owner, fx.ring_fd, fx.ctl_fd, true));
	fd = fixture_ro_fd(&fx);
	assert_true(fd >= 0);
	/* The field is a plain u64 in the format; the flipper writes it as one store. */
	f.capacity = (_Atomic uint64_t *)&owner.hdr->meta.capacity;
	CHECK(pthread_create(&th, NULL, flip_capacity, &f));
	for (i = 0; i < MAPS; i++) {
		int ret = rc_ring_map(&r, fd, fx.ctl_fd, false);

		if (ret == -EBADMSG) {
			refused++;
			continue;
		}
		CHECK(ret);
		mapped++;
		if (r.cap != RC_CAPACITY_MIN || r.mask != RC_CAPACITY_MIN - 1 ||
		    r.ring_len != RC_RING_HDR_SIZE + RC_CAPACITY_MIN) {
			rc_store_relaxed(&f.stop, 1);
			pthread_join(th, NULL);
			fail_msg("map %u: capacity %llu, mask %llx in a file of %zu bytes", i,
				 (unsigned long long)r.cap, (unsigned long long)r.mask, r.ring_len);
		}
		rc_ring_unmap(&r);
	}
	rc_store_relaxed(&f.stop, 1);
	pthread_join(th, NULL);
	print_message("%u maps checked, %u refused as corrupt\n", mapped, refused);
	/* Both outcomes must have happened, or the race was not run at all. */
	assert_true(mapped > 0);
	assert_true(refused > 0);
	close(fd);
	rc_ring_unmap(&owner);
	fixture_free(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_uses_the_capacity_it_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
