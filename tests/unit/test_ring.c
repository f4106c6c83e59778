/* SPDX-License-Identifier: MIT */
/* Unit tests of the topic ring: format, claim/commit/abort, wrap, flow control, lapping, repair, corruption. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "barrier.h"
#include "ring_fixture.h"
#include "../in_futex.h"

#define CHECK(expr) do { int _r = (expr); if (_r < 0) fail_msg("%s: %s", #expr, strerror(-_r)); } while (0)

struct env {
	struct fixture f;
	struct rc_ring daemon, pub, sub;
	uint64_t pos; /* subscriber's */
};

static int setup_cap(void **state, uint64_t cap, uint32_t tether_ms)
{
	struct env *e = calloc(1, sizeof(*e));

	CHECK(fixture_make(&e->f, cap, tether_ms));
	CHECK(rc_ring_map(&e->daemon, e->f.ring_fd, e->f.ctl_fd, true));
	CHECK(fixture_pub(&e->f, &e->pub, 1));
	CHECK(fixture_sub(&e->f, &e->daemon, &e->sub, 2));
	e->pos = atomic_load(&e->sub.ctl->subs[e->sub.sub_slot].pos);
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_cap(state, RC_CAPACITY_MIN, 1000);
}

static int teardown(void **state)
{
	struct env *e = *state;

	rc_ring_unmap(&e->sub);
	rc_ring_unmap(&e->pub);
	rc_ring_unmap(&e->daemon);
	fixture_free(&e->f);
	free(e);
	return 0;
}

static void test_create_validates(void **state)
{
	struct env *e = *state;
	struct rc_ring r;

	assert_int_equal(e->sub.hdr->meta.topic_len, 10);
	assert_memory_equal(e->sub.hdr->meta.topic, "unit.topic", 10);
	assert_int_equal(e->sub.cap, RC_CAPACITY_MIN);
	assert_int_equal(e->sub.max_payload, RC_CAPACITY_MIN / 2 - 32);
	int a, b;
	/* Not a power of two / too small. */
	assert_int_equal(rc_ring_create("u", "x", 1, RC_CAPACITY_MIN + 8, 1, 0, &a, &b), -EINVAL);
	assert_int_equal(rc_ring_create("u", "x", 1, 4096, 1, 0, &a, &b), -EINVAL);
	assert_int_equal(rc_ring_create("u", "x\0y", 3, RC_CAPACITY_MIN, 1, 0, &a, &b), -EINVAL);
	/* A mapping of the ring with the ctl of another topic is refused. */
	CHECK(rc_ring_create("v", "other", 5, RC_CAPACITY_MIN, 99, 0, &a, &b));
	assert_int_equal(rc_ring_map(&r, e->f.ring_fd, b, false), -EBADMSG);
	close(a);
	close(b);
}

static void corrupt_and_map(struct env *e, size_t off, uint64_t value, int want)
{
	struct rc_ring r;

	/* The daemon's writable mapping plays the corrupter. */
	uint8_t *base = (uint8_t *)e->daemon.hdr;
	uint64_t saved;

	memcpy(&saved, base + off, 8);
	memcpy(base + off, &value, 8);
	assert_int_equal(rc_ring_map(&r, e->f.ring_fd, e->f.ctl_fd, false), want);
	memcpy(base + off, &saved, 8);
	CHECK(rc_ring_map(&r, e->f.ring_fd, e->f.ctl_fd, false));
	rc_ring_unmap(&r);
}

static void test_map_rejects_corrupt_header(void **state)
{
	struct env *e = *state;

	corrupt_and_map(e, offsetof(struct rc_ring_meta, magic), 0x1234, -EBADMSG);
	corrupt_and_map(e, offsetof(struct rc_ring_meta, version), 99 | (uint64_t)RC_RING_HDR_SIZE << 32, -EPROTO);
	corrupt_and_map(e, offsetof(struct rc_ring_meta, capacity), RC_CAPACITY_MIN * 2, -EBADMSG);
	corrupt_and_map(e, offsetof(struct rc_ring_meta, capacity), 12345, -EBADMSG);
	corrupt_and_map(e, offsetof(struct rc_ring_meta, max_payload), RC_CAPACITY_MIN, -EBADMSG);
	corrupt_and_map(e, offsetof(struct rc_ring_meta, rec_hdr_size), 16 | (uint64_t)RC_PUB_SLOTS << 32, -EBADMSG);
}

static void test_claim_commit_read(void **state)
{
	struct env *e = *state;
	char buf[64];
	size_t len = 0;
	uint64_t seq = 0;
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "message %d", i);
		CHECK(publish(&e->pub, buf, strlen(buf)));
	}
	for (i = 0; i < 3; i++) {
		char want[64];

		assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
		snprintf(want, sizeof(want), "message %d", i);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(buf, want, len);
		assert_int_equal(seq, (uint64_t)i + 1);
	}
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 0);
	/* The publisher's claim is cleared after commit. */
	assert_int_equal(atomic_load(&e->pub.hdr->pubs[e->pub.pub_slot].claim), 0);
}

static void test_zero_length_and_max(void **state)
{
	struct env *e = *state;
	uint64_t pos;
	size_t len = 99;

	CHECK(publish(&e->pub, "", 0));
	assert_int_equal(consume(&e->sub, &e->pos, NULL, &len, NULL), 1);
	assert_int_equal(len, 0);
	assert_int_equal(rc_ring_claim(&e->pub, e->pub.max_payload + 1, &pos), -EMSGSIZE);
	CHECK(rc_ring_claim(&e->pub, e->pub.max_payload, &pos));
	rc_ring_commit(&e->pub, pos, e->pub.max_payload, 1, 0, 0, NULL);
	assert_int_equal(consume(&e->sub, &e->pos, NULL, &len, NULL), 1);
	assert_int_equal(len, e->pub.max_payload);
}

static void test_abort_is_skipped(void **state)
{
	struct env *e = *state;
	uint64_t pos, seq = 0;
	char buf[16];
	size_t len = 0;

	CHECK(rc_ring_claim(&e->pub, 100, &pos));
	/* Uncommitted: the reader waits at it. */
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 0);
	rc_ring_abort(&e->pub, pos, 100, NULL);
	CHECK(publish(&e->pub, "after", 5));
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "after", 5);
	/* The aborted claim used seq 1; sequence numbers stay increasing. */
	assert_int_equal(seq, 2);
}

static void test_wrap_pads_and_never_straddles(void **state)
{
	struct env *e = *state;
	uint8_t msg[1000], got[1000];
	uint64_t i, seq = 0, wraps = 0, last_off = 0;
	size_t len = 0;

	for (i = 0; i < 1000; i++) {
		size_t n = 1 + (i * 37) % sizeof(msg);
		struct rc_view v;
		uint64_t p;

		memset(msg, (int)i, n);
		CHECK(publish(&e->pub, msg, n));
		p = e->pos;
		assert_int_equal(rc_ring_peek(&e->sub, &p, &v, false), 1);
		/* In place and whole: payload ends inside the data area. */
		assert_true((const uint8_t *)v.data + v.len <= e->sub.data + e->sub.cap);
		if ((p & e->sub.mask) < last_off)
			wraps++;
		last_off = p & e->sub.mask;
		assert_int_equal(consume(&e->sub, &e->pos, got, &len, &seq), 1);
		assert_int_equal(len, n);
		assert_memory_equal(got, msg, n);
		assert_int_equal(seq, i + 1);
	}
	assert_true(wraps >= 5);
}

static void test_tethered_subscriber_holds_publisher(void **state)
{
	struct env *e = *state;
	uint8_t msg[1024] = { 0 };
	uint64_t n = 0;
	size_t len = 0;
	int ret;

	while ((ret = publish(&e->pub, msg, sizeof(msg))) == 0)
		n++;
	assert_int_equal(ret, -EAGAIN);
	/* A full ring's worth, no more: the subscriber's data was not overwritten. */
	assert_int_equal(n, e->pub.cap / rc_align(sizeof(msg) + 32));
	assert_int_equal(consume(&e->sub, &e->pos, msg, &len, NULL), 1);
	CHECK(publish(&e->pub, msg, sizeof(msg)));
	assert_int_equal(publish(&e->pub, msg, sizeof(msg)), -EAGAIN);
	/* Releasing the subscriber (its socket closed) frees the publisher. */
	rc_ring_sub_release(&e->daemon, (unsigned)e->sub.sub_slot);
	CHECK(publish(&e->pub, msg, sizeof(msg)));
}

/*
 * A commit that finds a sleeper rings its bell once and takes it off the
 * count, so the commits after it skip the scan until it sleeps again, and
 * the sleeper's own finish does not drop the count a second time.
 */
static void test_commit_wakes_sleeper_once(void **state)
{
	struct env *e = *state;
	struct rc_sub_slot *slot = &e->sub.ctl->subs[e->sub.sub_slot];
	struct rc_bells_hdr *b;
	_Atomic uint32_t *bell;
	uint64_t pos;
	int fd, round;

	CHECK(rc_bells_create(&fd));
	CHECK(rc_bells_map(fd, &b));
	close(fd);
	bell = &b->bells[atomic_load(&slot->bell)].word;
	/* Its membarrier may be refused here; fenced is what the publisher reads. */
	(void)rc_ring_sleep_enable(&e->sub);
	for (round = 0; round < 2; round++) {
		atomic_store(bell, RC_BELL_ARMED);
		rc_ring_sleep_prepare(&e->sub);
		assert_int_equal(atomic_load(&e->sub.ctl->sleepers), 1);
		CHECK(rc_ring_claim(&e->pub, 8, &pos));
		rc_ring_commit(&e->pub, pos, 8, 7, 0, 123, b);
		assert_int_equal(atomic_load(bell), RC_BELL_RUNG);
		assert_int_equal(atomic_load(&slot->asleep), 0);
		assert_int_equal(atomic_load(&e->sub.ctl->sleepers), 0);
		/* Rung already: a second commit must not ring an idle bell. */
		atomic_store(bell, RC_BELL_IDLE);
		CHECK(rc_ring_claim(&e->pub, 8, &pos));
		rc_ring_commit(&e->pub, pos, 8, 7, 0, 123, b);
		assert_int_equal(atomic_load(bell), RC_BELL_IDLE);
		rc_ring_sleep_finish(&e->sub);
		assert_int_equal(atomic_load(&e->sub.ctl->sleepers), 0);
	}
	rc_bells_unmap(b);
}

/*
 * ctl.fenced counts the subscribers that may sleep and is never lowered
 * but by the daemon.  Were it to wrap to 0, publishers would commit
 * light (no fence, no look at sleepers) while a subscriber sleeps: lost
 * wake-ups.  It must stop at UINT32_MAX.
 */
static void test_fenced_count_saturates(void **state)
{
	struct env *e = *state;
	_Atomic uint32_t *fenced = &e->daemon.ctl->fenced;

	atomic_store(fenced, UINT32_MAX - 2);
	for (uint32_t i = 1; i <= 4; i++) {
		uint32_t want = i <= 2 ? UINT32_MAX - 2 + i : UINT32_MAX;

		/* Its membarrier may be refused here; the count is what we test. */
		(void)rc_ring_sleep_enable(&e->sub);
		if (atomic_load(fenced) == 0)
			fail_msg("fenced wrapped to 0 after %u sleep_enable(s) from UINT32_MAX - 2", i);
		assert_int_equal(atomic_load(fenced), want);
		/* And so publishers fence their commits (rc_commit_light). */
		e->pub.light_commit = true;
		assert_false(rc_commit_light(&e->pub));
	}
}

struct futex_sleeper {
	_Atomic uint32_t *bell;
	_Atomic pid_t tid;
};

/* A subscriber's sleep with nothing around it: FUTEX_WAIT on its armed bell, no timeout. */
static void *futex_sleep(void *arg)
{
	struct futex_sleeper *s = arg;

	atomic_store(&s->tid, gettid());
	while (atomic_load(s->bell) == RC_BELL_ARMED)
		syscall(SYS_futex, (uint32_t *)s->bell, FUTEX_WAIT, RC_BELL_ARMED, NULL, NULL, 0);
	/* Rung, or rung and then not woken: only a FUTEX_WAKE gets it here from the kernel. */
	return NULL;
}


/*
 * A publisher killed between its CAS of the bell (ARMED -> RUNG) and its
 * FUTEX_WAKE leaves the sleeper in the kernel, its bell saying RUNG to
 * everyone after.  It is still counted (rc_ring_wake rings before it
 * takes the count), so the next commit finds it, and must wake it.
 */
static void test_commit_wakes_after_dead_ringer(void **state)
{
	struct env *e = *state;
	struct rc_sub_slot *slot = &e->sub.ctl->subs[e->sub.sub_slot];
	struct futex_sleeper sl = { 0 };
	struct rc_bells_hdr *b;
	struct timespec until;
	pthread_t th;
	uint64_t pos, end;
	int fd, ret;

	CHECK(rc_bells_create(&fd));
	CHECK(rc_bells_map(fd, &b));
	close(fd);
	sl.bell = &b->bells[atomic_load(&slot->bell)].word;
	(void)rc_ring_sleep_enable(&e->sub);
	atomic_store(sl.bell, RC_BELL_ARMED);
	rc_ring_sleep_prepare(&e->sub);
	assert_int_equal(pthread_create(&th, NULL, futex_sleep, &sl), 0);
	end = (uint64_t)time(NULL) + 10;
	while (!(atomic_load(&sl.tid) && test_in_futex(getpid(), atomic_load(&sl.tid))) && (uint64_t)time(NULL) < end)
		usleep(1000);
	assert_true(test_in_futex(getpid(), atomic_load(&sl.tid)));
	/* The dead ringer: its CAS, and nothing after. */
	atomic_store(sl.bell, RC_BELL_RUNG);
	CHECK(rc_ring_claim(&e->pub, 8, &pos));
	rc_ring_commit(&e->pub, pos, 8, 7, 0, 123, b);
	/* Generous: without the wake it never returns. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	ret = pthread_timedjoin_np(th, NULL, &until);
	if (ret) {
		syscall(SYS_futex, (uint32_t *)sl.bell, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		pthread_join(th, NULL);
		fail_msg("the commit left a sleeper with a RUNG bell asleep in the kernel");
	}
	/* And took it off the count: the next commits skip the scan. */
	assert_int_equal(atomic_load(&slot->asleep), 0);
	assert_int_equal(atomic_load(&e->sub.ctl->sleepers), 0);
	rc_bells_unmap(b);
}

static void test_untether_and_lap_gives_exact_loss(void **state)
{
	struct env *e = *state;
	uint8_t msg[200] = { 0 };
	uint64_t sent = 0, now = 1000000000ull, pos, seq, next_seq = 1;
	struct rc_view v;
	int i;

	for (i = 0; i < 10; i++, sent++)
		CHECK(publish(&e->pub, msg, sizeof(msg)));
	/* Not moving while data waits: untethered only after the timeout (1000 ms). */
	assert_int_equal(rc_ring_untether_stalled(&e->daemon, now, NULL, NULL), 0);
	assert_int_equal(rc_ring_untether_stalled(&e->daemon, now + 999000000ull, NULL, NULL), 0);
	assert_int_equal(rc_ring_untether_stalled(&e->daemon, now + 1000000001ull, NULL, NULL), 1);
	assert_int_equal(atomic_load(&e->sub.ctl->subs[e->sub.sub_slot].state), RC_SUB_UNTETHERED);
	/* Now publishers run over it: three laps. */
	while (sent * rc_align(sizeof(msg) + 32) < 3 * e->pub.cap) {
		CHECK(publish(&e->pub, msg, sizeof(msg)));
		sent++;
	}
	pos = e->pos;
	assert_int_equal(rc_ring_peek(&e->sub, &pos, &v, false), -ESTALE);
	rc_ring_live(&e->sub, &pos, &seq);
	/* Everything published so far is skipped, exactly. */
	assert_int_equal(seq - next_seq, sent);
	CHECK(publish(&e->pub, "x", 1));
	assert_int_equal(rc_ring_peek(&e->sub, &pos, &v, false), 1);
	assert_int_equal(v.rec->seq, seq);
	assert_true(rc_ring_still_valid(&e->sub, pos));
	/* Caught up at the tail: it may tether again. */
	uint64_t safe;
	pos = v.next;
	assert_true(rc_ring_sub_retether(&e->sub, pos, &safe));
	assert_int_equal(atomic_load(&e->sub.ctl->subs[e->sub.sub_slot].state), RC_SUB_TETHERED);
	assert_true(safe >= pos);
}

/*
 * The subscriber can write its slot.  A stalled one that keeps stamping
 * moved_ns, or moves pos back and forth, has made no progress all the
 * same and is untethered after the timeout like any other.
 */
static void test_untether_ignores_forged_progress(void **state)
{
	struct env *e = *state;
	struct rc_sub_slot *s = &e->daemon.ctl->subs[e->sub.sub_slot];
	uint64_t now = 1000000000ull, pos;
	uint8_t msg[200] = { 0 };
	int i;

	for (i = 0; i < 10; i++)
		CHECK(publish(&e->pub, msg, sizeof(msg)));
	/* It read one record, then stopped. */
	pos = atomic_load(&s->pos) + rc_align(sizeof(msg) + sizeof(struct rc_rec));
	atomic_store(&s->pos, pos);
	assert_int_equal(rc_ring_untether_stalled(&e->daemon, now, NULL, NULL), 0);
	for (i = 1; i <= 4; i++) {
		uint64_t t = now + (uint64_t)i * 300000000ull;

		/* Stamped just now, and a pos that steps back a record, then returns. */
		atomic_store(&s->moved_ns, t);
		atomic_store(&s->pos, i % 2 ? pos - rc_align(sizeof(msg) + sizeof(struct rc_rec)) : pos);
		if (t - now < 1000000000ull)
			assert_int_equal(rc_ring_untether_stalled(&e->daemon, t, NULL, NULL), 0);
	}
	atomic_store(&s->pos, pos);
	assert_int_equal(rc_ring_untether_stalled(&e->daemon, now + 1200000000ull, NULL, NULL), 1);
	assert_int_equal(atomic_load(&s->state), RC_SUB_UNTETHERED);
}

static void test_corrupt_records_give_ebadmsg(void **state)
{
	struct env *e = *state;
	struct rc_view v;
	uint64_t pos = e->pos, seq, word;
	struct rc_rec *rec;

	CHECK(publish(&e->pub, "hello", 5));
	rec = rc_ring_rec(&e->daemon, pos);
	word = atomic_load(&rec->commit);
	seq = (uint32_t)word;
	/* A length past the end of the ring. */
	atomic_store(&rec->commit, ((uint64_t)0x7fffff00u << 32) | seq);
	assert_int_equal(rc_ring_peek(&e->sub, &pos, &v, false), -EBADMSG);
	/* Shorter than a record header. */
	atomic_store(&rec->commit, ((uint64_t)12 << 32) | seq);
	assert_int_equal(rc_ring_peek(&e->sub, &pos, &v, false), -EBADMSG);
	/* Padding that is not a multiple of the alignment. */
	atomic_store(&rec->commit, ((uint64_t)(RC_REC_PAD | 13) << 32) | seq);
	assert_int_equal(rc_ring_peek(&e->sub, &pos, &v, false), -EBADMSG);
	/* A misaligned reader position. */
	pos = e->pos + 3;
	assert_int_equal(rc_ring_peek(&e->sub, &pos, &v, false), -EBADMSG);
	/* A reader ahead of every claim. */
	pos = e->pos + 4096;
	assert_int_equal(rc_ring_peek(&e->sub, &pos, &v, false), -EBADMSG);
	/* Restored, it reads again. */
	atomic_store(&rec->commit, word);
	pos = e->pos;
	assert_int_equal(rc_ring_peek(&e->sub, &pos, &v, false), 1);
	assert_memory_equal(v.data, "hello", 5);
}

static void test_subscriber_mapping_is_read_only(void **state)
{
	struct env *e = *state;

	/* The fd was opened O_RDONLY: no way to make the mapping writable. */
	assert_int_equal(mprotect(e->sub.hdr, 4096, PROT_READ | PROT_WRITE), -1);
	assert_int_equal(errno, EACCES);
}

static void test_repair_dead_publisher(void **state)
{
	struct env *e = *state;
	struct rc_ring other;
	uint64_t pos, opos, seq = 0;
	char buf[16];
	size_t len = 0;

	/* A publisher claims and "dies" before committing. */
	CHECK(rc_ring_claim(&e->pub, 100, &pos));
	/* A second publisher commits after it; readers are stuck behind the first. */
	CHECK(fixture_pub(&e->f, &other, 3));
	CHECK(publish(&other, "later", 5));
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 0);
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)e->pub.pub_slot, NULL), 1);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "later", 5);
	assert_int_equal(seq, 2);
	/* The slot is free again. */
	assert_int_equal(atomic_load(&e->pub.hdr->pubs[e->pub.pub_slot].client_id), 0);

	/* A dead claim at the same start as a live one waits for the live one. */
	CHECK(rc_ring_claim(&other, 10, &opos));
	rc_ring_adopt_slots(&e->daemon); /* slots the fixture gave out through other mappings */
	int dead = rc_ring_pub_attach(&e->daemon, 9, 1);
	assert_true(dead >= 0);
	/* It lost the CAS for opos to `other` and died before trying again. */
	atomic_store(&e->daemon.hdr->pubs[dead].end, opos + rc_align(32 + 10));
	atomic_store(&e->daemon.hdr->pubs[dead].claim, opos | RC_CLAIM_BUSY);
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)dead, NULL), 0);
	memcpy(rc_ring_rec(&other, opos) + 1, "live", 4);
	rc_ring_commit(&other, opos, 4, 3, 0, 0, NULL);
	/* Once the live one committed, the dead claim has nothing left to repair. */
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)dead, NULL), 1);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "live", 4);
	rc_ring_unmap(&other);
}

static void test_repair_across_wrap(void **state)
{
	struct env *e = *state;
	uint8_t msg[3000] = { 0 };
	uint64_t pos, tail;
	size_t len = 0;

	/* Move the tail near the end so the next claim needs padding. */
	while ((tail = atomic_load(&e->pub.hdr->tail.pos)) + 2 * rc_align(sizeof(msg) + 32) <= e->pub.cap) {
		CHECK(publish(&e->pub, msg, sizeof(msg)));
		assert_int_equal(consume(&e->sub, &e->pos, msg, &len, NULL), 1);
	}
	CHECK(publish(&e->pub, msg, sizeof(msg)));
	assert_int_equal(consume(&e->sub, &e->pos, msg, &len, NULL), 1);
	CHECK(rc_ring_claim(&e->pub, sizeof(msg), &pos));
	assert_int_equal(pos & e->pub.mask, 0); /* it wrapped */
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)e->pub.pub_slot, NULL), 1);
	rc_ring_adopt_slots(&e->daemon);
	e->pub.pub_slot = rc_ring_pub_attach(&e->daemon, 1, 1);
	CHECK(publish(&e->pub, "ok", 2));
	assert_int_equal(consume(&e->sub, &e->pos, msg, &len, NULL), 1);
	assert_int_equal(len, 2);
	assert_memory_equal(msg, "ok", 2);
}

/* Publishers that may own the tail: this process is registered for membarrier. */
static void make_light(struct rc_ring *r)
{
	assert_true(rc_fence_register());
	r->light_commit = true;
}

static void test_exclusive_owner_and_takeover(void **state)
{
	struct env *e = *state;
	struct rc_ring other;
	uint64_t seq = 0;
	char buf[16];
	size_t len = 0;

	if (!__builtin_cpu_supports("avx"))
		skip();
	make_light(&e->pub);
	CHECK(publish(&e->pub, "one", 3));
	/* Alone on the ring: it owns the tail and stores it without a CAS. */
	assert_int_equal(atomic_load(&e->pub.hdr->tail.owner), e->pub.pub_slot + 1);
	assert_true(e->pub.exclusive);
	CHECK(fixture_pub(&e->f, &other, 3));
	make_light(&other);
	/* The owner is idle: the newcomer takes the tail over at once. */
	CHECK(publish(&other, "two", 3));
	assert_int_equal(atomic_load(&e->pub.hdr->tail.shared), 1);
	assert_int_equal(atomic_load(&e->pub.hdr->tail.owner), 0);
	/* The old owner sees the flag on its next claim and CASes from then on. */
	CHECK(publish(&e->pub, "three", 5));
	assert_false(e->pub.exclusive);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "one", 3);
	assert_int_equal(seq, 1);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "two", 3);
	assert_int_equal(seq, 2);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "three", 5);
	assert_int_equal(seq, 3);
	/* The last publisher gone, the next one alone may own the tail again. */
	rc_ring_repair_pub(&e->daemon, (unsigned)other.pub_slot, NULL);
	assert_int_equal(atomic_load(&e->pub.hdr->tail.shared), 1);
	rc_ring_repair_pub(&e->daemon, (unsigned)e->pub.pub_slot, NULL);
	assert_int_equal(atomic_load(&e->pub.hdr->tail.shared), 0);
	rc_ring_unmap(&other);
}

static void test_exclusive_owner_mid_claim_holds_newcomer(void **state)
{
	struct env *e = *state;
	struct rc_ring other;
	uint64_t pos, opos;
	char buf[16];
	size_t len = 0;

	if (!__builtin_cpu_supports("avx"))
		skip();
	make_light(&e->pub);
	CHECK(rc_ring_claim(&e->pub, 5, &pos));
	assert_true(e->pub.exclusive);
	CHECK(fixture_pub(&e->f, &other, 3));
	make_light(&other);
	/* Stopped between its claim store and its tail store: the newcomer must wait. */
	uint64_t tail = atomic_load(&e->pub.hdr->tail.pos);
	atomic_store(&e->daemon.hdr->tail.pos, pos);
	assert_int_equal(rc_ring_claim(&other, 5, &opos), -EAGAIN);
	/* Past its tail store (still filling its record): the newcomer goes ahead. */
	atomic_store(&e->daemon.hdr->tail.pos, tail);
	CHECK(rc_ring_claim(&other, 6, &opos));
	memcpy(rc_ring_rec(&e->pub, pos) + 1, "first", 5);
	rc_ring_commit(&e->pub, pos, 5, 1, 0, 0, NULL);
	assert_true(opos > pos);
	memcpy(rc_ring_rec(&other, opos) + 1, "second", 6);
	rc_ring_commit(&other, opos, 6, 3, 0, 0, NULL);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, NULL), 1);
	assert_memory_equal(buf, "first", 5);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, NULL), 1);
	assert_memory_equal(buf, "second", 6);
	rc_ring_unmap(&other);
}

static void test_exclusive_owner_dies_mid_claim(void **state)
{
	struct env *e = *state;
	struct rc_ring other;
	uint64_t pos;
	char buf[16];
	size_t len = 0;

	if (!__builtin_cpu_supports("avx"))
		skip();
	make_light(&e->pub);
	CHECK(rc_ring_claim(&e->pub, 5, &pos));
	/* The owner dies here.  The daemon pads its claim and frees the tail. */
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)e->pub.pub_slot, NULL), 1);
	assert_int_equal(atomic_load(&e->pub.hdr->tail.owner), 0);
	CHECK(fixture_pub(&e->f, &other, 3));
	make_light(&other);
	CHECK(publish(&other, "after", 5));
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, NULL), 1);
	assert_memory_equal(buf, "after", 5);
	rc_ring_unmap(&other);
}

/*
 * An owner that announces a claim, finds a newcomer and gives the tail
 * up, then finds the ring full: its slot must not keep the position it
 * announced, which is the newcomer's.  Else the winner's repair would wait
 * on this idle publisher, and this one's would pad the newcomer's record.
 */
static void test_refused_claim_empties_slot(void **state)
{
	struct env *e = *state;
	struct rc_ring other, third;
	uint64_t pos, opos, seq = 0;
	char buf[16];
	size_t len = 0;

	if (!__builtin_cpu_supports("avx"))
		skip();
	make_light(&e->pub);
	CHECK(publish(&e->pub, "one", 3));
	assert_true(e->pub.exclusive);
	CHECK(fixture_pub(&e->f, &other, 3));
	make_light(&other);
	/* The newcomer takes the idle tail and claims the next position; it will die. */
	CHECK(rc_ring_claim(&other, 100, &opos));
	CHECK(fixture_pub(&e->f, &third, 4));
	make_light(&third);
	while (publish(&third, "fill", 4) == 0)
		;
	/* The old owner announces opos (its stale x_pos), gives up, and the ring is full. */
	assert_int_equal(rc_ring_claim(&e->pub, 8, &pos), -EAGAIN);
	assert_false(e->pub.exclusive);
	assert_int_equal(atomic_load(&e->pub.hdr->pubs[e->pub.pub_slot].claim), 0);
	/* The newcomer dies: its claim is repaired at once, nobody else claims opos. */
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)other.pub_slot, NULL), 1);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "one", 3);
	/* Readers step over the padding to what was published after it. */
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "fill", 4);
	assert_int_equal(seq, 3);
	/* The old owner's exit repairs nothing: the ring reads on. */
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)e->pub.pub_slot, NULL), 1);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "fill", 4);
	rc_ring_unmap(&third);
	rc_ring_unmap(&other);
}

/* A slot whose claim the tail has lapped names later records: repair leaves them. */
static void test_repair_leaves_lapped_claim(void **state)
{
	struct env *e = *state;
	uint64_t upos, seq = 0;
	char buf[16];
	size_t len = 0;
	int dead;

	/* Over a lap, read as it goes, so the next record reuses a claimed position. */
	while (atomic_load(&e->pub.hdr->tail.pos) < e->pub.cap + 256) {
		CHECK(publish(&e->pub, "lap", 3));
		assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	}
	upos = atomic_load(&e->pub.hdr->tail.pos);
	CHECK(publish(&e->pub, "unread", 6));
	/* A slot (stale, or forged) that claims the same place a lap earlier. */
	rc_ring_adopt_slots(&e->daemon);
	dead = rc_ring_pub_attach(&e->daemon, 9, 1);
	assert_true(dead >= 0);
	atomic_store(&e->daemon.hdr->pubs[dead].end, upos - e->pub.cap + rc_align(32 + 6));
	atomic_store(&e->daemon.hdr->pubs[dead].claim, (upos - e->pub.cap) | RC_CLAIM_BUSY);
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)dead, NULL), 1);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "unread", 6);
}

/*
 * A claim of three records (ringcast_broadcast_many() on an owned tail)
 * whose publisher died after committing the first: repair steps over it
 * and pads the other two, so readers go on past them.
 */
static void test_repair_dead_batch(void **state)
{
	struct env *e = *state;
	unsigned slot = (unsigned)e->pub.pub_slot;
	uint32_t owner = atomic_load(&e->pub.hdr->pubs[slot].client_id);
	uint64_t start = atomic_load(&e->pub.hdr->tail.pos), seq0 = atomic_load(&e->pub.hdr->tail.seq);
	uint64_t rec = rc_align(sizeof(struct rc_rec) + 5), seq = 0;
	char buf[16];
	size_t len = 0;

	/* What the owner's batch does: announce, move the tail over all three, write. */
	atomic_store(&e->pub.hdr->pubs[slot].end, start + 3 * rec);
	atomic_store(&e->pub.hdr->pubs[slot].claim, start | RC_CLAIM_BUSY);
	atomic_store(&e->pub.hdr->tail.seq, seq0 + 3);
	atomic_store(&e->pub.hdr->tail.pos, start + 3 * rec);
	for (unsigned i = 0; i < 3; i++) {
		rc_ring_rec(&e->pub, start + i * rec)->seq = seq0 + i;
		memcpy(rc_ring_rec(&e->pub, start + i * rec) + 1, "batch", 5);
	}
	rc_ring_write_commit(&e->pub, start, 5, owner, 0, 0);
	/* It dies.  The reader has the first and waits at the second. */
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_int_equal(seq, seq0);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 0);
	assert_int_equal(rc_ring_repair_pub(&e->daemon, slot, NULL), 1);
	rc_ring_adopt_slots(&e->daemon);
	e->pub.pub_slot = rc_ring_pub_attach(&e->daemon, 1, 1);
	CHECK(publish(&e->pub, "after", 5));
	/* Past the padding: the seqs of the two never committed are skipped. */
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "after", 5);
	assert_int_equal(seq, seq0 + 3);
}

/*
 * A dead slot claiming more than the record another publisher won at the
 * same start (it lost the CAS and died): repair must not walk on into a
 * third publisher's claim, which is live and not committed yet.
 */
static void test_repair_stops_at_foreign_record(void **state)
{
	struct env *e = *state;
	struct rc_ring other, third;
	uint64_t opos, tpos, seq = 0;
	char buf[16];
	size_t len = 0;
	int dead;

	CHECK(fixture_pub(&e->f, &other, 3));
	CHECK(fixture_pub(&e->f, &third, 4));
	CHECK(rc_ring_claim(&other, 4, &opos));
	memcpy(rc_ring_rec(&other, opos) + 1, "won!", 4);
	rc_ring_commit(&other, opos, 4, 3, 0, 0, NULL);
	CHECK(rc_ring_claim(&third, 6, &tpos));
	rc_ring_adopt_slots(&e->daemon);
	dead = rc_ring_pub_attach(&e->daemon, 9, 1);
	assert_true(dead >= 0);
	/* Its end is where the third's claim ends: the tail has passed it. */
	atomic_store(&e->daemon.hdr->pubs[dead].end, tpos + rc_align(32 + 6));
	atomic_store(&e->daemon.hdr->pubs[dead].claim, opos | RC_CLAIM_BUSY);
	assert_int_equal(rc_ring_repair_pub(&e->daemon, (unsigned)dead, NULL), 1);
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_memory_equal(buf, "won!", 4);
	/* The reader waits at the third's claim, which no padding covers... */
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 0);
	memcpy(rc_ring_rec(&third, tpos) + 1, "mine!!", 6);
	rc_ring_commit(&third, tpos, 6, 4, 0, 0, NULL);
	/* ...and reads it once committed. */
	assert_int_equal(consume(&e->sub, &e->pos, buf, &len, &seq), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "mine!!", 6);
	rc_ring_unmap(&third);
	rc_ring_unmap(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_validates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_rejects_corrupt_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_commit_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_length_and_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_is_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_pads_and_never_straddles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tethered_subscriber_holds_publisher, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_wakes_sleeper_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fenced_count_saturates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_wakes_after_dead_ringer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untether_and_lap_gives_exact_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untether_ignores_forged_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_records_give_ebadmsg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscriber_mapping_is_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_dead_publisher, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_across_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_owner_and_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_owner_mid_claim_holds_newcomer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_owner_dies_mid_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_claim_empties_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_leaves_lapped_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_dead_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_stops_at_foreign_record, setup, teardown),
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
