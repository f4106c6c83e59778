/* SPDX-License-Identifier: MIT */
/*
 * Log-linear histogram; see hist.h for the bucket layout and error bound.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "hist.h"

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist_record_n(struct hist *h, uint64_t v, uint64_t n)
{
	if (!n)
		return;
	h->buckets[hist_index(v)] += n;
	h->count += n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_bucket_lo(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * HIST_SUB)
		return idx;
	shift = (idx >> HIST_SUB_BITS) - 1;
	return (uint64_t)(HIST_SUB + (idx & (HIST_SUB - 1))) << shift;
}

uint64_t hist_bucket_hi(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * HIST_SUB)
		return idx;
	shift = (idx >> HIST_SUB_BITS) - 1;
	/* Written as lo + (width - 1) so the top bucket ends at UINT64_MAX without overflow. */
	return hist_bucket_lo(idx) + ((1ull << shift) - 1);
}

/* The value reported for bucket idx: its middle, kept within [min, max]. */
static uint64_t bucket_value(const struct hist *h, unsigned idx)
{
	uint64_t lo = hist_bucket_lo(idx), hi = hist_bucket_hi(idx);
	uint64_t v = lo + (hi - lo) / 2;

	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

uint64_t hist_percentile(const struct hist *h, double q)
{
	long double want;
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	if (!(q < 100.0))
		return h->max;
	if (q < 0)
		q = 0;
	want = ceill((long double)q / 100.0L * (long double)h->count);
	rank = want < 1 ? 1 : (uint64_t)want;
	if (rank >= h->count)
		return h->max;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			return bucket_value(h, i);
	}
	return h->max; /* counts and buckets disagree; only a corrupt struct gets here */
}

double hist_mean(const struct hist *h)
{
	long double sum = 0;

	if (!h->count)
		return 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		if (h->buckets[i])
			sum += (long double)h->buckets[i] * (long double)bucket_value(h, i);
	return (double)(sum / (long double)h->count);
}

size_t hist_serialize(const struct hist *h, void *buf, size_t cap)
{
	struct hist_wire_hdr hdr = { .magic = HIST_MAGIC, .count = h->count, .min = h->min, .max = h->max };
	unsigned char *p = buf;
	size_t need;

	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		hdr.n += h->buckets[i] != 0;
	need = sizeof(hdr) + (size_t)hdr.n * sizeof(struct hist_wire_bucket);
	if (need > cap)
		return need;
	memcpy(p, &hdr, sizeof(hdr));
	p += sizeof(hdr);
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		struct hist_wire_bucket b = { .idx = i, .count = h->buckets[i] };

		if (!b.count)
			continue;
		memcpy(p, &b, sizeof(b));
		p += sizeof(b);
	}
	return need;
}

int hist_deserialize(struct hist *h, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	struct hist_wire_hdr hdr;
	uint64_t total = 0;
	uint32_t prev = 0, first = 0;

	if (len < sizeof(hdr))
		return -EBADMSG;
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.magic != HIST_MAGIC || hdr.n > HIST_BUCKETS ||
	    len != sizeof(hdr) + (size_t)hdr.n * sizeof(struct hist_wire_bucket))
		return -EBADMSG;
	hist_reset(h);
	p += sizeof(hdr);
	for (uint32_t i = 0; i < hdr.n; i++) {
		struct hist_wire_bucket b;

		memcpy(&b, p + (size_t)i * sizeof(b), sizeof(b));
		/* Indices strictly increase, so none repeats and the sum cannot be inflated. */
		if (b.idx >= HIST_BUCKETS || (i && b.idx <= prev) || !b.count ||
		    total + b.count < total)
			goto bad;
		if (!i)
			first = b.idx;
		h->buckets[b.idx] = b.count;
		total += b.count;
		prev = b.idx;
	}
	if (total != hdr.count)
		goto bad;
	/* min and max must sit in the first and last non-empty buckets. */
	if (total && (hist_index(hdr.min) != first || hist_index(hdr.max) != prev))
		goto bad;
	h->count = hdr.count;
	h->min = total ? hdr.min : UINT64_MAX;
	h->max = total ? hdr.max : 0;
	return 0;
bad:
	hist_reset(h);
	return -EBADMSG;
}
