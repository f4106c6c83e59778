// SPDX-License-Identifier: MIT
/*
 * it_daemon_trust: ringcastd against a hostile local user
 * (docs/operations.md, "Security").  The attacker is a helper forked by
 * the test that drops to uid/gid 12345 (root only; the tests skip with a
 * reason otherwise), so the kernel's permission checks and SO_PEERCRED
 * see what a real other user would be.
 *
 *  - who gets in: a peer no ACL list names gets ERROR EACCES at HELLO and
 *    no fd; the default socket is closed to users outside its group;
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

#define STRANGER 12345      /* the attacker's uid and gid */
#define TEAMMATE 12346      /* a uid one [topic] rule names */
#define CREW_GID 4242       /* a group one [topic] rule names */

/* Become uid/gid STRANGER (or uid), with exactly the supplementary groups given. */
static void become(uid_t uid, const gid_t *groups, size_t ngroups)
{
	IT_CHECK(setgroups(ngroups, groups) == 0, "setgroups: %s", strerror(errno));
	IT_CHECK(setresgid(STRANGER, STRANGER, STRANGER) == 0, "setresgid: %s", strerror(errno));
	IT_CHECK(setresuid(uid, uid, uid) == 0, "setresuid: %s", strerror(errno));
	/* A credential change clears the parent-death signal: set it again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	IT_CHECK(geteuid() == uid && getegid() == STRANGER, "still uid %d gid %d", (int)geteuid(),
		 (int)getegid());
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	IT_ASSERT(f != NULL, "fopen %s: %s", path, strerror(errno));
	fputs(text, f);
	IT_ASSERT(fclose(f) == 0, "writing %s: %s", path, strerror(errno));
}

/* connect() to sock: 0 or -errno.  *fd_out is the socket either way (or -1). */
static int raw_connect(const char *sock, int *fd_out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	*fd_out = fd;
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memcpy(sa.sun_path, sock, strlen(sock));
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

/*
 * Say HELLO on a fresh connection as a bare client would.  Returns the
 * reply's type (its err in *err for an ERROR) and how many fds came with
 * it in *nfds (closed here), or a negative errno.
 */
static int raw_hello(const char *sock, int *err, int *nfds)
{
	struct rc_msg m = { .type = RC_MSG_HELLO, .req = 1 };
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} cbuf;
	uint8_t b[RC_PROTO_MAX_MSG];
	struct iovec iov = { b, sizeof(b) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	int fd, n, ret;
	ssize_t r;

	*err = 0;
	*nfds = 0;
	ret = raw_connect(sock, &fd);
	if (ret < 0)
		goto out;
	n = rc_proto_encode(&m, b, sizeof(b));
	if (n < 0 || send(fd, b, (size_t)n, MSG_NOSIGNAL) != n) {
		ret = n < 0 ? n : -errno;
		goto out;
	}
	r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (r <= 0) {
		ret = r < 0 ? -errno : -ECONNRESET;
		goto out;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(f);
				(*nfds)++;
			}
	ret = rc_proto_decode(b, (size_t)r, &m);
	if (ret == 0) {
		ret = m.type;
		if (m.type == RC_MSG_ERROR)
			*err = (int)m.error.err;
	}
out:
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
		 "uid %u (group %u): HELLO got type %d err %d (%s), expected type %d err %d",
		 (unsigned)c->uid, (unsigned)c->group, type, err, strerror(err), c->want_type,
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
	snprintf(conf, sizeof(conf), "%s/rules.conf", d->dir);
	write_file(conf, rules_conf);
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
	ret = raw_connect(c->sock, &fd);
	if (fd >= 0)
		close(fd);
	IT_CHECK(ret == c->want, "uid %d (group %u): connect %s = %d (%s), expected %d (%s)",
		 STRANGER, (unsigned)c->group, c->sock, ret, strerror(-ret), c->want,
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stranger_gets_nothing, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_socket_closed_to_others, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_daemon_trust", tests, NULL, NULL);
}
