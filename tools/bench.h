/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: what the publisher (cmd_bench.c) and its forked
 * subscriber processes (bench_sub.c) agree on.
 *
 * Messages on the bench topic:
 *   data  exactly `size` bytes.  When size >= 8 the first 8 bytes hold the
 *         message's index (0, 1, 2, ...), and when size >= 16 the last 8
 *         bytes too, so a subscriber can tell reordering and torn reads.
 *   end   bench_end_len(size) bytes (never equal to size): BENCH_END_MAGIC
 *         then the number of data messages sent.  It comes last on the
 *         topic, so a subscriber that sees it has seen (or been told it
 *         lost) everything before it.
 *
 * A subscriber talks to the publisher over its own pipe: one byte, 'R'
 * once subscribed (or 'E' if it could not), then a struct bench_report
 * followed by report.hist_len bytes of serialized latency histogram.
 */
#ifndef RINGCAST_BENCH_H
#define RINGCAST_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ringcast.h>

struct hist;

#define BENCH_END_MAGIC 0x444e454843424352ull /* "RCBCHEND" read little-endian */
#define BENCH_READY 'R'
#define BENCH_FAILED 'E'

struct bench_cfg {
	const char *socket; /* NULL: the library's default rule */
	const char *topic;
	size_t size;        /* data payload bytes */
	uint64_t count;     /* data messages to expect; 0: until the end message (duration mode) */
	bool spin;          /* ringcast_poll in a loop instead of ringcast_wait */
};

struct bench_report {
	int32_t err;          /* 0, or the negative errno that stopped the subscriber */
	char what[120];       /* what failed, when err != 0 */
	uint64_t received;    /* data messages handled */
	uint64_t lost;        /* sum of msg->lost */
	uint64_t bad;         /* out-of-order index, torn payload or a foreign message */
	uint64_t first_ns;    /* CLOCK_MONOTONIC of the first and last data delivery */
	uint64_t last_ns;
	uint64_t cpu_ns;      /* subscriber's CPU time from readiness to the end */
	uint64_t total;       /* data messages the end message announced; 0 if none seen */
	uint32_t hist_len;    /* bytes of serialized histogram that follow */
};

/* Length of the end message for data messages of size bytes. */
static inline size_t bench_end_len(size_t size)
{
	return size == 16 ? 24 : 16;
}

/* Spin-wait hint: lets the sibling hyperthread run while we wait. */
static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* ---- the publisher's side (cmd_bench.c runs it, bench_report.c prints it) ---- */

struct bench_opts {
	struct bench_cfg cfg;
	unsigned subs;
	uint64_t count;       /* data messages to send; 0 in duration mode */
	uint64_t duration_ns; /* duration mode */
	uint64_t rate;        /* msgs/s; 0: flat out */
	bool json, per_sub, zero_copy;
};

struct bench_child {
	pid_t pid;             /* 0 once reaped */
	int fd;                /* read end of its pipe; -1 once closed */
	bool ready, reported;
	int status;            /* from waitpid */
	struct bench_report rep;
	struct hist *hist;
};

struct bench {
	struct bench_opts *o;
	struct bench_child *c;
	unsigned n;            /* children forked so far */
	struct ringcast *rc;   /* the publisher's connection */
	bool progress;         /* live line on stderr */
	/* publisher results */
	uint64_t sent, retries;
	uint64_t start_ns, end_ns;
	uint64_t cost_ns;      /* publisher_ns_per_msg * sent */
	bool interrupted;
};

/*
 * Print the results of a finished run (JSON or human, as b->o says) on
 * stdout, with a warning on stderr for every subscriber whose counts do not
 * add up.  0, or -ENOMEM.  *ok: false when a count is off or a message was
 * bad (losses the subscribers were told about are not failures).
 */
int bench_report_print(const struct bench *b, bool *ok);

/*
 * Body of subscriber process: subscribe, say 'R' on fd, receive until done,
 * write the report to fd, exit.  Never returns.
 */
void bench_sub_main(const struct bench_cfg *cfg, int fd) __attribute__((noreturn));

#endif /* RINGCAST_BENCH_H */
