/* SPDX-License-Identifier: MIT */
/*
 * The node clock: CLOCK_MONOTONIC in nanoseconds, read from the TSC.
 *
 * clock_gettime() costs 33 ns here, most of a publish; an rdtsc and a
 * multiply cost about 13.  ringcastd fits a line ns = ns0 + (tsc - tsc0)
 * * mult / 2^32 to CLOCK_MONOTONIC on its tick and publishes it in the
 * node file (a seqlock: node file bytes 32-63, docs/ring-format.md),
 * so every process of the node reads the same line and a publish_ns
 * stamped in one process compares exactly with a clock read in another.
 * Without an invariant TSC, before the daemon's first line, or when the
 * line is over a second old (the daemon stopped), readers fall back to
 * clock_gettime().
 */
#ifndef RINGCAST_CLOCK_H
#define RINGCAST_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "barrier.h"
#include "ring_format.h"

/* A line older than this many TSC cycles (0.9-1.8 s at 2.4-4.8 GHz) is not trusted. */
#define RC_CLOCK_MAX_AGE (1ull << 32)

/* CLOCK_MONOTONIC through clock_gettime(). */
uint64_t rc_now_ns(void);

#if defined(__x86_64__)
static inline uint64_t rc_tsc(void)
{
	return __builtin_ia32_rdtsc();
}

/*
 * The node clock from b's line: true with *ns set, or false when the line
 * cannot be trusted (being written, absent, or too old).  Inline and free
 * of calls, for the publisher's fast path (client_pub.c).  The TSC is read
 * right after seq and each field just before its use, so few values are
 * live at once: that path has no registers to spare.
 */
static inline bool rc_clock_line_ns(const struct rc_node_hdr *b, uint64_t *ns)
{
	/* Pairs with the release store that ends the daemon's write (clock.c). */
	uint32_t seq = rc_load_acquire(&b->clock_seq);
	uint64_t age = rc_tsc() - rc_load_relaxed(&b->clock_tsc);
	uint64_t mult = rc_load_relaxed(&b->clock_mult);

	if ((seq & 1) || !mult || age >= RC_CLOCK_MAX_AGE)
		return false;
	*ns = rc_load_relaxed(&b->clock_ns) + (uint64_t)(((unsigned __int128)age * mult) >> 32);
	/* Order the field loads before the re-read of seq. */
	rc_smp_rmb();
	return rc_load_relaxed(&b->clock_seq) == seq;
}
#else
static inline bool rc_clock_line_ns(const struct rc_node_hdr *b, uint64_t *ns)
{
	(void)b, (void)ns;
	return false;
}
#endif

/* The node clock, from the node file's line when it can be trusted (b may be NULL). */
static inline uint64_t rc_clock_ns(const struct rc_node_hdr *b)
{
	uint64_t ns;

	if (b && rc_clock_line_ns(b, &ns))
		return ns;
	return rc_now_ns();
}

/* ---- the daemon's side ---- */

struct rc_clock_fit {
	bool usable;          /* the TSC is invariant: constant rate, never stops */
	uint64_t tsc0, ns0;   /* the first sample: the slope is measured from it */
	/* The line last published, kept here too: the fit never reads shared memory back. */
	uint64_t line_tsc, line_ns, line_mult;
	uint64_t last_tsc;    /* the previous sample */
};

/* Start fitting: usable only with an invariant TSC (x86-64, /proc/cpuinfo). */
void rc_clock_fit_init(struct rc_clock_fit *f);
/*
 * Take a sample and publish a new line in b: once the samples span 10 ms,
 * a line continuous with the previous one whose slope steers it onto
 * CLOCK_MONOTONIC by the next call (called every few ms).  Returns the
 * line's error against the sample, in ns (0 before the first line).
 */
int64_t rc_clock_fit_tick(struct rc_clock_fit *f, struct rc_node_hdr *b);

#endif /* RINGCAST_CLOCK_H */
