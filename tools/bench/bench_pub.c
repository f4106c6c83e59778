/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: one publisher process.  It opens the transport, waits
 * until every subscriber is attached, says ready, and on go sends its
 * share of the messages, flat out or paced, then its end message.  It
 * reports when the coordinator closes the go pipe (every subscriber is
 * done); until then, on a transport that may drop, it re-sends the end
 * message so that a subscriber that lost it still finishes.
 *
 * Its cost per message, publisher_ns_per_msg:
 *   flat out   the process's CPU time from go to the report (helper
 *              threads such as ZeroMQ's and nng's I/O threads count),
 *              less what it burnt retrying on a full ring: the other
 *              transports sleep when they must wait, so waiting is not a
 *              cost of sending.
 *   paced      the publishing thread's CPU time inside the send calls
 *              (not the pacing, spun or slept, nor the time a woken subscriber
 *              preempts it), plus the CPU of the process's other threads.
 *              The thread's CPU clock is a system call (over a
 *              microsecond on a VM), so at high rates only every 8th call
 *              is timed, and the clock's own cost is taken off: empty
 *              brackets timed at the same point of the loop, under the
 *              same conditions (a cold cache after the pacing costs the
 *              clock more than a hot loop would).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "pipe_io.h"

/* Give up when a send has been refused (ring full) for this long in a row. */
#define STALL_NS (10ull * 1000000000)
/* How often an end message is re-sent on a lossy transport. */
#define END_RESEND_MS 100
/*
 * Paced: time every SAMPLE_EVERY-th send call, or every one when messages
 * are at least SAMPLE_ALL_NS apart (four clock calls are then a few
 * percent of the interval, and more samples beat the clock's jitter).
 */
#define SAMPLE_EVERY 8
#define SAMPLE_ALL_NS 200000
/* Paced by sleep: the longest nap, so that a Ctrl-C (live->stop) is seen within it. */
#define PACE_NAP_MAX_NS 50000000ull

struct pub_state {
	const struct bench_cfg *cfg;
	const struct bench_transport *tr;
	struct bench_env *env;
	struct bench_live *live;
	void *p;
	unsigned idx;
	uint64_t wait_cpu;   /* thread CPU spent retrying on a full ring */
	bool pace_sleep;     /* paced: sleep to each message's time (else spin) */
	struct bench_pub_report rep;
};

static uint64_t clock_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * CPU time of the process's other threads (helper threads: ZeroMQ's and
 * nng's I/O) since the process and thread clocks read cpu0 and tcpu0.
 * The thread clock is read first, so that a lone thread never looks as if
 * it used more than its process; never below 0.
 */
static uint64_t other_threads_cpu(uint64_t cpu0, uint64_t tcpu0)
{
	uint64_t t = clock_of(CLOCK_THREAD_CPUTIME_ID) - tcpu0;
	uint64_t p = clock_of(CLOCK_PROCESS_CPUTIME_ID) - cpu0;

	return p > t ? p - t : 0;
}

/* One try at msgs[0..n): one message through pub_send, more through pub_send_many.  How many went, or an error. */
static int send_some(struct pub_state *s, const struct iovec *msgs, unsigned n, bool more)
{
	int ret;

	if (n > 1)
		return s->tr->pub_send_many(s->p, msgs, n);
	ret = s->tr->pub_send(s->p, msgs->iov_base, msgs->iov_len, more);
	return ret < 0 ? ret : 1;
}

/*
 * The transport said -EAGAIN (a full ring): retry msgs[0..n) until it
 * takes some or STALL_NS pass.  Nothing is dropped here.  How many went,
 * or an error.
 */
static __attribute__((noinline)) int send_refused(struct pub_state *s, const struct iovec *msgs,
						  unsigned n, bool more)
{
	uint64_t first_refusal = now_ns(), cpu0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
	int ret = -EAGAIN;

	do {
		s->rep.retries++;
		if (now_ns() - first_refusal > STALL_NS)
			break;
		/* Subscribers may share our CPU: let them drain. */
		sched_yield();
		ret = send_some(s, msgs, n, more);
	} while (ret == -EAGAIN);
	s->wait_cpu += clock_of(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	return ret;
}

/* Send, retrying while the transport refuses; inline, since it runs for every message. */
static inline int send_retry(struct pub_state *s, const void *buf, size_t len, bool more)
{
	int err = s->tr->pub_send(s->p, buf, len, more);

	if (err == -EAGAIN) {
		struct iovec v = { (void *)buf, len };

		err = send_refused(s, &v, 1, more);
	}
	return err < 0 ? err : 0;
}

/* --batch: send msgs[0..n) through pub_send_many, retrying what the transport refuses. */
static int send_batch(struct pub_state *s, const struct iovec *msgs, unsigned n)
{
	while (n) {
		int ret = send_some(s, msgs, n, true);

		if (ret == -EAGAIN)
			ret = send_refused(s, msgs, n, true);
		if (ret < 0)
			return ret;
		msgs += ret;
		n -= (unsigned)ret;
		s->rep.sent += (unsigned)ret;
	}
	return 0;
}

static int send_end(struct pub_state *s)
{
	unsigned char msg[24] = { 0 };

	bench_put_u64(msg, BENCH_END_MAGIC);
	bench_put_u64(msg + 8, bench_tag(s->idx, s->rep.sent));
	return send_retry(s, msg, bench_end_len(s->cfg->size), false);
}

static uint64_t share(uint64_t total, unsigned n, unsigned i)
{
	return total / n + (i < total % n);
}

/*
 * Paced by sleep: sleep until due, or at most PACE_NAP_MAX_NS.  due is on
 * the node clock, which follows CLOCK_MONOTONIC to a few ns (lib/clock.c):
 * a wake-up that the node clock still finds early only costs pace()
 * another turn.
 */
static void nap(uint64_t due, uint64_t now)
{
	uint64_t until = due - now > PACE_NAP_MAX_NS ? now + PACE_NAP_MAX_NS : due;
	struct timespec ts = { (time_t)(until / 1000000000ull), (long)(until % 1000000000ull) };

	/* EINTR only ends this nap early; the caller's loop sleeps on. */
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/*
 * Paced: wait until due, the time of the next message, spinning on the
 * clock or asleep (s->pace_sleep; bench.h says which when).  false when
 * the coordinator says stop (Ctrl-C) first.  The flag is read on every
 * turn: at a few messages a second, the flat-out loop's look every 64
 * messages would come minutes late, and a relaxed load of a line nobody
 * writes until then costs the spin nothing.
 */
static bool pace(const struct pub_state *s, uint64_t due, uint64_t *now)
{
	for (;;) {
		if (__atomic_load_n(&s->live->stop, __ATOMIC_RELAXED))
			return false;
		*now = bench_clock_ns(s->cfg);
		if (*now >= due)
			return true;
		if (s->pace_sleep)
			nap(due, *now);
		else
			bench_relax();
	}
}

/* The sending loop.  0, or a negative errno with rep.what set.  batch: cfg->batch buffers of cfg->size. */
static int publish(struct pub_state *s, void *buf, struct iovec *batch)
{
	const struct bench_cfg *cfg = s->cfg;
	bool hdr = s->tr->flags & BENCH_TR_HDR_STAMP;
	uint64_t count = cfg->count ? share(cfg->count, cfg->pubs, s->idx) : 0;
	uint64_t end_at = UINT64_MAX, in_calls = 0, samples = 0, brackets = 0, n_brackets = 0, now, cpu0, tcpu0;
	/* This publisher's share of --rate: one message every pubs/rate seconds. */
	uint64_t rate_num = (uint64_t)cfg->pubs * 1000000000ull;
	/*
	 * Often enough that the coordinator sees progress (or it fails the
	 * run as stalled) even at a few large messages a second; paced, every
	 * message, since 1024 of them may take longer than its patience.
	 */
	uint64_t live_mask = cfg->size >= 4096 || cfg->rate ? 0 : 1023;
	unsigned every = cfg->rate && rate_num / cfg->rate >= SAMPLE_ALL_NS ? 1 : SAMPLE_EVERY;
	int err = 0;

	s->pace_sleep = bench_pace_sleeps(cfg);
	/*
	 * The default timer slack lets a sleep end up to 50 us late, half
	 * the interval at 10k msg/s; 1 ns asks for the timer's own precision.
	 */
	if (s->pace_sleep)
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	cpu0 = clock_of(CLOCK_PROCESS_CPUTIME_ID);
	tcpu0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
	s->rep.start_ns = now = bench_clock_ns(cfg);
	if (cfg->duration_ns)
		end_at = s->rep.start_ns + cfg->duration_ns;
	for (uint64_t i = 0, b = 1; !count || i < count; i += b) {
		/*
		 * Flat out: reading the flag and the clock every message would
		 * be part of what we measure.  Every 64 messages, or batch.
		 */
		if (!cfg->rate && (i & 63) < b) {
			if (__atomic_load_n(&s->live->stop, __ATOMIC_RELAXED))
				break;
			if (end_at != UINT64_MAX && bench_clock_ns(cfg) >= end_at)
				break;
		}
		if (cfg->rate) {
			/* Absolute schedule: a late message goes at once, keeping the average. */
			uint64_t due = s->rep.start_ns + (uint64_t)((unsigned __int128)i * rate_num / cfg->rate);
			bool sample = i % every == 0, empty = every == 1 || i % every == every / 2;
			uint64_t c0 = 0, w0 = s->wait_cpu;

			/* A slot at or past the end of --duration is never sent: no waiting for it. */
			if (due >= end_at || !pace(s, due, &now) || now >= end_at)
				break;
			if (empty) {
				c0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
				brackets += clock_of(CLOCK_THREAD_CPUTIME_ID) - c0;
				n_brackets++;
			}
			if (sample)
				c0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
			/* The peers' stamp is read after the clocks above, just before the call, like ringcast's. */
			bench_stamp(buf, cfg->size, hdr, s->idx, i, hdr ? 0 : sample || empty ? bench_clock_ns(cfg) : now);
			err = send_retry(s, buf, cfg->size, false);
			if (sample) {
				in_calls += clock_of(CLOCK_THREAD_CPUTIME_ID) - c0 - (s->wait_cpu - w0);
				samples++;
			}
		} else if (cfg->batch > 1) {
			b = count && count - i < cfg->batch ? count - i : cfg->batch;
			for (unsigned k = 0; k < b; k++)
				bench_stamp(batch[k].iov_base, cfg->size, hdr, s->idx, i + k,
					    hdr ? 0 : bench_clock_ns(cfg));
			/* It counts what went, even when the rest fails. */
			err = send_batch(s, batch, (unsigned)b);
			if (err)
				break;
		} else {
			bench_stamp(buf, cfg->size, hdr, s->idx, i, hdr ? 0 : bench_clock_ns(cfg));
			err = send_retry(s, buf, cfg->size, !count || i + 1 < count);
		}
		if (err)
			break;
		if (cfg->batch <= 1) /* send_batch() counts its own */
			s->rep.sent++;
		if ((i & live_mask) < b)
			bench_live_set(&s->live->sent[s->idx], s->rep.sent);
	}
	bench_live_set(&s->live->sent[s->idx], s->rep.sent);
	if (!err) {
		err = send_end(s);
		if (err)
			bench_env_err(s->env, "sending the end message");
	} else if (err == -EAGAIN) {
		bench_env_err(s->env, "sending stalled for %llu s after %llu messages: a subscriber stopped reading",
			      STALL_NS / 1000000000, (unsigned long long)s->rep.sent);
	} else if (!s->env->err[0]) {
		bench_env_err(s->env, "sending failed after %llu messages", (unsigned long long)s->rep.sent);
	}
	s->rep.end_ns = bench_clock_ns(cfg);
	if (err)
		return err;
	if (cfg->rate) {
		/* The timed calls' mean less the empty brackets' mean, plus other threads' CPU. */
		double call = samples ? (double)in_calls / (double)samples : 0;

		if (n_brackets)
			call -= (double)brackets / (double)n_brackets;
		s->rep.cost_ns = (call > 0 ? (uint64_t)(call * (double)s->rep.sent) : 0) + other_threads_cpu(cpu0, tcpu0);
	} else {
		uint64_t cpu = clock_of(CLOCK_PROCESS_CPUTIME_ID) - cpu0;

		s->rep.cost_ns = cpu > s->wait_cpu ? cpu - s->wait_cpu : 0;
	}
	/* linger() adds what helper threads do after this (flushing queues). */
	return 0;
}

/* Until the coordinator closes the go pipe; re-send the end where messages may be dropped. */
static void linger(struct pub_state *s, int go_fd)
{
	struct pollfd pf = { .fd = go_fd, .events = POLLIN };
	uint64_t cpu0 = clock_of(CLOCK_PROCESS_CPUTIME_ID), tcpu0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
	unsigned char end[24] = { 0 };
	int n;

	bench_put_u64(end, BENCH_END_MAGIC);
	bench_put_u64(end + 8, bench_tag(s->idx, s->rep.sent));
	while ((n = poll(&pf, 1, END_RESEND_MS)) <= 0) {
		if (n < 0 && errno != EINTR)
			break;
		/* One try each time: a full ring now is no reason to stall. */
		if (n == 0 && (s->tr->flags & BENCH_TR_LOSSY))
			s->tr->pub_send(s->p, end, bench_end_len(s->cfg->size), false);
	}
	/* What helper threads did meanwhile (flushing queues) is part of the cost; our own polling is not. */
	s->rep.cost_ns += other_threads_cpu(cpu0, tcpu0);
}

void bench_pub_main(const struct bench_cfg *cfg, struct bench_env *env, unsigned idx, int fd, int go_fd,
		    struct bench_live *live)
{
	struct pub_state s = { .cfg = cfg, .tr = cfg->tr, .env = env, .live = live, .idx = idx };
	size_t cap = cfg->size > 24 ? cfg->size : 24;
	/* --batch: the batch's payloads follow the one of single sends. */
	void *buf = malloc(cap * (1 + (cfg->batch > 1 ? cfg->batch : 0)));
	struct iovec *batch = cfg->batch > 1 ? calloc(cfg->batch, sizeof(*batch)) : NULL;
	char byte = BENCH_FAILED;
	int err;

	env->err[0] = '\0';
	if (!buf || (cfg->batch > 1 && !batch)) {
		err = -ENOMEM;
		bench_env_err(env, "allocating the payload");
		goto report;
	}
	/* Payload bytes beyond the stamp: something other than zeros, same for every transport. */
	memset(buf, 'x', cap * (1 + (cfg->batch > 1 ? cfg->batch : 0)));
	for (unsigned k = 0; batch && k < cfg->batch; k++)
		batch[k] = (struct iovec){ (char *)buf + cap * (1 + k), cfg->size };
	err = s.tr->pub_open(env, idx, &s.p);
	if (err)
		goto report;
	err = s.tr->pub_wait_subs(s.p);
	if (err)
		goto report;
	byte = BENCH_READY;
	if (!bench_write_all(fd, &byte, 1))
		_exit(1);
	/* Go, or EOF when the coordinator gave up: nothing to report then. */
	if (read(go_fd, &byte, 1) != 1 || byte != BENCH_GO)
		_exit(1);
	err = publish(&s, buf, batch);
	if (!err)
		linger(&s, go_fd);
report:
	s.rep.err = err;
	if (err)
		snprintf(s.rep.what, sizeof(s.rep.what), "%s", env->err[0] ? env->err : "failed");
	if (s.p)
		s.tr->pub_close(s.p);
	if (byte == BENCH_FAILED && !bench_write_all(fd, &byte, 1))
		_exit(1);
	if (!bench_write_all(fd, &s.rep, sizeof(s.rep)))
		_exit(1);
	_exit(err ? 1 : 0);
}
