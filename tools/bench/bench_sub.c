/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: one subscriber process, the same for every transport.
 * It opens its own connection (never shared across fork), counts, checks
 * and times every message, and reports to the coordinator through a pipe.
 * See bench.h for the messages and their stamp.
 *
 * The first message a receive call delivers is timed in its handler.
 * The others of that call are timed when it returns (or when PENDING_MAX
 * wait for a time): one clock read for all of them, never earlier than
 * their delivery, so their latency is never under-stated (the rest of the
 * call counts in it).  Reading the clock at each message cost close to a
 * third of a ringcast subscriber's time flat out (docs/benchmarks.md,
 * Findings 2); a call that delivers one message, as a paced run's do and
 * most peers' always, is timed exactly as before.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "hist.h"
#include "pipe_io.h"

/* Empty polls between looks at the parent while spinning. */
#define SPIN_CHECK_EVERY (1u << 16)
/* A sleeping subscriber wakes this often to see whether its parent is gone. */
#define WAIT_SLICE_MS 100
/* Messages that may wait for their delivery time. */
#define PENDING_MAX 256
/*
 * A spinning subscriber that has just caught up, after a receive call
 * that delivered at least CATCHUP_BURST messages, waits CATCHUP_NS before
 * it looks again.  Flat out, a subscriber right behind its publisher
 * polls the very line the publisher is about to write, and each such line
 * then crosses between the cores more than once: both slow down and stay
 * together (docs/benchmarks.md, Findings 2, "the trap").  The pause lets
 * the publisher get ahead; a paced run never delivers such a burst.
 */
#define CATCHUP_BURST 64
#define CATCHUP_NS 5000

struct sub_state {
	const struct bench_cfg *cfg;
	struct bench_live_ctr *live;
	struct hist *hist;
	struct bench_sub_report rep;
	bool hdr;                          /* the transport stamps and counts losses */
	uint64_t live_mask;                /* update the live counter when received & mask == 0 */
	bool ended[BENCH_PUBS_MAX];
	uint64_t expect[BENCH_PUBS_MAX];   /* index expected next from each publisher */
	bool packed;                       /* the stamp's time is unwrapped with a clock read */
	bool first;                        /* the next message is the first of its receive call */
	bool done;
	unsigned pending;                  /* messages delivered, not timed yet */
	uint64_t pending_ns[PENDING_MAX];  /* their publish times */
};

/* Spin for CATCHUP_NS (see above). */
static void catch_up_pause(const struct bench_cfg *cfg)
{
	uint64_t until = bench_clock_ns(cfg) + CATCHUP_NS;

	while (bench_clock_ns(cfg) < until)
		bench_relax();
}

/* Delivery times: the first and the last. */
static void delivered_at(struct sub_state *s, uint64_t now)
{
	if (!s->rep.last_ns)
		s->rep.first_ns = now;
	s->rep.last_ns = now;
}

/* Time the pending messages: now is at or after every one's delivery. */
static void time_pending(struct sub_state *s)
{
	uint64_t now;

	if (!s->pending)
		return;
	now = bench_clock_ns(s->cfg);
	hist_record_since(s->hist, now, s->pending_ns, s->pending);
	delivered_at(s, now);
	s->pending = 0;
}

/* A message published at publish_ns was delivered: time it now, or with the rest of its call. */
static void time_msg(struct sub_state *s, uint64_t publish_ns)
{
	if (s->first) {
		uint64_t now = bench_clock_ns(s->cfg);

		s->first = false;
		hist_record(s->hist, now > publish_ns ? now - publish_ns : 0);
		delivered_at(s, now);
		return;
	}
	if (s->pending == PENDING_MAX)
		time_pending(s);
	s->pending_ns[s->pending++] = publish_ns;
}

/* A data message: order, losses, and its publish time to be timed. */
static void on_data(struct sub_state *s, const void *data, uint64_t publish_ns, uint64_t lost)
{
	const struct bench_cfg *cfg = s->cfg;
	struct bench_stamp_rd rd;

	/* A packed stamp keeps the low bits of its time: unwrap them with a clock read now. */
	bench_unstamp(data, cfg->size, s->hdr, s->expect, s->packed ? bench_clock_ns(cfg) : 0, &rd);
	if (s->hdr) {
		s->rep.lost += lost;
		rd.publish_ns = publish_ns;
		/* ringcast counts losses per topic: with one publisher they must explain every gap. */
		if (cfg->pubs == 1)
			s->expect[0] += lost;
	}
	if (rd.has_tag) {
		if (rd.pub >= cfg->pubs || rd.torn || rd.index < s->expect[rd.pub]) {
			s->rep.bad++;
		} else {
			uint64_t gap = rd.index - s->expect[rd.pub];

			if (!s->hdr)
				s->rep.lost += gap;
			else if (gap && cfg->pubs == 1)
				s->rep.bad++; /* a gap nobody told us about */
			s->expect[rd.pub] = rd.index + 1;
		}
	}
	time_msg(s, rd.publish_ns);
	if ((++s->rep.received & s->live_mask) == 0)
		bench_live_set(s->live, s->rep.received);
}

static int on_msg(void *ctx, const void *data, size_t len, uint64_t publish_ns, uint64_t lost)
{
	struct sub_state *s = ctx;
	const struct bench_cfg *cfg = s->cfg;

	if (len == cfg->size) {
		on_data(s, data, publish_ns, lost);
	} else if (len == bench_end_len(cfg->size) && bench_get_u64(data) == BENCH_END_MAGIC) {
		uint64_t tag = bench_get_u64((const char *)data + 8);
		unsigned pub = (unsigned)(tag >> BENCH_TAG_PUB_SHIFT);
		uint64_t sent = tag & BENCH_INDEX_MAX;

		if (s->hdr)
			s->rep.lost += lost;
		if (pub >= cfg->pubs) {
			s->rep.bad++;
		} else if (!s->ended[pub]) {
			/* Re-sent ends repeat the first. */
			s->ended[pub] = true;
			s->rep.ends++;
			s->rep.total += sent;
			/* Lost at the very end: no later message showed the gap. */
			if (!s->hdr && cfg->size >= 8 && sent > s->expect[pub])
				s->rep.lost += sent - s->expect[pub];
			s->done = s->rep.ends == cfg->pubs;
		}
	} else {
		s->rep.bad++;
	}
	return s->done;
}

void bench_sub_main(const struct bench_cfg *cfg, struct bench_env *env, unsigned idx, int fd,
		    struct bench_live *live)
{
	const struct bench_transport *tr = cfg->tr;
	bool hdr = tr->flags & BENCH_TR_HDR_STAMP;
	struct sub_state s = {
		.cfg = cfg, .live = &live->received[idx], .hdr = hdr, .packed = !hdr && cfg->size < 16,
	};
	pid_t parent = getppid();
	void *conn = NULL, *buf = NULL;
	size_t len = 0;
	uint64_t cpu0 = 0;
	unsigned idle = 0, burst = 0;
	char byte = BENCH_FAILED;
	int err = 0;

	env->err[0] = '\0';
	/* As the publishers do (bench_pub.c): the coordinator must see progress. */
	s.live_mask = cfg->size >= 4096 || cfg->rate ? 0 : 1023;
	s.hist = malloc(sizeof(*s.hist));
	if (!s.hist) {
		err = -ENOMEM;
		bench_env_err(env, "allocating the histogram");
		goto report;
	}
	hist_reset(s.hist);
	err = tr->sub_open(env, idx, &conn);
	if (err)
		goto report;
	byte = BENCH_READY;
	if (!bench_write_all(fd, &byte, 1))
		_exit(1); /* the coordinator is gone: nobody to report to */
	cpu0 = cpu_ns();

	while (!s.done) {
		int n;

		s.first = true;
		n = tr->sub_recv(conn, cfg->spin ? 0 : WAIT_SLICE_MS, on_msg, &s);
		time_pending(&s);
		if (n < 0 && n != -EINTR && n != -EAGAIN && n != -ETIMEDOUT) {
			err = n;
			if (!env->err[0])
				bench_env_err(env, "receiving");
			break;
		}
		if (n > 0) {
			idle = 0;
			burst = (unsigned)n;
			continue;
		}
		if (s.done)
			break;
		if (cfg->spin) {
			if (++idle % SPIN_CHECK_EVERY == 0 && getppid() != parent)
				_exit(1);
			if (burst >= CATCHUP_BURST)
				catch_up_pause(cfg);
			else
				bench_relax();
			burst = 0;
		} else if (getppid() != parent) {
			_exit(1);
		}
	}
	s.rep.cpu_ns = cpu_ns() - cpu0;
	bench_live_set(s.live, s.rep.received);

report:
	s.rep.err = err;
	if (err)
		snprintf(s.rep.what, sizeof(s.rep.what), "%s", env->err[0] ? env->err : "failed");
	if (s.hist) {
		len = hist_serialize(s.hist, NULL, 0);
		buf = malloc(len);
		if (buf)
			hist_serialize(s.hist, buf, len);
		else
			len = 0;
	}
	s.rep.hist_len = (uint32_t)len;
	/* Close first: a ringcast cursor stops holding publishers back while we write. */
	if (conn)
		tr->sub_close(conn);
	if (byte == BENCH_FAILED && !bench_write_all(fd, &byte, 1))
		_exit(1);
	if (!bench_write_all(fd, &s.rep, sizeof(s.rep)) || (len && !bench_write_all(fd, buf, len)))
		_exit(1);
	_exit(err ? 1 : 0);
}
