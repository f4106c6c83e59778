/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: the ringcast transport.  Each process opens its own
 * struct ringcast.  A subscriber starts at the ring's tail when it
 * subscribes, and it subscribes before it says ready, so a publisher has
 * nothing to wait for.  The record header carries publish_ns (stamped by
 * the library just before its claim) and the loss count.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

struct rc_conn {
	struct ringcast *rc;
	struct bench_env *env;
	const char *topic;
	bench_rx_fn fn;
	void *ctx;
};

static int open_conn(struct bench_env *env, struct rc_conn **out)
{
	struct rc_conn *c = calloc(1, sizeof(*c));
	int err;

	if (!c) {
		bench_env_err(env, "allocating");
		return -ENOMEM;
	}
	c->env = env;
	c->topic = env->topic;
	err = ringcast_open(&c->rc, env->socket);
	if (err) {
		bench_env_err(env, "connecting to ringcastd at %s", cli_socket_name(env->socket));
		free(c);
		return err;
	}
	*out = c;
	return 0;
}

static void close_conn(void *p)
{
	struct rc_conn *c = p;

	ringcast_close(c->rc);
	free(c);
}

static int rc_pub_open(struct bench_env *env, unsigned pub, void **out)
{
	size_t end = bench_end_len(env->size), need = env->size > end ? env->size : end;
	struct rc_conn *c;
	long max;
	int err;

	err = open_conn(env, &c);
	if (err)
		return err;
	max = ringcast_max_msg(c->rc, c->topic);
	if (max < 0 || (size_t)max < need) {
		if (max < 0)
			bench_env_err(env, "cannot learn the largest message of '%s'", c->topic);
		else
			bench_env_err(env, "--size %zu does not fit topic '%s' (at most %ld bytes%s): give it a larger "
				      "capacity", env->size, c->topic, max,
				      env->size <= (size_t)max ? ", with room for the end message" : "");
		close_conn(c);
		return max < 0 ? (int)max : -EMSGSIZE;
	}
	*out = c;
	return 0;
}

static int rc_pub_wait_subs(void *p)
{
	return 0;
}

/* Zero-copy writes in place only what the subscribers read: the stamp at both ends. */
static __attribute__((noinline)) int rc_pub_send_zero_copy(struct rc_conn *c, const void *buf, size_t len)
{
	struct ringcast_claim claim;
	int err;

	err = ringcast_claim(c->rc, c->topic, len, &claim);
	if (err)
		return err;
	if (len <= 24) {
		memcpy(claim.data, buf, len);
	} else {
		memcpy(claim.data, buf, 8);
		memcpy((char *)claim.data + len - 8, (const char *)buf + len - 8, 8);
	}
	return ringcast_commit(&claim);
}

/* Kept apart from the zero-copy path, whose frame would otherwise be every send's. */
static int rc_pub_send(void *p, const void *buf, size_t len, bool more)
{
	struct rc_conn *c = p;

	(void)more;
	if (c->env->zero_copy)
		return rc_pub_send_zero_copy(c, buf, len);
	return ringcast_broadcast(c->rc, c->topic, buf, len);
}

static int rc_pub_send_many(void *p, const struct iovec *msgs, unsigned n)
{
	struct rc_conn *c = p;

	return ringcast_broadcast_many(c->rc, c->topic, msgs, n);
}

static int rc_sub_open(struct bench_env *env, unsigned sub, void **out)
{
	struct rc_conn *c;
	int err;

	err = open_conn(env, &c);
	if (err)
		return err;
	err = ringcast_subscribe(c->rc, c->topic);
	if (err) {
		bench_env_err(env, "subscribing to '%s'", c->topic);
		close_conn(c);
		return err;
	}
	*out = c;
	return 0;
}

static int handler(const struct ringcast_msg *m, void *arg)
{
	struct rc_conn *c = arg;

	return c->fn(c->ctx, m->data, m->len, m->publish_ns, m->lost);
}

static int rc_sub_recv(void *p, int timeout_ms, bench_rx_fn fn, void *ctx)
{
	struct rc_conn *c = p;
	int n, err;

	c->fn = fn;
	c->ctx = ctx;
	n = ringcast_poll(c->rc, handler, c, 0);
	if (n != 0 || timeout_ms <= 0)
		goto out;
	err = ringcast_wait(c->rc, timeout_ms);
	if (err == -ETIMEDOUT)
		return 0;
	if (err) {
		bench_env_err(c->env, "waiting (ringcast_wait)");
		return err;
	}
	n = ringcast_poll(c->rc, handler, c, 0);
out:
	if (n < 0)
		bench_env_err(c->env, "receiving (ringcast_poll)");
	return n;
}

const struct bench_transport bench_transport_ringcast = {
	.abi = BENCH_TRANSPORT_ABI,
	.name = "ringcast",
	.what = "ringcast shared-memory topic ring",
	/* Untethered subscribers can be lapped: they are told, and may miss an end message. */
	.flags = BENCH_TR_HDR_STAMP | BENCH_TR_LOSSY,
	.pub_open = rc_pub_open,
	.pub_wait_subs = rc_pub_wait_subs,
	.pub_send = rc_pub_send,
	.pub_send_many = rc_pub_send_many,
	.pub_close = close_conn,
	.sub_open = rc_sub_open,
	.sub_recv = rc_sub_recv,
	.sub_close = close_conn,
};
