/* SPDX-License-Identifier: MIT */
/*
 * it_semantics: what each call of the public API promises, against a real
 * daemon.  Most cases use two clients in the test process: a client is a
 * mailbox, so "the sender" and "another subscriber" are two clients, and
 * a record is visible to ringcast_poll() as soon as broadcast returns
 * (shared memory), which makes "nothing arrives" a definite answer rather
 * than a timeout.  The epoll case publishes from another process.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "../in_futex.h"

/* Nothing waits for rc: poll finds nothing now and ringcast_wait agrees. */
static void assert_nothing(struct ringcast *rc, const char *who)
{
	struct it_inbox box = { 0 };
	int ret = ringcast_poll(rc, it_inbox_handler, &box, 0);

	IT_ASSERT(ret == 0, "%s received %d message(s) (first: '%.*s'), expected none", who,
		  ret, (int)(box.n ? box.m[0].len : 0), box.m[0].data);
	IT_ASSERT_ERR(ringcast_wait(rc, 20), -ETIMEDOUT);
}

/* rc holds exactly one message, with payload text. */
static void assert_one(struct ringcast *rc, const char *who, const char *text)
{
	struct it_inbox box = { 0 };
	int n = it_inbox_fill(rc, &box, 1, 2000);

	IT_ASSERT_OK(n);
	IT_ASSERT(n == 1, "%s received %d message(s), expected 1 ('%s')", who, n, text);
	IT_ASSERT(box.m[0].len == strlen(text) && !memcmp(box.m[0].data, text, strlen(text)),
		  "%s received '%.*s', expected '%s'", who, (int)box.m[0].len, box.m[0].data,
		  text);
	IT_ASSERT(box.m[0].lost == 0, "%s: lost = %llu", who,
		  (unsigned long long)box.m[0].lost);
	assert_nothing(rc, who);
}

static void publish_text(int (*fn)(struct ringcast *, const char *, const void *, size_t),
			 struct ringcast *rc, const char *topic, const char *text)
{
	IT_ASSERT_OK(fn(rc, topic, text, strlen(text)));
}

static void test_from_variants(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *a, *b;

	it_daemon_start(d, NULL);
	a = it_open(d);
	b = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(a, "sem.from"));
	IT_ASSERT_OK(ringcast_subscribe(b, "sem.from"));

	publish_text(ringcast_broadcast_from, a, "sem.from", "bf");
	assert_nothing(a, "the sender of broadcast_from");
	assert_one(b, "the other subscriber of broadcast_from", "bf");

	publish_text(ringcast_local_broadcast_from, a, "sem.from", "lbf");
	assert_nothing(a, "the sender of local_broadcast_from");
	assert_one(b, "the other subscriber of local_broadcast_from", "lbf");

	/* Without _from the sender is a subscriber like any other. */
	publish_text(ringcast_broadcast, a, "sem.from", "b");
	assert_one(a, "the subscribed sender of broadcast", "b");
	assert_one(b, "the other subscriber of broadcast", "b");

	publish_text(ringcast_local_broadcast, a, "sem.from", "lb");
	assert_one(a, "the subscribed sender of local_broadcast", "lb");
	assert_one(b, "the other subscriber of local_broadcast", "lb");

	/* A _from message must not hide the next one from the sender. */
	publish_text(ringcast_broadcast_from, a, "sem.from", "bf2");
	publish_text(ringcast_broadcast, a, "sem.from", "b2");
	assert_one(a, "the sender after broadcast_from + broadcast", "b2");
	{
		struct it_inbox box = { 0 };

		IT_ASSERT(it_inbox_fill(b, &box, 2, 2000) == 2, "b got %d of 2", box.n);
		IT_ASSERT(!memcmp(box.m[0].data, "bf2", 3) && !memcmp(box.m[1].data, "b2", 2),
			  "b got '%.*s', '%.*s'", (int)box.m[0].len, box.m[0].data,
			  (int)box.m[1].len, box.m[1].data);
		IT_ASSERT(box.m[1].seq > box.m[0].seq, "seq %llu then %llu",
			  (unsigned long long)box.m[0].seq, (unsigned long long)box.m[1].seq);
	}
	it_close(a);
	it_close(b);
}

static void test_direct(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *a, *b;
	const char *node;

	it_daemon_start(d, NULL);
	a = it_open(d);
	b = it_open(d);
	node = ringcast_node_name(a);
	IT_ASSERT(node && !strcmp(node, IT_NODE), "ringcast_node_name = '%s', expected '%s'",
		  node ? node : "(null)", IT_NODE);
	IT_ASSERT_OK(ringcast_subscribe(b, "sem.direct"));

	IT_ASSERT_OK(ringcast_direct_broadcast(a, node, "sem.direct", "here", 4));
	assert_one(b, "a subscriber on the named (own) node", "here");

	IT_ASSERT_ERR(ringcast_direct_broadcast(a, "no-such-node@nowhere", "sem.direct", "x", 1),
		      -EHOSTUNREACH);
	assert_nothing(b, "a subscriber after a direct_broadcast to an unknown node");
	it_close(a);
	it_close(b);
}

static void test_subscribe_unsubscribe(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;

	it_daemon_start(d, NULL);
	pub = it_open(d);
	sub = it_open(d);
	IT_ASSERT_ERR(ringcast_unsubscribe(sub, "sem.unsub"), -ENOENT);
	IT_ASSERT_OK(ringcast_subscribe(sub, "sem.unsub"));
	IT_ASSERT_ERR(ringcast_subscribe(sub, "sem.unsub"), -EALREADY);

	publish_text(ringcast_broadcast, pub, "sem.unsub", "before");
	assert_one(sub, "a subscriber", "before");

	IT_ASSERT_OK(ringcast_unsubscribe(sub, "sem.unsub"));
	publish_text(ringcast_broadcast, pub, "sem.unsub", "after");
	assert_nothing(sub, "an unsubscribed client");
	IT_ASSERT_ERR(ringcast_unsubscribe(sub, "sem.unsub"), -ENOENT);

	/* Subscribing again starts from now: "after" stays unseen. */
	IT_ASSERT_OK(ringcast_subscribe(sub, "sem.unsub"));
	assert_nothing(sub, "a client that subscribed again");
	publish_text(ringcast_broadcast, pub, "sem.unsub", "again");
	assert_one(sub, "a client that subscribed again", "again");
	it_close(pub);
	it_close(sub);
}

/*
 * ringcast_poll starts each call one topic further round the subscribed
 * ones.  Unsubscribing shortens that list under the remembered start: the
 * next poll must still reach the topics that are left, and only them.
 */
static void test_unsubscribe_behind_round_robin(void **state)
{
	static const char *const topics[] = { "sem.rr.a", "sem.rr.b", "sem.rr.c" };
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct it_inbox box = { 0 };
	int i;

	it_daemon_start(d, NULL);
	pub = it_open(d);
	sub = it_open(d);
	for (i = 0; i < 3; i++)
		IT_ASSERT_OK(ringcast_subscribe(sub, topics[i]));
	/* Two empty polls: the next one would start at the third topic. */
	for (i = 0; i < 2; i++)
		IT_ASSERT(ringcast_poll(sub, it_inbox_handler, &box, 0) == 0, "poll %d found messages",
			  i);
	IT_ASSERT_OK(ringcast_unsubscribe(sub, topics[1]));
	IT_ASSERT_OK(ringcast_unsubscribe(sub, topics[2]));
	publish_text(ringcast_broadcast, pub, topics[0], "left");
	assert_one(sub, "the one topic left after unsubscribing the others", "left");
	it_close(pub);
	it_close(sub);
}

static void test_origin_and_fields(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct it_inbox box = { 0 };
	uint64_t t0, t1;

	it_daemon_start(d, NULL);
	pub = it_open(d);
	sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, "sem.origin"));
	t0 = it_now_ns();
	publish_text(ringcast_broadcast, pub, "sem.origin", "hello");
	t1 = it_now_ns();
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 2000) == 1, "got %d messages", box.n);
	IT_ASSERT(!strcmp(box.m[0].origin, IT_NODE), "origin '%s', expected --node '%s'",
		  box.m[0].origin, IT_NODE);
	IT_ASSERT(box.m[0].topic_len == strlen("sem.origin") &&
		  !memcmp(box.m[0].topic, "sem.origin", box.m[0].topic_len),
		  "topic '%.*s' (%zu bytes)", (int)box.m[0].topic_len, box.m[0].topic,
		  box.m[0].topic_len);
	/*
	 * The same host's CLOCK_MONOTONIC: the stamp lies within the
	 * broadcast call, give or take the node clock's documented 1 µs.
	 */
	IT_ASSERT(box.m[0].publish_ns + 1000 >= t0 && box.m[0].publish_ns <= t1 + 1000,
		  "publish_ns %llu outside the call [%llu, %llu]",
		  (unsigned long long)box.m[0].publish_ns, (unsigned long long)t0,
		  (unsigned long long)t1);
	/* ringcast_now_ns() reads the same clock. */
	t0 = it_now_ns();
	t1 = ringcast_now_ns(pub);
	IT_ASSERT(t1 + 1000 >= t0 && t1 <= it_now_ns() + 1000, "ringcast_now_ns %llu, clock_gettime %llu",
		  (unsigned long long)t1, (unsigned long long)t0);
	IT_ASSERT(ringcast_now_ns(NULL) >= t0, "ringcast_now_ns(NULL) went back");
	IT_ASSERT(box.m[0].seq > 0, "seq 0");
	it_close(pub);
	it_close(sub);
}

static void test_topic_names(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct it_inbox box = { 0 };
	char t255[256], t256[257];

	memset(t255, 'a', 255);
	t255[255] = '\0';
	memset(t256, 'b', 256);
	t256[256] = '\0';
	it_daemon_start(d, NULL);
	pub = it_open(d);
	sub = it_open(d);

	IT_ASSERT_ERR(ringcast_subscribe(sub, ""), -EINVAL);
	IT_ASSERT_ERR(ringcast_broadcast(pub, "", "x", 1), -EINVAL);
	IT_ASSERT_ERR(ringcast_subscribe(sub, t256), -ENAMETOOLONG);
	IT_ASSERT_ERR(ringcast_broadcast(pub, t256, "x", 1), -ENAMETOOLONG);
	IT_ASSERT_ERR(ringcast_unsubscribe(sub, t256), -ENAMETOOLONG);

	IT_ASSERT_OK(ringcast_subscribe(sub, t255));
	IT_ASSERT_OK(ringcast_broadcast(pub, t255, "long", 4));
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 2000) == 1, "got %d messages on a 255-byte topic",
		  box.n);
	IT_ASSERT(box.m[0].topic_len == 255 && !memcmp(box.m[0].topic, t255, 255),
		  "topic of %zu bytes, expected the 255-byte one", box.m[0].topic_len);
	it_close(pub);
	it_close(sub);
}

/*
 * A publisher remembers its last topic: names that are prefixes of one
 * another, or differ in their last byte, must still reach their own topic
 * only, and a bad name must still be refused right after a good one.
 */
static void test_topic_switching(void **state)
{
	static const char *const topics[] = { "sem.sw", "sem.swx", "sem.sw", "sem.swy",
					       "sem.swx", "sem.s", "sem.sw" };
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub[4];
	const char *const names[4] = { "sem.sw", "sem.swx", "sem.swy", "sem.s" };
	size_t i, k;

	it_daemon_start(d, NULL);
	pub = it_open(d);
	for (k = 0; k < 4; k++) {
		sub[k] = it_open(d);
		IT_ASSERT_OK(ringcast_subscribe(sub[k], names[k]));
	}
	for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		IT_ASSERT_OK(ringcast_broadcast(pub, topics[i], topics[i], strlen(topics[i])));
		IT_ASSERT_ERR(ringcast_broadcast(pub, NULL, "x", 1), -EINVAL);
		for (k = 0; k < 4; k++) {
			if (!strcmp(names[k], topics[i]))
				assert_one(sub[k], names[k], topics[i]);
			else
				assert_nothing(sub[k], names[k]);
		}
	}
	for (k = 0; k < 4; k++)
		it_close(sub[k]);
	it_close(pub);
}

/*
 * The publisher compares a topic with its last one eight bytes at a time.
 * A caller's string that ends at the last byte of a page, before a page
 * it cannot read, must neither fault nor match a longer topic it is a
 * prefix of.
 */
static void test_topic_at_page_end(void **state)
{
	static const char *const longer = "sem.page.longer", *const shorter = "sem.page";
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub_long, *sub_short;
	long page = sysconf(_SC_PAGESIZE);
	struct it_inbox box;
	char *map, *s;
	int round, n;

	map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	IT_ASSERT(map != MAP_FAILED, "mmap");
	IT_ASSERT_OK(mprotect(map + page, (size_t)page, PROT_NONE));
	/* shorter, NUL last, against the unreadable page. */
	s = map + page - (strlen(shorter) + 1);
	memcpy(s, shorter, strlen(shorter) + 1);

	it_daemon_start(d, NULL);
	pub = it_open(d);
	sub_long = it_open(d);
	sub_short = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub_long, longer));
	IT_ASSERT_OK(ringcast_subscribe(sub_short, shorter));
	for (round = 0; round < 2; round++) {
		/* After the longer topic: a prefix of it must not match. */
		IT_ASSERT_OK(ringcast_broadcast(pub, longer, "L", 1));
		IT_ASSERT_OK(ringcast_broadcast(pub, s, "S1", 2));
		/* After itself: the same bytes at the page's end must match. */
		IT_ASSERT_OK(ringcast_broadcast(pub, s, "S2", 2));
		assert_one(sub_long, longer, "L");
		box = (struct it_inbox){ 0 };
		n = it_inbox_fill(sub_short, &box, 2, 2000);
		IT_ASSERT(n == 2, "%s received %d message(s), expected 2", shorter, n);
		IT_ASSERT(box.m[0].len == 2 && !memcmp(box.m[0].data, "S1", 2) && box.m[1].len == 2 &&
			  !memcmp(box.m[1].data, "S2", 2), "%s received '%.*s', '%.*s'", shorter,
			  (int)box.m[0].len, box.m[0].data, (int)box.m[1].len, box.m[1].data);
		assert_nothing(sub_short, shorter);
	}
	it_close(sub_short);
	it_close(sub_long);
	it_close(pub);
	munmap(map, (size_t)page * 2);
}

static int check_big(const struct ringcast_msg *m, void *ctx)
{
	const unsigned char *p = m->data;
	long *bad = ctx;

	/* First byte that differs from the pattern, or -1 if all match. */
	*bad = -1;
	for (size_t i = 0; i < m->len; i++)
		if (p[i] != (unsigned char)(i * 7 + 3)) {
			*bad = (long)i;
			break;
		}
	bad[1] = (long)m->len;
	return 0;
}

static void test_message_size(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct ringcast_claim c;
	struct it_inbox box = { 0 };
	unsigned char *buf;
	long max, res[2] = { -2, 0 };

	it_daemon_start(d, NULL);
	pub = it_open(d);
	sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, "sem.size"));
	max = ringcast_max_msg(pub, "sem.size");
	IT_ASSERT_OK(max);
	IT_ASSERT(max > 0, "ringcast_max_msg = %ld", max);
	buf = malloc((size_t)max + 1);
	IT_ASSERT(buf != NULL, "malloc %ld", max + 1);
	for (long i = 0; i <= max; i++)
		buf[i] = (unsigned char)(i * 7 + 3);

	IT_ASSERT_ERR(ringcast_broadcast(pub, "sem.size", buf, (size_t)max + 1), -EMSGSIZE);
	IT_ASSERT_ERR(ringcast_claim(pub, "sem.size", (size_t)max + 1, &c), -EMSGSIZE);
	assert_nothing(sub, "a subscriber after refused oversized messages");

	IT_ASSERT_OK(ringcast_broadcast(pub, "sem.size", buf, (size_t)max));
	IT_ASSERT(ringcast_poll(sub, check_big, res, 1) == 1, "the largest message did not arrive");
	IT_ASSERT(res[1] == max && res[0] == -1,
		  "largest message: %ld bytes (expected %ld), first bad byte %ld", res[1], max,
		  res[0]);
	free(buf);

	/* Empty messages are messages too. */
	IT_ASSERT_OK(ringcast_broadcast(pub, "sem.size", NULL, 0));
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 2000) == 1 && box.m[0].len == 0,
		  "empty message: got %d, len %zu", box.n, box.m[0].len);
	it_close(pub);
	it_close(sub);
}

/* Poll once: rc holds exactly one message, of len bytes equal to want. */
static void assert_one_bytes(struct ringcast *rc, const void *want, size_t len,
			     struct it_inbox_msg *out)
{
	struct it_inbox box = { 0 };
	int n = ringcast_poll(rc, it_inbox_handler, &box, 0);

	IT_ASSERT(n == 1, "%d message(s) for one %zu-byte publish", n, len);
	IT_ASSERT(box.m[0].len == len && !memcmp(box.m[0].data, want, len),
		  "a %zu-byte message arrived as %zu different bytes", len, box.m[0].len);
	*out = box.m[0];
}

/*
 * A daemon, a publisher and a subscriber of topic, and the node clock's
 * line seen (so that publishes can take the fast path): false where the
 * TSC cannot carry that clock.
 */
static bool start_pub_sub(struct it_daemon *d, const char *topic, struct ringcast **pub,
			  struct ringcast **sub)
{
	it_daemon_start(d, NULL);
	*pub = it_open(d);
	*sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(*sub, topic));
	return it_wait_node_clock(*pub);
}

/*
 * Every length from 0 to 65 bytes.  A publisher copies up to 64 bytes
 * inline on its fast path (lib/copy.h), in pieces that overlap; longer
 * messages, and a first publish, go through memcpy.  Each message arrives
 * whole, stamped within its call, its seq one past the last.
 */
static void test_short_sizes(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct it_inbox_msg m;
	unsigned char buf[65];
	uint64_t t0, t1, seq = 0;

	start_pub_sub(d, "sem.short", &pub, &sub);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(len * 31 + i * 7 + 1);
		t0 = it_now_ns();
		IT_ASSERT_OK(ringcast_broadcast(pub, "sem.short", buf, len));
		t1 = it_now_ns();
		assert_one_bytes(sub, buf, len, &m);
		IT_ASSERT(m.publish_ns + 1000 >= t0 && m.publish_ns <= t1 + 1000,
			  "%zu bytes: publish_ns %llu outside the call [%llu, %llu]", len,
			  (unsigned long long)m.publish_ns, (unsigned long long)t0,
			  (unsigned long long)t1);
		IT_ASSERT(len == 0 || m.seq == seq + 1, "%zu bytes: seq %llu after %llu", len,
			  (unsigned long long)m.seq, (unsigned long long)seq);
		seq = m.seq;
	}
	it_close(pub);
	it_close(sub);
}

/*
 * A publisher alone on a topic owns its tail and moves it with plain
 * stores.  When a second publisher arrives, the owner's next publish must
 * notice after announcing its claim, give the tail up and claim like the
 * newcomer: interleaved, every message arrives once, in order, seqs one
 * apart.
 */
static void test_second_publisher(void **state)
{
	static const char *const seq_of[] = { "a1", "a2", "b1", "a3", "b2", "a4", "a5" };
	struct it_daemon *d = *state;
	struct ringcast *a, *b, *sub;
	struct it_inbox_msg m;
	uint64_t seq = 0;

	it_daemon_start(d, NULL);
	a = it_open(d);
	b = it_open(d);
	sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, "sem.share"));
	it_wait_node_clock(a);
	for (size_t i = 0; i < sizeof(seq_of) / sizeof(seq_of[0]); i++) {
		const char *text = seq_of[i];

		IT_ASSERT_OK(ringcast_broadcast(text[0] == 'a' ? a : b, "sem.share", text,
						strlen(text)));
		assert_one_bytes(sub, text, strlen(text), &m);
		IT_ASSERT(i == 0 || m.seq == seq + 1, "'%s': seq %llu after %llu", text,
			  (unsigned long long)m.seq, (unsigned long long)seq);
		seq = m.seq;
	}
	it_close(a);
	it_close(b);
	it_close(sub);
}



/*
 * A subscriber asleep in ringcast_wait() is woken by a publish that takes
 * the publisher's fast path: the fast path must see, after its commit,
 * that a subscriber may sleep, and commit with the fence and the wake-up
 * of the general path.
 */
static void publish_wakes_sleeper(void **state, bool many)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct it_inbox_msg m;
	struct it_waiter w = { .timeout_ms = 5000 };
	pthread_t th;
	uint64_t until;
	bool armed;

	start_pub_sub(d, "sem.wake", &pub, &sub);
	publish_text(ringcast_broadcast, pub, "sem.wake", "w0");
	assert_one_bytes(sub, "w0", 2, &m);
	w.rc = sub;
	IT_ASSERT(pthread_create(&th, NULL, it_waiter_main, &w) == 0, "pthread_create");
	/* Counted in sleepers and blocked in futex(2): past its last look at the ring. */
	until = it_now_ns() + 5000000000ull;
	while (!(atomic_load(&w.tid) && it_pub_sleepers(pub) > 0 && test_in_futex(getpid(), atomic_load(&w.tid))) &&
	       it_now_ns() < until)
		it_sleep_ms(1);
	IT_ASSERT(it_pub_sleepers(pub) > 0 && test_in_futex(getpid(), atomic_load(&w.tid)),
		  "the subscriber never went to sleep");
	if (many) {
		struct iovec v[3] = { { "w1", 2 }, { "w2", 2 }, { "w3", 2 } };

		IT_ASSERT_ERR(ringcast_broadcast_many(pub, "sem.wake", v, 3), 3);
	} else {
		publish_text(ringcast_broadcast, pub, "sem.wake", "w1");
	}
	/*
	 * The publish rang the bell before it returned (RUNG), or the waiter
	 * has woken since and disarmed (IDLE).  Still ARMED means nobody rang:
	 * the waiter would sleep out its timeout (and then find the message,
	 * so its return value cannot tell).
	 */
	armed = it_bell_armed(sub);
	pthread_join(th, NULL);
	IT_ASSERT(!armed, "the publish left the sleeping subscriber's bell armed: no wake-up");
	IT_ASSERT(w.ret == 0, "ringcast_wait = %d (%s)", w.ret, ringcast_strerror(w.ret));
	if (many) {
		struct it_inbox box = { 0 };

		IT_ASSERT(ringcast_poll(sub, it_inbox_handler, &box, 0) == 3 &&
				  !memcmp(box.m[2].data, "w3", 2),
			  "the woken subscriber found %d message(s), expected w1..w3", box.n);
	} else {
		assert_one_bytes(sub, "w1", 2, &m);
	}
	it_close(pub);
	it_close(sub);
}

static void test_fast_publish_wakes_sleeper(void **state)
{
	publish_wakes_sleeper(state, false);
}

/* The same for ringcast_broadcast_many(), which looks for sleepers once a claim. */
static void test_many_wakes_sleeper(void **state)
{
	publish_wakes_sleeper(state, true);
}

/* Message i of the tests below: i's bytes, i % 101 of them (0..100: both copy paths). */
static size_t many_fill(char *buf, unsigned i)
{
	size_t len = i % 101;

	for (size_t k = 0; k < len; k++)
		buf[k] = (char)(i * 31 + k);
	return len;
}

/*
 * ringcast_broadcast_many(): every message arrives whole and in order,
 * one seq after another, as n broadcasts would; where the client owns the
 * ring's tail the batch shares one stamp, read within the call.  A bad
 * message stops the batch where it is, the ones before it published.
 */
static void test_broadcast_many(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	static char bufs[40][128];
	struct iovec v[40];
	struct it_inbox box = { 0 };
	uint64_t t0, t1;
	long max;
	bool clock;

	clock = start_pub_sub(d, "sem.many", &pub, &sub);
	/* The first publish takes the tail (and goes the general way). */
	publish_text(ringcast_broadcast, pub, "sem.many", "first");
	assert_one(sub, "the subscriber", "first");
	for (unsigned i = 0; i < 40; i++)
		v[i] = (struct iovec){ bufs[i], many_fill(bufs[i], i) };
	t0 = it_now_ns();
	IT_ASSERT_ERR(ringcast_broadcast_many(pub, "sem.many", v, 40), 40);
	t1 = it_now_ns();
	IT_ASSERT(it_inbox_fill(sub, &box, 40, 2000) == 40, "%d of 40 messages arrived", box.n);
	for (unsigned i = 0; i < 40; i++) {
		struct it_inbox_msg *m = &box.m[i];

		IT_ASSERT(m->len == v[i].iov_len && !memcmp(m->data, bufs[i], m->len),
			  "message %u: %zu bytes, not its %zu", i, m->len, v[i].iov_len);
		IT_ASSERT(i == 0 || m->seq == box.m[i - 1].seq + 1, "message %u: seq %llu after %llu", i,
			  (unsigned long long)m->seq, (unsigned long long)box.m[i - 1].seq);
		IT_ASSERT(m->lost == 0 && m->publish_ns + 1000 >= t0 && m->publish_ns <= t1 + 1000,
			  "message %u: lost %llu, publish_ns %llu outside the call", i,
			  (unsigned long long)m->lost, (unsigned long long)m->publish_ns);
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
		/* One claim, one stamp: where the tail can be owned (ring_pub.h). */
		IT_ASSERT(!clock || !__builtin_cpu_supports("avx") || m->publish_ns == box.m[0].publish_ns,
			  "message %u: stamped %llu, the batch's first %llu", i,
			  (unsigned long long)m->publish_ns, (unsigned long long)box.m[0].publish_ns);
#endif
	}
	(void)clock;

	/* An oversized third message: two go, the call from there says why. */
	max = ringcast_max_msg(pub, "sem.many");
	IT_ASSERT_OK(max);
	char *big = calloc(1, (size_t)max + 1);
	struct iovec bad[4] = { { "a", 1 }, { "b", 1 }, { big, (size_t)max + 1 }, { "d", 1 } };

	IT_ASSERT(big != NULL, "calloc");
	IT_ASSERT_ERR(ringcast_broadcast_many(pub, "sem.many", bad, 4), 2);
	IT_ASSERT_ERR(ringcast_broadcast_many(pub, "sem.many", bad + 2, 2), -EMSGSIZE);
	free(big);
	memset(&box, 0, sizeof(box));
	IT_ASSERT(it_inbox_fill(sub, &box, 2, 2000) == 2 && box.m[0].data[0] == 'a' &&
			  box.m[1].data[0] == 'b',
		  "%d message(s) after the refused batch, expected a and b", box.n);
	assert_nothing(sub, "the subscriber after a refused message");

	/* Bad arguments. */
	IT_ASSERT_ERR(ringcast_broadcast_many(pub, "sem.many", v, 0), 0);
	IT_ASSERT_ERR(ringcast_broadcast_many(pub, "sem.many", NULL, 2), -EINVAL);
	IT_ASSERT_ERR(ringcast_broadcast_many(NULL, "sem.many", v, 2), -EINVAL);
	IT_ASSERT_ERR(ringcast_broadcast_many(pub, "", v, 2), -EINVAL);
	struct iovec hole = { NULL, 3 };

	IT_ASSERT_ERR(ringcast_broadcast_many(pub, "sem.many", &hole, 1), -EINVAL);
	assert_nothing(sub, "the subscriber after refused batches");
	it_close(pub);
	it_close(sub);
}

#define MANY_TOTAL 20000u

/* A subscriber in its own process: every message of test_many_over_ring, whole and in order. */
static int many_reader(void *arg)
{
	struct ringcast *rc = it_child_open(arg);
	unsigned next = 0;
	char want[128];

	IT_CHECK_OK(ringcast_subscribe(rc, "sem.many.big"));
	IT_CHECK_OK(ringcast_broadcast(rc, "sem.many.ready", "r", 1));
	while (next < MANY_TOTAL) {
		struct it_inbox box = { 0 };
		int n = ringcast_poll(rc, it_inbox_handler, &box, IT_INBOX_MAX);

		IT_CHECK_OK(n);
		if (n == 0) {
			IT_CHECK_OK(ringcast_wait(rc, 5000));
			continue;
		}
		for (int i = 0; i < box.n; i++, next++) {
			size_t len = many_fill(want, next);

			IT_CHECK(box.m[i].lost == 0, "message %u: %llu lost before it", next,
				 (unsigned long long)box.m[i].lost);
			IT_CHECK(box.m[i].len == len && !memcmp(box.m[i].data, want, len),
				 "message %u: %zu bytes, not its own %zu", next, box.m[i].len, len);
		}
	}
	return 0;
}

/*
 * Batches far larger than the ring (64 KiB), to a tethered subscriber
 * that reads as they go: a batch takes what fits below the subscriber's
 * position and waits for the rest, as a broadcast would, and overwrites
 * nothing unread.
 */
static void test_many_over_ring(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub;
	static char bufs[MANY_TOTAL][100];
	static struct iovec v[MANY_TOTAL];
	struct it_inbox box = { 0 };
	unsigned done = 0;
	pid_t reader;

	it_daemon_start(d, "--capacity", "64k", NULL);
	pub = it_open(d);
	/* Wait for room, as broadcast does, rather than say -EAGAIN at once. */
	IT_ASSERT_OK(ringcast_set_send_timeout(pub, 10000));
	IT_ASSERT_OK(ringcast_subscribe(pub, "sem.many.ready"));
	it_wait_node_clock(pub);
	reader = it_fork(many_reader, d->sock);
	IT_ASSERT(it_inbox_fill(pub, &box, 1, 10000) == 1, "the reader never subscribed");
	for (unsigned i = 0; i < MANY_TOTAL; i++)
		v[i] = (struct iovec){ bufs[i], many_fill(bufs[i], i) };
	while (done < MANY_TOTAL) {
		unsigned n = MANY_TOTAL - done < 5000 ? MANY_TOTAL - done : 5000;
		int ret = ringcast_broadcast_many(pub, "sem.many.big", v + done, n);

		IT_ASSERT(ret > 0, "after %u messages: %d (%s)", done, ret, ringcast_strerror(ret));
		done += (unsigned)ret;
	}
	it_expect_exit(reader, 30000, 0, "the reader");
	it_close(pub);
}

static void test_open_without_daemon(void **state)
{
	struct it_daemon *d = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ringcast *rc = NULL;
	char path[128];
	int fd, ret;

	/* No file at all. */
	snprintf(path, sizeof(path), "%s/nobody-here.sock", d->dir);
	ret = ringcast_open(&rc, path);
	IT_ASSERT(ret == -ENOENT || ret == -ECONNREFUSED,
		  "ringcast_open(missing socket) = %d (%s)", ret, ringcast_strerror(ret));

	/* A socket file nobody listens on (what a crashed daemon leaves). */
	snprintf(path, sizeof(path), "%s/stale.sock", d->dir);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	IT_ASSERT(fd >= 0, "socket: %s", strerror(errno));
	memcpy(sa.sun_path, path, strlen(path));
	IT_ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
	ret = ringcast_open(&rc, path);
	close(fd);
	IT_ASSERT(ret == -ENOENT || ret == -ECONNREFUSED,
		  "ringcast_open(stale socket) = %d (%s)", ret, ringcast_strerror(ret));

	/* A daemon that was there and stopped. */
	it_daemon_start(d, NULL);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	ret = ringcast_open(&rc, d->sock);
	IT_ASSERT(ret == -ENOENT || ret == -ECONNREFUSED,
		  "ringcast_open(after SIGTERM) = %d (%s)", ret, ringcast_strerror(ret));
}

struct pub_arg {
	const char *sock;
	const char *topic;
	const char *text;
};

static int publish_one(void *p)
{
	struct pub_arg *a = p;
	struct ringcast *rc = it_child_open(a->sock);

	IT_CHECK_OK(ringcast_broadcast(rc, a->topic, a->text, strlen(a->text)));
	ringcast_close(rc);
	return 0;
}

/* epoll_wait, restarted after EINTR with what is left of timeout_ms; fails the test on errors. */
static int epoll_wait_ms(int ep, struct epoll_event *out, int timeout_ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int n;

	for (;;) {
		uint64_t now = it_now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000ull);

		n = epoll_wait(ep, out, 1, left);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			IT_FAIL("epoll_wait: %s", strerror(errno));
	}
}

static void test_epoll_fd(void **state)
{
	struct it_daemon *d = *state;
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct pub_arg arg = { d->sock, "sem.epoll", "ring" };
	struct it_inbox box = { 0 };
	struct ringcast *sub;
	int ep, fd, n;

	it_daemon_start(d, NULL);
	sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, "sem.epoll"));
	fd = ringcast_fd(sub);
	if (fd == -EOPNOTSUPP)
		it_skip("ringcast_fd: this kernel has no IORING_OP_FUTEX_WAIT");
	IT_ASSERT_OK(fd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	IT_ASSERT(ep >= 0, "epoll_create1: %s", strerror(errno));
	IT_ASSERT(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl: %s", strerror(errno));

	/* Nothing published: the fd must not be readable. */
	n = epoll_wait_ms(ep, &out, 200);
	IT_ASSERT(n == 0, "epoll_wait reported %d ready fd(s) before anything was published", n);

	it_expect_exit(it_fork(publish_one, &arg), 5000, 0, "publisher process");
	n = epoll_wait_ms(ep, &out, 2000);
	IT_ASSERT(n == 1 && (out.events & EPOLLIN),
		  "epoll_wait = %d (events 0x%x) after a publish from another process", n,
		  n == 1 ? out.events : 0);
	n = ringcast_poll(sub, it_inbox_handler, &box, 0);
	IT_ASSERT(n == 1 && box.m[0].len == 4 && !memcmp(box.m[0].data, "ring", 4),
		  "ringcast_poll after readiness: %d message(s)", n);

	/* Polled dry: readiness re-armed, not readable again until the next publish. */
	n = epoll_wait_ms(ep, &out, 200);
	IT_ASSERT(n == 0, "epoll_wait reported %d ready fd(s) after poll drained everything", n);

	arg.text = "again";
	it_expect_exit(it_fork(publish_one, &arg), 5000, 0, "second publisher process");
	n = epoll_wait_ms(ep, &out, 2000);
	IT_ASSERT(n == 1, "epoll_wait = %d after the second publish", n);
	box.n = 0;
	n = ringcast_poll(sub, it_inbox_handler, &box, 0);
	IT_ASSERT(n == 1 && box.m[0].len == 5 && !memcmp(box.m[0].data, "again", 5),
		  "ringcast_poll after the second readiness: %d message(s)", n);
	close(ep);
	it_close(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_from_variants, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_direct, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_unsubscribe, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_origin_and_fields, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_topic_names, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_topic_switching, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_topic_at_page_end, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_unsubscribe_behind_round_robin, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_message_size, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_short_sizes, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_second_publisher, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_fast_publish_wakes_sleeper, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_many_wakes_sleeper, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_broadcast_many, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_many_over_ring, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_open_without_daemon, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_epoll_fd, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_semantics", tests, NULL, NULL);
}
