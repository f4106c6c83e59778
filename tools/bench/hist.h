/* SPDX-License-Identifier: MIT */
/*
 * A log-linear (HDR-style) histogram of u64 values, for latencies in ns.
 *
 * Values below 2 * HIST_SUB are counted exactly.  Above that, each power of
 * two [2^k, 2^(k+1)) is split into HIST_SUB equal buckets, so a bucket is
 * 2^k / HIST_SUB wide: a percentile is reported as the middle of its bucket
 * and is within 1 / (2 * HIST_SUB) (0.39%) of the true sample, always
 * within HIST_REL_ERR.  The whole u64 range is covered; nothing is clamped.
 *
 * The struct is flat (no pointers) and about 58 KiB: allocate it, don't
 * put it on a small stack.  Not thread-safe.
 */
#ifndef RINGCAST_HIST_H
#define RINGCAST_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS) /* linear buckets per power of two */
/* Indices [0, 2*HIST_SUB) are exact; then one group of HIST_SUB per exponent up to 63. */
#define HIST_BUCKETS (HIST_SUB * (64 - HIST_SUB_BITS + 1))
#define HIST_REL_ERR (1.0 / HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min; /* UINT64_MAX when empty */
	uint64_t max; /* 0 when empty */
	uint64_t buckets[HIST_BUCKETS];
};

/* The bucket of v.  Inline: it is on the subscriber's per-message path. */
static inline unsigned hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	/* v >> shift is in [HIST_SUB, 2*HIST_SUB): the group's sub-bucket. */
	return ((shift + 1) << HIST_SUB_BITS) + (unsigned)((v >> shift) - HIST_SUB);
}

static inline void hist_record(struct hist *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* Empty h (count 0). */
void hist_reset(struct hist *h);
/* Count v n times. */
void hist_record_n(struct hist *h, uint64_t v, uint64_t n);

/*
 * Record now - t[i] (0 for a t[i] after now) for each of t[0..n): what n
 * calls of hist_record() would, with min and max updated once.
 */
static inline void hist_record_since(struct hist *h, uint64_t now, const uint64_t *t, unsigned n)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	if (!n)
		return;
	for (unsigned i = 0; i < n; i++) {
		/* The latest stamp gives the least value, the earliest the most. */
		hi = t[i] > hi ? t[i] : hi;
		lo = t[i] < lo ? t[i] : lo;
		h->buckets[hist_index(now > t[i] ? now - t[i] : 0)]++;
	}
	h->count += n;
	hi = now > hi ? now - hi : 0;
	lo = now > lo ? now - lo : 0;
	if (hi < h->min)
		h->min = hi;
	if (lo > h->max)
		h->max = lo;
}
/* Add src's counts to dst, as if every value of src had been recorded in dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* Smallest and largest value of bucket idx (idx < HIST_BUCKETS). */
uint64_t hist_bucket_lo(unsigned idx);
uint64_t hist_bucket_hi(unsigned idx);

/*
 * The value at percentile q (0..100): the sample of rank ceil(q/100 *
 * count) (at least 1) in sorted order, within HIST_REL_ERR; q >= 100 (and
 * the top rank) give max exactly.  0 when empty.
 */
uint64_t hist_percentile(const struct hist *h, double q);
static inline uint64_t hist_count(const struct hist *h) { return h->count; }
/* Exact; 0 when empty. */
static inline uint64_t hist_max(const struct hist *h) { return h->max; }
/* Exact; 0 when empty. */
static inline uint64_t hist_min(const struct hist *h) { return h->count ? h->min : 0; }
/* Mean from bucket midpoints (so within HIST_REL_ERR); 0 when empty. */
double hist_mean(const struct hist *h);

/*
 * The serialized form: this header, then n (u32 index, u64 count) pairs.
 * Here, not in hist.c, so that the unit test can forge bad encodings.
 */
#define HIST_MAGIC 0x31484352u /* "RCH1" */

struct hist_wire_hdr {
	uint32_t magic;
	uint32_t n;
	uint64_t count, min, max;
};

struct hist_wire_bucket {
	uint32_t idx;
	uint32_t pad;
	uint64_t count;
};

/*
 * Serialize h (only the non-empty buckets) into buf.  Returns the number of
 * bytes the encoding takes; it was written only if that is <= cap (call
 * with cap 0 to size the buffer).  Host byte order: for a pipe between
 * processes on one machine, not for files.
 */
size_t hist_serialize(const struct hist *h, void *buf, size_t cap);
/* Replace h with the histogram encoded in buf[0..len).  0 or -EBADMSG. */
int hist_deserialize(struct hist *h, const void *buf, size_t len);

#endif /* RINGCAST_HIST_H */
