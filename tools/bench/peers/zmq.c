/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench peer: ZeroMQ PUB/SUB over ipc://.  The publisher is an
 * XPUB socket with ZMQ_XPUB_NODROP: at the high-water mark (the default,
 * 1000 messages per subscriber) a send blocks instead of dropping, so
 * ZeroMQ loses nothing and is measured as a reliable transport.
 * ZMQ_XPUB_VERBOSE hands the publisher every subscription, one per
 * subscriber, which is how it knows that all are attached.
 *
 * Built only by `make bench-peers`; loaded by ringcast bench.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "bench_transport.h"

#define BATCH 1024 /* messages one sub_recv() hands over at most */

struct zconn {
	struct bench_env *env;
	void *ctx, *sock;
	int timeout_ms; /* ZMQ_RCVTIMEO set now; -2: none yet */
};

static int zfail(struct bench_env *env, const char *what)
{
	int err = errno;

	bench_env_err(env, "%s: %s", what, zmq_strerror(err));
	return err ? -err : -EIO;
}

static int endpoint(struct bench_env *env, unsigned pub, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "ipc://%s/zmq.%u", env->dir, pub) >= len) {
		bench_env_err(env, "endpoint path too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

static void zclose(void *p)
{
	struct zconn *z = p;

	if (z->sock)
		zmq_close(z->sock);
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	free(z);
}

/* A context and a socket of type; every option here is an int. */
static int zopen(struct bench_env *env, int type, struct zconn **out)
{
	struct zconn *z = calloc(1, sizeof(*z));
	int zero = 0;

	if (!z) {
		bench_env_err(env, "allocating");
		return -ENOMEM;
	}
	z->env = env;
	z->timeout_ms = -2;
	z->ctx = zmq_ctx_new();
	if (!z->ctx) {
		free(z);
		return zfail(env, "zmq_ctx_new");
	}
	z->sock = zmq_socket(z->ctx, type);
	/* Closing must not wait for subscribers that are gone. */
	if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero))) {
		int err = zfail(env, "zmq_socket");

		zclose(z);
		return err;
	}
	*out = z;
	return 0;
}

static int zpub_open(struct bench_env *env, unsigned pub, void **out)
{
	char ep[160];
	struct zconn *z;
	int one = 1, err;

	err = endpoint(env, pub, ep, sizeof(ep));
	if (!err)
		err = zopen(env, ZMQ_XPUB, &z);
	if (err)
		return err;
	if (zmq_setsockopt(z->sock, ZMQ_XPUB_NODROP, &one, sizeof(one)) ||
	    zmq_setsockopt(z->sock, ZMQ_XPUB_VERBOSE, &one, sizeof(one)) || zmq_bind(z->sock, ep)) {
		err = zfail(env, ep);
		zclose(z);
		return err;
	}
	*out = z;
	return 0;
}

/* One subscription message (first byte 1) per subscriber. */
static int zpub_wait_subs(void *p)
{
	struct zconn *z = p;
	unsigned seen = 0;

	while (seen < z->env->subs) {
		uint64_t now = bench_now_ns();
		unsigned char msg[64];
		int ms, n;

		if (now >= z->env->deadline_ns) {
			bench_env_err(z->env, "only %u of %u subscribers subscribed", seen, z->env->subs);
			return -ETIMEDOUT;
		}
		ms = (int)((z->env->deadline_ns - now) / 1000000) + 1;
		if (zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &ms, sizeof(ms)))
			return zfail(z->env, "ZMQ_RCVTIMEO");
		n = zmq_recv(z->sock, msg, sizeof(msg), 0);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return zfail(z->env, "receiving subscriptions");
		if (n >= 1 && msg[0] == 1)
			seen++;
	}
	return 0;
}

static int zpub_send(void *p, const void *buf, size_t len, bool more)
{
	struct zconn *z = p;

	/* Blocking: with XPUB_NODROP a full queue waits here instead of dropping. */
	while (zmq_send(z->sock, buf, len, 0) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return -EAGAIN;
		return zfail(z->env, "zmq_send");
	}
	return 0;
}

static int zsub_open(struct bench_env *env, unsigned sub, void **out)
{
	struct zconn *z;
	int ivl = 10, err;

	err = zopen(env, ZMQ_SUB, &z);
	if (err)
		return err;
	/* Publishers may bind after we connect: retry every 10 ms, not the default 100. */
	if (zmq_setsockopt(z->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) ||
	    zmq_setsockopt(z->sock, ZMQ_SUBSCRIBE, "", 0)) {
		err = zfail(env, "zmq_setsockopt");
		goto fail;
	}
	for (unsigned i = 0; i < env->pubs; i++) {
		char ep[160];

		err = endpoint(env, i, ep, sizeof(ep));
		if (!err && zmq_connect(z->sock, ep))
			err = zfail(env, ep);
		if (err)
			goto fail;
	}
	*out = z;
	return 0;
fail:
	zclose(z);
	return err;
}

static int zsub_recv(void *p, int timeout_ms, bench_rx_fn fn, void *ctx)
{
	struct zconn *z = p;
	zmq_msg_t m;
	int n = 0, flags = timeout_ms > 0 ? 0 : ZMQ_DONTWAIT;

	if (timeout_ms > 0 && timeout_ms != z->timeout_ms) {
		if (zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms)))
			return zfail(z->env, "ZMQ_RCVTIMEO");
		z->timeout_ms = timeout_ms;
	}
	zmq_msg_init(&m);
	/* Wait for the first as asked, then take what is queued without waiting. */
	while (n < BATCH && zmq_msg_recv(&m, z->sock, flags) >= 0) {
		n++;
		flags = ZMQ_DONTWAIT;
		if (fn(ctx, zmq_msg_data(&m), zmq_msg_size(&m), 0, 0))
			break;
	}
	if (n == 0 && errno != EAGAIN && errno != EINTR) {
		zmq_msg_close(&m);
		return zfail(z->env, "zmq_msg_recv");
	}
	zmq_msg_close(&m);
	return n;
}

const struct bench_transport bench_transport = {
	.abi = BENCH_TRANSPORT_ABI,
	.name = "zmq",
	.what = "ZeroMQ XPUB(NODROP)/SUB over ipc://",
	.pub_open = zpub_open,
	.pub_wait_subs = zpub_wait_subs,
	.pub_send = zpub_send,
	.pub_close = zclose,
	.sub_open = zsub_open,
	.sub_recv = zsub_recv,
	.sub_close = zclose,
};
