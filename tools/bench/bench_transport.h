/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: the transport interface.  One bench (bench_run.c) drives
 * every transport with the same publisher and subscriber processes, the
 * same payloads and timestamps, the same histogram and the same report;
 * a transport only moves bytes.
 *
 * ringcast and plain Unix sockets are built into the CLI.  The peers
 * (ZeroMQ, nng, Redis) are shared objects, build/bench-peers/NAME.so,
 * built by `make bench-peers` and loaded with dlopen() on first use, so
 * that `make` and `make check` never need their libraries.  A module
 * defines `const struct bench_transport bench_transport` and includes
 * nothing of the CLI but this header.
 *
 * Life of a run, and who calls what:
 *   parent      setup(env)                    before any fork
 *   subscriber  sub_open(), sub_recv() ..., sub_close()   (forked, N of them)
 *   publisher   pub_open(), pub_wait_subs(), pub_send() ..., pub_close()
 *                                              (forked, P of them)
 *   parent      broker_cpu_ns() around the run, then teardown(env)
 * Subscribers are forked first and may start before their publishers
 * exist: sub_open() must tolerate that (retry, or connect asynchronously)
 * until env->deadline_ns.
 *
 * Every function returns 0 (or a count) or a negative errno, and leaves
 * a sentence in env->err saying what failed.
 */
#ifndef RINGCAST_BENCH_TRANSPORT_H
#define RINGCAST_BENCH_TRANSPORT_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>
#include <time.h>

#define BENCH_TRANSPORT_ABI 2

/* What a transport learns about the run; each process has its own copy. */
struct bench_env {
	const char *socket;    /* ringcastd's socket (NULL: the default rule) */
	const char *topic;     /* ringcast topic; the others derive names from run_id */
	char run_id[48];       /* unique per run on this host: channel and endpoint names */
	char dir[96];          /* a private directory for endpoints, removed after the run */
	size_t size;           /* data payload bytes */
	unsigned subs, pubs;
	bool spin;             /* subscribers busy-poll (sub_recv gets timeout 0) */
	bool zero_copy;        /* ringcast: claim/commit instead of broadcast */
	uint64_t deadline_ns;  /* CLOCK_MONOTONIC: give up opening/connecting after this */
	void *priv;            /* the transport's own, set by setup() */
	char err[160];         /* what failed */
};

/*
 * Called by sub_recv() for each message, in order.  publish_ns and lost
 * are the transport's own (BENCH_TR_HDR_STAMP) or 0.  Returning non-zero
 * asks sub_recv() to return soon; the message counts as handled.
 */
typedef int (*bench_rx_fn)(void *ctx, const void *data, size_t len, uint64_t publish_ns, uint64_t lost);

/* The transport stamps publish_ns and reports losses itself (ringcast's record header). */
#define BENCH_TR_HDR_STAMP 1u
/* May drop messages: publishers re-send their end message until every subscriber is done. */
#define BENCH_TR_LOSSY 2u

struct bench_transport {
	unsigned abi;          /* BENCH_TRANSPORT_ABI */
	const char *name;
	const char *what;      /* one line for --help and the report */
	unsigned flags;        /* BENCH_TR_* */

	/* Parent, before any fork / after every child is reaped.  Optional. */
	int (*setup)(struct bench_env *env);
	void (*teardown)(struct bench_env *env);
	/* Parent: CPU time a broker process has used so far (Redis), or 0.  Optional. */
	uint64_t (*broker_cpu_ns)(struct bench_env *env);

	/* Publisher process number pub (0..pubs-1). */
	int (*pub_open)(struct bench_env *env, unsigned pub, void **out);
	/* Return once every subscriber will receive what is sent next, or -ETIMEDOUT at env->deadline_ns. */
	int (*pub_wait_subs)(void *p);
	/*
	 * Send one message; the transport must not keep buf.  more: another
	 * message follows at once (flat out), so the transport may batch; it
	 * must not hold a message back when more is false.  -EAGAIN: nothing
	 * was sent, try again (a full ring); other errors end the run.
	 */
	int (*pub_send)(void *p, const void *buf, size_t len, bool more);
	/*
	 * Optional (--batch): send msgs[0..n), n >= 2, in order, one
	 * message each, and keep none of them.  Returns how many went (>= 1),
	 * -EAGAIN when none did (try again), or another error.
	 */
	int (*pub_send_many)(void *p, const struct iovec *msgs, unsigned n);
	void (*pub_close)(void *p);

	/* Subscriber process number sub (0..subs-1): connected and subscribed on return. */
	int (*sub_open)(struct bench_env *env, unsigned sub, void **out);
	/*
	 * Deliver what has arrived through fn, waiting up to timeout_ms (0:
	 * don't wait) for the first message.  Returns the number delivered
	 * (0 when none came in time) or a negative errno.
	 */
	int (*sub_recv)(void *s, int timeout_ms, bench_rx_fn fn, void *ctx);
	void (*sub_close)(void *s);
};

/* CLOCK_MONOTONIC in ns: what publish_ns means, for every transport. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Say what failed, in env->err (truncated if need be).  errno is left as it was. */
static inline void bench_env_err(struct bench_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void bench_env_err(struct bench_env *env, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(env->err, sizeof(env->err), fmt, ap);
	va_end(ap);
	errno = saved;
}

#endif /* RINGCAST_BENCH_TRANSPORT_H */
