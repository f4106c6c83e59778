/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench peer: nng pub0/sub0 over ipc://.  pub0 never blocks: when
 * a subscriber's queue is full the message is dropped for it, which the
 * bench counts as lost from the gaps in the publisher's index.  Both
 * queues are set to 1000 messages (NNG_OPT_SENDBUF, NNG_OPT_RECVBUF), like
 * ZeroMQ's default high-water mark, instead of nng's smaller defaults.
 * The publisher counts pipes (NNG_PIPE_EV_ADD_POST) to know that every
 * subscriber is attached; sub0 filters locally, so an attached pipe
 * receives everything sent after.
 *
 * Built only by `make bench-peers`; loaded by ringcast bench.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "bench_transport.h"

#define BATCH 1024 /* messages one sub_recv() hands over at most */
#define QUEUE 1000

struct nconn {
	struct bench_env *env;
	nng_socket s;
	bool open;
	unsigned pipes;   /* publisher: attached subscribers (the pipe callback's thread adds) */
	int timeout_ms;   /* NNG_OPT_RECVTIMEO set now */
};

static int nfail(struct bench_env *env, const char *what, int rv)
{
	bench_env_err(env, "%s: %s", what, nng_strerror(rv));
	return rv == NNG_ETIMEDOUT ? -ETIMEDOUT : rv == NNG_ENOMEM ? -ENOMEM : -EIO;
}

static int url(struct bench_env *env, unsigned pub, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "ipc://%s/nng.%u", env->dir, pub) >= len) {
		bench_env_err(env, "endpoint path too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

static void nclose(void *p)
{
	struct nconn *c = p;

	if (c->open)
		nng_close(c->s);
	free(c);
}

static void on_pipe(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct nconn *c = arg;

	__atomic_add_fetch(&c->pipes, 1, __ATOMIC_RELEASE);
}

/* A connection with a socket of the protocol open_fn opens. */
static int nopen(struct bench_env *env, int (*open_fn)(nng_socket *), const char *what, struct nconn **out)
{
	struct nconn *c = calloc(1, sizeof(*c));
	int rv;

	if (!c) {
		bench_env_err(env, "allocating");
		return -ENOMEM;
	}
	c->env = env;
	c->timeout_ms = -2;
	rv = open_fn(&c->s);
	if (rv) {
		free(c);
		return nfail(env, what, rv);
	}
	c->open = true;
	*out = c;
	return 0;
}

static int npub_open(struct bench_env *env, unsigned pub, void **out)
{
	struct nconn *c;
	char u[160];
	int rv, err;

	err = url(env, pub, u, sizeof(u));
	if (!err)
		err = nopen(env, nng_pub0_open, "nng_pub0_open", &c);
	if (err)
		return err;
	rv = nng_pipe_notify(c->s, NNG_PIPE_EV_ADD_POST, on_pipe, c);
	if (!rv)
		rv = nng_socket_set_int(c->s, NNG_OPT_SENDBUF, QUEUE);
	if (!rv)
		rv = nng_listen(c->s, u, NULL, 0);
	if (rv) {
		nclose(c);
		return nfail(env, u, rv);
	}
	*out = c;
	return 0;
}

static int npub_wait_subs(void *p)
{
	struct nconn *c = p;

	while (__atomic_load_n(&c->pipes, __ATOMIC_ACQUIRE) < c->env->subs) {
		if (bench_now_ns() >= c->env->deadline_ns) {
			bench_env_err(c->env, "only %u of %u subscribers attached", c->pipes, c->env->subs);
			return -ETIMEDOUT;
		}
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return 0;
}

static int npub_send(void *p, const void *buf, size_t len, bool more)
{
	struct nconn *c = p;
	int rv = nng_send(c->s, (void *)buf, len, 0);

	return rv ? nfail(c->env, "nng_send", rv) : 0;
}

static int nsub_open(struct bench_env *env, unsigned sub, void **out)
{
	struct nconn *c;
	int rv, err;

	err = nopen(env, nng_sub0_open, "nng_sub0_open", &c);
	if (err)
		return err;
	rv = nng_socket_set(c->s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	if (!rv)
		rv = nng_socket_set_int(c->s, NNG_OPT_RECVBUF, QUEUE);
	/* Publishers may listen after we dial: retry every 10 ms, not the default 100. */
	if (!rv)
		rv = nng_socket_set_ms(c->s, NNG_OPT_RECONNMINT, 10);
	if (rv) {
		err = nfail(env, "nng_socket_set", rv);
		goto fail;
	}
	for (unsigned i = 0; i < env->pubs; i++) {
		char u[160];

		err = url(env, i, u, sizeof(u));
		if (err)
			goto fail;
		/* Non-blocking: the dialer keeps trying in the background until the listener exists. */
		rv = nng_dial(c->s, u, NULL, NNG_FLAG_NONBLOCK);
		if (rv) {
			err = nfail(env, u, rv);
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	nclose(c);
	return err;
}

static int nsub_recv(void *p, int timeout_ms, bench_rx_fn fn, void *ctx)
{
	struct nconn *c = p;
	int n = 0, flags = timeout_ms > 0 ? 0 : NNG_FLAG_NONBLOCK, rv;
	nng_msg *m;

	if (timeout_ms > 0 && timeout_ms != c->timeout_ms) {
		rv = nng_socket_set_ms(c->s, NNG_OPT_RECVTIMEO, timeout_ms);
		if (rv)
			return nfail(c->env, "NNG_OPT_RECVTIMEO", rv);
		c->timeout_ms = timeout_ms;
	}
	/* Wait for the first as asked, then take what is queued without waiting. */
	while (n < BATCH && (rv = nng_recvmsg(c->s, &m, flags)) == 0) {
		int stop = fn(ctx, nng_msg_body(m), nng_msg_len(m), 0, 0);

		nng_msg_free(m);
		n++;
		flags = NNG_FLAG_NONBLOCK;
		if (stop)
			return n;
	}
	if (n == 0 && rv != NNG_EAGAIN && rv != NNG_ETIMEDOUT && rv != NNG_EINTR)
		return nfail(c->env, "nng_recvmsg", rv);
	return n;
}

const struct bench_transport bench_transport = {
	.abi = BENCH_TRANSPORT_ABI,
	.name = "nng",
	.what = "nng pub0/sub0 over ipc:// (drops when a queue is full)",
	.flags = BENCH_TR_LOSSY,
	.pub_open = npub_open,
	.pub_wait_subs = npub_wait_subs,
	.pub_send = npub_send,
	.pub_close = nclose,
	.sub_open = nsub_open,
	.sub_recv = nsub_recv,
	.sub_close = nclose,
};
