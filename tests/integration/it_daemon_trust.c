/* SPDX-License-Identifier: MIT */
/*
 * it_daemon_trust: ringcastd against a hostile local user
 * (docs/operations.md, "Security").  The attacker is a helper forked by
 * the test that drops to uid/gid 12345 (root only; the tests skip with a
 * reason otherwise), so the kernel's permission checks and SO_PEERCRED
 * see what a real other user would be.
 *
 *  - who gets in: a peer no ACL list names gets ERROR EACCES at HELLO and
 *    no fd; the default socket is closed to users outside its group;
 *  - which files the daemon trusts: it will not run in a runtime directory
 *    that is not its own, adopts nothing from it (its files are sealed
 *    memfds its keeper holds), and talks only to a keeper of its own uid;
 *  - its lock: no other user can take it, so none can keep the daemon
 *    from starting again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
/*
 * The wire format (docs/protocol.md) and the file format
 * (docs/ring-format.md), as a hostile user reads them from the docs.
 */
#include "../../lib/proto.h"
#include "../../lib/ring_format.h"

#define STRANGER 12345      /* the attacker's uid and gid */
#define TEAMMATE 12346      /* a uid one [topic] rule names */
#define CREW_GID 4242       /* a group one [topic] rule names */

/* Become uid/gid STRANGER (or uid), with exactly the supplementary groups given. */
static void become(uid_t uid, const gid_t *groups, size_t ngroups)
{
	it_become(uid, STRANGER, groups, ngroups);
}

/*
 * Say HELLO on a fresh connection as a bare client would.  Returns the
 * reply's type (its err in *err for an ERROR) and how many fds came with
 * it in *nfds (closed here), or a negative errno.
 */
static int raw_hello(const char *sock, int *err, int *nfds)
{
	struct rc_msg m = { .type = RC_MSG_HELLO, .req = 1 };
	int fds[8], fd, ret;

	*err = 0;
	*nfds = 0;
	ret = it_raw_connect(sock, &fd);
	if (ret == 0)
		ret = it_raw_request(fd, &m, err, fds, 8, nfds);
	for (int i = 0; i < *nfds; i++)
		close(fds[i]);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ---- who gets in ---- */

static const char rules_conf[] =
	"# it_daemon_trust: two rules that each name one outsider.\n"
	"[topic \"team.*\"]\n"
	"subscribe = uid:12346\n"
	"\n"
	"[topic \"crew.*\"]\n"
	"publish = gid:4242\n"
	"\n"
	"[topic \"closed.*\"]\n"
	"publish =\n"
	"subscribe =\n";

#define NO_GROUP ((gid_t)-1)

struct hello_case {
	const char *sock;
	uid_t uid;
	gid_t group; /* one supplementary group, or NO_GROUP */
	int want_type, want_err;
};

static int hello_as(void *p)
{
	struct hello_case *c = p;
	struct ringcast *rc = NULL;
	int type, err, nfds, ret;

	become(c->uid, &c->group, c->group != NO_GROUP);
	type = raw_hello(c->sock, &err, &nfds);
	IT_CHECK(type == c->want_type && err == c->want_err,
		 "uid %u (group %d): HELLO got type %d err %d (%s), expected type %d err %d",
		 (unsigned)c->uid, (int)c->group, type, err, strerror(err), c->want_type,
		 c->want_err);
	if (c->want_type == RC_MSG_ERROR) {
		IT_CHECK(nfds == 0, "uid %u was refused but given %d fds", (unsigned)c->uid, nfds);
		/* The library says the same to its caller. */
		ret = ringcast_open(&rc, c->sock);
		IT_CHECK(ret == -c->want_err, "ringcast_open as uid %u = %d (%s), expected -%d",
			 (unsigned)c->uid, ret, ringcast_strerror(ret), c->want_err);
	} else {
		IT_CHECK(nfds == 3, "uid %u was let in with %d fds, expected 3", (unsigned)c->uid,
			 nfds);
	}
	return 0;
}

/*
 * A user that no publish or subscribe list names (not in a [topic] rule,
 * not in the defaults) may use no topic, and gets nothing at all: HELLO
 * is answered ERROR EACCES, with none of the node's files.  Users that a
 * single rule names, by uid or by a supplementary group, still get in.
 * The socket is 0666 here, so that it is the HELLO check that is tested.
 */
static void test_stranger_gets_nothing(void **state)
{
	struct it_daemon *d = *state;
	static char conf[160];
	struct hello_case stranger = { d->sock, STRANGER, NO_GROUP, RC_MSG_ERROR,
					    EACCES };
	struct hello_case teammate = { d->sock, TEAMMATE, NO_GROUP, RC_MSG_HELLO_OK, 0 };
	struct hello_case crew = { d->sock, STRANGER, CREW_GID, RC_MSG_HELLO_OK, 0 };
	struct ringcast *rc;

	it_require_root("switching a client to uid 12345");
	it_write_conf(d, "rules.conf", rules_conf, conf, sizeof(conf));
	it_daemon_start(d, "--config", conf, "--socket-mode", "0666", NULL);

	it_expect_exit(it_fork(hello_as, &stranger), 10000, 0, "HELLO as a user no list names");
	it_expect_exit(it_fork(hello_as, &teammate), 10000, 0, "HELLO as a user a rule names");
	it_expect_exit(it_fork(hello_as, &crew), 10000, 0, "HELLO as a member of a named group");

	/* Root is let in, and the daemon serves on. */
	it_assert_daemon_alive(d);
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "other.x"));
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

struct connect_case {
	const char *sock;
	gid_t group; /* one supplementary group, or NO_GROUP */
	int want;    /* connect()'s result: 0 or -errno */
};

static int connect_as(void *p)
{
	struct connect_case *c = p;
	int fd, ret;

	become(STRANGER, &c->group, c->group != NO_GROUP);
	ret = it_raw_connect(c->sock, &fd);
	if (fd >= 0)
		close(fd);
	IT_CHECK(ret == c->want, "uid %d (group %d): connect %s = %d (%s), expected %d (%s)",
		 STRANGER, (int)c->group, c->sock, ret, strerror(-ret), c->want,
		 strerror(-c->want));
	return 0;
}

/*
 * By default the socket is 0660 and its group is "ringcast" when that
 * group exists, else the daemon's own: a user outside the group cannot
 * even connect, and one inside it can.
 */
static void test_socket_closed_to_others(void **state)
{
	struct it_daemon *d = *state;
	struct group *gr = getgrnam("ringcast");
	struct connect_case outsider = { d->sock, NO_GROUP, -EACCES };
	struct connect_case member = { d->sock, NO_GROUP, 0 };
	struct stat st;

	it_require_root("switching a client to uid 12345");
	it_daemon_start(d, NULL);
	IT_ASSERT(lstat(d->sock, &st) == 0, "lstat %s: %s", d->sock, strerror(errno));
	IT_ASSERT((st.st_mode & 07777) == 0660, "the socket is mode %04o, expected 0660",
		  (unsigned)(st.st_mode & 07777));
	IT_ASSERT(st.st_gid == (gr ? gr->gr_gid : getegid()),
		  "the socket's group is %u, expected %u (%s)", (unsigned)st.st_gid,
		  (unsigned)(gr ? gr->gr_gid : getegid()), gr ? "ringcast" : "the daemon's own");
	printf("  socket %04o, group %u (%s)\n", (unsigned)(st.st_mode & 07777),
	       (unsigned)st.st_gid, gr ? "ringcast" : "no group ringcast: the daemon's");

	it_expect_exit(it_fork(connect_as, &outsider), 10000, 0, "connect outside the group");
	member.group = st.st_gid;
	it_expect_exit(it_fork(connect_as, &member), 10000, 0, "connect inside the group");
	it_assert_daemon_alive(d);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

/* ---- which files the daemon trusts ---- */

/*
 * Start ringcastd on rundir, which it must refuse: exit 1 within 5 s, with
 * a message that names rundir and says what is wrong (contains want).
 */
static void expect_refusal(struct it_daemon *d, const char *rundir, const char *want)
{
	char path[300], sock[160], why[64], *err;
	char *argv[] = { path, "--socket", sock, "--runtime-dir", (char *)rundir, "--node",
			 "refused", NULL };
	int err_fd, st;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/ringcastd", d->build);
	snprintf(sock, sizeof(sock), "%s/refused.sock", d->dir);
	pid = it_spawn(argv, NULL, NULL, &err_fd);
	if (it_wait(pid, 5000, &st) == -ETIMEDOUT) {
		it_kill(pid);
		close(err_fd);
		IT_FAIL("ringcastd ran on runtime dir %s (expected a refusal: %s)", rundir, want);
	}
	err = it_read_all(err_fd, 1000, NULL);
	close(err_fd);
	printf("  %s: %s", rundir + strlen(d->dir), err);
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1, "ringcastd on %s %s, expected exit 1:\n%s",
		  rundir, it_status_str(st, why, sizeof(why)), err);
	IT_ASSERT(strstr(err, rundir) && strstr(err, want),
		  "the refusal does not name %s and say '%s':\n%s", rundir, want, err);
	free(err);
}

struct plant_dirs {
	char shared[160]; /* 1777, like /tmp */
	char own[200];    /* the stranger's directory in it */
	char link[200];   /* the stranger's symlink to its own directory */
};

static int plant_dirs(void *p)
{
	struct plant_dirs *c = p;

	become(STRANGER, NULL, 0);
	IT_CHECK(mkdir(c->own, 0755) == 0, "mkdir %s: %s", c->own, strerror(errno));
	IT_CHECK(symlink(c->own, c->link) == 0, "symlink %s: %s", c->link, strerror(errno));
	return 0;
}

/*
 * A runtime directory another user made, or reaches through a symlink,
 * or may write to, could hold files of theirs for the daemon to adopt:
 * the daemon refuses to start there and says why.  One it makes itself
 * is 0755 (even under umask 0), and its files in it 0600.
 */
static void test_rundir_must_be_the_daemons(void **state)
{
	struct it_daemon *d = *state;
	struct plant_dirs dirs;
	char open_dir[160], sticky[160], path[300];
	const char *const files[] = { "keeper.sock", "ringcastd.lock", "topic.key", "clients" };
	struct stat st;
	mode_t old;

	it_require_root("creating directories as uid 12345");
	it_require_root_daemon("its refused daemons run as the test's root, and it expects uid 0 to own what the daemon makes");
	snprintf(dirs.shared, sizeof(dirs.shared), "%s/shared", d->dir);
	snprintf(dirs.own, sizeof(dirs.own), "%s/run-of-12345", dirs.shared);
	snprintf(dirs.link, sizeof(dirs.link), "%s/run-link", dirs.shared);
	IT_ASSERT(mkdir(dirs.shared, 0755) == 0 && chmod(dirs.shared, 01777) == 0, "mkdir %s: %s",
		  dirs.shared, strerror(errno));
	it_expect_exit(it_fork(plant_dirs, &dirs), 10000, 0, "uid 12345 making its directories");
	snprintf(open_dir, sizeof(open_dir), "%s/run-0777", d->dir);
	snprintf(sticky, sizeof(sticky), "%s/run-1777", d->dir);
	IT_ASSERT(mkdir(open_dir, 0755) == 0 && chmod(open_dir, 0777) == 0, "mkdir %s: %s",
		  open_dir, strerror(errno));
	IT_ASSERT(mkdir(sticky, 0755) == 0 && chmod(sticky, 01777) == 0, "mkdir %s: %s", sticky,
		  strerror(errno));

	expect_refusal(d, dirs.own, "owned by uid 12345");
	expect_refusal(d, dirs.link, "symbolic link");
	expect_refusal(d, open_dir, "mode 0777");
	expect_refusal(d, sticky, "mode 1777");
	/* Nothing was made in the directories it refused. */
	snprintf(path, sizeof(path), "%s/keeper.sock", dirs.own);
	IT_ASSERT(access(path, F_OK) < 0, "the daemon made %s in a directory it refused", path);

	/* A directory it makes itself is its own, closed to writers, under any umask. */
	snprintf(d->rundir, sizeof(d->rundir), "%s/made/run", d->dir);
	old = umask(0);
	it_daemon_start(d, NULL);
	umask(old);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s%s", d->rundir, i ? "" : "/..");
		IT_ASSERT(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
		IT_ASSERT(st.st_uid == 0 && (st.st_mode & 07777) == 0755, "%s: uid %u mode %04o",
			  path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", d->rundir, files[i]);
		IT_ASSERT(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
		IT_ASSERT(st.st_uid == 0 && (st.st_mode & 077) == 0, "%s: uid %u mode %04o", path,
			  (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	}
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

#define PLANTED "planted"

/* Files the other user plants under the names the daemon's files once had. */
static int plant_files(void *p)
{
	const char *rundir = p;
	static const char *const names[] = { "0123456789abcdef.ring", "0123456789abcdef.ctl",
					     "node", "bells" };
	char page[4096];
	size_t i;
	int dirfd, ring_fd, ctl_fd;

	become(STRANGER, NULL, 0);
	dirfd = open(rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	IT_CHECK(dirfd >= 0, "open %s: %s", rundir, strerror(errno));
	/* A real ring header of its own making for topic PLANTED. */
	IT_CHECK_OK(it_ring_create("x", PLANTED, RC_CAPACITY_MIN, 0x0123456789abcdefull, 5000,
				   &ring_fd, &ctl_fd));
	IT_CHECK(pread(ring_fd, page, sizeof(page), 0) == (ssize_t)sizeof(page), "pread");
	for (i = 0; i < 4; i++) {
		int fd = openat(dirfd, names[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		IT_CHECK(fd >= 0, "create %s: %s", names[i], strerror(errno));
		IT_CHECK(write(fd, page, sizeof(page)) == (ssize_t)sizeof(page), "write %s", names[i]);
		close(fd);
	}
	return 0;
}

/* Does the daemon know topic (adopted or made)?  1, 0 (ENOENT) or fails. */
static int knows(struct ringcast *rc, const char *topic)
{
	struct ringcast_topic_stat *st = NULL;
	size_t n = 0;
	int ret = ringcast_stat(rc, topic, &st, &n);

	if (ret == -ENOENT)
		return 0;
	IT_ASSERT_OK(ret);
	ringcast_stat_free(st, n);
	return 1;
}

/*
 * Files planted in the runtime directory while others could write to it:
 * the daemon adopts nothing from the directory.  Its rings, node and bells
 * files are sealed memfds that only its keeper holds across a restart
 * (daemon/keeper.h); files named as the file-based format named them are
 * removed, whoever made them.
 */
static void test_planted_files_not_adopted(void **state)
{
	struct it_daemon *d = *state;
	static const char *const planted[] = { "0123456789abcdef.ring", "0123456789abcdef.ctl",
					       "node", "bells" };
	char path[300];
	struct ringcast *rc;
	struct stat st;

	it_require_root("planting files as uid 12345");
	it_daemon_start(d, "--capacity", "64k", NULL);
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "victim.kept"));
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");

	IT_ASSERT(chmod(d->rundir, 0777) == 0, "chmod %s: %s", d->rundir, strerror(errno));
	it_expect_exit(it_fork(plant_files, d->rundir), 10000, 0, "uid 12345 planting files");
	IT_ASSERT(chmod(d->rundir, 0755) == 0, "chmod %s: %s", d->rundir, strerror(errno));

	it_daemon_restart(d);
	rc = it_open(d);
	IT_ASSERT(knows(rc, "victim.kept"), "the daemon's own ring was not adopted from its keeper");
	IT_ASSERT(!knows(rc, PLANTED), "uid 12345's ring was adopted as topic '%s'", PLANTED);
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", d->rundir, planted[i]);
		IT_ASSERT(lstat(path, &st) < 0 && errno == ENOENT, "%s is still there", path);
	}
	/* The planted topic works, on a ring the daemon made. */
	IT_ASSERT_OK(ringcast_subscribe(rc, PLANTED));
	IT_ASSERT_OK(ringcast_broadcast(rc, PLANTED, "mine", 4));
	{
		struct it_inbox box = { 0 };

		IT_ASSERT(it_inbox_fill(rc, &box, 1, 2000) == 1 && box.m[0].len == 4 &&
			  !memcmp(box.m[0].data, "mine", 4), "no message on '%s'", PLANTED);
	}
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

/* ---- its keeper ---- */

struct fake_keeper {
	const char *rundir;
	int ready[2]; /* the fake writes a byte once it listens */
};

/*
 * Uid 12345's keeper.sock, in place of the daemon's keeper: it listens,
 * takes the first connection (if one comes within 3 s) and exits 0 if
 * nothing is said on it within 3 s, 3 if something is: what a daemon
 * would say is LIST.
 */
static int fake_keeper(void *p)
{
	struct fake_keeper *fk = p;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 3 };
	char buf[64];
	int l, c;

	become(STRANGER, NULL, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/keeper.sock", fk->rundir);
	unlink(a.sun_path);
	l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	IT_CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 8) == 0,
		 "listen on %s: %s", a.sun_path, strerror(errno));
	IT_CHECK(write(fk->ready[1], "x", 1) == 1, "ready");
	/* A daemon of another uid than ours may not even connect (the socket is 0755). */
	{
		struct pollfd pl = { .fd = l, .events = POLLIN };

		if (poll(&pl, 1, 3000) == 0)
			return 0;
	}
	c = accept(l, NULL, NULL);
	IT_CHECK(c >= 0, "accept: %s", strerror(errno));
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return recv(c, buf, sizeof(buf), 0) > 0 ? 3 : 0;
}

/*
 * A keeper.sock of another user's (planted while the directory was open
 * to others) is never told a thing: the daemon checks its peer's uid,
 * replaces the socket with its own keeper's and starts.
 */
static void test_foreign_keeper_refused(void **state)
{
	struct it_daemon *d = *state;
	struct fake_keeper fk = { .rundir = d->rundir };
	char path[300], c;
	struct ringcast *rc;
	struct stat st;
	uid_t uid = geteuid();
	gid_t gid;
	pid_t pid;

	it_require_root("a keeper socket of uid 12345's");
	it_daemon_start(d, NULL);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	IT_ASSERT(pipe(fk.ready) == 0, "pipe");
	IT_ASSERT(chmod(d->rundir, 0777) == 0, "chmod %s: %s", d->rundir, strerror(errno));
	pid = it_fork(fake_keeper, &fk);
	IT_ASSERT(read(fk.ready[0], &c, 1) == 1, "the fake keeper did not start");
	IT_ASSERT(chmod(d->rundir, 0755) == 0, "chmod %s: %s", d->rundir, strerror(errno));
	it_daemon_restart(d);
	it_expect_exit(pid, 10000, 0, "uid 12345's keeper (3: the daemon spoke to it)");
	snprintf(path, sizeof(path), "%s/keeper.sock", d->rundir);
	it_daemon_user(&uid, &gid); /* else the daemon is ours: uid stays ours */
	IT_ASSERT(lstat(path, &st) == 0 && st.st_uid == uid && (st.st_mode & 077) == 0,
		  "%s is not the daemon's own keeper's (uid %u, mode %04o)", path,
		  (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "after.fake"));
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	close(fk.ready[0]);
	close(fk.ready[1]);
}

/* ---- its lock ---- */

struct lock_play {
	const char *rundir;
	_Atomic int stage; /* the test moves it to 2 and 4, the helper to 1 and 3 */
	int dir_locked;    /* the helper holds a flock on the runtime dir */
	int lock_errno;    /* what opening the lock file gave it (0: opened) */
	int lock_locked;   /* it holds a flock on the lock file */
};

static void wait_stage(_Atomic int *stage, int want)
{
	while (atomic_load(stage) < want)
		it_sleep_ms(2);
}

static int hold_locks(void *p)
{
	struct lock_play *c = p;
	char path[300];
	int dfd, lfd;

	become(STRANGER, NULL, 0);
	dfd = open(c->rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	IT_CHECK(dfd >= 0, "open %s: %s", c->rundir, strerror(errno));
	c->dir_locked = flock(dfd, LOCK_EX | LOCK_NB) == 0;
	atomic_store(&c->stage, 1);
	wait_stage(&c->stage, 2);
	/* After a daemon ran: its lock file, if the helper may open it at all. */
	snprintf(path, sizeof(path), "%s/ringcastd.lock", c->rundir);
	lfd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	c->lock_errno = lfd < 0 ? errno : 0;
	c->lock_locked = lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) == 0;
	atomic_store(&c->stage, 3);
	wait_stage(&c->stage, 4);
	return 0; /* the locks go with the process */
}

/*
 * The daemon used to flock the runtime directory itself, which any user
 * who can search it may open and lock first: the daemon then would not
 * start ("in use by another ringcastd") until that user let go.  Now the
 * lock is a 0600 file of the daemon's, which the other user cannot even
 * open; the daemon starts, and restarts, while that user holds what it
 * can, and a second daemon on the same directory is still refused.
 */
static void test_lock_is_the_daemons(void **state)
{
	struct it_daemon *d = *state;
	struct lock_play *c = it_shared(sizeof(*c));
	char path[300], sock2[160], why[64], *err;
	char *argv[] = { path, "--socket", sock2, "--runtime-dir", d->rundir, "--node", "second",
			 NULL };
	struct ringcast *rc;
	int err_fd, st;
	pid_t helper, second;

	it_require_root("locking as uid 12345");
	it_require_root_daemon("its second daemon runs as the test's root, which refuses a runtime dir of another user before it tries the lock");
	c->rundir = d->rundir;
	helper = it_fork(hold_locks, c);
	wait_stage(&c->stage, 1);
	IT_ASSERT(c->dir_locked, "uid 12345 could not flock %s (the test expects it can)",
		  d->rundir);

	it_daemon_start(d, NULL);
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "locked.out"));
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");

	atomic_store(&c->stage, 2);
	wait_stage(&c->stage, 3);
	IT_ASSERT(c->lock_errno == EACCES && !c->lock_locked,
		  "uid 12345 opening the lock file: %s%s, expected EACCES", strerror(c->lock_errno),
		  c->lock_locked ? ", and it locked it" : "");
	it_daemon_restart(d);

	/* The lock still keeps a second daemon off the same directory. */
	snprintf(path, sizeof(path), "%s/ringcastd", d->build);
	snprintf(sock2, sizeof(sock2), "%s/second.sock", d->dir);
	second = it_spawn(argv, NULL, NULL, &err_fd);
	if (it_wait(second, 5000, &st) == -ETIMEDOUT) {
		it_kill(second);
		IT_FAIL("a second ringcastd runs on %s", d->rundir);
	}
	err = it_read_all(err_fd, 1000, NULL);
	close(err_fd);
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(err, "in use by another ringcastd"),
		  "a second ringcastd on %s: %s:\n%s", d->rundir, it_status_str(st, why, sizeof(why)),
		  err);
	free(err);
	it_assert_daemon_alive(d);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	atomic_store(&c->stage, 4);
	it_expect_exit(helper, 5000, 0, "uid 12345 holding its locks");
}

static int plant_lock(void *p)
{
	const char *rundir = p;
	char path[300];
	int fd;

	become(STRANGER, NULL, 0);
	snprintf(path, sizeof(path), "%s/ringcastd.lock", rundir);
	IT_CHECK(unlink(path) == 0 || errno == ENOENT, "unlink %s: %s", path, strerror(errno));
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	IT_CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	close(fd);
	return 0;
}

/*
 * A lock file that is not the daemon's (planted while the directory was
 * open to all) could be held by its owner: the daemon refuses to start
 * and says which file to remove, rather than replace it (two daemons
 * starting at once could each replace it and each lock their own).
 */
static void test_foreign_lock_file_refused(void **state)
{
	struct it_daemon *d = *state;
	char lock[300];

	it_require_root("planting a lock file as uid 12345");
	it_require_root_daemon("its refused daemon runs as the test's root, which refuses a runtime dir of another user before it looks at the lock file");
	it_daemon_start(d, NULL);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	IT_ASSERT(chmod(d->rundir, 0777) == 0, "chmod %s: %s", d->rundir, strerror(errno));
	it_expect_exit(it_fork(plant_lock, d->rundir), 10000, 0, "uid 12345 planting a lock file");
	IT_ASSERT(chmod(d->rundir, 0755) == 0, "chmod %s: %s", d->rundir, strerror(errno));
	expect_refusal(d, d->rundir, "ringcastd.lock is owned by uid 12345");
	/* Once removed, the daemon starts. */
	snprintf(lock, sizeof(lock), "%s/ringcastd.lock", d->rundir);
	IT_ASSERT(unlink(lock) == 0, "unlink %s: %s", lock, strerror(errno));
	it_daemon_restart(d);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stranger_gets_nothing, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_socket_closed_to_others, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_rundir_must_be_the_daemons, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_planted_files_not_adopted, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_foreign_keeper_refused, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_lock_is_the_daemons, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_foreign_lock_file_refused, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_daemon_trust", tests, NULL, NULL);
}
