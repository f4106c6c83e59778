/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: what its files agree on.
 *
 *   ../cmd_bench.c     the command: parse, one run or a sweep, print
 *   bench_args.c       options and --help
 *   bench_run.c        one run: fork P publishers and N subscribers, collect
 *   bench_pub.c        a publisher process
 *   bench_sub.c        a subscriber process
 *   pipe_io.c          whole reads and writes on the pipes between them
 *   bench_report.c     results: human, JSON, CSV
 *   bench_sweep.c      the grid of --sweep
 *   bench_transport.c  the transports: built in, or loaded from bench-peers/
 *                      (modules that make bench-peers builds from peers/)
 *   bench_tr_*.c       the built-in transports (ringcast, uds)
 *
 * Messages on the bench topic or channel:
 *   data  exactly `size` bytes, starting with a stamp (below).
 *   end   bench_end_len(size) bytes (never equal to size): BENCH_END_MAGIC
 *         then the tag (publisher, number of data messages it sent).  Each
 *         publisher sends one after its last data message; a subscriber is
 *         done when it has the end of every publisher.
 *
 * The stamp.  The tag of a message is publisher << 48 | index (index
 * counts from 0 per publisher).  Transports that stamp their records
 * (ringcast: msg->publish_ns) carry only the tag:
 *   size >= 8: tag at [0, 8); size >= 16: the tag again in the last 8 bytes.
 * The others carry the publisher's CLOCK_MONOTONIC too, taken just before
 * the send call, as ringcast takes it just before its claim:
 *   size >= 16: tag at [0, 8), publish_ns at [8, 16);
 *   size >= 24: the tag again in the last 8 bytes;
 *   8 <= size < 16: one word, publisher (4 bits) | index mod 2^20 |
 *   publish_ns mod 2^40, which a subscriber unwraps against what it
 *   expects and its own clock (exact while fewer than 2^20 messages in a
 *   row are lost and latency stays under 18 minutes).
 * The repeated tag tells torn and reordered messages ("bad"); index gaps
 * are losses on transports that do not count them themselves.
 *
 * Process i talks to the parent over its own pipe: one byte, 'R' once
 * ready (or 'E' if it could not be), then its report (a struct
 * bench_sub_report and report.hist_len bytes of serialized histogram, or
 * a struct bench_pub_report).  Publishers read 'G' (go) and, at the end,
 * EOF on a second pipe.
 */
#ifndef RINGCAST_BENCH_H
#define RINGCAST_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "bench_transport.h"
#include "ringcast.h"

struct hist;

#define BENCH_SUBS_MAX 256
#define BENCH_PUBS_MAX 16 /* the packed stamp has 4 bits for it */
#define BENCH_SIZE_MAX (64u << 20)
#define BENCH_LIST_MAX 16 /* values of one --sweep list */
#define BENCH_BATCH_MAX 1024
#define BENCH_BATCH_BYTES_MAX (256 << 20) /* --batch x --size */
#define BENCH_CPUS_MAX 256
#define BENCH_TRANSPORTS_MAX 8

#define BENCH_END_MAGIC 0x444e454843424352ull /* "RCBCHEND" read little-endian */
#define BENCH_READY 'R'
#define BENCH_FAILED 'E'
#define BENCH_GO 'G'
#define BENCH_TAG_PUB_SHIFT 48
#define BENCH_INDEX_MAX ((1ull << BENCH_TAG_PUB_SHIFT) - 1)
/* A failed run without an errno to show (a child died, a count was off). */
#define BENCH_ERR_OTHER (-1000000)

/* ---- options and one run's configuration ---- */

/*
 * How a paced publisher (--rate) waits for a message's time: spinning on
 * the clock, or asleep in clock_nanosleep() to that time (timer slack 1
 * ns).  Spinning is exact to the clock read but holds a CPU the whole
 * run: on two CPUs with a spinning subscriber nothing else runs, and the
 * subscriber's p99 at 10k msg/s read 2.0-3.5 ms against 15-28 us paced by
 * sleep (docs/benchmarks.md, Method).  A sleep wakes late by the scheduler's
 * wake-up latency, 12 us at the median here and 23 us once the CPU went
 * idle; the schedule is absolute, so lateness does not add up, but it
 * bunches messages once it is a good part of the interval.  So by
 * default (BENCH_PACE_AUTO) a publisher sleeps when its messages are at
 * least BENCH_PACE_SLEEP_MIN_NS apart (20k msg/s a publisher: the median
 * wake-up is then under half the interval) and spins when closer.
 */
enum bench_pace { BENCH_PACE_AUTO = 0, BENCH_PACE_SPIN, BENCH_PACE_SLEEP };
#define BENCH_PACE_SLEEP_MIN_NS 50000

struct bench_opts {
	const char *socket;   /* NULL: the library's default rule */
	const char *topic;    /* NULL: "ringcast.bench" */
	const char *transports[BENCH_TRANSPORTS_MAX];
	unsigned n_transports;
	size_t sizes[BENCH_LIST_MAX];
	unsigned n_sizes;
	unsigned subs[BENCH_LIST_MAX];
	unsigned n_subs;
	bool waits[BENCH_LIST_MAX]; /* true: spin */
	unsigned n_waits;
	unsigned batches[BENCH_LIST_MAX]; /* --batch: messages a send call, flat out (ringcast) */
	unsigned n_batches;
	unsigned pubs;
	uint64_t count;       /* data messages in all, over the publishers; 0 in duration mode */
	uint64_t duration_ns;
	uint64_t rate;        /* msgs/s in all; 0: flat out */
	enum bench_pace pace; /* --pace; AUTO: by the interval (bench_pace_sleeps) */
	int cpus[BENCH_CPUS_MAX];
	unsigned n_cpus;      /* 0: no pinning */
	bool zero_copy, json, per_sub, sweep, help;
	const char *csv;      /* --sweep's CSV file; NULL: stdout */
	unsigned rounds;      /* --sweep repeats its grid */
	/*
	 * Not an option: a connection to ringcastd opened for its node clock
	 * (ringcast_now_ns), or NULL (no daemon: clock_gettime).  The
	 * children inherit it and only read its shared clock.
	 */
	struct ringcast *clock;
};

/* One run: a point of the grid, or the whole of a plain `ringcast bench`. */
struct bench_cfg {
	const struct bench_opts *o;
	const struct bench_transport *tr;
	const char *topic;    /* ringcast topic of this run */
	size_t size;
	unsigned subs, pubs;
	bool spin;
	uint64_t count, duration_ns, rate;
	unsigned round;       /* --sweep: which repetition */
	unsigned batch;       /* messages a send call: 1, or more on a transport with pub_send_many */
};

/*
 * The clock every transport's stamps and delivery times are read with:
 * the node clock ringcast stamps publish_ns with, so all compare alike.
 */
static inline uint64_t bench_clock_ns(const struct bench_cfg *cfg)
{
	return ringcast_now_ns(cfg->o->clock);
}

/* Does a paced publisher of cfg sleep between messages (else it spins)?  false when not paced. */
static inline bool bench_pace_sleeps(const struct bench_cfg *cfg)
{
	if (!cfg->rate)
		return false;
	if (cfg->o->pace != BENCH_PACE_AUTO)
		return cfg->o->pace == BENCH_PACE_SLEEP;
	/* Each publisher sends one message every pubs/rate seconds. */
	return (uint64_t)cfg->pubs * 1000000000ull / cfg->rate >= BENCH_PACE_SLEEP_MIN_NS;
}

/* The pacing a run used, as the reports name it: "spin", "sleep", or "none" (flat out). */
static inline const char *bench_pace_name(const struct bench_cfg *cfg)
{
	return !cfg->rate ? "none" : bench_pace_sleeps(cfg) ? "sleep" : "spin";
}

/* Parse argv into o (zeroed first).  0, or CLI_EXIT_USAGE after saying why; o->help for --help. */
int bench_parse_args(int argc, char **argv, struct bench_opts *o);
void bench_usage(FILE *f);
/* The transports of `--transport all`, in this order. */
extern const char *const bench_all_transports[];

/* ---- reports from the children ---- */

struct bench_sub_report {
	int32_t err;          /* 0, or the negative errno that stopped the subscriber */
	char what[160];       /* what failed, when err != 0 */
	uint64_t received;    /* data messages handled */
	uint64_t lost;        /* told by the transport, or index gaps */
	uint64_t bad;         /* out of order, torn or foreign */
	uint64_t first_ns;    /* CLOCK_MONOTONIC of the first and last data delivery */
	uint64_t last_ns;
	uint64_t cpu_ns;      /* the subscriber's CPU time from readiness to the end */
	uint64_t total;       /* data messages the end messages announced */
	uint32_t ends;        /* end messages seen (one per publisher) */
	uint32_t hist_len;    /* bytes of serialized histogram that follow */
};

struct bench_pub_report {
	int32_t err;
	char what[160];
	uint64_t sent, retries;
	uint64_t start_ns, end_ns; /* first send, end message sent */
	uint64_t cost_ns;          /* its CPU cost of sending (see bench_pub.c) */
};

/* Live counters in shared memory, for the progress line; one cache line each. */
struct bench_live_ctr {
	uint64_t v;
	char pad[56];
};

struct bench_live {
	int stop;             /* set by the parent (Ctrl-C): publishers stop sending */
	char pad[60];
	struct bench_live_ctr sent[BENCH_PUBS_MAX];
	struct bench_live_ctr received[BENCH_SUBS_MAX];
};

/* ---- a finished run ---- */

struct bench_result {
	const struct bench_cfg *cfg;
	struct bench_sub_report *sub;   /* [cfg->subs] */
	struct hist **hist;             /* [cfg->subs] */
	struct bench_pub_report *pub;   /* [cfg->pubs] */
	struct hist *all;               /* every subscriber's latencies */
	uint64_t sent, received, lost, bad, retries;
	uint64_t start_ns, end_ns;      /* first publish, last end message sent */
	uint64_t broker_cpu_ns;         /* Redis: the server's CPU during the run */
	double per_sub_rate, total_rate, pub_ns_per_msg, broker_ns_per_msg;
	bool interrupted;
	bool ok;                        /* every count adds up, nothing bad */
	int err;                        /* the run failed: negative errno or BENCH_ERR_OTHER; what says why */
	char what[200];
};

/* Counters under one cache line: the parent reads them, one child writes each. */
static inline void bench_live_set(struct bench_live_ctr *c, uint64_t v)
{
	__atomic_store_n(&c->v, v, __ATOMIC_RELAXED);
}

static inline uint64_t bench_live_get(const struct bench_live_ctr *c)
{
	return __atomic_load_n(&c->v, __ATOMIC_RELAXED);
}

/*
 * Run cfg once.  0 with *res filled (res->ok says whether the counts add
 * up), or a negative errno with res->what set; either way release res
 * with bench_result_free().  *stop is the Ctrl-C count: 1 stops sending
 * and still reports, 2 abandons the run.
 */
int bench_run(const struct bench_cfg *cfg, struct bench_result *res, volatile int *stop);
void bench_result_free(struct bench_result *res);

/* Child bodies; they never return. */
void bench_sub_main(const struct bench_cfg *cfg, struct bench_env *env, unsigned idx, int fd,
		    struct bench_live *live) __attribute__((noreturn));
void bench_pub_main(const struct bench_cfg *cfg, struct bench_env *env, unsigned idx, int fd, int go_fd,
		    struct bench_live *live) __attribute__((noreturn));

/* Results.  Human or JSON for one run; CSV rows for sweeps.  Warnings go to stderr. */
void bench_summarize(struct bench_result *res);
void bench_print_human(FILE *f, const struct bench_result *res, bool per_sub);
void bench_print_json(FILE *f, const struct bench_result *res);
void bench_print_csv_header(FILE *f);
void bench_print_csv_row(FILE *f, const struct bench_result *res);

int bench_sweep(const struct bench_opts *o, volatile int *stop);

/* Transports: "ringcast", "uds", or a module.  NULL and a message on stderr if unknown. */
const struct bench_transport *bench_transport_get(const char *name);

/* ---- the stamp (see the top of this file) ---- */

static inline size_t bench_end_len(size_t size)
{
	return size == 16 ? 24 : 16;
}

static inline uint64_t bench_tag(unsigned pub, uint64_t index)
{
	return (uint64_t)pub << BENCH_TAG_PUB_SHIFT | index;
}

static inline uint64_t bench_get_u64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void bench_put_u64(void *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

#define BENCH_PACK_INDEX_BITS 20
#define BENCH_PACK_NS_BITS 40

/*
 * Write the stamp of message (pub, index) into buf[0, size); publish_ns
 * is ignored when hdr_stamp (the transport carries its own).
 */
static inline void bench_stamp(void *buf, size_t size, bool hdr_stamp, unsigned pub, uint64_t index,
			       uint64_t publish_ns)
{
	uint64_t tag = bench_tag(pub, index);
	char *p = buf;

	if (hdr_stamp) {
		if (size >= 8)
			bench_put_u64(p, tag);
		if (size >= 16)
			bench_put_u64(p + size - 8, tag);
		return;
	}
	if (size >= 16) {
		bench_put_u64(p, tag);
		bench_put_u64(p + 8, publish_ns);
		if (size >= 24)
			bench_put_u64(p + size - 8, tag);
	} else if (size >= 8) {
		uint64_t w = (uint64_t)pub << (BENCH_PACK_INDEX_BITS + BENCH_PACK_NS_BITS) |
			     (index & ((1ull << BENCH_PACK_INDEX_BITS) - 1)) << BENCH_PACK_NS_BITS |
			     (publish_ns & ((1ull << BENCH_PACK_NS_BITS) - 1));

		bench_put_u64(p, w);
	}
}

struct bench_stamp_rd {
	bool has_tag;     /* false: size too small to carry one */
	bool torn;        /* the two copies of the tag differ */
	unsigned pub;
	uint64_t index;
	uint64_t publish_ns;
};

/*
 * Read the stamp of a data message of size bytes.  expect[pub] is the
 * index the subscriber expects next from each publisher and now its
 * clock, both used only to unwrap a packed stamp.
 */
static inline void bench_unstamp(const void *buf, size_t size, bool hdr_stamp, const uint64_t *expect,
				 uint64_t now, struct bench_stamp_rd *rd)
{
	const char *p = buf;
	uint64_t tag, tail;

	memset(rd, 0, sizeof(*rd));
	if (size < 8)
		return;
	if (!hdr_stamp && size < 16) {
		uint64_t w = bench_get_u64(p), im = (1ull << BENCH_PACK_INDEX_BITS) - 1,
			 nm = (1ull << BENCH_PACK_NS_BITS) - 1;

		rd->has_tag = true;
		rd->pub = (unsigned)(w >> (BENCH_PACK_INDEX_BITS + BENCH_PACK_NS_BITS));
		/* The first index at or after the expected one with these low bits. */
		rd->index = expect[rd->pub] + ((((w >> BENCH_PACK_NS_BITS) & im) - expect[rd->pub]) & im);
		/* The latest time at or before now with these low bits. */
		rd->publish_ns = now - ((now - (w & nm)) & nm);
		return;
	}
	tag = bench_get_u64(p);
	rd->has_tag = true;
	rd->pub = (unsigned)(tag >> BENCH_TAG_PUB_SHIFT);
	rd->index = tag & BENCH_INDEX_MAX;
	if (!hdr_stamp)
		rd->publish_ns = bench_get_u64(p + 8);
	if (size >= (hdr_stamp ? 16u : 24u)) {
		tail = bench_get_u64(p + size - 8);
		rd->torn = tail != tag;
	}
}

/* Spin-wait hint: lets the sibling hyperthread run while we wait. */
static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#endif /* RINGCAST_BENCH_H */
