/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench's argument parser (tools/bench/bench_args.c), linked from
 * the CLI's internal archive (Makefile), and the stamp every message
 * carries (tools/bench/bench.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tools/bench/bench.h"
#include "../../tools/cli.h"

static struct bench_opts o;

/* Parse a NULL-terminated list of arguments after "bench". */
static int parse_v(const char *first, va_list ap)
{
	char *argv[64] = { "ringcast bench" };
	int argc = 1;

	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		assert_true(argc < 63);
		argv[argc++] = (char *)a;
	}
	argv[argc] = NULL;
	return bench_parse_args(argc, argv, &o);
}

static int parse(const char *first, ...)
{
	va_list ap;
	int ret;

	va_start(ap, first);
	ret = parse_v(first, ap);
	va_end(ap);
	return ret;
}

#define ACCEPT(...) assert_int_equal(parse(__VA_ARGS__, NULL), 0)
#define REJECT(...) assert_int_equal(parse(__VA_ARGS__, NULL), CLI_EXIT_USAGE)

static void test_defaults(void **state)
{
	assert_int_equal(parse(NULL), 0);
	assert_int_equal(o.n_transports, 1);
	assert_string_equal(o.transports[0], "ringcast");
	assert_int_equal(o.n_sizes, 1);
	assert_int_equal(o.sizes[0], 64);
	assert_int_equal(o.n_subs, 1);
	assert_int_equal(o.subs[0], 1);
	assert_int_equal(o.n_waits, 1);
	assert_false(o.waits[0]); /* sleep */
	assert_int_equal(o.pubs, 1);
	assert_int_equal(o.count, 100000);
	assert_int_equal(o.duration_ns, 0);
	assert_int_equal(o.rate, 0);
	assert_int_equal(o.pace, BENCH_PACE_AUTO);
	assert_int_equal(o.n_cpus, 0);
	assert_int_equal(o.rounds, 1);
	assert_string_equal(o.topic, "ringcast.bench");
	assert_null(o.socket);
	assert_null(o.csv);
	assert_false(o.sweep || o.json || o.per_sub || o.zero_copy || o.help);
}

static void test_single_run(void **state)
{
	ACCEPT("--subs", "16", "--pubs", "3", "--size", "4Ki", "--count", "2M", "--rate", "10k", "--wait", "spin",
	       "--transport", "uds", "--socket", "/tmp/s", "--json", "--per-sub");
	assert_int_equal(o.subs[0], 16);
	assert_int_equal(o.pubs, 3);
	assert_int_equal(o.sizes[0], 4096);
	assert_int_equal(o.count, 2000000);
	assert_int_equal(o.rate, 10000);
	assert_true(o.waits[0]);
	assert_string_equal(o.transports[0], "uds");
	assert_string_equal(o.socket, "/tmp/s");
	assert_true(o.json && o.per_sub);

	/* Short options, and --duration instead of --count. */
	ACCEPT("-n", "2", "-P", "2", "-s", "1Mi", "-d", "1.5", "-w", "sleep", "-T", "ringcast", "-t", "my.topic", "-j");
	assert_int_equal(o.sizes[0], 1 << 20);
	assert_int_equal(o.duration_ns, 1500000000ull);
	assert_int_equal(o.count, 0);
	assert_string_equal(o.topic, "my.topic");
	ACCEPT("--duration", "250ms");
	assert_int_equal(o.duration_ns, 250000000ull);

	/* ringcast alone takes messages too small for a stamp, and --zero-copy. */
	ACCEPT("--size", "0", "--zero-copy");
	assert_int_equal(o.sizes[0], 0);
	assert_true(o.zero_copy);
	ACCEPT("--transport", "zmq", "--size", "8");

	/* --batch: flat out, 1 by default. */
	ACCEPT("--batch", "16", "--duration", "1");
	assert_int_equal(o.n_batches, 1);
	assert_int_equal(o.batches[0], 16);
	ACCEPT("-b", "1", "--rate", "10k");
	assert_int_equal(o.batches[0], 1);

	ACCEPT("--help");
	assert_true(o.help);
}

static void test_sweep_lists(void **state)
{
	ACCEPT("--sweep", "--transport", "all", "--size", "8,64,1Ki,1Mi", "--subs", "1,2,4,8,16,64", "--wait",
	       "spin,sleep", "--csv", "out.csv", "--rounds", "3", "--duration", "1");
	assert_true(o.sweep);
	assert_int_equal(o.n_transports, 5);
	assert_string_equal(o.transports[0], "ringcast");
	assert_string_equal(o.transports[4], "redis");
	assert_int_equal(o.n_sizes, 4);
	assert_int_equal(o.sizes[1], 64);
	assert_int_equal(o.sizes[3], 1 << 20);
	assert_int_equal(o.n_subs, 6);
	assert_int_equal(o.subs[5], 64);
	assert_int_equal(o.n_waits, 2);
	assert_true(o.waits[0]);
	assert_false(o.waits[1]);
	assert_string_equal(o.csv, "out.csv");
	assert_int_equal(o.rounds, 3);
	assert_int_equal(o.n_batches, 1);
	assert_int_equal(o.batches[0], 1);

	/* Batches are a list too; the peers simply run once (bench_sweep.c). */
	ACCEPT("--sweep", "-T", "all", "--batch", "1,16");
	assert_int_equal(o.n_batches, 2);
	assert_int_equal(o.batches[1], 16);

	ACCEPT("--sweep", "-T", "ringcast,uds,zmq");
	assert_int_equal(o.n_transports, 3);
	assert_string_equal(o.transports[2], "zmq");
	/* The last occurrence of an option wins, lists included. */
	ACCEPT("--sweep", "--size", "1,2,3", "--size", "7");
	assert_int_equal(o.n_sizes, 1);
	assert_int_equal(o.sizes[0], 7);
}

static void test_cpus(void **state)
{
	ACCEPT("--cpus", "0,1");
	assert_int_equal(o.n_cpus, 2);
	assert_int_equal(o.cpus[0], 0);
	assert_int_equal(o.cpus[1], 1);
	ACCEPT("--cpus", "3,0-2,7");
	assert_int_equal(o.n_cpus, 5);
	assert_int_equal(o.cpus[0], 3);
	assert_int_equal(o.cpus[1], 0);
	assert_int_equal(o.cpus[3], 2);
	assert_int_equal(o.cpus[4], 7);
	REJECT("--cpus", "");
	REJECT("--cpus", "1,");
	REJECT("--cpus", ",1");
	REJECT("--cpus", "1,,2");
	REJECT("--cpus", "2-1");
	REJECT("--cpus", "a");
	REJECT("--cpus", "1-");
	REJECT("--cpus", "9999");
}

static void test_rejects(void **state)
{
	/* Lists need --sweep, and so do its own options. */
	REJECT("--size", "64,128");
	REJECT("--subs", "1,2");
	REJECT("--wait", "spin,sleep");
	REJECT("--transport", "all");
	REJECT("--csv", "x.csv");
	REJECT("--rounds", "2");
	/* Values. */
	REJECT("--subs", "0");
	REJECT("--subs", "257");
	REJECT("--pubs", "0");
	REJECT("--pubs", "17");
	REJECT("--size", "65Mi");
	REJECT("--size", "-1");
	REJECT("--count", "0");
	REJECT("--count", "1x");
	REJECT("--rate", "0");
	REJECT("--duration", "0");
	REJECT("--duration", "fast");
	REJECT("--wait", "busy");
	REJECT("--rounds", "0");
	REJECT("--transport", "kafka");
	REJECT("--sweep", "--size", "64,,128");
	REJECT("--sweep", "--size", ",64");
	REJECT("--sweep", "--subs", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17");
	/* Combinations. */
	REJECT("--count", "10", "--duration", "1");
	REJECT("--count", "2", "--pubs", "3");
	REJECT("--transport", "uds", "--zero-copy");
	REJECT("--batch", "0");
	REJECT("--batch", "1025");
	REJECT("--batch", "1,16");
	REJECT("--batch", "16", "--rate", "1000");
	REJECT("--batch", "16", "--zero-copy");
	REJECT("--batch", "512", "--size", "1Mi");
	REJECT("--transport", "zmq", "--batch", "16");
	REJECT("--sweep", "--batch", "1,16", "--rate", "1000");
	REJECT("--transport", "nng", "--size", "7");
	REJECT("--sweep", "--transport", "ringcast,redis", "--size", "0,64");
	REJECT("--topic", "");
	/* An empty --socket would quietly be the default socket. */
	REJECT("--socket", "");
	/* Without --csv, the CSV rows take stdout: no room for JSON lines. */
	REJECT("--sweep", "--json");
	ACCEPT("--sweep", "--json", "--csv", "x.csv");
	REJECT("extra");
	REJECT("--no-such-option");
}

/* A run of the options parsed last, as bench_run() gets it. */
static struct bench_cfg cfg_of(unsigned pubs)
{
	return (struct bench_cfg){ .o = &o, .pubs = pubs, .rate = o.rate };
}

static void test_pace(void **state)
{
	struct bench_cfg c;

	ACCEPT("--rate", "10k", "--pace", "spin");
	assert_int_equal(o.pace, BENCH_PACE_SPIN);
	c = cfg_of(1);
	assert_false(bench_pace_sleeps(&c));
	assert_string_equal(bench_pace_name(&c), "spin");
	ACCEPT("--rate", "1M", "--pace", "sleep");
	assert_int_equal(o.pace, BENCH_PACE_SLEEP);
	c = cfg_of(1);
	assert_true(bench_pace_sleeps(&c));
	assert_string_equal(bench_pace_name(&c), "sleep");
	/* The last one wins, like every option. */
	ACCEPT("--rate", "10k", "--pace", "spin", "--pace", "sleep");
	assert_int_equal(o.pace, BENCH_PACE_SLEEP);
	ACCEPT("--sweep", "--rate", "10k", "--pace", "spin", "--size", "8,64");
	assert_int_equal(o.pace, BENCH_PACE_SPIN);

	/* Default: sleep when a publisher's messages are BENCH_PACE_SLEEP_MIN_NS or more apart. */
	ACCEPT("--rate", "10k");
	assert_int_equal(o.pace, BENCH_PACE_AUTO);
	c = cfg_of(1);
	assert_true(bench_pace_sleeps(&c)); /* 100 us apart */
	ACCEPT("--rate", "20k");
	c = cfg_of(1);
	assert_true(bench_pace_sleeps(&c)); /* 50 us: the threshold sleeps */
	ACCEPT("--rate", "20001");
	c = cfg_of(1);
	assert_false(bench_pace_sleeps(&c)); /* just under 50 us */
	ACCEPT("--rate", "100k");
	c = cfg_of(1);
	assert_false(bench_pace_sleeps(&c)); /* 10 us apart: spin */
	assert_string_equal(bench_pace_name(&c), "spin");
	c = cfg_of(16);
	assert_true(bench_pace_sleeps(&c)); /* shared by 16: 160 us apart each */

	/* Flat out: no pacing to name. */
	ACCEPT("--count", "10");
	c = cfg_of(1);
	assert_false(bench_pace_sleeps(&c));
	assert_string_equal(bench_pace_name(&c), "none");

	REJECT("--rate", "10k", "--pace", "busy");
	REJECT("--rate", "10k", "--pace", "");
	REJECT("--rate", "10k", "--pace", "spin,sleep");
	REJECT("--rate", "10k", "--pace");
	/* Nothing to pace flat out. */
	REJECT("--pace", "sleep");
	REJECT("--sweep", "--pace", "spin");
}

/* ---- the stamp ---- */

static void test_stamp_full(void **state)
{
	uint64_t expect[BENCH_PUBS_MAX] = { 0 };
	struct bench_stamp_rd rd;
	unsigned char buf[64];

	for (int hdr = 0; hdr < 2; hdr++) {
		memset(buf, 'x', sizeof(buf));
		bench_stamp(buf, sizeof(buf), hdr, 5, 123456789, 987654321);
		bench_unstamp(buf, sizeof(buf), hdr, expect, 0, &rd);
		assert_true(rd.has_tag);
		assert_false(rd.torn);
		assert_int_equal(rd.pub, 5);
		assert_int_equal(rd.index, 123456789);
		assert_int_equal(rd.publish_ns, hdr ? 0 : 987654321);
		/* A torn message: the tail no longer matches the head. */
		buf[sizeof(buf) - 1] ^= 1;
		bench_unstamp(buf, sizeof(buf), hdr, expect, 0, &rd);
		assert_true(rd.torn);
	}
	/* Too small for a tag (ringcast only). */
	bench_stamp(buf, 4, true, 0, 1, 0);
	bench_unstamp(buf, 4, true, expect, 0, &rd);
	assert_false(rd.has_tag);
	/* 16 bytes without a header stamp: tag and time, no tail. */
	bench_stamp(buf, 16, false, 1, 77, 55);
	bench_unstamp(buf, 16, false, expect, 0, &rd);
	assert_true(rd.has_tag && !rd.torn);
	assert_int_equal(rd.index, 77);
	assert_int_equal(rd.publish_ns, 55);
}

static void test_stamp_packed(void **state)
{
	uint64_t expect[BENCH_PUBS_MAX] = { 0 };
	uint64_t now = 5000000000123ull; /* past 2^40 ns: the time must be unwrapped */
	struct bench_stamp_rd rd;
	unsigned char buf[8];

	/* 8 to 15 bytes: publisher, index mod 2^20 and time mod 2^40 in one word. */
	for (size_t size = 8; size < 16; size++) {
		expect[3] = (1ull << 20) * 5 + 17;
		bench_stamp(buf, size, false, 3, expect[3] + 4, now - 1500);
		bench_unstamp(buf, size, false, expect, now, &rd);
		assert_true(rd.has_tag);
		assert_int_equal(rd.pub, 3);
		assert_int_equal(rd.index, expect[3] + 4); /* a gap of 4 */
		assert_int_equal(rd.publish_ns, now - 1500);
	}
	/* The expected index exactly, across a 2^20 boundary. */
	expect[0] = (1ull << 20) - 1;
	bench_stamp(buf, 8, false, 0, expect[0], now);
	bench_unstamp(buf, 8, false, expect, now, &rd);
	assert_int_equal(rd.index, expect[0]);
	expect[0]++;
	bench_stamp(buf, 8, false, 0, expect[0] + 10, now);
	bench_unstamp(buf, 8, false, expect, now + 7, &rd);
	assert_int_equal(rd.index, expect[0] + 10);
	assert_int_equal(rd.publish_ns, now);
	assert_int_equal(rd.pub, 0);
	/* The top publisher number fits. */
	bench_stamp(buf, 8, false, BENCH_PUBS_MAX - 1, 9, now);
	bench_unstamp(buf, 8, false, expect, now, &rd);
	assert_int_equal(rd.pub, BENCH_PUBS_MAX - 1);
	assert_int_equal(rd.index, 9);
}

static void test_end_len(void **state)
{
	/* The end message must never be mistaken for data. */
	for (size_t size = 0; size < 100; size++)
		assert_true(bench_end_len(size) != size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_single_run),
		cmocka_unit_test(test_sweep_lists),
		cmocka_unit_test(test_cpus),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_pace),
		cmocka_unit_test(test_stamp_full),
		cmocka_unit_test(test_stamp_packed),
		cmocka_unit_test(test_end_len),
	};

	/* The rejections print why on stderr: expected. */
	return cmocka_run_group_tests_name("bench_args", tests, NULL, NULL);
}
