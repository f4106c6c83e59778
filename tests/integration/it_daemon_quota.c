/* SPDX-License-Identifier: MIT */
/*
 * it_daemon_quota: what one user can take of the daemon, played by that
 * user.  A helper forked by root drops to uid/gid 12345 (root only; the
 * tests skip with a reason otherwise) and tries to take more than its
 * share: connections that never say HELLO, and replies with fds that it
 * never reads.  Root, another uid, must still get in and be served.
 *
 * The rules are in docs/operations.md ("What one user can take"); the
 * numbers below are the daemon's (daemon/conn.h), written again here on
 * purpose: a change to them should be a change to this test too.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
/* The wire format (docs/protocol.md), as a client that speaks it itself reads it. */
#include "../../lib/proto.h"

#define ATTACKER 12345
#define SILENT_MAX 64     /* RCD_MAX_SILENT_PER_UID */
#define REPLY_FDS_MAX 3   /* RCD_REPLY_FDS: the most fds one reply carries */
#define FLOOD 4400        /* over RCD_MAX_CLIENTS (4352): the number */
#define END_WAIT_S 10     /* generous: the daemon closes a silent connection after 2 s */

/*
 * Every daemon here lets uid 12345 connect (0666) and names it in an ACL
 * list, so that what limits it is what is tested, whatever the defaults
 * of the socket mode and of HELLO for users no list names.
 */
static const char quota_conf[] =
	"# it_daemon_quota: anyone may use quota.*\n"
	"[topic \"quota.*\"]\n"
	"publish = *\n"
	"subscribe = *\n";

/* The parent and the attacker step through a test together. */
struct q_shared {
	_Atomic int stage;
};

struct q_cfg {
	const char *sock;
	struct q_shared *sh;
};

/* ---- the attacker's side (a helper: IT_CHECK, never cmocka) ---- */

static void become_attacker(rlim_t nofile)
{
	struct rlimit rl = { nofile, nofile };

	IT_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
	it_become(ATTACKER, ATTACKER, NULL, 0);
}

static void wait_stage(struct q_shared *sh, int stage)
{
	while (atomic_load(&sh->stage) < stage)
		it_sleep_ms(5);
}

/* Connect and say nothing.  The fd, or fails. */
static int q_connect(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { END_WAIT_S, 0 };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), big = 1 << 20;

	IT_CHECK(fd >= 0, "socket: %s", strerror(errno));
	memcpy(sa.sun_path, sock, strlen(sock));
	IT_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", sock,
		 strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	return fd;
}

/* Send one request; 0 or -errno (-EAGAIN with MSG_DONTWAIT and a full buffer). */
static int q_send(int fd, uint16_t type, uint32_t req, const char *topic, int flags)
{
	struct rc_msg m = { .type = type, .req = req };
	uint8_t pkt[512];
	int n;

	if (topic) {
		m.topic.topic = topic;
		m.topic.topic_len = (uint16_t)strlen(topic);
	}
	n = rc_proto_encode(&m, pkt, sizeof(pkt));
	IT_CHECK(n > 0, "encode a %s: %d", rc_proto_type_name(type), n);
	if (send(fd, pkt, (size_t)n, MSG_NOSIGNAL | flags) != n)
		return -errno;
	return 0;
}

/*
 * Receive one reply, counting and closing the fds it carries.  Its type
 * (and *req, and for an ERROR *err), 0 on EOF, or -errno (-EAGAIN: none
 * within the socket's timeout, or none now with MSG_DONTWAIT).
 */
static int q_recv(int fd, int flags, uint32_t *req, int *err, int *nfds)
{
	static uint8_t buf[RC_PROTO_MAX_MSG + 1];
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} cbuf;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct rc_msg m;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(f);
				(*nfds)++;
			}
	if (n == 0)
		return 0;
	IT_CHECK(!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)), "a reply cut short (flags 0x%x)",
		 mh.msg_flags);
	IT_CHECK(rc_proto_decode(buf, (size_t)n, &m) == 0, "a reply that does not decode");
	*req = m.req;
	*err = m.type == RC_MSG_ERROR ? m.error.err : 0;
	return m.type;
}

/*
 * How the daemon ended a connection we never spoke on: the err of its
 * ERROR (then EOF), 0 for EOF or a reset without one, or -EAGAIN if it is
 * still open after END_WAIT_S.
 */
static int q_end(int fd)
{
	int type, err = 0, last = 0, nfds;
	uint32_t req;

	while ((type = q_recv(fd, 0, &req, &err, &nfds)) > 0) {
		IT_CHECK(type == RC_MSG_ERROR && req == 0,
			 "a silent connection got a %s (req %u), not ERROR with req 0",
			 rc_proto_type_name((uint16_t)type), req);
		last = err;
	}
	if (type == -EAGAIN)
		return -EAGAIN;
	IT_CHECK(type == 0 || type == -ECONNRESET, "recv: %s", strerror(-type));
	return last;
}

/* HELLO on fd: 0 for HELLO_OK, the ERROR's err, or -errno. */
static int q_hello(int fd)
{
	int type, err = 0, nfds, ret = q_send(fd, RC_MSG_HELLO, 1, NULL, 0);
	uint32_t req;

	/* Refused at accept: our send may fail, and the answer still waits. */
	if (ret < 0 && ret != -EPIPE && ret != -ECONNRESET)
		return ret;
	type = q_recv(fd, 0, &req, &err, &nfds);
	if (type == RC_MSG_HELLO_OK)
		return 0;
	if (type == RC_MSG_ERROR)
		return err;
	return type < 0 ? type : -ENOTCONN;
}

/* ---- silent connections ---- */

/*
 * The attack: more silent connections than the daemon takes in
 * all.  Each is refused at once (EUSERS) past 64, or closed after its
 * HELLO deadline (ETIMEDOUT); none stays.
 */
static int flood_silent(void *p)
{
	struct q_cfg *c = p;
	static int fds[FLOOD];
	unsigned refused = 0, late = 0, other = 0;

	become_attacker(FLOOD + 256);
	for (int i = 0; i < FLOOD; i++)
		fds[i] = q_connect(c->sock);
	printf("  uid %d: %d connections open, none of them says a word\n", ATTACKER, FLOOD);
	atomic_store(&c->sh->stage, 1);
	wait_stage(c->sh, 2);
	for (int i = 0; i < FLOOD; i++) {
		int end = q_end(fds[i]);

		IT_CHECK(end != -EAGAIN, "silent connection %d still open after %d s more", i + 1,
			 END_WAIT_S);
		if (end == EUSERS)
			refused++;
		else if (end == ETIMEDOUT)
			late++;
		else
			other++;
		close(fds[i]);
	}
	printf("  the daemon refused %u at once (EUSERS), closed %u after the HELLO deadline "
	       "(ETIMEDOUT), %u otherwise\n", refused, late, other);
	IT_CHECK(other == 0, "%u connections ended without ERROR EUSERS or ETIMEDOUT", other);
	IT_CHECK(late >= 1, "no connection was let in to wait for its HELLO");
	return 0;
}

/* ringcast_open, a subscribe, a publish and its delivery: the daemon serves root. */
static void assert_serves(struct it_daemon *d, const char *topic)
{
	struct ringcast *rc = it_open(d);
	struct it_inbox box = { 0 };

	IT_ASSERT_OK(ringcast_subscribe(rc, topic));
	IT_ASSERT_OK(ringcast_broadcast(rc, topic, "ok", 2));
	IT_ASSERT(it_inbox_fill(rc, &box, 1, 2000) == 1, "root got %d messages", box.n);
	it_close(rc);
}

static void wait_attacker(pid_t pid, struct q_shared *sh, int stage, int timeout_ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	char why[64];
	int st;

	while (atomic_load(&sh->stage) < stage && it_now_ns() < deadline)
		if (it_wait(pid, 10, &st) == 0)
			IT_FAIL("the uid %d helper %s (see above)", ATTACKER,
				it_status_str(st, why, sizeof(why)));
	IT_ASSERT(atomic_load(&sh->stage) >= stage, "the uid %d helper did not get to stage %d "
		  "in %d ms", ATTACKER, stage, timeout_ms);
}

static void test_silent_flood(void **state)
{
	struct it_daemon *d = *state;
	struct q_shared *sh = it_shared(sizeof(*sh));
	struct q_cfg cfg = { d->sock, sh };
	pid_t attacker;

	it_require_root("switching a client to uid 12345");
	it_daemon_start(d, "--socket-mode", "0666", "--subscribe", "*", NULL);
	attacker = it_fork(flood_silent, &cfg);
	wait_attacker(attacker, sh, 1, 60000);
	/* Root connects behind all of them, and must get in. */
	assert_serves(d, "quota.root");
	atomic_store(&sh->stage, 2);
	it_expect_exit(attacker, 120000, 0, "uid 12345 flooding silent connections");
	it_assert_daemon_alive(d);
	assert_serves(d, "quota.root-after");
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

/* 64 silent connections of ours; fails the helper if one cannot be made. */
static void open_silent(const char *sock, int *fds, int n)
{
	for (int i = 0; i < n; i++)
		fds[i] = q_connect(sock);
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * 64 silent connections at once and then HELLO on each: every one must
 * be let in.  1 if all were, 0 if the round is void (one waited past its
 * HELLO deadline: the machine stalled for 2 s), -EUSERS if one was
 * refused as the 65th.  The connections stay open when all were let in.
 */
static int silent_round(const char *sock, int *fds)
{
	int ret = 1;

	open_silent(sock, fds, SILENT_MAX);
	for (int i = 0; i < SILENT_MAX && ret == 1; i++) {
		int r = q_hello(fds[i]);

		if (r == EUSERS)
			ret = -EUSERS;
		else if (r == ETIMEDOUT)
			ret = 0;
		else
			IT_CHECK(r == 0, "HELLO on silent connection %d: %d (%s)", i + 1, r,
				 strerror(r < 0 ? -r : r));
	}
	if (ret != 1)
		close_all(fds, SILENT_MAX);
	return ret;
}

static int silent_cap(void *p)
{
	struct q_cfg *c = p;
	int fds[SILENT_MAX], more[SILENT_MAX], helloed[SILENT_MAX], extra, end = -1, tries, ret;
	uint64_t deadline;

	become_attacker(1024);
	/*
	 * The 65th silent connection is refused at once.  A round is void
	 * if the first ones reached their deadline before the 65th was
	 * accepted (a 2 s stall): then it, too, waits for its deadline.
	 */
	for (tries = 0; tries < 5; tries++) {
		open_silent(c->sock, fds, SILENT_MAX);
		extra = q_connect(c->sock);
		end = q_end(extra);
		close(extra);
		IT_CHECK(end != -EAGAIN, "silent connection %d: no answer in %d s, still open",
			 SILENT_MAX + 1, END_WAIT_S);
		/* The daemon closes the first 64 on their deadline; wait for it. */
		for (int i = 0; i < SILENT_MAX; i++) {
			int e = q_end(fds[i]);

			IT_CHECK(e == ETIMEDOUT, "silent connection %d: ended with %d (%s), expected "
				 "ERROR ETIMEDOUT after the HELLO deadline", i + 1, e,
				 strerror(e < 0 ? -e : e));
		}
		close_all(fds, SILENT_MAX);
		if (end == EUSERS)
			break;
		printf("  round %d void: connection %d ended with %d (%s)\n", tries + 1,
		       SILENT_MAX + 1, end, strerror(end));
	}
	IT_CHECK(end == EUSERS, "with %d silent connections of uid %d, one more ended with %d "
		 "(%s) %d times, expected ERROR EUSERS at once", SILENT_MAX, ATTACKER, end,
		 strerror(end), tries);
	printf("  connection %d of uid %d without HELLO: refused at once (EUSERS); the first %d "
	       "closed on their HELLO deadline (ETIMEDOUT)\n", SILENT_MAX + 1, ATTACKER,
	       SILENT_MAX);

	/* The daemon closed those 64 itself: their share is free again. */
	for (tries = 0; (ret = silent_round(c->sock, helloed)) == 0 && tries < 5; tries++)
		;
	IT_CHECK(ret == 1, "after the daemon closed %d silent connections, %d new ones were "
		 "not all let in (%d): their quota leaked", SILENT_MAX, SILENT_MAX, ret);
	/*
	 * Closed by us: the daemon learns it when it reads the EOF, so look
	 * again for a while.  Connections that said HELLO (helloed, still
	 * open) take nothing of the silent share.
	 */
	open_silent(c->sock, fds, SILENT_MAX);
	close_all(fds, SILENT_MAX);
	deadline = it_now_ns() + 10000000000ull;
	while ((ret = silent_round(c->sock, more)) != 1 && it_now_ns() < deadline)
		it_sleep_ms(50);
	IT_CHECK(ret == 1, "10 s after closing %d silent connections, %d new ones were not all "
		 "let in (%d): their quota leaked", SILENT_MAX, SILENT_MAX, ret);
	printf("  quota back: %d new silent connections let in after the daemon closed %d, "
	       "and again after we closed %d\n", SILENT_MAX, SILENT_MAX, SILENT_MAX);
	close_all(more, SILENT_MAX);
	close_all(helloed, SILENT_MAX);
	return 0;
}

static void test_silent_cap_and_deadline(void **state)
{
	struct it_daemon *d = *state;
	struct q_shared *sh = it_shared(sizeof(*sh));
	struct q_cfg cfg = { d->sock, sh };

	it_require_root("switching a client to uid 12345");
	it_daemon_start(d, "--socket-mode", "0666", "--subscribe", "*", NULL);
	it_expect_exit(it_fork(silent_cap, &cfg), 120000, 0, "uid 12345 holding silent connections");
	it_assert_daemon_alive(d);
	assert_serves(d, "quota.root");
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

/* ---- replies with fds that are never read ---- */

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	IT_ASSERT(dir != NULL, "opendir %s: %s", path, strerror(errno));
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Every reply waiting in fd now: how many, and the fds they carry. */
static int drain(int fd, int *packets)
{
	int type, err, nfds, fds = 0;
	uint32_t req;

	*packets = 0;
	while ((type = q_recv(fd, MSG_DONTWAIT, &req, &err, &nfds)) > 0) {
		(*packets)++;
		fds += nfds;
	}
	IT_CHECK(type == -EAGAIN, "draining the replies: %s", type ? strerror(-type) : "EOF");
	return fds;
}

static const char *const pile_topic[3] = { "quota.p", "quota.s", "quota.s" };
static const uint16_t pile_type[3] = { RC_MSG_PUB_OPEN, RC_MSG_SUBSCRIBE, RC_MSG_UNSUBSCRIBE };

static int pile_fds(void *p)
{
	struct q_cfg *c = p;
	/* A pipeline read only at the end, and what each request must get. */
	static const struct {
		uint16_t type;
		const char *topic;
		uint16_t reply;
		int err, nfds;
	} seq[] = {
		{ RC_MSG_PUB_OPEN, "quota.p", RC_MSG_PUB_OK, 0, 2 },
		{ RC_MSG_PUB_OPEN, "quota.p", RC_MSG_ERROR, EALREADY, 0 },
		{ RC_MSG_PUB_OPEN, "quota.p", RC_MSG_ERROR, EALREADY, 0 },
		{ RC_MSG_SUBSCRIBE, "quota.s", RC_MSG_SUB_OK, 0, 2 },
		{ RC_MSG_UNSUBSCRIBE, "quota.s", RC_MSG_OK, 0, 0 },
		{ RC_MSG_SUBSCRIBE, "quota.s", RC_MSG_SUB_OK, 0, 2 },
		{ RC_MSG_SUBSCRIBE, "quota.s", RC_MSG_ERROR, EALREADY, 0 },
		{ RC_MSG_PUB_OPEN, "quota.p", RC_MSG_ERROR, EALREADY, 0 },
	};
	int fd, sent, packets, fds, ret;

	become_attacker(1024);
	/* Requests as fast as the daemon takes them, never a reply read. */
	fd = q_connect(c->sock);
	IT_CHECK(q_hello(fd) == 0, "HELLO as uid %d refused", ATTACKER);
	for (sent = 0; sent < 30000; sent++) {
		ret = q_send(fd, pile_type[sent % 3], (uint32_t)sent + 2, pile_topic[sent % 3],
			     MSG_DONTWAIT);
		if (ret == -EAGAIN)
			break;
		IT_CHECK(ret == 0, "send request %d: %s", sent + 1, strerror(-ret));
	}
	it_sleep_ms(500); /* let the daemon answer what it will */
	atomic_store(&c->sh->stage, 1); /* the parent counts the daemon's fds now */
	wait_stage(c->sh, 2);
	fds = drain(fd, &packets);
	printf("  uid %d sent %d PUB_OPEN/SUBSCRIBE/UNSUBSCRIBE reading nothing: %d replies "
	       "with %d fds were waiting for it\n", ATTACKER, sent, packets, fds);
	IT_CHECK(fds <= REPLY_FDS_MAX, "%d fds in flight to one client that does not read "
		 "(%d replies): the daemon's user pays for them (ETOOMANYREFS)", fds, packets);
	close(fd);

	/* A pipeline is answered in full and in order, once it is read. */
	fd = q_connect(c->sock);
	IT_CHECK(q_hello(fd) == 0, "HELLO as uid %d refused", ATTACKER);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		IT_CHECK(q_send(fd, seq[i].type, (uint32_t)i + 2, seq[i].topic, 0) == 0,
			 "send request %zu: %s", i + 1, strerror(errno));
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		int type, err, nfds;
		uint32_t req;

		type = q_recv(fd, 0, &req, &err, &nfds);
		IT_CHECK(type > 0, "reply %zu of %zu: %s", i + 1, sizeof(seq) / sizeof(seq[0]),
			 type ? strerror(-type) : "EOF");
		IT_CHECK(req == i + 2 && type == seq[i].reply && err == seq[i].err &&
			 nfds == seq[i].nfds,
			 "%s '%s' (request %zu) got %s req %u err %d with %d fds; expected %s "
			 "err %d with %d fds", rc_proto_type_name(seq[i].type), seq[i].topic, i + 1,
			 rc_proto_type_name((uint16_t)type), req, err, nfds,
			 rc_proto_type_name(seq[i].reply), seq[i].err, seq[i].nfds);
	}
	printf("  a pipeline of %zu requests was answered in order; a repeated PUB_OPEN got "
	       "EALREADY and no fds\n", sizeof(seq) / sizeof(seq[0]));
	close(fd);
	return 0;
}

/* ---- topics and bytes one user may make ---- */

struct share_cfg {
	const char *sock;
	const char *prefix; /* of the topics it makes */
	int made;           /* how many its subscribes made before EDQUOT */
};

/* Subscribe to new topics until the daemon says no; how many it made. */
static int fill_share(struct ringcast *rc, const char *prefix)
{
	char topic[64];
	int i, ret = 0;

	for (i = 0; i < 64; i++) {
		snprintf(topic, sizeof(topic), "%s.%d", prefix, i);
		ret = ringcast_subscribe(rc, topic);
		if (ret < 0)
			break;
	}
	IT_CHECK(ret == -EDQUOT, "subscribe %d ended with %d (%s), expected EDQUOT", i, ret,
		 ringcast_strerror(ret));
	return i;
}

/* As uid 12345: make topics PREFIX.0, PREFIX.1, ... until the daemon says no. */
static int take_share(void *p)
{
	struct share_cfg *c = p;
	struct ringcast *rc;

	become_attacker(1024);
	rc = it_child_open(c->sock);
	c->made = fill_share(rc, c->prefix);
	ringcast_close(rc);
	return 0;
}

/*
 * SUBSCRIBE alone makes a topic, and its ring stays: one user making as
 * many as it can once filled the runtime directory, and root could no
 * longer publish.  Each uid now has a share of topics and of bytes; root
 * and the daemon's user are not counted.
 */
static void test_topics_and_bytes_per_uid(void **state)
{
	struct it_daemon *d = *state;
	struct share_cfg *cfg = it_shared(sizeof(*cfg));
	struct ringcast *root;
	char conf[160];
	int n;

	it_require_root("switching a client to uid 12345");
	it_write_conf(d, "quota.conf", quota_conf, conf, sizeof(conf));
	cfg->sock = d->sock;
	it_daemon_start(d, "--config", conf, "--socket-mode", "0666", "--max-topics-per-uid", "3",
			NULL);
	cfg->prefix = "quota.t";
	it_expect_exit(it_fork(take_share, cfg), 20000, 0, "uid 12345 taking topics");
	IT_ASSERT(cfg->made == 3, "uid 12345 made %d topics, its share is 3", cfg->made);
	/* Its share is its own: root goes on making topics. */
	root = it_open(d);
	n = 0;
	for (int i = 0; i < 8; i++) {
		char topic[32];

		snprintf(topic, sizeof(topic), "quota.root.%d", i);
		n += ringcast_subscribe(root, topic) == 0;
	}
	IT_ASSERT(n == 8, "root made %d of 8 topics after uid 12345 took its share", n);
	it_close(root);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

static void test_bytes_per_uid(void **state)
{
	struct it_daemon *d = *state;
	struct share_cfg *cfg = it_shared(sizeof(*cfg));
	char conf[160];

	it_require_root("switching a client to uid 12345");
	it_write_conf(d, "quota.conf", quota_conf, conf, sizeof(conf));
	cfg->sock = d->sock;
	it_daemon_start(d, "--config", conf, "--socket-mode", "0666", "--max-bytes-per-uid", "2M",
			NULL);
	cfg->prefix = "quota.big";
	it_expect_exit(it_fork(take_share, cfg), 20000, 0, "uid 12345 taking bytes");
	/* A 1 MiB ring costs 1 MiB + 8 KiB + its ctl file: two do not fit in 2 MiB. */
	IT_ASSERT(cfg->made == 1, "uid 12345 made %d rings of 1 MiB with a 2 MiB share",
		  cfg->made);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

/*
 * How many rings the daemon's keeper holds (what a restart would adopt),
 * once it holds want of them or 5 s have passed: the daemon hands files
 * over (or tells it to forget them) in messages the keeper may not have
 * read yet.
 */
static int count_rings(const struct it_daemon *d, int want)
{
	uint64_t until = it_now_ns() + 5000000000ull;
	int n;

	while ((n = it_kept_rings(d)) != want && it_now_ns() < until)
		it_sleep_ms(10);
	IT_ASSERT(n >= 0, "no keeper of %s found", d->rundir);
	return n;
}

/*
 * A topic nobody has open goes after topic-idle-ms, its files with it, so
 * that topics made once do not hold the runtime directory for good; one a
 * client has open stays however long that is.
 */
static void test_idle_topics_reclaimed(void **state)
{
	struct it_daemon *d = *state;
	struct it_inbox box = { 0 };
	struct ringcast *rc, *keeper;
	uint64_t deadline;
	int rings;

	it_daemon_start(d, "--topic-idle", "200", NULL);
	keeper = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(keeper, "quota.kept"));
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "quota.idle"));
	IT_ASSERT_OK(ringcast_broadcast(rc, "quota.idle", "once", 4));
	IT_ASSERT(it_inbox_fill(rc, &box, 1, 2000) == 1, "no message on quota.idle");
	it_close(rc);
	rings = count_rings(d, 2);
	IT_ASSERT(rings == 2, "%d rings before", rings);

	/* Generous: the daemon looks every 100 ms and removes it after 200 ms. */
	deadline = it_now_ns() + 10000000000ull;
	while (it_has_topic(d, "quota.idle") && it_now_ns() < deadline)
		it_sleep_ms(20);
	IT_ASSERT(!it_has_topic(d, "quota.idle"), "quota.idle is still there 10 s after its last "
		  "client left (topic-idle 200 ms)");
	rings = count_rings(d, 1);
	IT_ASSERT(rings == 1, "%d rings after the idle topic went", rings);
	/* The one with a subscriber stays, however long past the idle time. */
	IT_ASSERT(it_has_topic(d, "quota.kept"), "a topic with a subscriber was removed");

	/* The name is free: asked again, it is a new, working topic. */
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "quota.idle"));
	IT_ASSERT_OK(ringcast_broadcast(rc, "quota.idle", "again", 5));
	box.n = 0;
	IT_ASSERT(it_inbox_fill(rc, &box, 1, 2000) == 1 && box.m[0].seq == 1,
		  "the new quota.idle: %d messages, seq %llu", box.n,
		  box.n ? (unsigned long long)box.m[0].seq : 0ull);
	it_close(rc);
	it_close(keeper);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

static void test_unread_fds_bounded(void **state)
{
	struct it_daemon *d = *state;
	struct q_shared *sh = it_shared(sizeof(*sh));
	struct q_cfg cfg = { d->sock, sh };
	struct ringcast *rc;
	int before, during;
	char conf[160];
	pid_t attacker;

	it_require_root("switching a client to uid 12345");
	it_write_conf(d, "quota.conf", quota_conf, conf, sizeof(conf));
	it_daemon_start(d, "--config", conf, "--socket-mode", "0666", NULL);
	/* The topics first: each holds two daemon fds for good.  rc stays
	 * open, so that its socket is in both counts. */
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "quota.s"));
	IT_ASSERT_OK(ringcast_broadcast(rc, "quota.p", "x", 1));
	before = count_fds(d->pid);

	attacker = it_fork(pile_fds, &cfg);
	wait_attacker(attacker, sh, 1, 60000);
	during = count_fds(d->pid);
	printf("  daemon fds: %d before, %d while the client does not read\n", before, during);
	/* Its socket, and at most one reply's fds queued. */
	IT_ASSERT(during <= before + 1 + REPLY_FDS_MAX, "replies pin daemon fds: %d -> %d", before,
		  during);
	atomic_store(&sh->stage, 2);
	it_expect_exit(attacker, 60000, 0, "uid 12345 piling up fds");
	it_close(rc);
	it_assert_daemon_alive(d);
	assert_serves(d, "quota.root");
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_silent_flood, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_silent_cap_and_deadline, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_unread_fds_bounded, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_topics_and_bytes_per_uid, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_bytes_per_uid, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_idle_topics_reclaimed, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_daemon_quota", tests, NULL, NULL);
}
