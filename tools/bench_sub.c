/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: one subscriber process.  It owns its own struct ringcast
 * (never shared across fork), counts and times every message, and reports
 * to the publisher through a pipe.  See bench.h for the message format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	struct hist *hist;
	struct bench_report rep;
	uint64_t next_index; /* index the next data message should carry */
	bool done;
};

static uint64_t get_u64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int on_msg(const struct ringcast_msg *m, void *arg)
{
	struct sub_state *s = arg;
	const struct bench_cfg *cfg = s->cfg;
	uint64_t now = now_ns();

	/* Lost messages were published (and never delivered): count them first. */
	s->rep.lost += m->lost;
	s->next_index += m->lost;
	if (m->len == cfg->size) {
		if (cfg->size >= 8) {
			uint64_t idx = get_u64(m->data);

			if (idx != s->next_index ||
			    (cfg->size >= 16 && get_u64((const char *)m->data + cfg->size - 8) != idx))
				s->rep.bad++;
			s->next_index = idx + 1;
		} else {
			s->next_index++;
		}
		hist_record(s->hist, now > m->publish_ns ? now - m->publish_ns : 0);
		if (!s->rep.received)
			s->rep.first_ns = now;
		s->rep.last_ns = now;
		s->rep.received++;
		if (cfg->count && s->rep.received + s->rep.lost >= cfg->count)
			s->done = true;
	} else if (m->len == bench_end_len(cfg->size) && get_u64(m->data) == BENCH_END_MAGIC) {
		s->rep.total = get_u64((const char *)m->data + 8);
		s->done = true;
	} else {
		s->rep.bad++;
	}
	return s->done;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void fail(struct sub_state *s, int err, const char *what)
{
	s->rep.err = err;
	snprintf(s->rep.what, sizeof(s->rep.what), "%s", what);
}

void bench_sub_main(const struct bench_cfg *cfg, int fd)
{
	struct sub_state s = { .cfg = cfg };
	struct ringcast *rc = NULL;
	pid_t parent = getppid();
	void *buf = NULL;
	size_t len = 0;
	uint64_t cpu0;
	unsigned idle = 0;
	char byte = BENCH_FAILED;
	int err;

	s.hist = malloc(sizeof(*s.hist));
	if (!s.hist) {
		fail(&s, -ENOMEM, "allocating the histogram");
		goto report;
	}
	hist_reset(s.hist);
	err = ringcast_open(&rc, cfg->socket);
	if (err) {
		char what[sizeof(s.rep.what)];

		snprintf(what, sizeof(what), "connecting to ringcastd at %s", cli_socket_name(cfg->socket));
		fail(&s, err, what);
		goto report;
	}
	err = ringcast_subscribe(rc, cfg->topic);
	if (err) {
		fail(&s, err, "subscribing");
		goto report;
	}
	byte = BENCH_READY;
	if (!write_all(fd, &byte, 1))
		_exit(1); /* the publisher is gone: nobody to report to */
	cpu0 = cpu_ns();

	while (!s.done) {
		int n = ringcast_poll(rc, on_msg, &s, 0);

		if (n < 0) {
			fail(&s, n, "receiving (ringcast_poll)");
			break;
		}
		if (n > 0 || s.done) {
			idle = 0;
			continue;
		}
		if (cfg->spin) {
			if (++idle % SPIN_CHECK_EVERY == 0 && getppid() != parent)
				_exit(1);
			bench_relax();
			continue;
		}
		err = ringcast_wait(rc, WAIT_SLICE_MS);
		if (err == -ETIMEDOUT || err == -EINTR) {
			if (getppid() != parent)
				_exit(1);
		} else if (err) {
			fail(&s, err, "waiting (ringcast_wait)");
			break;
		}
	}
	s.rep.cpu_ns = cpu_ns() - cpu0;

report:
	if (s.hist) {
		len = hist_serialize(s.hist, NULL, 0);
		buf = malloc(len);
		if (buf)
			hist_serialize(s.hist, buf, len);
		else
			len = 0;
	}
	s.rep.hist_len = (uint32_t)len;
	/* Close first: our cursor stops holding the publisher back while we write. */
	ringcast_close(rc);
	if (byte != BENCH_READY && !write_all(fd, &byte, 1))
		_exit(1);
	if (!write_all(fd, &s.rep, sizeof(s.rep)) || (len && !write_all(fd, buf, len)))
		_exit(1);
	_exit(s.rep.err ? 1 : 0);
}
