/* SPDX-License-Identifier: MIT */
/*
 * The bench's latency histogram (tools/bench/hist.c), against brute force.
 * The Makefile links it from the CLI's internal archive.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tools/bench/hist.h"

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Spread over every magnitude: a random bit length, then random bits. */
static uint64_t rng_logu(void)
{
	unsigned bits = (unsigned)(rng() % 65);

	if (bits == 0)
		return 0;
	if (bits == 64)
		return rng();
	return (rng() & ((1ull << bits) - 1)) | (1ull << (bits - 1));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static struct hist *hist_new(void)
{
	struct hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	hist_reset(h);
	return h;
}

/* The sample of rank ceil(q/100 * n) (at least 1) in sorted v. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double q)
{
	long double want = ceill((long double)q / 100.0L * (long double)n);
	size_t rank = want < 1 ? 1 : (size_t)want;

	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static void assert_close(uint64_t got, uint64_t want, double q)
{
	long double diff = got > want ? (long double)(got - want) : (long double)(want - got);

	if (diff > (long double)want * HIST_REL_ERR)
		fail_msg("p%g: got %llu, exact %llu: error over %.4f%%", q, (unsigned long long)got,
			 (unsigned long long)want, HIST_REL_ERR * 100);
}

static void test_empty(void **state)
{
	struct hist *h = hist_new(), *back = hist_new();
	unsigned char buf[256];
	size_t n;

	assert_int_equal(hist_count(h), 0);
	assert_int_equal(hist_max(h), 0);
	assert_int_equal(hist_min(h), 0);
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 100), 0);
	assert_true(hist_mean(h) == 0);

	/* Merging an empty histogram changes nothing, including min. */
	hist_record(back, 7);
	hist_merge(back, h);
	assert_int_equal(hist_count(back), 1);
	assert_int_equal(hist_min(back), 7);

	n = hist_serialize(h, buf, sizeof(buf));
	assert_true(n <= sizeof(buf));
	assert_int_equal(hist_deserialize(back, buf, n), 0);
	assert_int_equal(hist_count(back), 0);
	assert_int_equal(hist_percentile(back, 99), 0);
	free(h);
	free(back);
}

/* Buckets tile the u64 range without gaps or overlaps, each within the error bound. */
static void test_bucket_layout(void **state)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);

		assert_true(lo <= hi);
		assert_int_equal(hist_index(lo), i);
		assert_int_equal(hist_index(hi), i);
		if (i + 1 < HIST_BUCKETS)
			assert_true(hi + 1 == hist_bucket_lo(i + 1));
		if (lo >= 2 * HIST_SUB)
			assert_true((long double)(hi - lo + 1) <= (long double)lo * HIST_REL_ERR);
	}
	assert_int_equal(hist_bucket_lo(0), 0);
	assert_true(hist_bucket_hi(HIST_BUCKETS - 1) == UINT64_MAX);
	for (int i = 0; i < 1000000; i++) {
		uint64_t v = rng_logu();
		unsigned idx = hist_index(v);

		assert_true(idx < HIST_BUCKETS);
		assert_true(hist_bucket_lo(idx) <= v && v <= hist_bucket_hi(idx));
	}
}

static void check_against_sort(uint64_t *v, size_t n)
{
	static const double qs[] = { 0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999, 100 };
	struct hist *h = hist_new();

	for (size_t i = 0; i < n; i++)
		hist_record(h, v[i]);
	qsort(v, n, sizeof(*v), cmp_u64);
	assert_int_equal(hist_count(h), n);
	assert_true(hist_max(h) == v[n - 1]);
	assert_true(hist_min(h) == v[0]);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		assert_close(hist_percentile(h, qs[i]), exact_percentile(v, n, qs[i]), qs[i]);
	/* Every rank, not only the usual ones. */
	for (size_t r = 1; r <= n; r += n / 997 + 1) {
		double q = 100.0 * (double)r / (double)n;

		assert_close(hist_percentile(h, q), exact_percentile(v, n, q), q);
	}
	free(h);
}

static void test_percentiles_random(void **state)
{
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));

	assert_non_null(v);
	/* Latency-like: mostly around a microsecond, a long tail. */
	for (size_t i = 0; i < n; i++)
		v[i] = 500 + rng() % 2000 + (rng() % 100 == 0 ? rng() % 10000000 : 0);
	check_against_sort(v, n);
	/* Every magnitude, including 0 and values near UINT64_MAX. */
	for (size_t i = 0; i < n; i++)
		v[i] = rng_logu();
	check_against_sort(v, n);
	/* Small n, where rank rounding matters. */
	for (size_t k = 1; k <= 17; k++) {
		for (size_t i = 0; i < k; i++)
			v[i] = rng() % 100000;
		check_against_sort(v, k);
	}
	free(v);
}

static void test_merge_equals_record_all(void **state)
{
	struct hist *all = hist_new(), *part[3], *merged = hist_new();

	for (int i = 0; i < 3; i++)
		part[i] = hist_new();
	for (int i = 0; i < 300000; i++) {
		uint64_t v = rng_logu();

		hist_record(all, v);
		hist_record(part[rng() % 3], v);
	}
	for (int i = 0; i < 3; i++)
		hist_merge(merged, part[i]);
	assert_int_equal(merged->count, all->count);
	assert_true(merged->min == all->min);
	assert_true(merged->max == all->max);
	assert_memory_equal(merged->buckets, all->buckets, sizeof(all->buckets));
	for (double q = 0; q <= 100; q += 0.5)
		assert_true(hist_percentile(merged, q) == hist_percentile(all, q));
	for (int i = 0; i < 3; i++)
		free(part[i]);
	free(all);
	free(merged);
}

static void test_max_exact(void **state)
{
	struct hist *h = hist_new();

	/* 1000003 shares a bucket with its neighbours; max must not be rounded. */
	hist_record(h, 1000);
	hist_record(h, 1000003);
	hist_record(h, 999999);
	assert_true(hist_max(h) == 1000003);
	assert_true(hist_percentile(h, 100) == 1000003);
	assert_true(hist_min(h) == 1000);
	/* The top rank is the max too, whatever q rounds to. */
	assert_true(hist_percentile(h, 99.99) == 1000003);
	free(h);
}

static void test_extremes(void **state)
{
	struct hist *h = hist_new();

	hist_record(h, 0);
	hist_record(h, UINT64_MAX);
	hist_record(h, UINT64_MAX - 1);
	hist_record(h, 1ull << 63);
	assert_int_equal(hist_count(h), 4);
	assert_int_equal(hist_min(h), 0);
	assert_true(hist_max(h) == UINT64_MAX);
	assert_int_equal(hist_percentile(h, 0), 0);
	assert_int_equal(hist_percentile(h, 25), 0);
	assert_close(hist_percentile(h, 50), 1ull << 63, 50);
	assert_close(hist_percentile(h, 75), UINT64_MAX - 1, 75);
	assert_true(hist_percentile(h, 100) == UINT64_MAX);
	/* q out of range is clamped, not undefined. */
	assert_int_equal(hist_percentile(h, -5), 0);
	assert_true(hist_percentile(h, 1000) == UINT64_MAX);
	assert_true(hist_mean(h) > 0);

	/* Values below 2 * HIST_SUB are exact. */
	hist_reset(h);
	for (uint64_t v = 0; v < 2 * HIST_SUB; v++)
		hist_record(h, v);
	for (uint64_t v = 1; v <= 2 * HIST_SUB; v++)
		assert_int_equal(hist_percentile(h, 100.0 * (double)v / (2 * HIST_SUB)), v - 1);
	free(h);
}

static void test_record_n(void **state)
{
	struct hist *a = hist_new(), *b = hist_new();

	for (int i = 0; i < 5; i++)
		hist_record(a, 12345);
	hist_record_n(b, 12345, 5);
	hist_record_n(b, 99, 0);
	assert_memory_equal(a, b, sizeof(*a));
	free(a);
	free(b);
}

/* hist_record_since() is hist_record() of each difference, stamps after now counting 0. */
static void test_record_since(void **state)
{
	struct hist *a = hist_new(), *b = hist_new();
	uint64_t t[300], now = 1ull << 40;

	for (unsigned round = 0; round < 20; round++) {
		unsigned n = (unsigned)(rng() % 300);

		for (unsigned i = 0; i < n; i++) {
			t[i] = now - rng_logu() % now;
			if (i % 17 == 3)
				t[i] = now + 5; /* stamped after the clock read: 0 */
			hist_record(a, now > t[i] ? now - t[i] : 0);
		}
		hist_record_since(b, now, t, n);
		now += 1000000;
	}
	assert_memory_equal(a, b, sizeof(*a));
	free(a);
	free(b);
}

static void test_serialize(void **state)
{
	struct hist *h = hist_new(), *back = hist_new();
	size_t need, got;
	unsigned char *buf;

	for (int i = 0; i < 100000; i++)
		hist_record(h, rng_logu());
	need = hist_serialize(h, NULL, 0);
	buf = malloc(need + 16);
	assert_non_null(buf);
	got = hist_serialize(h, buf, need);
	assert_int_equal(got, need);
	assert_int_equal(hist_deserialize(back, buf, need), 0);
	assert_memory_equal(h, back, sizeof(*h));

	/* Truncated, extended, and corrupted encodings are refused, not trusted. */
	assert_int_equal(hist_deserialize(back, buf, need - 1), -EBADMSG);
	assert_int_equal(hist_deserialize(back, buf, need + 8), -EBADMSG);
	assert_int_equal(hist_deserialize(back, buf, 3), -EBADMSG);
	buf[0] ^= 1; /* magic */
	assert_int_equal(hist_deserialize(back, buf, need), -EBADMSG);
	buf[0] ^= 1;
	{
		struct hist_wire_hdr hdr;
		struct hist_wire_bucket b;

		memcpy(&hdr, buf, sizeof(hdr));
		hdr.count++; /* counts no longer add up */
		memcpy(buf, &hdr, sizeof(hdr));
		assert_int_equal(hist_deserialize(back, buf, need), -EBADMSG);
		hdr.count--;
		memcpy(buf, &hdr, sizeof(hdr));

		memcpy(&b, buf + sizeof(hdr), sizeof(b));
		b.idx = HIST_BUCKETS; /* out of range */
		memcpy(buf + sizeof(hdr), &b, sizeof(b));
		assert_int_equal(hist_deserialize(back, buf, need), -EBADMSG);
	}
	/* A failed decode leaves an empty histogram, not a half-filled one. */
	assert_int_equal(hist_count(back), 0);
	free(buf);
	free(h);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bucket_layout),
		cmocka_unit_test(test_percentiles_random),
		cmocka_unit_test(test_merge_equals_record_all),
		cmocka_unit_test(test_max_exact),
		cmocka_unit_test(test_extremes),
		cmocka_unit_test(test_record_n),
		cmocka_unit_test(test_record_since),
		cmocka_unit_test(test_serialize),
	};

	return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
