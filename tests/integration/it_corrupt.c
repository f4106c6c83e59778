/* SPDX-License-Identifier: MIT */
/*
 * it_corrupt: a corrupt ring costs its own topic and nothing else
 * (include/ringcast.h, ringcast_poll and -EBADMSG).  The test writes a
 * commit word no publisher can have written into one topic's ring, as a
 * buggy or hostile publisher could, while a second topic of the same
 * subscriber has messages waiting.  The subscriber must hear -EBADMSG
 * once, lose that topic (locally and at the daemon), keep receiving the
 * other, and be able to sleep again: a corrupt topic left subscribed made
 * every ringcast_wait() return at once (a busy loop) and every poll stop
 * at it.
 *
 * The ring's layout comes from the file format's header, as an attacker
 * reads it from docs/ring-format.md: the test writes through a
 * publisher's own mapping of the ring (it_pub_ring), which is what any
 * publisher has.
 */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
/* The file format (docs/ring-format.md), as a hostile publisher knows it. */
#include "../../lib/ring_format.h"

#define BAD "corrupt.bad"
#define GOOD "corrupt.good"

/*
 * Turn the first record of the ring pub last published to (position 0:
 * the test's daemon made the ring for this test) into one whose length
 * cannot be, through the publisher's own writable mapping, as a hostile
 * publisher would: the stamp stays right, so readers believe the word is
 * committed and must then refuse the length.  It checks the word is the
 * record it expects.
 */
static void corrupt_first_record(struct ringcast *pub, const char *topic, size_t payload)
{
	struct rc_ring_hdr *h = it_pub_ring(pub, NULL, NULL);
	_Atomic uint64_t *w;
	uint64_t word;

	IT_ASSERT(h, "no mapping of %s", topic);
	w = (_Atomic uint64_t *)((uint8_t *)h + RC_RING_HDR_SIZE);
	word = atomic_load(w);
	IT_ASSERT(word >> 32 == sizeof(struct rc_rec) + payload,
		  "%s's first record has length word %llu, expected %zu", topic,
		  (unsigned long long)(word >> 32), sizeof(struct rc_rec) + payload);
	/* Shorter than a record header: no record of ours is that long. */
	atomic_store(w, (uint64_t)4 << 32 | (uint32_t)word);
}

static bool no_subscribers(const struct ringcast_topic_stat *st, const void *arg)
{
	(void)arg;
	return st->n_subs == 0;
}

static void test_corrupt_topic_is_dropped(void **state)
{
	struct it_daemon *d = *state;
	static const char *const good[] = { "g0", "g1", "g2" };
	struct it_inbox box = { 0 };
	struct ringcast *sub, *pub, *bad;
	int badmsg = 0, polls;

	it_daemon_start(d, NULL);
	sub = it_open(d);
	pub = it_open(d);
	bad = it_open(d);
	/* BAD first: the first poll meets it before GOOD (round-robin from the first topic). */
	IT_ASSERT_OK(ringcast_subscribe(sub, BAD));
	IT_ASSERT_OK(ringcast_subscribe(sub, GOOD));
	IT_ASSERT_OK(ringcast_broadcast(bad, BAD, "doomed", 6));
	for (int i = 0; i < 3; i++)
		IT_ASSERT_OK(ringcast_broadcast(pub, GOOD, good[i], 2));
	corrupt_first_record(bad, BAD, 6);

	/*
	 * Poll a few more times than the messages need: -EBADMSG must come
	 * exactly once, and GOOD's messages all, in order.
	 */
	for (polls = 0; polls < 8; polls++) {
		int ret = ringcast_poll(sub, it_inbox_handler, &box, 0);

		if (ret == -EBADMSG) {
			badmsg++;
			continue;
		}
		IT_ASSERT_OK(ret);
	}
	IT_ASSERT(badmsg == 1, "8 polls returned -EBADMSG %d times, expected once", badmsg);
	IT_ASSERT(box.n == 3, "%d of GOOD's 3 messages arrived after BAD's ring went corrupt", box.n);
	for (int i = 0; i < 3; i++)
		IT_ASSERT(box.m[i].topic_len == strlen(GOOD) && !memcmp(box.m[i].topic, GOOD, strlen(GOOD)) &&
			  box.m[i].len == 2 && !memcmp(box.m[i].data, good[i], 2),
			  "message %d is '%.*s' on '%.*s', expected '%s' on %s", i, (int)box.m[i].len,
			  box.m[i].data, (int)box.m[i].topic_len, box.m[i].topic, good[i], GOOD);

	/* Nothing is pending: the wait sleeps its time out instead of returning at once. */
	IT_ASSERT_ERR(ringcast_wait(sub, 50), -ETIMEDOUT);
	IT_ASSERT_ERR(ringcast_poll(sub, it_inbox_handler, &box, 0), 0);

	/* BAD is dropped: here, and at the daemon (its slot is free). */
	IT_ASSERT_ERR(ringcast_unsubscribe(sub, BAD), -ENOENT);
	IT_ASSERT(it_wait_stat(d, BAD, no_subscribers, NULL, 2000),
		  "the daemon still counts a subscriber of %s after the drop", BAD);

	/* GOOD goes on, woken as usual. */
	memset(&box, 0, sizeof(box));
	IT_ASSERT_OK(ringcast_broadcast(pub, GOOD, "g3", 2));
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 2000) == 1 && !memcmp(box.m[0].data, "g3", 2),
		  "GOOD's next message did not arrive (%d messages)", box.n);
	it_close(pub);
	it_close(bad);
	it_close(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_corrupt_topic_is_dropped, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_corrupt", tests, NULL, NULL);
}
