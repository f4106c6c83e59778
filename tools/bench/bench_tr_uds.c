/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: the plain Unix-domain-socket baseline.  Each publisher
 * listens on a stream socket in the run's directory and accepts one
 * connection per subscriber; a message is written to every subscriber in
 * turn (writev of a 4-byte length and the payload), with blocking writes:
 * nothing is dropped, a slow subscriber holds the publisher back.  A
 * subscriber reads as much as has arrived and cuts it into messages.  A
 * sleeping subscriber with one publisher blocks in read() (the cheapest
 * way to sleep on a socket); with several it blocks in poll().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define UDS_BUF_MIN (256u << 10)

struct uds_pub {
	struct bench_env *env;
	int lfd;
	int *fds;
	unsigned n;
};

struct uds_in {
	int fd;
	unsigned char *buf;
	size_t have; /* bytes in buf */
};

struct uds_sub {
	struct bench_env *env;
	struct uds_in in[BENCH_PUBS_MAX];
	unsigned n;
	size_t cap;
	bool blocking;   /* one publisher, sleeping: read() blocks (SO_RCVTIMEO) */
	int timeout_ms;  /* the SO_RCVTIMEO set now */
	struct pollfd pf[BENCH_PUBS_MAX];
};

static int uds_addr(struct bench_env *env, unsigned pub, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/uds.%u", env->dir, pub) >= sizeof(sa->sun_path)) {
		bench_env_err(env, "socket path in %s is too long", env->dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

static void uds_pub_close(void *p)
{
	struct uds_pub *u = p;

	for (unsigned i = 0; i < u->n; i++)
		close(u->fds[i]);
	if (u->lfd >= 0)
		close(u->lfd);
	free(u->fds);
	free(u);
}

static int uds_pub_open(struct bench_env *env, unsigned pub, void **out)
{
	struct uds_pub *u = calloc(1, sizeof(*u));
	struct sockaddr_un sa;
	int err;

	if (!u || !(u->fds = calloc(env->subs, sizeof(int)))) {
		free(u);
		bench_env_err(env, "allocating");
		return -ENOMEM;
	}
	u->env = env;
	u->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	err = uds_addr(env, pub, &sa);
	if (!err && u->lfd < 0)
		err = -errno;
	if (!err && (bind(u->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(u->lfd, BENCH_SUBS_MAX)))
		err = -errno;
	if (err) {
		if (!env->err[0])
			bench_env_err(env, "listening on %s", sa.sun_path);
		uds_pub_close(u);
		return err;
	}
	*out = u;
	return 0;
}

static int uds_pub_wait_subs(void *p)
{
	struct uds_pub *u = p;
	struct pollfd pf = { .fd = u->lfd, .events = POLLIN };

	while (u->n < u->env->subs) {
		uint64_t now = bench_now_ns();
		int fd;

		if (now >= u->env->deadline_ns) {
			bench_env_err(u->env, "only %u of %u subscribers connected", u->n, u->env->subs);
			return -ETIMEDOUT;
		}
		if (poll(&pf, 1, (int)((u->env->deadline_ns - now) / 1000000) + 1) < 0 && errno != EINTR) {
			bench_env_err(u->env, "poll");
			return -errno;
		}
		/* Accepted sockets are blocking: writes wait for slow subscribers. */
		fd = accept4(u->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			u->fds[u->n++] = fd;
		else if (errno != EAGAIN && errno != EINTR)
			return bench_env_err(u->env, "accept"), -errno;
	}
	return 0;
}

static int write_frame(int fd, uint32_t *hdr, const void *buf, size_t len)
{
	struct iovec iov[2] = { { hdr, sizeof(*hdr) }, { (void *)buf, len } };
	struct iovec *v = iov;
	int cnt = 2;

	while (cnt) {
		ssize_t n = writev(fd, v, cnt);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* A short write (a large message, a full socket buffer): go on from where it stopped. */
		while (cnt && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			cnt--;
		}
		if (cnt) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int uds_pub_send(void *p, const void *buf, size_t len, bool more)
{
	struct uds_pub *u = p;
	uint32_t hdr = (uint32_t)len;

	for (unsigned i = 0; i < u->n; i++) {
		int err = write_frame(u->fds[i], &hdr, buf, len);

		if (err) {
			bench_env_err(u->env, "writing to subscriber connection %u", i);
			return err;
		}
	}
	return 0;
}

static void uds_sub_close(void *p)
{
	struct uds_sub *u = p;

	for (unsigned i = 0; i < u->n; i++) {
		close(u->in[i].fd);
		free(u->in[i].buf);
	}
	free(u);
}

/* Connect, retrying while the publisher is not listening yet. */
static int connect_to(struct bench_env *env, unsigned pub, int *out)
{
	struct sockaddr_un sa;
	int err = uds_addr(env, pub, &sa);

	while (!err) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return bench_env_err(env, "socket"), -errno;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			*out = fd;
			return 0;
		}
		err = -errno;
		close(fd);
		if ((err == -ENOENT || err == -ECONNREFUSED) && bench_now_ns() < env->deadline_ns) {
			nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
			err = 0;
		}
	}
	bench_env_err(env, "connecting to %s", sa.sun_path);
	return err;
}

static int uds_sub_open(struct bench_env *env, unsigned sub, void **out)
{
	struct uds_sub *u = calloc(1, sizeof(*u));
	size_t frame = env->size + sizeof(uint32_t);
	int err = 0;

	if (!u) {
		bench_env_err(env, "allocating");
		return -ENOMEM;
	}
	u->env = env;
	/* Room for at least two whole messages, so one read never has to stop inside a frame for space. */
	u->cap = 2 * frame > UDS_BUF_MIN ? 2 * frame : UDS_BUF_MIN;
	u->blocking = !env->spin && env->pubs == 1;
	for (unsigned i = 0; i < env->pubs && !err; i++) {
		struct uds_in *in = &u->in[i];

		in->buf = malloc(u->cap);
		if (!in->buf) {
			bench_env_err(env, "allocating");
			err = -ENOMEM;
			break;
		}
		err = connect_to(env, i, &in->fd);
		if (err) {
			free(in->buf);
			break;
		}
		u->n++;
		if (!u->blocking && fcntl(in->fd, F_SETFL, O_NONBLOCK)) {
			bench_env_err(env, "fcntl");
			err = -errno;
		}
		u->pf[i] = (struct pollfd){ .fd = in->fd, .events = POLLIN };
	}
	if (err) {
		uds_sub_close(u);
		return err;
	}
	*out = u;
	return 0;
}

/* Deliver the whole frames in in->buf and keep the rest.  The count, or -EBADMSG. */
static int deliver(struct uds_sub *u, struct uds_in *in, bench_rx_fn fn, void *ctx, bool *stop)
{
	size_t off = 0;
	int n = 0;

	while (!*stop && in->have - off >= sizeof(uint32_t)) {
		uint32_t len;

		memcpy(&len, in->buf + off, sizeof(len));
		if (len + sizeof(uint32_t) > u->cap) {
			bench_env_err(u->env, "a frame of %u bytes", len);
			return -EBADMSG;
		}
		if (in->have - off < sizeof(uint32_t) + len)
			break;
		*stop = fn(ctx, in->buf + off + sizeof(uint32_t), len, 0, 0) != 0;
		off += sizeof(uint32_t) + len;
		n++;
	}
	memmove(in->buf, in->buf + off, in->have - off);
	in->have -= off;
	return n;
}

static int uds_sub_recv(void *p, int timeout_ms, bench_rx_fn fn, void *ctx)
{
	struct uds_sub *u = p;
	bool stop = false;
	int total = 0;

	if (u->blocking && timeout_ms != u->timeout_ms) {
		struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };

		if (setsockopt(u->in[0].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
			return bench_env_err(u->env, "SO_RCVTIMEO"), -errno;
		u->timeout_ms = timeout_ms;
	}
	if (!u->blocking && timeout_ms > 0) {
		int n = poll(u->pf, u->n, timeout_ms);

		if (n <= 0)
			return n < 0 && errno != EINTR ? -errno : 0;
	}
	for (unsigned i = 0; i < u->n && !stop; i++) {
		struct uds_in *in = &u->in[i];
		ssize_t got = read(in->fd, in->buf + in->have, u->cap - in->have);
		int n;

		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			bench_env_err(u->env, "reading from publisher %u", i);
			return -errno;
		}
		if (got == 0) {
			bench_env_err(u->env, "publisher %u closed the connection", i);
			return -ECONNRESET;
		}
		in->have += (size_t)got;
		n = deliver(u, in, fn, ctx, &stop);
		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

const struct bench_transport bench_transport_uds = {
	.abi = BENCH_TRANSPORT_ABI,
	.name = "uds",
	.what = "Unix stream sockets, the publisher writes to each subscriber",
	.pub_open = uds_pub_open,
	.pub_wait_subs = uds_pub_wait_subs,
	.pub_send = uds_pub_send,
	.pub_close = uds_pub_close,
	.sub_open = uds_sub_open,
	.sub_recv = uds_sub_recv,
	.sub_close = uds_sub_close,
};
