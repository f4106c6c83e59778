/* SPDX-License-Identifier: MIT */
/*
 * it_daemon: ringcastd as a program.  Hostile control packets, clean
 * shutdown, a second daemon on the same socket or runtime directory,
 * --help, and a runtime directory on a full tmpfs.
 *
 * The malformed packets are built by hand from docs/protocol.md, not with
 * lib/proto.c: the point is to send what no codec of ours would produce.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
/*
 * The wire format (docs/protocol.md) and the file format
 * (docs/ring-format.md), as a hostile client reads them from the docs.
 */
#include "../../lib/proto.h"
#include "../../lib/ring_format.h"

/* docs/protocol.md */
#define P_MAGIC 0x31504352u
#define P_VERSION 3 /* docs/protocol.md */
#define P_HDR 16
#define P_HELLO 1
#define P_SUBSCRIBE 2
#define P_HELLO_OK 64
#define P_ERROR 68

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_hdr(uint8_t *b, uint16_t version, uint16_t type, uint32_t length, uint32_t req)
{
	put32(b, P_MAGIC);
	put16(b + 4, version);
	put16(b + 6, type);
	put32(b + 8, length);
	put32(b + 12, req);
}

/* A well-formed HELLO (28 bytes). */
static size_t hello_pkt(uint8_t *b, uint32_t req)
{
	memset(b, 0, 28);
	put_hdr(b, P_VERSION, P_HELLO, 28, req);
	return 28;
}

static int raw_connect(struct it_daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 2, 0 };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), big = 1 << 20;

	IT_ASSERT(fd >= 0, "socket: %s", strerror(errno));
	memcpy(sa.sun_path, d->sock, strlen(d->sock));
	IT_ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", d->sock,
		  strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	return fd;
}

/* Receive one packet, closing any fds it carries.  Length, 0 on EOF, -errno. */
static ssize_t raw_recv(int fd, uint8_t *buf, size_t cap)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} cbuf;
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	ssize_t n;

	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(f);
			}
	return n;
}

static void raw_hello(int fd)
{
	uint8_t b[RINGCAST_TOPIC_MAX + 64 + 1024];
	size_t n = hello_pkt(b, 1);
	ssize_t r;

	IT_ASSERT(send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n, "send HELLO: %s", strerror(errno));
	r = raw_recv(fd, b, sizeof(b));
	IT_ASSERT(r >= P_HDR && get32(b) == P_MAGIC && b[6] == P_HELLO_OK,
		  "HELLO got %zd bytes, type %d", r, r >= 8 ? b[6] : -1);
}

/*
 * After a bad packet: an ERROR reply and then the connection closed, or
 * just closed.  A connection that stays open with no answer fails the
 * test.  The reply's err: want_err (docs/protocol.md: EBADMSG for what
 * does not decode, EPROTO for another version); for want_err EBADMSG,
 * EMSGSIZE is accepted too, as a more specific answer to an oversized
 * packet, but said aloud.
 */
static void expect_rejected(int fd, const char *what, int want_err)
{
	static uint8_t buf[70000];
	bool replied = false;
	int err = 0;

	for (;;) {
		ssize_t n = raw_recv(fd, buf, sizeof(buf));

		if (n == 0 || n == -ECONNRESET)
			break;
		IT_ASSERT(n != -EAGAIN && n != -EWOULDBLOCK,
			  "%s: %s, and the connection is still open after 2 s", what,
			  replied ? "an ERROR reply came" : "no reply");
		IT_ASSERT(n > 0, "%s: recv: %s", what, strerror((int)-n));
		IT_ASSERT(n >= P_HDR + 6 && get32(buf) == P_MAGIC && buf[6] == P_ERROR && !replied,
			  "%s: answered with a packet of %zd bytes, type %d (64 HELLO_OK, 68 ERROR): "
			  "expected one ERROR and a closed connection", what, n, n > 6 ? buf[6] : -1);
		replied = true;
		err = (int)get32(buf + 16);
	}
	if (replied)
		IT_ASSERT(err == want_err || (want_err == EBADMSG && err == EMSGSIZE),
			  "%s: ERROR reply with err %d (%s), expected %d (%s)", what, err,
			  strerror(err), want_err, strerror(want_err));
	printf("  %-44s %s%s%s\n", what, replied ? "ERROR reply (" : "closed",
	       replied ? strerrorname_np(err) : "", replied ? "), then closed" : "");
	if (replied && err != want_err)
		printf("  note: docs/protocol.md says %s here\n", strerrorname_np(want_err));
	close(fd);
}

static void send_bad(struct it_daemon *d, bool after_hello, const char *what, const void *pkt,
		     size_t len, int want_err)
{
	char label[128];
	int fd = raw_connect(d);
	ssize_t n;

	if (after_hello)
		raw_hello(fd);
	snprintf(label, sizeof(label), "%s%s", what, after_hello ? " (after HELLO)" : "");
	n = send(fd, pkt, len, MSG_NOSIGNAL);
	IT_ASSERT(n == (ssize_t)len || (n < 0 && (errno == EPIPE || errno == ECONNRESET)),
		  "%s: send %zu bytes: %zd (%s)", label, len, n, n < 0 ? strerror(errno) : "short");
	expect_rejected(fd, label, want_err);
	it_assert_daemon_alive(d);
}

/* A normal client can still do everything. */
static void assert_daemon_serves(struct it_daemon *d, const char *topic)
{
	struct ringcast *rc = it_open(d);
	struct it_inbox box = { 0 };

	IT_ASSERT_OK(ringcast_subscribe(rc, topic));
	IT_ASSERT_OK(ringcast_broadcast(rc, topic, "ok", 2));
	IT_ASSERT(it_inbox_fill(rc, &box, 1, 2000) == 1, "a normal client got %d messages", box.n);
	it_close(rc);
}

static void test_malformed_packets(void **state)
{
	struct it_daemon *d = *state;
	uint8_t *big = calloc(1, 100 * 1024);
	uint8_t pkt[128];
	uint32_t rnd = 0x2545f491;

	IT_ASSERT(big != NULL, "malloc");
	it_daemon_start(d, NULL);
	for (int pass = 0; pass < 2; pass++) {
		bool ah = pass == 1;

		/* Random bytes (a fixed xorshift stream, never starting with the magic). */
		for (size_t i = 0; i < 64; i++) {
			rnd ^= rnd << 13;
			rnd ^= rnd >> 17;
			rnd ^= rnd << 5;
			pkt[i] = (uint8_t)rnd;
		}
		pkt[0] = 0xee;
		send_bad(d, ah, "64 random bytes", pkt, 64, EBADMSG);

		/* A valid HELLO header that claims more bytes than the packet has. */
		hello_pkt(pkt, 7);
		put32(pkt + 8, 100);
		send_bad(d, ah, "header length 100, packet 28", pkt, 28, EBADMSG);

		/* ... and fewer: trailing bytes after the body. */
		memset(pkt, 0, sizeof(pkt));
		put_hdr(pkt, P_VERSION, P_SUBSCRIBE, 29, 8);
		put16(pkt + 24, 3);
		memcpy(pkt + 26, "a/b", 3);
		put32(pkt + 8, 20);
		send_bad(d, ah, "header length 20, packet 29", pkt, 29, EBADMSG);

		/* A topic length running past the end of the packet. */
		put32(pkt + 8, 29);
		put16(pkt + 24, 200);
		send_bad(d, ah, "topic_len 200 in a 29-byte packet", pkt, 29, EBADMSG);

		/* Shorter than a header. */
		send_bad(d, ah, "7 bytes of header", pkt, 7, EBADMSG);

		/* An unknown type. */
		put_hdr(pkt, P_VERSION, 999, P_HDR, 9);
		send_bad(d, ah, "unknown type 999", pkt, P_HDR, EBADMSG);

		/* Another protocol version. */
		hello_pkt(pkt, 10);
		put16(pkt + 4, P_VERSION + 1);
		send_bad(d, ah, "another protocol version", pkt, 28, EPROTO);

		/* 100 KB, over RC_PROTO_MAX_MSG, with a header that matches it. */
		put_hdr(big, P_VERSION, P_SUBSCRIBE, 100 * 1024, 11);
		put16(big + 24, 255);
		memset(big + 26, 't', 255);
		send_bad(d, ah, "oversized 100 KB packet", big, 100 * 1024, EBADMSG);
	}
	free(big);

	/* A client that connects and vanishes mid-conversation. */
	for (int i = 0; i < 20; i++) {
		int fd = raw_connect(d);

		if (i % 2)
			send(fd, pkt, 10, MSG_NOSIGNAL);
		close(fd);
	}
	it_assert_daemon_alive(d);
	assert_daemon_serves(d, "daemon.after-garbage");
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM after the garbage");
}

/* Send a well-formed HELLO carrying one fd (of /dev/null) on a new connection. */
static int hello_with_fd(struct it_daemon *d)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int))];
	} cbuf;
	uint8_t pkt[28];
	struct iovec iov = { pkt, hello_pkt(pkt, 12) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int fd = raw_connect(d), devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	IT_ASSERT(devnull >= 0, "open /dev/null: %s", strerror(errno));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &devnull, sizeof(int));
	IT_ASSERT(sendmsg(fd, &mh, MSG_NOSIGNAL) == 28, "sendmsg: %s", strerror(errno));
	close(devnull);
	return fd;
}

static int count_fds(pid_t pid)
{
	char path[64];
	char *out;
	int n = 0, ofd;
	char *argv[] = { "/bin/ls", "-1", path, NULL };
	pid_t ls;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	ls = it_spawn(argv, NULL, &ofd, NULL);
	out = it_read_all(ofd, 2000, NULL);
	close(ofd);
	it_expect_exit(ls, 2000, 0, "ls /proc/PID/fd");
	for (char *p = out; *p; p++)
		n += *p == '\n';
	free(out);
	return n;
}

/*
 * docs/protocol.md: "Requests never carry fds.  The daemon closes any fds
 * that arrive with a request and treats that request as malformed."  Both
 * halves: no fd may pile up in the daemon (that would be a way to exhaust
 * its descriptor table), and the request is refused.
 */
static void test_request_with_fd(void **state)
{
	struct it_daemon *d = *state;
	int before, after;

	it_daemon_start(d, NULL);
	before = count_fds(d->pid);
	for (int i = 0; i < 50; i++) {
		int fd = hello_with_fd(d);
		uint8_t buf[512];

		raw_recv(fd, buf, sizeof(buf)); /* whatever the answer, wait for it */
		close(fd);
	}
	it_sleep_ms(100); /* let the daemon see the closes */
	after = count_fds(d->pid);
	printf("  daemon fds: %d before, %d after 50 requests carrying an fd\n", before, after);
	IT_ASSERT(after < before + 10, "the daemon keeps fds sent with requests: %d -> %d", before,
		  after);
	it_assert_daemon_alive(d);
	assert_daemon_serves(d, "daemon.after-fds");
	expect_rejected(hello_with_fd(d), "HELLO with an fd attached", EBADMSG);
	it_assert_daemon_alive(d);
}

/*
 * A client that sends opens and never reads its replies: each SUB_OK
 * holds two fds in the daemon until sent.  The daemon handles no request
 * after a reply with fds until the client has read it, so no number of
 * them can run it out of fds.  (The fds in flight to the client:
 * it_daemon_quota, test_unread_fds_bounded.)
 */
static void test_unread_replies_hold_few_fds(void **state)
{
	struct it_daemon *d = *state;
	enum { CONNS = 8, REQS = 2000 };
	int fds[CONNS], before, after;
	uint8_t pkt[512];

	it_daemon_start(d, NULL);
	before = count_fds(d->pid);
	for (int c = 0; c < CONNS; c++) {
		fds[c] = raw_connect(d);
		raw_hello(fds[c]);
		for (uint32_t i = 0; i < REQS; i++) {
			struct rc_msg m = { .type = i % 2 ? RC_MSG_UNSUBSCRIBE : RC_MSG_SUBSCRIBE,
					    .req = i + 2 };
			int n;

			m.topic.topic = "daemon.unread";
			m.topic.topic_len = 13;
			n = rc_proto_encode(&m, pkt, sizeof(pkt));
			IT_ASSERT(n > 0, "encode: %d", n);
			/*
			 * More than the daemon's socket buffer holds replies
			 * for, so they queue in the daemon.  Once it stops
			 * reading us, our buffer fills: enough sent.
			 */
			if (send(fds[c], pkt, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
				IT_ASSERT(errno == EAGAIN, "send request %u: %s", i, strerror(errno));
				break;
			}
		}
	}
	it_sleep_ms(300); /* let the daemon take what it will */
	after = count_fds(d->pid);
	printf("  daemon fds: %d before, %d with %d clients sending up to %d requests, reading "
	       "no reply\n", before, after, CONNS, REQS);
	/* Each connection is one fd; its one reply with fds may hold 3 more. */
	IT_ASSERT(after <= before + CONNS * (1 + 3) + 2,
		  "unread replies pin daemon fds: %d -> %d with %d connections", before, after, CONNS);
	for (int c = 0; c < CONNS; c++)
		close(fds[c]);
	it_assert_daemon_alive(d);
	assert_daemon_serves(d, "daemon.after-unread");
}

/* ---- connections per uid ---- */

#define PU_UID 12345
#define PU_MAX 1024 /* RC_BELLS / 4: docs/protocol.md */

struct pu_shared {
	_Atomic int full, done;
	char error[200];
};

struct pu_cfg {
	const char *sock;
	struct pu_shared *sh;
};

/* Connect and HELLO as a raw client: the reply's type and, for an ERROR, its err. */
static int pu_hello(const char *sock, int *fd_out, int *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t b[1024];
	struct rc_msg m;
	size_t n;
	ssize_t r;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	*fd_out = fd;
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, sock, strlen(sock));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	n = hello_pkt(b, 1);
	/* A refused connection may be closed before our HELLO: read the answer anyway. */
	if (send(fd, b, n, MSG_NOSIGNAL) != (ssize_t)n && errno != EPIPE && errno != ECONNRESET)
		return -errno;
	r = raw_recv(fd, b, sizeof(b));
	if (r <= 0 || rc_proto_decode(b, (size_t)r, &m) < 0)
		return -EBADMSG;
	*err = m.type == RC_MSG_ERROR ? m.error.err : 0;
	return m.type;
}

static int pu_other_uid(void *p)
{
	struct pu_cfg *c = p;
	struct rlimit rl = { PU_MAX + 64, PU_MAX + 64 };
	static int fds[PU_MAX + 1];
	int type, err = 0;

	IT_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
	it_become(PU_UID, PU_UID, NULL, 0);
	for (int i = 0; i < PU_MAX; i++) {
		type = pu_hello(c->sock, &fds[i], &err);
		IT_CHECK(type == RC_MSG_HELLO_OK, "connection %d of uid %d: reply %d, err %d", i + 1,
			 PU_UID, type, err);
	}
	type = pu_hello(c->sock, &fds[PU_MAX], &err);
	IT_CHECK(type == RC_MSG_ERROR && err == EUSERS,
		 "connection %d of uid %d: reply %d, err %d; expected ERROR EUSERS", PU_MAX + 1, PU_UID,
		 type, err);
	atomic_store(&c->sh->full, 1);
	while (!atomic_load(&c->sh->done))
		it_sleep_ms(5);
	return 0;
}

/*
 * One user (not root) may hold a quarter of the doorbells' worth of
 * connections.  Past that it is told why (EUSERS), and everyone else
 * still gets in: one user cannot lock the others out.
 */
static void test_connections_per_uid(void **state)
{
	struct it_daemon *d = *state;
	struct pu_shared *sh = it_shared(sizeof(*sh));
	struct pu_cfg cfg = { d->sock, sh };
	uint64_t deadline;
	char why[64];
	pid_t other;
	int st;

	/* The other uid may connect (0666) and is named by an ACL list, so
	 * its HELLOs are answered: what is tested is how many it may hold. */
	it_daemon_start(d, "--socket-mode", "0666", "--subscribe", "*", NULL);
	other = it_fork(pu_other_uid, &cfg);
	deadline = it_now_ns() + 30000000000ull;
	while (!atomic_load(&sh->full) && it_now_ns() < deadline)
		if (it_wait(other, 10, &st) == 0)
			IT_FAIL("the other uid's client %s before its last connection (see above)",
				it_status_str(st, why, sizeof(why)));
	IT_ASSERT(atomic_load(&sh->full), "the other uid's client did not finish in 30 s");
	assert_daemon_serves(d, "daemon.per-uid");
	atomic_store(&sh->done, 1);
	it_expect_exit(other, 5000, 0, "the other uid's client");
	it_assert_daemon_alive(d);
}

/*
 * Each topic holds two daemon fds and a ring until deleted by hand, so a
 * client allowed to subscribe to a pattern could make topics until the
 * daemon has no fds left.  max-topics stops that with a clear error,
 * counting the topics a restarted daemon adopts.
 */
static void test_max_topics(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *rc;

	it_daemon_start(d, "--max-topics", "2", NULL);
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "max.a"));
	IT_ASSERT_OK(ringcast_broadcast(rc, "max.b", "x", 1));
	IT_ASSERT_ERR(ringcast_subscribe(rc, "max.c"), -EDQUOT);
	IT_ASSERT_ERR(ringcast_broadcast(rc, "max.c", "x", 1), -EDQUOT);
	/* The topics there are go on. */
	IT_ASSERT_OK(ringcast_broadcast(rc, "max.a", "y", 1));
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
	it_daemon_restart(d);
	rc = it_open(d);
	IT_ASSERT_ERR(ringcast_subscribe(rc, "max.c"), -EDQUOT);
	IT_ASSERT_OK(ringcast_subscribe(rc, "max.b"));
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

static void test_sigterm(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *rc;
	struct stat st;
	char why[64];
	int status;

	it_daemon_start(d, NULL);
	IT_ASSERT(stat(d->sock, &st) == 0 && S_ISSOCK(st.st_mode), "no socket file at %s", d->sock);
	/* With a client connected and subscribed: shutdown does not wait for it. */
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "daemon.term"));
	status = it_daemon_stop(d);
	IT_ASSERT(status != -1, "ringcastd ignored SIGTERM for %d ms", IT_STOP_TIMEOUT_MS);
	IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ringcastd %s on SIGTERM",
		  it_status_str(status, why, sizeof(why)));
	IT_ASSERT(lstat(d->sock, &st) < 0 && errno == ENOENT, "the socket file %s is still there",
		  d->sock);
	it_close(rc);
}

/* Run ringcastd with argv, expect it to exit (not crash) within 5 s; returns status, fills *err. */
static int run_daemon(struct it_daemon *d, char **argv, char **out, char **err)
{
	int ofd, efd, st;
	pid_t pid;
	char path[300];

	snprintf(path, sizeof(path), "%s/ringcastd", d->build);
	argv[0] = path;
	pid = it_spawn(argv, NULL, &ofd, &efd);
	*err = it_read_all(efd, 5000, NULL);
	*out = it_read_all(ofd, 1000, NULL);
	close(ofd);
	close(efd);
	if (it_wait(pid, 5000, &st) == -ETIMEDOUT) {
		it_kill(pid);
		free(*out);
		free(*err);
		IT_FAIL("ringcastd %s ... still running after 5 s", argv[1]);
	}
	return st;
}

static void test_second_daemon(void **state)
{
	struct it_daemon *d = *state;
	char rundir2[160], sock2[160], why[64], *out, *err;
	struct stat st;
	int status;

	snprintf(rundir2, sizeof(rundir2), "%s/run2", d->dir);
	snprintf(sock2, sizeof(sock2), "%s/second.sock", d->dir);
	it_daemon_start(d, NULL);

	/* Same socket, its own runtime dir: the socket is taken. */
	{
		char *argv[] = { NULL, "--socket", d->sock, "--runtime-dir", rundir2, "--node", "second",
				 NULL };

		status = run_daemon(d, argv, &out, &err);
		printf("  second daemon on the same socket: %s: %s",
		       it_status_str(status, why, sizeof(why)), err);
		IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) != 0,
			  "a second ringcastd on the same socket %s", why);
		IT_ASSERT(strstr(err, d->sock) || strstr(err, "in use") || strstr(err, "already"),
			  "the error does not say what is wrong: '%s'", err);
		free(out);
		free(err);
	}
	/* Same runtime dir, another socket: two daemons must never own one set of rings. */
	{
		char *argv[] = { NULL, "--socket", sock2, "--runtime-dir", d->rundir, "--node", "second",
				 NULL };

		status = run_daemon(d, argv, &out, &err);
		printf("  second daemon on the same runtime dir: %s: %s",
		       it_status_str(status, why, sizeof(why)), err);
		IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) != 0,
			  "a second ringcastd on the same runtime dir %s", why);
		IT_ASSERT(strstr(err, d->rundir) || strstr(err, "in use") || strstr(err, "already"),
			  "the error does not say what is wrong: '%s'", err);
		free(out);
		free(err);
	}
	/* The first one lost nothing: its socket file is still there and it serves. */
	IT_ASSERT(stat(d->sock, &st) == 0, "the refused daemon removed the first one's socket");
	it_assert_daemon_alive(d);
	assert_daemon_serves(d, "daemon.first");
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

static void test_help_and_usage_errors(void **state)
{
	struct it_daemon *d = *state;
	char why[64], *out, *err;
	int status;

	{
		char *argv[] = { NULL, "--help", NULL };

		status = run_daemon(d, argv, &out, &err);
		IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ringcastd --help %s",
			  it_status_str(status, why, sizeof(why)));
		IT_ASSERT(strstr(out, "Usage") && strstr(out, "--socket") &&
			  strstr(out, "--runtime-dir") && strstr(out, "--node"),
			  "--help output lacks usage or flags: '%s'", out);
		free(out);
		free(err);
	}
	{
		char *argv[] = { NULL, "--no-such-flag", NULL };

		status = run_daemon(d, argv, &out, &err);
		IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) != 0, "ringcastd --no-such-flag %s",
			  it_status_str(status, why, sizeof(why)));
		IT_ASSERT(err[0] != '\0', "no message for an unknown flag");
		free(out);
		free(err);
	}
}

static void unmount_tiny(struct it_daemon *d)
{
	uint64_t until = it_now_ns() + 3000000000ull;
	int ret;

	it_forget_keeper(d); /* its socket and directory hold the mount */
	/*
	 * The last references of exited processes can take a moment to go
	 * (seen once under ASan on a loaded machine); what this test is
	 * about is -ENOSPC, not how soon a mount can be taken down.
	 */
	while ((ret = umount2(d->rundir, 0)) < 0 && errno == EBUSY && it_now_ns() < until)
		it_sleep_ms(50);
	if (ret < 0 && errno == EBUSY)
		ret = umount2(d->rundir, MNT_DETACH);
	IT_ASSERT(ret == 0, "umount %s: %s", d->rundir, strerror(errno));
	it_untrack_mount(d->rundir);
}

static void test_full_tmpfs(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *rc;
	char why[64];
	int status;

	/*
	 * 256 KiB, as small as the brief's example: the node's bells file
	 * alone is 256 KiB + 64 bytes, so a daemon may refuse to start here.
	 * Either is fine if it is clean: an exit with a message (no signal),
	 * or running with -ENOSPC at subscribe.
	 */
	it_mount_rundir(d, "size=256k,mode=0755");
	it_daemon_spawn(d);
	if (!it_daemon_wait_ready(d, IT_START_TIMEOUT_MS)) {
		if (d->pid > 0)
			IT_FAIL("ringcastd on a 256k tmpfs neither served nor exited");
		status = d->last_status;
		IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) != 0,
			  "ringcastd on a 256k tmpfs %s", it_status_str(status, why, sizeof(why)));
		printf("  256k tmpfs: ringcastd refused to start (%s)\n",
		       it_status_str(status, why, sizeof(why)));
	} else {
		rc = it_open(d);
		IT_ASSERT_ERR(ringcast_subscribe(rc, "full.x"), -ENOSPC);
		it_close(rc);
		IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
		printf("  256k tmpfs: subscribe refused with -ENOSPC\n");
	}
	unmount_tiny(d);

	/* 512 KiB: room for the bells and ctl files, none for a 1 MiB ring. */
	it_mount_rundir(d, "size=512k,mode=0755");
	it_daemon_start(d, "--capacity", "1M", NULL);
	rc = it_open(d);
	IT_ASSERT_ERR(ringcast_subscribe(rc, "full.x"), -ENOSPC);
	IT_ASSERT_ERR(ringcast_broadcast(rc, "full.y", "x", 1), -ENOSPC);
	/* Asking again gets the same clean answer, not a half-made ring. */
	IT_ASSERT_ERR(ringcast_subscribe(rc, "full.x"), -ENOSPC);
	it_assert_daemon_alive(d);
	it_close(rc);
	/* Still serving: a client connects and asks for stats. */
	IT_ASSERT(it_wait_subscribers(d, "full.x", 0, 0, 500) == false,
		  "stat shows a topic whose ring could not be made");
	it_assert_daemon_alive(d);
	status = it_daemon_stop(d);
	IT_ASSERT(status == 0, "ringcastd %s on SIGTERM", it_status_str(status, why, sizeof(why)));
	unmount_tiny(d);
}

/*
 * A publisher holds its ring writable, header included.  Renaming the
 * topic there must not make a restarted daemon adopt the ring under the
 * new name: that would hand it another topic's subscribers and
 * publishers, past the access rules of both.
 */
static void test_renamed_ring_not_adopted(void **state)
{
	struct it_daemon *d = *state;
	static const char forged[] = "secrets.keys";
	struct rc_ring_hdr *h;
	struct ringcast *rc;

	it_daemon_start(d, NULL);
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(rc, "public.x", "hello", 5));
	/* What the publisher of public.x can do with its mapping. */
	h = it_pub_ring(rc, NULL, NULL);
	IT_ASSERT(h, "no mapping of public.x");
	memset(h->meta.topic, 0, sizeof(h->meta.topic));
	memcpy(h->meta.topic, forged, sizeof(forged) - 1);
	h->meta.topic_len = sizeof(forged) - 1;
	it_close(rc);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");

	it_daemon_restart(d);
	IT_ASSERT(!it_has_topic(d, forged), "the restarted daemon adopted a ring renamed to '%s' "
		  "by a client", forged);
	/* The real topic goes on, in a new ring. */
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(rc, "public.x", "again", 5));
	it_close(rc);
	IT_ASSERT(it_has_topic(d, "public.x"), "public.x cannot be used after the restart");
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_malformed_packets, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_request_with_fd, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_unread_replies_hold_few_fds, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_connections_per_uid, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_max_topics, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_sigterm, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_second_daemon, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_help_and_usage_errors, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_renamed_ring_not_adopted, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_full_tmpfs, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_daemon", tests, NULL, NULL);
}
