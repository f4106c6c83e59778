/* SPDX-License-Identifier: MIT */
/*
 * The io_uring behind loop.h.  Each SQE's user_data is the struct rcd_op
 * that owns it, so a completion finds its callback without a lookup
 * table; SQEs we do not care about (cancel requests) carry user_data 0
 * and their completions are dropped.
 *
 * The ring is set up for one thread (SINGLE_ISSUER) and with deferred task
 * work, so the kernel does completion work only while we wait in
 * io_uring_submit_and_wait(): nothing interrupts a callback.  Older
 * kernels refuse those flags; we then fall back to a plain ring.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "loop.h"

#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6) /* kernel 6.4; liburing 2.3 lacks the name */
#endif

int rcd_loop_init(struct rcd_loop *loop, struct rcd_log *log, unsigned entries)
{
	static const unsigned tries[] = {
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_params p;
	unsigned i;
	int ret = -EINVAL;

	memset(loop, 0, sizeof(*loop));
	loop->log = log;
	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		/* A deep completion queue: multishot accept and timers may
		 * post several completions per submission. */
		p.flags |= IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		ret = io_uring_queue_init_params(entries, &loop->ring, &p);
		if (ret != -EINVAL)
			break;
	}
	if (ret < 0)
		return ret;
	if (!(p.features & IORING_FEAT_NODROP))
		rcd_warn(log, "io_uring: kernel may drop completions on overflow");
	return 0;
}

void rcd_loop_exit(struct rcd_loop *loop)
{
	io_uring_queue_exit(&loop->ring);
}

/*
 * A free SQE, flushing the queue to the kernel once if it is full.  NULL
 * (logged and counted) only if even that fails.
 */
static struct io_uring_sqe *get_sqe(struct rcd_loop *loop, struct rcd_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);

	if (!sqe) {
		io_uring_submit(&loop->ring);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	if (!sqe) {
		loop->errors++;
		rcd_err(loop->log, "io_uring: submission queue full");
		return NULL;
	}
	if (op) {
		op->armed = true;
		loop->inflight++;
	}
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

int rcd_loop_accept(struct rcd_loop *loop, struct rcd_op *op, int fd)
{
	struct io_uring_sqe *sqe = get_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int rcd_loop_recvmsg(struct rcd_loop *loop, struct rcd_op *op, int fd, struct msghdr *msg)
{
	struct io_uring_sqe *sqe = get_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	/* MSG_CMSG_CLOEXEC: should a client send us fds anyway, they are
	 * dropped by the kernel (we pass no control buffer); belt and braces. */
	io_uring_prep_recvmsg(sqe, fd, msg, MSG_CMSG_CLOEXEC);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int rcd_loop_sendmsg(struct rcd_loop *loop, struct rcd_op *op, int fd, const struct msghdr *msg)
{
	struct io_uring_sqe *sqe = get_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int rcd_loop_read(struct rcd_loop *loop, struct rcd_op *op, int fd, void *buf, unsigned len)
{
	struct io_uring_sqe *sqe = get_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, fd, buf, len, 0);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int rcd_loop_timeout(struct rcd_loop *loop, struct rcd_op *op, struct __kernel_timespec *ts,
		     bool repeat)
{
	struct io_uring_sqe *sqe = get_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	/* count 0: expire on time only, never because of other completions */
	io_uring_prep_timeout(sqe, ts, 0, repeat ? IORING_TIMEOUT_MULTISHOT : 0);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int rcd_loop_cancel(struct rcd_loop *loop, struct rcd_op *op)
{
	struct io_uring_sqe *sqe;

	if (!op->armed)
		return 0;
	sqe = get_sqe(loop, NULL);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

void rcd_loop_stop(struct rcd_loop *loop)
{
	loop->stop = true;
}

/* Hand every ready completion to its op's callback. */
static void dispatch(struct rcd_loop *loop)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
		struct rcd_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;

		/* Consume before the callback: it may free op or submit. */
		io_uring_cqe_seen(&loop->ring, cqe);
		if (!op)
			continue;
		loop->completions++;
		if (!(flags & IORING_CQE_F_MORE)) {
			op->armed = false;
			loop->inflight--;
		}
		op->fn(loop, op, res, flags);
	}
}

int rcd_loop_run(struct rcd_loop *loop)
{
	unsigned failures = 0;

	while (!loop->stop) {
		int ret = io_uring_submit_and_wait(&loop->ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY &&
		    ret != -ETIME) {
			loop->errors++;
			rcd_err(loop->log, "io_uring_submit_and_wait: %s", strerror(-ret));
			/* Something is wrong with the ring itself: do not spin
			 * forever logging the same error. */
			if (++failures > 100)
				return ret;
		} else {
			failures = 0;
		}
		dispatch(loop);
	}
	return 0;
}
