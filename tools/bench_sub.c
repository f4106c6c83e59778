/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: one subscriber process, the same for every transport.
 * It opens its own connection (never shared across fork), counts, checks
 * and times every message, and reports to the coordinator through a pipe.
 * See bench.h for the messages and their stamp.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "hist.h"

/* Empty polls between looks at the parent while spinning. */
#define SPIN_CHECK_EVERY (1u << 16)
/* A sleeping subscriber wakes this often to see whether its parent is gone. */
#define WAIT_SLICE_MS 100

struct sub_state {
	const struct bench_cfg *cfg;
	struct bench_live_ctr *live;
	struct hist *hist;
	struct bench_sub_report rep;
	bool hdr;                          /* the transport stamps and counts losses */
	uint64_t live_mask;                /* update the live counter when received & mask == 0 */
	bool ended[BENCH_PUBS_MAX];
	uint64_t expect[BENCH_PUBS_MAX];   /* index expected next from each publisher */
	bool done;
};

/* A data message: latency, order, losses. */
static void on_data(struct sub_state *s, const void *data, uint64_t publish_ns, uint64_t lost, uint64_t now)
{
	const struct bench_cfg *cfg = s->cfg;
	struct bench_stamp_rd rd;

	bench_unstamp(data, cfg->size, s->hdr, s->expect, now, &rd);
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
	hist_record(s->hist, now > rd.publish_ns ? now - rd.publish_ns : 0);
	if (!s->rep.received)
		s->rep.first_ns = now;
	s->rep.last_ns = now;
	if ((++s->rep.received & s->live_mask) == 0)
		bench_live_set(s->live, s->rep.received);
}

static int on_msg(void *ctx, const void *data, size_t len, uint64_t publish_ns, uint64_t lost)
{
	struct sub_state *s = ctx;
	const struct bench_cfg *cfg = s->cfg;
	/* Every message is timed, with the clock its stamp was read with. */
	uint64_t now = bench_clock_ns(cfg);

	if (len == cfg->size) {
		on_data(s, data, publish_ns, lost, now);
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
	struct sub_state s = { .cfg = cfg, .live = &live->received[idx], .hdr = tr->flags & BENCH_TR_HDR_STAMP };
	pid_t parent = getppid();
	void *conn = NULL, *buf = NULL;
	size_t len = 0;
	uint64_t cpu0 = 0;
	unsigned idle = 0;
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
		int n = tr->sub_recv(conn, cfg->spin ? 0 : WAIT_SLICE_MS, on_msg, &s);

		if (n < 0 && n != -EINTR && n != -EAGAIN && n != -ETIMEDOUT) {
			err = n;
			if (!env->err[0])
				bench_env_err(env, "receiving");
			break;
		}
		if (n > 0) {
			idle = 0;
			continue;
		}
		if (s.done)
			break;
		if (cfg->spin) {
			if (++idle % SPIN_CHECK_EVERY == 0 && getppid() != parent)
				_exit(1);
			bench_relax();
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
