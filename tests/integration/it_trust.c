/* SPDX-License-Identifier: MIT */
/*
 * it_trust: one client against the others (docs/security.md).  A hostile
 * client, running as another uid where permissions are what is tested,
 * does what it can to the shared pages; the victims must lose nothing
 * silently, and stall or crash never.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "harness.h"
/*
 * The file format (docs/ring-format.md) and the wire format
 * (docs/protocol.md), as a hostile client reads them from the docs.
 */
#include "../../lib/ring_format.h"
#include "../../lib/proto.h"

#define OTHER_ID 12345
#define TOPIC "open.trust"

static const char open_conf[] =
	"# it_trust: open.* is anyone's to publish and read.\n"
	"[topic \"open.*\"]\n"
	"publish = *\n"
	"subscribe = *\n";

static void start_open_daemon(struct it_daemon *d, const char *extra, const char *val)
{
	static char conf[160]; /* the harness keeps the arguments for restarts */

	it_write_conf(d, "open.conf", open_conf, conf, sizeof(conf));
	/* 0666: the hostile uid must reach the daemon, as on a node open to all. */
	if (extra)
		it_daemon_start(d, "--config", conf, "--socket-mode", "0666", extra, val, NULL);
	else
		it_daemon_start(d, "--config", conf, "--socket-mode", "0666", NULL);
}

static void become_other_user(void)
{
	it_become(OTHER_ID, OTHER_ID, NULL, 0);
}

struct hostile_cfg {
	const char *sock;
	const char *rundir;
};

/*
 * The reviewer's attack: bump daemon_gen, which made every client of the
 * node reconnect under a new identity ten times a second.  As another
 * user, every way a client has to write it must fail.
 */
static int bump_daemon_gen(void *p)
{
	struct hostile_cfg *c = p;
	struct ringcast *rc;
	void *page;

	become_other_user();
	rc = it_child_open(c->sock);
	page = (void *)it_node_hdr(rc);
	/* Its own mapping of the page: read-only, and it cannot be made writable. */
	IT_CHECK(mprotect(page, RC_NODE_SIZE, PROT_READ | PROT_WRITE) < 0 && errno == EACCES,
		 "mprotect of the node page to writable: %s",
		 errno ? strerror(errno) : "it worked");
	/* Nor may it set the trace rate, which is node-wide too. */
	IT_CHECK_ERR(ringcast_trace_sample(rc, 7, NULL), -EACCES);
	ringcast_close(rc);
	return 0;
}

static void test_node_state_is_the_daemons(void **state)
{
	struct it_daemon *d = *state;
	struct hostile_cfg cfg = { d->sock, d->rundir };
	struct it_inbox box = { 0 };
	struct ringcast *victim, *pub;
	uint32_t id;

	it_require_root("running the hostile client as uid 12345");
	start_open_daemon(d, NULL, NULL);
	victim = it_open(d);
	pub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(victim, TOPIC));
	id = ringcast_client_id(victim);

	it_expect_exit(it_fork(bump_daemon_gen, &cfg), 10000, 0, "hostile client as uid 12345");

	/* The victim is still the same client, and misses nothing. */
	for (int i = 0; i < 20; i++)
		IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "m", 1));
	IT_ASSERT(it_inbox_fill(victim, &box, 20, 5000) == 20, "victim got %d of 20", box.n);
	for (int i = 0; i < box.n; i++)
		IT_ASSERT(box.m[i].lost == 0, "message %d arrived after %llu lost", i,
			  (unsigned long long)box.m[i].lost);
	IT_ASSERT(ringcast_client_id(victim) == id, "the victim reconnected: client %u, was %u",
		  ringcast_client_id(victim), id);
	it_close(pub);
	it_close(victim);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

static bool no_subscribers(const struct ringcast_topic_stat *st, const void *arg)
{
	(void)arg;
	return st->n_subs == 0;
}

/*
 * A reconnect that cannot resume the subscriber's slot (here: its daemon
 * died and the next one reaped the slot before the subscriber came back)
 * starts it at the live tail.  What it skipped must arrive as `lost`.
 */
static void test_reconnect_without_resume_reports_lost(void **state)
{
	struct it_daemon *d = *state;
	struct it_inbox box = { 0 };
	struct ringcast *sub, *pub;
	uint32_t id;
	int i;

	start_open_daemon(d, "--reap-grace", "100");
	sub = it_open(d);
	pub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, TOPIC));
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "before", 6));
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 5000) == 1, "first message: got %d", box.n);
	id = ringcast_client_id(sub);

	it_daemon_kill(d);
	it_daemon_restart(d);
	/* The subscriber makes no call: the new daemon reaps its slot. */
	IT_ASSERT(it_wait_stat(d, TOPIC, no_subscribers, NULL, 10000),
		  "the orphaned subscriber was not reaped");
	for (i = 0; i < 5; i++)
		IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "gone", 4));

	/* Now it reconnects (a new identity: its old one was reaped) and reads on. */
	box.n = 0;
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 2000) == 0, "a message arrived before any was sent: %d",
		  box.n);
	IT_ASSERT(ringcast_client_id(sub) != id, "the subscriber resumed its reaped identity");
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "after", 5));
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 5000) == 1, "the message after: got %d", box.n);
	IT_ASSERT(box.m[0].len == 5 && !memcmp(box.m[0].data, "after", 5), "got '%.*s'",
		  (int)box.m[0].len, box.m[0].data);
	IT_ASSERT(box.m[0].lost == 5, "lost %llu, expected the 5 sent while it was away",
		  (unsigned long long)box.m[0].lost);
	it_close(pub);
	it_close(sub);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

struct scribbler_cfg {
	const char *sock;
	volatile int *stop;
};

/*
 * As another user that may read the topic: write an absurd start into
 * every free subscriber slot, over and over, so that whoever subscribes
 * next finds it there.
 */
static int scribble_free_slots(void *p)
{
	struct scribbler_cfg *c = p;
	struct ringcast *rc;
	struct rc_ctl_hdr *ctl;
	int slot;

	become_other_user();
	rc = it_child_open(c->sock);
	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	ctl = it_sub_ctl(rc, TOPIC, &slot);
	IT_CHECK(ctl, "no ctl mapping");
	while (!*c->stop) {
		for (unsigned i = 0; i < 8; i++) {
			if (i == (unsigned)slot)
				continue;
			atomic_store_explicit(&ctl->subs[i].pos, 1ull << 34, memory_order_relaxed);
			atomic_store_explicit(&ctl->subs[i].seq, 1ull << 40, memory_order_relaxed);
		}
	}
	ringcast_close(rc);
	return 0;
}

static void test_subscriber_starts_where_the_daemon_says(void **state)
{
	struct it_daemon *d = *state;
	volatile int *stop = it_shared(sizeof(int));
	struct scribbler_cfg cfg = { d->sock, stop };
	struct ringcast *victim, *pub;
	pid_t pid;

	it_require_root("running the hostile client as uid 12345");
	start_open_daemon(d, NULL, NULL);
	pub = it_open(d);
	pid = it_fork(scribble_free_slots, &cfg);
	IT_ASSERT(it_wait_subscribers(d, TOPIC, 1, pid, 10000), "the scribbler did not subscribe");
	for (int i = 0; i < 30; i++) {
		struct it_inbox box = { 0 };
		char msg[32]; /* "ping " and any int: GCC -O1 checks the bound */

		victim = it_open(d);
		IT_ASSERT_OK(ringcast_subscribe(victim, TOPIC));
		snprintf(msg, sizeof(msg), "ping %d", i);
		IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, msg, strlen(msg)));
		IT_ASSERT(it_inbox_fill(victim, &box, 1, 5000) == 1,
			  "subscribe %d: the victim got nothing (deaf)", i);
		IT_ASSERT(box.m[0].len == strlen(msg) && !memcmp(box.m[0].data, msg, box.m[0].len),
			  "subscribe %d: got '%.*s'", i, (int)box.m[0].len, box.m[0].data);
		IT_ASSERT(box.m[0].lost == 0, "subscribe %d: lost %llu", i,
			  (unsigned long long)box.m[0].lost);
		it_close(victim);
	}
	*stop = 1;
	it_expect_exit(pid, 10000, 0, "the scribbler");
	it_close(pub);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

/*
 * As another user that may publish to and read the topic: mark every
 * subscriber and publisher slot but its own in use, once, then stop.
 */
static int take_every_slot(void *p)
{
	struct scribbler_cfg *c = p;
	struct ringcast *rc;
	struct rc_ring_hdr *hdr;
	struct rc_ctl_hdr *ctl;
	int sub_slot, pub_slot;
	unsigned i;

	become_other_user();
	rc = it_child_open(c->sock);
	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	IT_CHECK_OK(ringcast_broadcast(rc, TOPIC, "x", 1));
	ctl = it_sub_ctl(rc, TOPIC, &sub_slot);
	hdr = it_pub_ring(rc, NULL, &pub_slot); /* TOPIC's: the one it last published to */
	IT_CHECK(ctl && hdr, "no mappings");
	for (i = 0; i < RC_SUB_SLOTS; i++)
		if (i != (unsigned)sub_slot) {
			atomic_store_explicit(&ctl->subs[i].client_id, 77, memory_order_relaxed);
			atomic_store_explicit(&ctl->subs[i].state, RC_SUB_UNTETHERED,
					      memory_order_relaxed);
		}
	atomic_store_explicit(&ctl->slots_hi, RC_SUB_SLOTS, memory_order_relaxed);
	for (i = 0; i < RC_PUB_SLOTS; i++)
		if (i != (unsigned)pub_slot)
			atomic_store_explicit(&hdr->pubs[i].client_id, 77, memory_order_relaxed);
	*c->stop = 1;
	/* Stays connected: its own slots stay its own. */
	while (*c->stop != 2)
		it_sleep_ms(1);
	ringcast_close(rc);
	return 0;
}

/*
 * A client that marked every free slot of a topic in use made every later
 * subscribe and publish of that topic fail with -ENOSPC: the daemon took
 * the files' word for which slots were free.  It gives out slots from its
 * own record now, and frees the forged ones within a tick.
 */
static void test_forged_slots_lock_nobody_out(void **state)
{
	struct it_daemon *d = *state;
	volatile int *stop = it_shared(sizeof(int));
	struct scribbler_cfg cfg = { d->sock, stop };
	struct ringcast *victims[4], *pub;
	struct rc_ctl_hdr *ctl;
	unsigned forged = 0;
	pid_t pid;

	it_require_root("running the hostile client as uid 12345");
	start_open_daemon(d, NULL, NULL);
	pid = it_fork(take_every_slot, &cfg);
	while (*stop != 1)
		it_sleep_ms(1);
	for (int i = 0; i < 4; i++) {
		struct it_inbox box = { 0 };

		victims[i] = it_open(d);
		IT_ASSERT_OK(ringcast_subscribe(victims[i], TOPIC));
		pub = it_open(d);
		IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "in", 2));
		IT_ASSERT(it_inbox_fill(victims[i], &box, 1, 5000) == 1, "subscriber %d got nothing", i);
		it_close(pub);
	}
	/* The daemon freed what was forged: the slots above ours are free again. */
	ctl = it_sub_ctl(victims[0], TOPIC, NULL);
	for (uint64_t until = it_now_ns() + 2000000000ull; it_now_ns() < until; it_sleep_ms(10)) {
		forged = 0;
		for (unsigned i = 0; i < RC_SUB_SLOTS; i++)
			forged += atomic_load_explicit(&ctl->subs[i].client_id,
						       memory_order_relaxed) == 77;
		if (!forged)
			break;
	}
	IT_ASSERT(forged == 0, "%u forged subscriber slots still marked in use", forged);
	*stop = 2;
	it_expect_exit(pid, 10000, 0, "the forger");
	for (int i = 0; i < 4; i++)
		it_close(victims[i]);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

struct forger_cfg {
	const char *sock;
	uint32_t victim_id;
	_Atomic int stage; /* 1: forged, 2: the daemon is back, 3: done */
	uint32_t got_id;
};

/*
 * As another user that may read the topic: write a slot in the ctl file
 * naming the victim's client id with our own pid, then, once a new
 * daemon runs, ask to resume the victim's identity.  A daemon that took
 * orphans from the slots let us (issue 17, item 9).
 */
static int forge_identity(void *p)
{
	struct forger_cfg *c = p;
	struct rc_sub_slot *s;
	struct rc_ctl_hdr *ctl;
	struct ringcast *rc;
	unsigned i;

	become_other_user();
	rc = it_child_open(c->sock);
	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	ctl = it_sub_ctl(rc, TOPIC, NULL);
	IT_CHECK(ctl, "no ctl mapping");
	for (i = 0; i < RC_SUB_SLOTS; i++)
		if (atomic_load_explicit(&ctl->subs[i].state, memory_order_relaxed) == RC_SUB_FREE)
			break;
	IT_CHECK(i < RC_SUB_SLOTS, "no free slot to forge");
	s = &ctl->subs[i];
	atomic_store_explicit(&s->client_id, c->victim_id, memory_order_relaxed);
	atomic_store_explicit(&s->pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&s->uid, OTHER_ID, memory_order_relaxed);
	atomic_store_explicit(&s->bell, 4000, memory_order_relaxed); /* a doorbell nobody has */
	atomic_store_explicit(&s->state, RC_SUB_TETHERED, memory_order_relaxed);
	atomic_store(&c->stage, 1);
	while (atomic_load(&c->stage) < 2)
		it_sleep_ms(2);
	/* HELLO with RESUME as the victim, on the forged slot's doorbell. */
	it_resume_as(rc, c->victim_id, 4000);
	c->got_id = ringcast_client_id(rc);
	atomic_store(&c->stage, 3);
	ringcast_close(rc);
	return 0;
}

static void test_identity_is_resumed_only_by_its_owner(void **state)
{
	struct it_daemon *d = *state;
	struct forger_cfg *cfg = it_shared(sizeof(*cfg));
	struct it_inbox box = { 0 };
	struct ringcast *victim, *pub;
	pid_t pid;

	it_require_root("running the forger as uid 12345");
	start_open_daemon(d, "--reap-grace", "10000");
	victim = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(victim, TOPIC));
	cfg->sock = d->sock;
	cfg->victim_id = ringcast_client_id(victim);
	pid = it_fork(forge_identity, cfg);
	while (atomic_load(&cfg->stage) < 1)
		it_sleep_ms(2);
	it_daemon_kill(d);
	it_daemon_restart(d);
	/* The victim makes no call yet: its identity is an orphan now. */
	atomic_store(&cfg->stage, 2);
	it_expect_exit(pid, 10000, 0, "the forger");
	IT_ASSERT(cfg->got_id != cfg->victim_id,
		  "uid 12345 resumed client %u, the victim's identity, by forging a slot",
		  cfg->victim_id);
	/* The victim still comes back as itself, and loses nothing. */
	pub = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "still me", 8));
	IT_ASSERT(it_inbox_fill(victim, &box, 1, 5000) == 1 && box.m[0].lost == 0,
		  "the victim got %d messages", box.n);
	IT_ASSERT(ringcast_client_id(victim) == cfg->victim_id, "the victim is client %u, was %u",
		  ringcast_client_id(victim), cfg->victim_id);
	it_close(pub);
	it_close(victim);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

/* ---- the files cannot be cut, grown or upgraded ---- */

/* Every way a holder of fd could change the file's size or get write access: all refused. */
static void check_sealed(int fd, const char *what, bool writable)
{
	char path[64];
	struct stat st;
	int again;

	IT_CHECK(fstat(fd, &st) == 0, "fstat %s: %s", what, strerror(errno));
	IT_CHECK(ftruncate(fd, 0) < 0 && errno == (writable ? EPERM : EINVAL),
		 "ftruncate of the %s to 0: %s", what, errno ? strerror(errno) : "it worked");
	IT_CHECK(ftruncate(fd, st.st_size * 2) < 0, "ftruncate of the %s to twice its size worked",
		 what);
	IT_CHECK(fallocate(fd, 0, st.st_size, 1 << 20) < 0 &&
		 errno == (writable ? EPERM : EBADF),
		 "fallocate past the end of the %s: %s", what, errno ? strerror(errno) : "it worked");
	IT_CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM,
		 "a seal added to the %s: %s", what, errno ? strerror(errno) : "it worked");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	again = open(path, O_RDWR | O_CLOEXEC);
	IT_CHECK(again < 0 && errno == EACCES, "the %s opened again read-write through %s: %s",
		 what, path, again >= 0 ? "it worked" : strerror(errno));
	printf("  %-9s cut, grown, sealed, reopened writable: all refused\n", what);
}

/*
 * As uid 12345 with every fd a client gets (HELLO's node, bells and life
 * fds, a subscriber's ring and ctl fds, a publisher's ring fd): no
 * truncation (which made every other mapper fault with SIGBUS), no
 * growth (which filled the runtime directory's tmpfs), no way to a
 * writable descriptor.  Punching a hole only zeroes: the victim keeps
 * reading, and gets its messages.
 */
static int cut_files(void *p)
{
	struct hostile_cfg *c = p;
	struct rc_msg m = { .type = RC_MSG_HELLO, .req = 1 };
	int sock, hello[3], sub[2], pub[2], n, i;

	become_other_user();
	IT_CHECK_OK(it_raw_connect(c->sock, &sock));
	IT_CHECK(it_raw_request(sock, &m, NULL, hello, 3, &n) == RC_MSG_HELLO_OK && n == 3,
		 "HELLO: %d fds", n);
	m = (struct rc_msg){ .type = RC_MSG_SUBSCRIBE, .req = 2,
			     .topic = { .topic = TOPIC, .topic_len = sizeof(TOPIC) - 1 } };
	IT_CHECK(it_raw_request(sock, &m, NULL, sub, 2, &n) == RC_MSG_SUB_OK && n == 2,
		 "SUBSCRIBE: %d fds", n);
	m = (struct rc_msg){ .type = RC_MSG_PUB_OPEN, .req = 3,
			     .topic = { .topic = TOPIC, .topic_len = sizeof(TOPIC) - 1 } };
	IT_CHECK(it_raw_request(sock, &m, NULL, pub, 2, &n) == RC_MSG_PUB_OK && n == 2,
		 "PUB_OPEN: %d fds", n);
	check_sealed(hello[0], "node", false);
	check_sealed(hello[1], "bells", true);
	check_sealed(sub[0], "ring (ro)", false);
	check_sealed(sub[1], "ctl", true);
	check_sealed(pub[0], "ring", true);
	/* A hole punched in the ring's records: zeroes, never a fault for its readers. */
	IT_CHECK(fallocate(pub[0], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, RC_RING_HDR_SIZE,
			   1 << 16) == 0, "punch: %s", strerror(errno));
	for (i = 0; i < 3; i++)
		close(hello[i]);
	for (i = 0; i < 2; i++) {
		close(sub[i]);
		close(pub[i]);
	}
	close(sock);
	return 0;
}

static void test_files_cannot_be_cut(void **state)
{
	struct it_daemon *d = *state;
	struct hostile_cfg cfg = { d->sock, d->rundir };
	struct it_inbox box = { 0 };
	struct ringcast *victim, *pub;

	it_require_root("running the hostile client as uid 12345");
	start_open_daemon(d, NULL, NULL);
	victim = it_open(d);
	pub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(victim, TOPIC));
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "before", 6));
	IT_ASSERT(it_inbox_fill(victim, &box, 1, 2000) == 1, "no message before the attack");
	it_expect_exit(it_fork(cut_files, &cfg), 10000, 0, "hostile client as uid 12345");
	/* The victim and the daemon are alive, and messages flow. */
	for (int i = 0; i < 100; i++)
		IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "after", 5));
	IT_ASSERT(it_inbox_fill(victim, &box, 101, 5000) == 101, "%d of 100 messages after the "
		  "attack", box.n - 1);
	for (int i = 0; i < box.n; i++)
		IT_ASSERT(box.m[i].lost == 0, "message %d: %llu lost", i,
			  (unsigned long long)box.m[i].lost);
	it_assert_daemon_alive(d);
	it_close(victim);
	it_close(pub);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_files_cannot_be_cut, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_forged_slots_lock_nobody_out, it_setup,
						it_teardown),
		cmocka_unit_test_setup_teardown(test_node_state_is_the_daemons, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_without_resume_reports_lost, it_setup,
						it_teardown),
		cmocka_unit_test_setup_teardown(test_subscriber_starts_where_the_daemon_says, it_setup,
						it_teardown),
		cmocka_unit_test_setup_teardown(test_identity_is_resumed_only_by_its_owner, it_setup,
						it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_trust", tests, NULL, NULL);
}
