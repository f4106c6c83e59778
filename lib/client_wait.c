/* SPDX-License-Identifier: MIT */
/*
 * Sleeping until there is work.  A client has one doorbell, a futex word
 * in the node's bells file, for all of its topics.  To sleep it arms the
 * bell, counts itself in every subscribed ring's sleepers, looks at the
 * rings once more, and only then waits on the futex.  A publisher commits
 * and then reads sleepers (ring_pub.h); either it sees us and rings, or
 * we see its record: no wake-up is lost, and a publisher whose
 * subscribers are all awake makes no system call.
 *
 * ringcast_fd() runs the same wait as an IORING_OP_FUTEX_WAIT in a
 * private io_uring, whose fd is readable when a completion is posted;
 * when there is already work it posts a NOP instead, so the fd is
 * level-triggered as callers expect.
 *
 * Every sleep is bounded.  The process that should ring us may be killed
 * at any instruction, or be hostile: one that took us off a ring's count
 * and never rang would leave us asleep while data flows, since later
 * publishers see no sleeper.  The publishers' order (ring_pub.c,
 * rc_ring_wake) leaves no such window, but our sleep must not depend on
 * every other process running that code to its end.  So ringcast_wait()
 * sleeps at most RC_SLEEP_SLICE_NS at a time and then looks at the rings
 * itself, whatever its timeout (-1 too), and the fd's FUTEX_WAIT carries
 * a linked timeout of RC_FD_SLICE_NS, after which the fd turns readable
 * and the caller's ringcast_poll() looks.  A slice costs an idle sleeper
 * one wake-up; the fd's is longer, because each of its slices shows in
 * the caller's event loop as a readiness with nothing to read.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <liburing.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "client.h"

#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51 /* Linux 6.7; Debian 12's headers predate it */
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX_BITSET_MATCH_ANY
#define FUTEX_BITSET_MATCH_ANY 0xffffffff
#endif

/* How long a sleeper without the heavy fence trusts no bell. */
#define RC_UNFENCED_SLICE_NS 1000000
/* The longest ringcast_wait() sleeps before it looks at the rings itself. */
#define RC_SLEEP_SLICE_NS 100000000
/* The same for ringcast_fd(): a slice that ends makes the fd readable. */
#define RC_FD_SLICE_NS 1000000000

static _Atomic uint32_t *bell_word(struct ringcast *rc)
{
	return &rc->bells->bells[rc->bell].word;
}

/* Arm the bell and count in every ring; returns 1 if work arrived meanwhile. */
static int arm(struct ringcast *rc)
{
	size_t i;

	/*
	 * Armed before we count in any ring: a publisher that sees the count
	 * finds the bell armed (or rung) and rings it.  An exchange, not a
	 * store: if it replaces a RUNG (a publisher rang an arming of
	 * ringcast_fd()'s, or one of ours it saw before we woke), it reads
	 * from that publisher's CAS, so our re-check below sees the record
	 * the publisher rang for.
	 */
	atomic_exchange(bell_word(rc), RC_BELL_ARMED);
	for (i = 0; i < rc->n_subs; i++) {
		struct rc_topic *t = rc->subs[i];

		/*
		 * The first sleep on a ring makes its publishers fence their
		 * commits (fence.c).  If that fails, sleep in short slices
		 * instead of trusting the bell.
		 */
		if (!t->sleep_enabled) {
			if (rc_ring_sleep_enable(&t->sub) < 0)
				rc->fence_ok = false;
			t->sleep_enabled = true;
		}
		rc_ring_sleep_prepare(&t->sub);
	}
	return rc_client_has_work(rc);
}

static void disarm(struct ringcast *rc)
{
	size_t i;

	for (i = 0; i < rc->n_subs; i++)
		rc_ring_sleep_finish(&rc->subs[i]->sub);
	rc_store_relaxed(bell_word(rc), RC_BELL_IDLE);
}

/*
 * ringcast_fd()'s state.  rc->uring points at ring, the first member, so
 * client.h knows no more of it than struct io_uring.  Every SQE we submit
 * posts exactly one CQE (none is multishot), so inflight says how many
 * completions are still to come: a reap waits for exactly those.
 */
struct rc_fd {
	struct io_uring ring;
	unsigned inflight; /* submitted, completion not reaped yet */
	bool armed;        /* the pending wait counts in our rings (arm()) */
};

/* user_data of our SQEs: only for reading a trace of the ring. */
enum { RC_FD_WORK = 1, RC_FD_WAIT, RC_FD_SLICE, RC_FD_CANCEL };

static struct rc_fd *fd_of(struct ringcast *rc)
{
	return (struct rc_fd *)rc->uring;
}

/*
 * ringcast_wait() is done sleeping.  While ringcast_fd()'s wait is armed
 * (rc_fd.armed) it shares our arming: the same bell and one count per
 * ring (rc_ring_sleep_prepare counts once).  Disarming would leave that
 * wait in the kernel with no publisher to ring it, so we leave it armed;
 * the next ringcast_poll() reaps the fd's wait and disarms.
 */
static void wait_disarm(struct ringcast *rc)
{
	if (!rc->uring || !fd_of(rc)->armed)
		disarm(rc);
}

int ringcast_wait(struct ringcast *rc, int timeout_ms)
{
	uint64_t deadline = 0, now;
	int ret = 0;

	if (!rc)
		return -EINVAL;
	if (timeout_ms >= 0)
		deadline = rc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	rc_client_check_daemon(rc);
	if (rc_client_has_work(rc))
		return 0;
	/*
	 * Yield once before arming.  With more runnable tasks than CPUs, the
	 * task we preempted when we were last woken is often the publisher:
	 * letting it run on fills the ring, and we come back to a batch
	 * instead of being woken for every record (docs/benchmarks.md,
	 * Findings 3: 16 sleeping subscribers went from 3 M to over 50 M
	 * deliveries/s).  With nothing else runnable it returns at once.
	 */
	sched_yield();
	for (;;) {
		/* Bounded even with no deadline: see the top of this file. */
		uint64_t sleep_ns = rc->fence_ok ? RC_SLEEP_SLICE_NS : RC_UNFENCED_SLICE_NS;
		struct timespec ts;

		if (rc_client_has_work(rc))
			return 0;
		if (arm(rc)) {
			wait_disarm(rc);
			return 0;
		}
		if (deadline) {
			now = rc_now_ns();
			if (now >= deadline) {
				wait_disarm(rc);
				return -ETIMEDOUT;
			}
			if (deadline - now < sleep_ns)
				sleep_ns = deadline - now;
		}
		ts.tv_sec = (time_t)(sleep_ns / 1000000000ull);
		ts.tv_nsec = (long)(sleep_ns % 1000000000ull);
		/* Not FUTEX_PRIVATE: publishers in other processes wake us. */
		ret = (int)syscall(SYS_futex, (uint32_t *)bell_word(rc), FUTEX_WAIT, RC_BELL_ARMED,
				   &ts, NULL, 0);
		ret = ret < 0 ? -errno : 0;
		wait_disarm(rc);
		if (ret < 0 && ret != -EAGAIN && ret != -EINTR && ret != -ETIMEDOUT)
			return ret;
		/* The loop re-checks the work and the deadline. */
		rc_client_check_daemon(rc);
	}
}

static int fd_submit(struct ringcast *rc, bool work)
{
	static const struct __kernel_timespec unfenced = { 0, RC_UNFENCED_SLICE_NS };
	static const struct __kernel_timespec slice = { RC_FD_SLICE_NS / 1000000000,
							 RC_FD_SLICE_NS % 1000000000 };
	struct rc_fd *f = fd_of(rc);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring), *link = NULL;
	int ret, n = 1;

	if (!sqe)
		return -EBUSY;
	if (work) {
		io_uring_prep_nop(sqe);
	} else if (!rc->fence_ok) {
		/* No heavy fence, no trusted bell: look again after a slice. */
		io_uring_prep_timeout(sqe, (struct __kernel_timespec *)&unfenced, 0, 0);
	} else {
		link = io_uring_get_sqe(&f->ring);
		if (!link) {
			io_uring_prep_nop(sqe); /* cannot happen (4 entries, 2 used): fail safe */
			work = true;
		} else {
			/* FUTEX_WAIT: fd = futex2 flags, addr = word, addr2 = value, addr3 = mask. */
			io_uring_prep_rw(IORING_OP_FUTEX_WAIT, sqe, FUTEX2_SIZE_U32, bell_word(rc),
					 0, RC_BELL_ARMED);
			sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
			/*
			 * Bounded (the top of this file): the linked timeout
			 * cancels the wait after the slice.  Either way both
			 * post a completion, so n = 2 in flight.
			 */
			sqe->flags |= IOSQE_IO_LINK;
			io_uring_prep_link_timeout(link, (struct __kernel_timespec *)&slice, 0);
			link->user_data = RC_FD_SLICE;
			n = 2;
		}
	}
	sqe->user_data = work ? RC_FD_WORK : RC_FD_WAIT;
	ret = io_uring_submit(&f->ring);
	if (ret > 0)
		f->inflight += (unsigned)ret;
	f->armed = !work && ret > 0;
	rc->uring_pending = f->inflight > 0;
	return ret == n ? 0 : ret < 0 ? ret : -EIO;
}

void rc_client_fd_rearm(struct ringcast *rc)
{
	if (!rc->uring || rc->uring_pending)
		return;
	if (rc_client_has_work(rc)) {
		fd_submit(rc, true);
		return;
	}
	if (arm(rc)) {
		disarm(rc);
		fd_submit(rc, true);
		return;
	}
	if (fd_submit(rc, false) < 0 && !rc->uring_pending)
		disarm(rc); /* nothing waits on the arming; the next poll tries again */
}

/* Count the completions already posted. */
static void fd_drain(struct rc_fd *f)
{
	struct io_uring_cqe *cqe;

	while (f->inflight && io_uring_peek_cqe(&f->ring, &cqe) == 0) {
		io_uring_cqe_seen(&f->ring, cqe);
		f->inflight--;
	}
}

/*
 * Cancel whatever is still in flight (the FUTEX_WAIT and its linked
 * timeout, or the unfenced slice's timeout) with io_uring's own cancel.
 * Not by ringing our bell: after a reconnect rc->bell may be another
 * word, in another bells file, than the one the wait sleeps on, and
 * ringing it wakes nothing.  The cancel posts its own completion
 * (-ENOENT if the wait completed meanwhile).
 */
static int fd_cancel(struct rc_fd *f)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
	int ret;

	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	sqe->user_data = RC_FD_CANCEL;
	ret = io_uring_submit(&f->ring);
	if (ret > 0)
		f->inflight += (unsigned)ret;
	return ret == 1 ? 0 : ret < 0 ? ret : -EIO;
}

void rc_client_fd_reap(struct ringcast *rc)
{
	struct rc_fd *f = fd_of(rc);
	struct io_uring_cqe *cqe;
	int ret;

	if (!f || !rc->uring_pending)
		return;
	fd_drain(f);
	/* Without the cancel we wait for the wait itself (a ring, or its slice). */
	if (f->inflight)
		fd_cancel(f);
	while (f->inflight) {
		ret = io_uring_wait_cqe(&f->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return; /* still pending: the next reap tries again */
		io_uring_cqe_seen(&f->ring, cqe);
		f->inflight--;
	}
	rc->uring_pending = false;
	f->armed = false;
	disarm(rc);
}

int ringcast_fd(struct ringcast *rc)
{
	struct io_uring_probe *probe;
	struct rc_fd *f;
	int ret;

	if (!rc)
		return -EINVAL;
	if (rc->uring)
		return rc->uring->ring_fd;
	probe = io_uring_get_probe();
	if (!probe)
		return -EOPNOTSUPP;
	ret = io_uring_opcode_supported(probe, IORING_OP_FUTEX_WAIT);
	io_uring_free_probe(probe);
	if (!ret)
		return -EOPNOTSUPP;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	ret = io_uring_queue_init(4, &f->ring, 0);
	if (ret < 0) {
		free(f);
		return ret;
	}
	rc->uring = &f->ring;
	rc_client_fd_rearm(rc);
	return f->ring.ring_fd;
}

void rc_client_fd_free(struct ringcast *rc)
{
	struct rc_fd *f = fd_of(rc);

	if (!f)
		return;
	if (rc->uring_pending)
		rc_client_fd_reap(rc);
	io_uring_queue_exit(&f->ring);
	free(f);
	rc->uring = NULL;
}
