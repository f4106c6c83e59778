// SPDX-License-Identifier: MIT
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
 * The ring's layout comes from the library's private header (a test of
 * the file format says so by including it): the test writes into the
 * file the daemon created, as root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "../../lib/ring_format.h"

#define BAD "corrupt.bad"
#define GOOD "corrupt.good"

/* topic's .ring file in the daemon's runtime directory, read-write; -1 if none. */
static int open_ring_rw(const struct it_daemon *d, const char *topic)
{
	DIR *dir = opendir(d->rundir);
	struct dirent *e;
	int fd = -1;

	IT_ASSERT(dir, "cannot list %s", d->rundir);
	while (fd < 0 && (e = readdir(dir))) {
		size_t n = strlen(e->d_name);
		struct rc_ring_meta m;
		char path[512];
		int f;

		if (n < 5 || strcmp(e->d_name + n - 5, ".ring"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->rundir, e->d_name);
		f = open(path, O_RDWR | O_CLOEXEC);
		if (f < 0)
			continue;
		if (pread(f, &m, sizeof(m), 0) == (ssize_t)sizeof(m) && m.topic_len == strlen(topic) &&
		    !memcmp(m.topic, topic, m.topic_len))
			fd = f;
		else
			close(f);
	}
	closedir(dir);
	return fd;
}

/*
 * Turn the first record of topic's ring (position 0: the test's daemon
 * made the ring for this test) into one whose length cannot be: the
 * stamp stays right, so readers believe the word is committed and must
 * then refuse the length.  It checks the word is the record it expects.
 */
static void corrupt_first_record(const struct it_daemon *d, const char *topic, size_t payload)
{
	int fd = open_ring_rw(d, topic);
	uint64_t word;

	IT_ASSERT(fd >= 0, "no .ring file for %s in %s", topic, d->rundir);
	IT_ASSERT(pread(fd, &word, sizeof(word), RC_RING_HDR_SIZE) == (ssize_t)sizeof(word),
		  "cannot read %s's first record", topic);
	IT_ASSERT(word >> 32 == sizeof(struct rc_rec) + payload,
		  "%s's first record has length word %llu, expected %zu", topic,
		  (unsigned long long)(word >> 32), sizeof(struct rc_rec) + payload);
	/* Shorter than a record header: no record of ours is that long. */
	word = (uint64_t)4 << 32 | (uint32_t)word;
	IT_ASSERT(pwrite(fd, &word, sizeof(word), RC_RING_HDR_SIZE) == (ssize_t)sizeof(word),
		  "cannot write %s's first record", topic);
	close(fd);
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
	struct ringcast *sub, *pub;
	int badmsg = 0, polls;

	it_require_root("writing into the daemon's ring file");
	it_daemon_start(d, NULL);
	sub = it_open(d);
	pub = it_open(d);
	/* BAD first: the first poll meets it before GOOD (round-robin from the first topic). */
	IT_ASSERT_OK(ringcast_subscribe(sub, BAD));
	IT_ASSERT_OK(ringcast_subscribe(sub, GOOD));
	IT_ASSERT_OK(ringcast_broadcast(pub, BAD, "doomed", 6));
	for (int i = 0; i < 3; i++)
		IT_ASSERT_OK(ringcast_broadcast(pub, GOOD, good[i], 2));
	corrupt_first_record(d, BAD, 6);

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
