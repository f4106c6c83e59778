// SPDX-License-Identifier: MIT
/*
 * it_sigbus: a page cut out of a shared file never takes the daemon down
 * (docs/operations.md, "What one user can take"; issue 17 item 10).
 *
 * A publisher holds its ring's fd read-write.  It can fill the runtime
 * directory's tmpfs by allocating past the end of that file (fallocate
 * with FALLOC_FL_KEEP_SIZE: the ring's size stays right), then punch a
 * page out of the ring.  The next process to touch that page needs a new
 * one, tmpfs has none, and the kernel sends SIGBUS.  The daemon used to
 * try to restore the page, fail, and die, and then die again at every
 * start on the same page.  Each test mounts its own small tmpfs as the
 * runtime directory (root only) and plays the publisher as uid 12345:
 *
 *  - a page under a claim its publisher left open: the daemon's crash
 *    repair touches it; the daemon lives, retires the topic (logged;
 *    SUBSCRIBE, PUB_OPEN and STAT get -EIO), and the other topics go on;
 *  - a ring's first page while no daemon runs: the next daemon starts,
 *    does not adopt that ring (logged), and starts again on the same
 *    directory;
 *  - the bells file's first page: a new client's HELLO gets -EIO instead
 *    of a dead daemon, and the next daemon replaces the file.
 *
 * The daemon's log goes to a file in the test directory, off the tmpfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "proto.h"
#include "ring_format.h"

#define OTHER_ID 12345
#define LOG_WAIT_MS 10000 /* a generous bound for a line the daemon logs within a tick */

static const char open_conf[] =
	"# it_sigbus: victim.* is anyone's to publish and read.\n"
	"[topic \"victim.*\"]\n"
	"publish = *\n"
	"subscribe = *\n";

struct attack {
	const char *sock;
	const char *topic;
	atomic_int ready;  /* the attacker holds the ring's fd */
	atomic_int go;     /* the test lets it punch */
	atomic_int filled; /* the directory is full and the page is gone */
	atomic_int free_some; /* the test asks it to give space back */
	atomic_int freed;
};

static void become_other_user(void)
{
	it_become(OTHER_ID, OTHER_ID, NULL, 0);
}

/*
 * The ring fd a publisher gets for topic, as a publisher would keep it.
 * Through a second connection of ours: the daemon answers a PUB_OPEN
 * repeated on one connection without fds.
 */
static uint32_t publishers(struct ringcast *rc, const char *topic)
{
	struct ringcast_topic_stat *st = NULL;
	size_t n = 0;
	uint32_t p;

	IT_CHECK_OK(ringcast_stat(rc, topic, &st, &n));
	p = n ? st[0].publishers : 0;
	ringcast_stat_free(st, n);
	return p;
}

static int ring_fd_of(struct ringcast *rc, const char *topic)
{
	struct rc_msg req = { .type = RC_MSG_PUB_OPEN }, rep;
	struct ringcast *rc2 = it_child_open(rc->path);
	int fds[2] = { -1, -1 }, nfds = 2;
	uint32_t before = publishers(rc, topic);
	uint64_t deadline;

	req.topic.topic = topic;
	req.topic.topic_len = (uint16_t)strlen(topic);
	IT_CHECK_OK(rc_client_request(rc2, &req, &rep, fds, &nfds));
	ringcast_close(rc2); /* the fd outlives the connection */
	/*
	 * Wait until the daemon has seen it close: it then forgets its record
	 * of rc2, which gives a page back, and that must not happen after the
	 * caller filled the directory.
	 */
	deadline = it_now_ns() + 5000000000ull;
	while (publishers(rc, topic) > before && it_now_ns() < deadline)
		it_sleep_ms(2);
	IT_CHECK(publishers(rc, topic) == before, "the second connection's slot stayed");
	IT_CHECK(rep.type == RC_MSG_PUB_OK && nfds == 2, "PUB_OPEN %s: reply %d, %d fds", topic,
		 rep.type, nfds);
	close(fds[1]);
	return fds[0];
}

/*
 * Allocate past the end of fd from *at until the file system is full; the
 * file's size does not change.  Chunks shrink to a page, so nothing is left.
 */
static void fill(int fd, off_t *at)
{
	static const off_t chunk[] = { 1 << 20, 64 << 10, 4096 };

	for (size_t i = 0; i < sizeof(chunk) / sizeof(chunk[0]); i++)
		while (fallocate(fd, FALLOC_FL_KEEP_SIZE, *at, chunk[i]) == 0)
			*at += chunk[i];
	IT_CHECK(errno == ENOSPC, "fallocate past the end: %s", strerror(errno));
}

/* Punch the page at off out of fd, then take back the space that freed. */
static void punch(int fd, off_t off, off_t *at)
{
	IT_CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, 4096) == 0,
		 "punch: %s", strerror(errno));
	fill(fd, at);
}

static off_t end_of(int fd)
{
	struct stat st;

	IT_CHECK(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
	return st.st_size + (1 << 20); /* leave a gap: nothing of ours is there */
}

/*
 * Claim a message and never commit it: the daemon repairs the claim when
 * the connection closes.  Before that, the page under the claim is gone
 * and the directory full.  Exits without ringcast_close(), which would
 * abort the claim and touch the page itself.
 */
static int claim_and_vanish(void *p)
{
	struct attack *a = p;
	struct ringcast_claim claim;
	struct ringcast *rc;
	struct rc_topic *t;
	off_t at, off;
	int fd;

	become_other_user();
	rc = it_child_open(a->sock);
	IT_CHECK_OK(ringcast_claim(rc, a->topic, 100, &claim));
	t = rc_topic_get(rc, a->topic, strlen(a->topic), false);
	IT_CHECK(t && t->pub.hdr, "no mapping of %s", a->topic);
	off = ((const char *)claim.data - (const char *)t->pub.hdr) & ~(off_t)4095;
	fd = ring_fd_of(rc, a->topic);
	at = end_of(fd);
	fill(fd, &at);
	punch(fd, off, &at);
	printf("  uid %d: the runtime directory is full, the page at %lld of %s's ring is gone; "
	       "exiting with the claim open\n", OTHER_ID, (long long)off, a->topic);
	return 0;
}

/*
 * Make topic's ring, wait for the test to stop the daemon, then fill the
 * directory and punch out the ring's first page (its header).  Gives
 * space back when told, so clients can connect again.
 */
static int punch_header_while_down(void *p)
{
	struct attack *a = p;
	struct ringcast *rc;
	off_t at, start;
	int fd;

	become_other_user();
	rc = it_child_open(a->sock);
	IT_CHECK_OK(ringcast_broadcast(rc, a->topic, "y", 1));
	fd = ring_fd_of(rc, a->topic);
	atomic_store(&a->ready, 1);
	while (!atomic_load(&a->go))
		it_sleep_ms(1);
	start = at = end_of(fd);
	fill(fd, &at);
	punch(fd, 0, &at);
	atomic_store(&a->filled, 1);
	while (!atomic_load(&a->free_some))
		it_sleep_ms(1);
	IT_CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, at - start) == 0,
		 "give the space back: %s", strerror(errno));
	atomic_store(&a->freed, 1);
	for (;;) /* holds the file until the test ends */
		pause();
}

/*
 * Fill the directory, then punch the bells file's first page through our
 * own mapping of it.  Stays connected: the daemon would forget our record
 * as we leave, and that gives a page back.  Gives its space back when
 * told.
 */
static int punch_bells(void *p)
{
	struct attack *a = p;
	struct ringcast *rc;
	off_t at, start;
	int fd;

	become_other_user();
	rc = it_child_open(a->sock);
	IT_CHECK_OK(ringcast_broadcast(rc, a->topic, "z", 1));
	fd = ring_fd_of(rc, a->topic);
	start = at = end_of(fd);
	fill(fd, &at);
	/* The bells are ours read-write: MADV_REMOVE punches the file, as fallocate does. */
	IT_CHECK(madvise(rc->bells, 4096, MADV_REMOVE) == 0, "MADV_REMOVE: %s", strerror(errno));
	fill(fd, &at);
	printf("  uid %d: the runtime directory is full, the bells file's first page is gone\n",
	       OTHER_ID);
	atomic_store(&a->filled, 1);
	/* Never touching the bells again: that page would kill us. */
	while (!atomic_load(&a->free_some))
		it_sleep_ms(1);
	IT_CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, at - start) == 0,
		 "give the space back: %s", strerror(errno));
	atomic_store(&a->freed, 1);
	for (;;)
		pause();
}

static void set_flags(struct it_daemon *d, char *conf, size_t len)
{
	it_write_conf(d, "open.conf", open_conf, conf, len);
	d->nargs = 0;
	d->args[d->nargs++] = "--config";
	d->args[d->nargs++] = conf;
	d->args[d->nargs++] = "--capacity";
	d->args[d->nargs++] = "64k";
	/* uid 12345 must reach the daemon: the default socket is 0660. */
	d->args[d->nargs++] = "--socket-mode";
	d->args[d->nargs++] = "0666";
}

/* Spawn the daemon with its stderr appended to DIR/daemon.log. */
static void spawn_logged(struct it_daemon *d, char *log, size_t len)
{
	int fd, saved;

	snprintf(log, len, "%s/daemon.log", d->dir);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	IT_ASSERT(fd >= 0, "%s: %s", log, strerror(errno));
	fflush(stderr);
	saved = dup(2);
	IT_ASSERT(saved >= 0 && dup2(fd, 2) == 2, "dup2: %s", strerror(errno));
	it_daemon_spawn(d);
	dup2(saved, 2);
	close(saved);
	close(fd);
}

static void start_logged(struct it_daemon *d, char *log, size_t len)
{
	char why[64];

	spawn_logged(d, log, len);
	if (!it_daemon_wait_ready(d, IT_START_TIMEOUT_MS))
		IT_FAIL("ringcastd did not start: %s (log: %s)",
			d->pid ? "no answer" : it_status_str(d->last_status, why, sizeof(why)), log);
}

/* Wait until the log holds needle (or the daemon ended); print and return the line. */
static bool wait_log(struct it_daemon *d, const char *log, const char *needle)
{
	uint64_t deadline = it_now_ns() + (uint64_t)LOG_WAIT_MS * 1000000ull;

	do {
		int fd = open(log, O_RDONLY | O_CLOEXEC);
		char *all = fd >= 0 ? it_read_all(fd, 100, NULL) : NULL;
		char *hit = all ? strstr(all, needle) : NULL;

		if (fd >= 0)
			close(fd);
		if (hit) {
			char *eol = strchr(hit, '\n');

			while (hit > all && hit[-1] != '\n')
				hit--;
			printf("  log: %.*s\n", eol ? (int)(eol - hit) : (int)strlen(hit), hit);
			free(all);
			return true;
		}
		if ((d->pid > 0 && !it_daemon_alive(d)) || it_now_ns() >= deadline) {
			printf("  no '%s' in the daemon's log:\n%s", needle, all ? all : "");
			free(all);
			return false;
		}
		free(all);
		it_sleep_ms(10);
	} while (true);
}

static void assert_alive(struct it_daemon *d, const char *when)
{
	char why[64];

	IT_ASSERT(it_daemon_alive(d), "ringcastd %s %s", when,
		  it_status_str(d->last_status, why, sizeof(why)));
}

static bool has_topic(struct ringcast *rc, const char *name)
{
	struct ringcast_topic_stat *st = NULL;
	bool found = false;
	size_t n = 0;

	IT_ASSERT_OK(ringcast_stat(rc, NULL, &st, &n));
	for (size_t i = 0; i < n; i++)
		found |= !strcmp(st[i].topic, name);
	ringcast_stat_free(st, n);
	return found;
}

static void wait_flag(atomic_int *flag, const char *what)
{
	for (int i = 0; i < 1000 && !atomic_load(flag); i++)
		it_sleep_ms(10);
	IT_ASSERT(atomic_load(flag), "the attacker did not %s", what);
}

static void test_lost_page_under_repair(void **state)
{
	struct it_daemon *d = *state;
	struct attack *a = it_shared(sizeof(*a));
	struct ringcast_topic_stat *st = NULL;
	struct it_inbox box = { 0 };
	char conf[160], log[160];
	struct ringcast *root;
	size_t n;

	/* Bells, node, key and two topics of 64 KiB fit; the attacker takes the rest. */
	it_mount_rundir(d, "size=1m,mode=0755");
	set_flags(d, conf, sizeof(conf));
	start_logged(d, log, sizeof(log));
	/* Connected before the directory is full: a HELLO writes a record there. */
	root = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(root, "other.x"));
	IT_ASSERT_OK(ringcast_broadcast(root, "other.x", "before", 6));
	IT_ASSERT(it_inbox_fill(root, &box, 1, 2000) == 1, "other.x: %d messages", box.n);

	/*
	 * The daemon repairs the claim as the connection closes, before it
	 * forgets the client's record (which gives a page back).
	 */
	*a = (struct attack){ .sock = d->sock, .topic = "victim.x" };
	it_expect_exit(it_fork(claim_and_vanish, a), 10000, 0, "uid 12345 punching a claimed page");
	IT_ASSERT(wait_log(d, log, "retired topic 'victim.x'"),
		  "ringcastd did not retire victim.x (see %s)", log);
	assert_alive(d, "after repairing a claim on a page it could not restore:");

	/* Not served, not reported; asked by name, it says why. */
	IT_ASSERT_ERR(ringcast_subscribe(root, "victim.x"), -EIO);
	IT_ASSERT_ERR(ringcast_broadcast(root, "victim.x", "x", 1), -EIO);
	IT_ASSERT(!has_topic(root, "victim.x"), "stat still shows victim.x");
	IT_ASSERT_ERR(ringcast_stat(root, "victim.x", &st, &n), -EIO);
	/* The rest of the node goes on. */
	IT_ASSERT_OK(ringcast_broadcast(root, "other.x", "after", 5));
	box.n = 0;
	IT_ASSERT(it_inbox_fill(root, &box, 1, 2000) == 1 && !memcmp(box.m[0].data, "after", 5),
		  "other.x: %d messages after the retirement", box.n);
	it_close(root);
	assert_alive(d, "after the checks:");

	/* Its files are gone, so the next daemon starts clean on this directory. */
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	start_logged(d, log, sizeof(log));
	root = it_open(d);
	IT_ASSERT(has_topic(root, "other.x") && !has_topic(root, "victim.x"),
		  "after the restart: other.x adopted, victim.x not");
	IT_ASSERT_OK(ringcast_broadcast(root, "victim.x", "new", 3)); /* a fresh ring */
	it_close(root);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

static void test_lost_header_at_start(void **state)
{
	struct it_daemon *d = *state;
	struct attack *a = it_shared(sizeof(*a));
	char conf[160], log[160];
	struct ringcast *root;
	pid_t attacker;

	it_mount_rundir(d, "size=1m,mode=0755");
	set_flags(d, conf, sizeof(conf));
	start_logged(d, log, sizeof(log));
	root = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(root, "other.y", "kept", 4));
	it_close(root);
	*a = (struct attack){ .sock = d->sock, .topic = "victim.y" };
	attacker = it_fork(punch_header_while_down, a);
	wait_flag(&a->ready, "open victim.y");
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");

	/* While no daemon runs, as clients go on doing: the header page goes. */
	atomic_store(&a->go, 1);
	wait_flag(&a->filled, "fill the directory");

	/* The next daemon faults on it while adopting, and carries on. */
	spawn_logged(d, log, sizeof(log));
	IT_ASSERT(wait_log(d, log, "a page of its files is gone"),
		  "ringcastd did not say it could not adopt victim.y's ring (see %s)", log);
	assert_alive(d, "adopting a ring whose header page it could not restore:");
	/* A HELLO needs room for its record: the attacker gives some back. */
	atomic_store(&a->free_some, 1);
	wait_flag(&a->freed, "give the space back");
	IT_ASSERT(it_daemon_wait_ready(d, IT_START_TIMEOUT_MS), "ringcastd does not answer");
	root = it_open(d);
	IT_ASSERT(has_topic(root, "other.y") && !has_topic(root, "victim.y"),
		  "other.y should be adopted, victim.y not");
	it_close(root);

	/* And again on the same directory, the hole still there. */
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	start_logged(d, log, sizeof(log));
	root = it_open(d);
	IT_ASSERT(has_topic(root, "other.y"), "other.y lost at the second restart");
	it_close(root);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	it_kill(attacker);
}

static void test_lost_bells_page(void **state)
{
	struct it_daemon *d = *state;
	struct attack *a = it_shared(sizeof(*a));
	char conf[160], log[160], why[64];
	struct ringcast *rc = NULL;
	pid_t attacker;
	int st;

	it_mount_rundir(d, "size=1m,mode=0755");
	set_flags(d, conf, sizeof(conf));
	start_logged(d, log, sizeof(log));
	*a = (struct attack){ .sock = d->sock, .topic = "victim.z" };
	attacker = it_fork(punch_bells, a);
	wait_flag(&a->filled, "fill the directory");

	/* A new client: the daemon reads the bells header for it, and cannot. */
	IT_ASSERT_ERR(ringcast_open(&rc, d->sock), -EIO);
	IT_ASSERT(wait_log(d, log, "bells is gone"), "ringcastd did not log the lost bells page "
		  "(see %s)", log);
	assert_alive(d, "after losing the bells file's first page:");
	IT_ASSERT_ERR(ringcast_open(&rc, d->sock), -EIO);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");

	/*
	 * The next daemon faults on the same page as it checks the file, and
	 * would replace it; on the full directory it cannot, and says so.
	 */
	spawn_logged(d, log, sizeof(log));
	IT_ASSERT(it_wait(d->pid, 10000, &st) == 0, "ringcastd runs on bells it cannot use");
	d->pid = 0;
	printf("  restart on the full directory: ringcastd %s\n",
	       it_status_str(st, why, sizeof(why)));
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) != 0, "ringcastd %s", why);
	IT_ASSERT(wait_log(d, log, "bells: No space left"), "no reason given (see %s)", log);

	/* With room again, it makes new bells and serves. */
	atomic_store(&a->free_some, 1);
	wait_flag(&a->freed, "give the space back");
	start_logged(d, log, sizeof(log));
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(rc, "victim.z", "again", 5));
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	it_kill(attacker);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lost_page_under_repair, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_lost_header_at_start, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_lost_bells_page, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_sigbus", tests, NULL, NULL);
}
