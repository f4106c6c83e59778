/* SPDX-License-Identifier: MIT */
/*
 * The node clock (clock.h): clock_gettime() for everyone, and the daemon's
 * fit of a TSC line to CLOCK_MONOTONIC, published in the node file.
 *
 * The slope is measured from the daemon's first sample, so it gets more
 * exact the longer the daemon runs.  Each new line starts where the
 * previous one is at that moment, so the clock readers see never jumps,
 * and its slope is corrected to meet CLOCK_MONOTONIC again by the next
 * tick: NTP's slewing of CLOCK_MONOTONIC is followed within a tick, and
 * the error stays at the size of one sample's uncertainty (a few ns).
 * Only an error over RC_CLOCK_STEP_NS (a suspend: the TSC kept counting,
 * CLOCK_MONOTONIC did not) makes the line step.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

/* Samples must span this much before the first line is published. */
#define RC_CLOCK_FIT_MIN_NS 10000000ull
#define RC_CLOCK_STEP_NS 1000000ll
/* Tries per sample; the one with the tightest TSC bracket wins. */
#define RC_CLOCK_TRIES 5

typedef unsigned __int128 rc_u128;

uint64_t rc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#if defined(__x86_64__)
static bool cpu_has(const char *flags, const char *flag)
{
	size_t n = strlen(flag);
	const char *p = flags;

	while ((p = strstr(p, flag))) {
		if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

static bool tsc_invariant(void)
{
	char line[4096];
	bool ok = false;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5)) {
			ok = cpu_has(line, "constant_tsc") && cpu_has(line, "nonstop_tsc");
			break;
		}
	fclose(f);
	return ok;
}

/* An rdtsc that is not moved across the loads and stores around it. */
static uint64_t tsc_ordered(void)
{
	uint64_t t;

	__builtin_ia32_lfence();
	t = rc_tsc();
	__builtin_ia32_lfence();
	return t;
}

/* A (TSC, CLOCK_MONOTONIC) pair: the clock read bracketed by two TSC reads. */
static void sample(uint64_t *tsc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;
	int i;

	for (i = 0; i < RC_CLOCK_TRIES; i++) {
		uint64_t t1 = tsc_ordered(), n = rc_now_ns(), t2 = tsc_ordered();

		if (t2 > t1 && t2 - t1 < best) {
			best = t2 - t1;
			*tsc = t1 + (t2 - t1) / 2;
			*ns = n;
		}
	}
	if (best == UINT64_MAX) {
		*tsc = tsc_ordered();
		*ns = rc_now_ns();
	}
}
#else
static bool tsc_invariant(void)
{
	return false;
}

static void sample(uint64_t *tsc, uint64_t *ns)
{
	*tsc = 0;
	*ns = rc_now_ns();
}
#endif

void rc_clock_fit_init(struct rc_clock_fit *f)
{
	memset(f, 0, sizeof(*f));
	f->usable = tsc_invariant();
}

/* The seqlock's writer; readers are rc_clock_ns(). */
static void publish(struct rc_clock_fit *f, struct rc_node_hdr *b, uint64_t tsc, uint64_t ns,
		    uint64_t mult)
{
	/* Odd while we write (already odd if a daemon died here). */
	uint32_t seq = rc_load_relaxed(&b->clock_seq) | 1;

	rc_store_relaxed(&b->clock_seq, seq);
	/*
	 * Pairs with the readers' fence after their field loads: a reader
	 * that sees any field we store below sees seq changed.
	 */
	atomic_thread_fence(memory_order_release);
	rc_store_relaxed(&b->clock_mult, mult);
	rc_store_relaxed(&b->clock_tsc, tsc);
	rc_store_relaxed(&b->clock_ns, ns);
	/* Pairs with the readers' acquire load of seq. */
	rc_store_release(&b->clock_seq, seq + 1);
	f->line_tsc = tsc;
	f->line_ns = ns;
	f->line_mult = mult;
}

int64_t rc_clock_fit_tick(struct rc_clock_fit *f, struct rc_node_hdr *b)
{
	uint64_t tsc, ns, mult, at, span;
	int64_t err, corr, most;

	if (!f->usable)
		return 0;
	sample(&tsc, &ns);
	if (!f->tsc0 || tsc <= f->last_tsc || ns <= f->ns0) {
		/* First sample, or a TSC that went back: measure from here. */
		f->tsc0 = f->last_tsc = tsc;
		f->ns0 = ns;
		return 0;
	}
	span = tsc - f->last_tsc;
	f->last_tsc = tsc;
	if (ns - f->ns0 < RC_CLOCK_FIT_MIN_NS)
		return 0;
	mult = (uint64_t)(((rc_u128)(ns - f->ns0) << 32) / (tsc - f->tsc0));
	if (!f->line_mult) {
		publish(f, b, tsc, ns, mult);
		return 0;
	}
	at = f->line_ns + (uint64_t)(((rc_u128)(tsc - f->line_tsc) * f->line_mult) >> 32);
	err = (int64_t)(ns - at);
	if (err > RC_CLOCK_STEP_NS || err < -RC_CLOCK_STEP_NS) {
		publish(f, b, tsc, ns, mult);
		return err;
	}
	/* Steer: cover err over one more span, at most 1/1024 (~1000 ppm) off the slope. */
	corr = (int64_t)((__int128)err * ((__int128)1 << 32) / (__int128)span);
	most = (int64_t)(mult >> 10);
	if (corr > most)
		corr = most;
	if (corr < -most)
		corr = -most;
	publish(f, b, tsc, at, (uint64_t)((int64_t)mult + corr));
	return err;
}
