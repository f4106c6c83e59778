/* SPDX-License-Identifier: MIT */
/*
 * ringcastd's event loop: a thin layer over one io_uring, in the spirit of
 * Redis's ae.h.  The daemon does every piece of event I/O (accept, client
 * sockets, timers, signals) through it; there is no select/poll/epoll.
 *
 * Usage: embed a struct rcd_op in the object that owns the operation,
 * rcd_op_init() it with a callback and a ctx, and submit it with one of the
 * rcd_loop_*() calls.  The callback runs from rcd_loop_run() with the
 * completion's result (>= 0, or a negative errno) and flags.  While
 * op->armed is true the kernel may still write into the buffers the
 * operation names, so the owner must not free them (or the op) until it
 * is false.  A multishot operation stays armed while its completions carry
 * RCD_OP_MORE.
 *
 * Errors inside the loop (no free submission entry, a failed wait) go to
 * the log and to loop->errors; they never unwind into callers.  The submit
 * calls still return 0 or a negative errno so an owner can give up on the
 * object (a client whose receive cannot be queued is closed).
 */
#ifndef RINGCASTD_LOOP_H
#define RINGCASTD_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <liburing.h>

struct rcd_log;
struct rcd_loop;
struct rcd_op;

/* Set in a callback's flags when a multishot op will complete again. */
#define RCD_OP_MORE IORING_CQE_F_MORE

typedef void (*rcd_op_fn)(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags);

struct rcd_op {
	rcd_op_fn fn;
	void *ctx;
	bool armed; /* loop: submitted and not yet finally completed */
};

struct rcd_loop {
	struct io_uring ring;
	struct rcd_log *log;
	bool stop;
	unsigned inflight;  /* ops armed */
	uint64_t errors;    /* failures inside the loop */
	uint64_t completions;
};

static inline void rcd_op_init(struct rcd_op *op, rcd_op_fn fn, void *ctx)
{
	op->fn = fn;
	op->ctx = ctx;
	op->armed = false;
}

/* CLOCK_MONOTONIC in nanoseconds: the clock of every daemon timestamp. */
static inline uint64_t rcd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Set up the ring (entries: submission queue size).  0 or negative errno. */
int rcd_loop_init(struct rcd_loop *loop, struct rcd_log *log, unsigned entries);
/* Tear the ring down; the kernel cancels whatever is still armed. */
void rcd_loop_exit(struct rcd_loop *loop);

/*
 * Submit calls.  All return 0, or a negative errno (already logged and
 * counted) when the operation could not be queued; op must not be armed.
 * Buffers (msg and everything it points to, buf) must stay valid while
 * op->armed.
 */
/* Multishot accept: res is a new fd (O_CLOEXEC) or a negative errno. */
int rcd_loop_accept(struct rcd_loop *loop, struct rcd_op *op, int fd);
int rcd_loop_recvmsg(struct rcd_loop *loop, struct rcd_op *op, int fd, struct msghdr *msg);
/* Sent with MSG_NOSIGNAL: a vanished peer is -EPIPE, never SIGPIPE. */
int rcd_loop_sendmsg(struct rcd_loop *loop, struct rcd_op *op, int fd, const struct msghdr *msg);
int rcd_loop_read(struct rcd_loop *loop, struct rcd_op *op, int fd, void *buf, unsigned len);
/*
 * A timer.  repeat: multishot, completing (res -ETIME) every ts until
 * cancelled; the kernel may refuse it (-EINVAL) on kernels before 6.4, and
 * then the callback sees that result without RCD_OP_MORE.  *ts is read
 * when the ring submits, so it must live as long as op.
 */
int rcd_loop_timeout(struct rcd_loop *loop, struct rcd_op *op, struct __kernel_timespec *ts,
		     bool repeat);
/* Ask the kernel to cancel op (its callback then sees -ECANCELED). */
int rcd_loop_cancel(struct rcd_loop *loop, struct rcd_op *op);

/*
 * Run callbacks until rcd_loop_stop().  Returns 0 when stopped, or a
 * negative errno if waiting on the ring itself keeps failing.
 */
int rcd_loop_run(struct rcd_loop *loop);
void rcd_loop_stop(struct rcd_loop *loop);

#endif /* RINGCASTD_LOOP_H */
