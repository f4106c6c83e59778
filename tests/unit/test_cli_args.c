/* SPDX-License-Identifier: MIT */
/*
 * The CLI's argument parsing and text escaping (tools/cli.c), linked from
 * the CLI's internal archive (Makefile).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../tools/cli.h"

static void expect_u64(const char *s, uint64_t want)
{
	uint64_t v = 0;
	int ret = cli_parse_u64(s, &v);

	if (ret || v != want)
		fail_msg("'%s': ret %d value %llu, want %llu", s, ret, (unsigned long long)v,
			 (unsigned long long)want);
}

static void expect_u64_err(const char *s, int err)
{
	uint64_t v = 12345;
	int ret = cli_parse_u64(s, &v);

	if (ret != err)
		fail_msg("'%s': ret %d, want %d", s, ret, err);
	assert_int_equal(v, 12345); /* untouched on error */
}

static void test_parse_u64(void **state)
{
	expect_u64("0", 0);
	expect_u64("42", 42);
	expect_u64("1k", 1000);
	expect_u64("1K", 1000);
	expect_u64("200k", 200000);
	expect_u64("2M", 2000000);
	expect_u64("3G", 3000000000ull);
	expect_u64("1T", 1000000000000ull);
	expect_u64("1Ki", 1024);
	expect_u64("4Mi", 4ull << 20);
	expect_u64("1Gi", 1ull << 30);
	expect_u64("1.5k", 1500);
	expect_u64("0.5Ki", 512);
	expect_u64("18446744073709551615", UINT64_MAX);

	expect_u64_err("18446744073709551616", -ERANGE);
	expect_u64_err("18446744073709552T", -ERANGE);
	expect_u64_err("100000000000000000000.0", -ERANGE);
	expect_u64_err("", -EINVAL);
	expect_u64_err("Ei", -EINVAL);
	expect_u64_err("k", -EINVAL);
	expect_u64_err("-1", -EINVAL);
	expect_u64_err(" 1", -EINVAL);
	expect_u64_err("+1", -EINVAL);
	expect_u64_err("0x10", -EINVAL);
	expect_u64_err("1x", -EINVAL);
	expect_u64_err("1 ", -EINVAL);
	expect_u64_err("1.5", -EINVAL);     /* not whole */
	expect_u64_err("1.0001k", -EINVAL); /* 1000.1 */
	expect_u64_err("1e3", -EINVAL);
	expect_u64_err("1.0e3", -EINVAL);
	expect_u64_err("1kk", -EINVAL);
	expect_u64_err("1KiB", -EINVAL);
	expect_u64_err("1m", -EINVAL); /* milli is not a count */
	expect_u64_err(NULL, -EINVAL);
}

static void expect_dur(const char *s, uint64_t unit, uint64_t want)
{
	uint64_t v = 0;
	int ret = cli_parse_duration_ns(s, unit, &v);

	if (ret || v != want)
		fail_msg("'%s': ret %d value %llu, want %llu", s, ret, (unsigned long long)v,
			 (unsigned long long)want);
}

static void test_parse_duration(void **state)
{
	const uint64_t ms = 1000000, sec = 1000000000;
	uint64_t v;

	expect_dur("500", ms, 500 * ms);
	expect_dur("500", sec, 500 * sec);
	expect_dur("0", ms, 0);
	expect_dur("2s", ms, 2 * sec);
	expect_dur("1.5s", ms, 1500 * ms);
	expect_dur(".5s", ms, 500 * ms);
	expect_dur("0.25", sec, 250 * ms);
	expect_dur("100us", sec, 100000);
	expect_dur("10ns", sec, 10);
	expect_dur("250ms", sec, 250 * ms);
	expect_dur("1m", ms, 60 * sec);
	expect_dur("2h", ms, 7200 * sec);

	assert_int_equal(cli_parse_duration_ns("", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("s", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("-1", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("5x", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("5 s", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("1e3", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("0x10", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("inf", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("nan", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("1.2.3s", ms, &v), -EINVAL);
	assert_int_equal(cli_parse_duration_ns("99999999999h", ms, &v), -ERANGE);
}

/* Run fn in a child with stderr discarded; its exit status. */
static int exit_status_of(void (*fn)(void))
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		freopen("/dev/null", "w", stderr);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void bad_count(void) { cli_u64_or_exit("test", "--count", "12q", 1, 100); }
static void low_count(void) { cli_u64_or_exit("test", "--count", "0", 1, 100); }
static void high_count(void) { cli_u64_or_exit("test", "--count", "1k", 1, 100); }
static void good_count(void) { assert_true(cli_u64_or_exit("test", "--count", "1Ki", 1, 1 << 20) == 1024); }
static void bad_duration(void)
{
	cli_duration_or_exit("test", "--timeout", "3 days", 1000000, 0, UINT64_MAX);
}
static void long_duration(void) { cli_duration_or_exit("test", "--timeout", "2s", 1000000, 0, 1000000000); }
static void die_runtime(void) { cli_die("test", -ENOENT, "no %s", "daemon"); }

static void test_exit_status(void **state)
{
	assert_int_equal(exit_status_of(bad_count), CLI_EXIT_USAGE);
	assert_int_equal(exit_status_of(low_count), CLI_EXIT_USAGE);
	assert_int_equal(exit_status_of(high_count), CLI_EXIT_USAGE);
	assert_int_equal(exit_status_of(good_count), 0);
	assert_int_equal(exit_status_of(bad_duration), CLI_EXIT_USAGE);
	assert_int_equal(exit_status_of(long_duration), CLI_EXIT_USAGE);
	assert_int_equal(exit_status_of(die_runtime), CLI_EXIT_ERR);
}

static void test_utf8(void **state)
{
	assert_true(cli_utf8_valid("", 0));
	assert_true(cli_utf8_valid("plain", 5));
	assert_true(cli_utf8_valid("h\xc3\xa9llo", 6));          /* é */
	assert_true(cli_utf8_valid("\xe2\x82\xac", 3));          /* € */
	assert_true(cli_utf8_valid("\xf0\x9f\x98\x80", 4));      /* U+1F600 */
	assert_true(cli_utf8_valid("a\0b", 3));                  /* NUL is valid UTF-8 */
	assert_false(cli_utf8_valid("\xff", 1));
	assert_false(cli_utf8_valid("\x80", 1));                 /* lone continuation */
	assert_false(cli_utf8_valid("\xc0\xaf", 2));             /* overlong '/' */
	assert_false(cli_utf8_valid("\xe0\x80\xaf", 3));         /* overlong */
	assert_false(cli_utf8_valid("\xed\xa0\x80", 3));         /* surrogate */
	assert_false(cli_utf8_valid("\xf4\x90\x80\x80", 4));     /* over U+10FFFF */
	assert_false(cli_utf8_valid("\xe2\x82", 2));             /* truncated */
	assert_false(cli_utf8_valid("\xe2\x82\xac", 2));         /* truncated by len */
}

/* What fn wrote for s[0..len), NUL-terminated; the caller frees it. */
static char *render(void (*fn)(FILE *, const void *, size_t), const void *s, size_t len)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);

	assert_non_null(f);
	fn(f, s, len);
	fclose(f);
	return out;
}

#define assert_render(fn, lit, want)                                       \
	do {                                                               \
		char *got_ = render(fn, lit, sizeof(lit) - 1);             \
		if (strcmp(got_, want))                                    \
			fail_msg("%s: got [%s], want [%s]", #fn, got_, want); \
		free(got_);                                                \
	} while (0)

static void test_escape_text(void **state)
{
	assert_render(cli_put_escaped, "", "");
	assert_render(cli_put_escaped, "hello world", "hello world");
	assert_render(cli_put_escaped, "a\\b", "a\\\\b");
	assert_render(cli_put_escaped, "l1\nl2\r\t", "l1\\nl2\\r\\t");
	assert_render(cli_put_escaped, "\x01\x7f\xff", "\\x01\\x7f\\xff");
	assert_render(cli_put_escaped, "nul\0x", "nul\\x00x");
	assert_render(cli_put_escaped, "h\xc3\xa9llo \xe2\x82\xac", "h\xc3\xa9llo \xe2\x82\xac");
	assert_render(cli_put_escaped, "\xc2\x85", "\\xc2\\x85"); /* C1 control NEL */
	assert_render(cli_put_escaped, "\xe2\x82", "\\xe2\\x82");  /* truncated sequence */
	assert_render(cli_put_escaped, "\x1b[2J", "\\x1b[2J");    /* no terminal escapes */
}

static void test_escape_json(void **state)
{
	assert_render(cli_put_json_str, "", "\"\"");
	assert_render(cli_put_json_str, "plain", "\"plain\"");
	assert_render(cli_put_json_str, "q\"b\\s/", "\"q\\\"b\\\\s/\"");
	assert_render(cli_put_json_str, "\n\r\t\x01\x1f\x7f", "\"\\n\\r\\t\\u0001\\u001f\\u007f\"");
	assert_render(cli_put_json_str, "nul\0", "\"nul\\u0000\"");
	assert_render(cli_put_json_str, "\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xe2\x82\xac\xf0\x9f\x98\x80\"");
	assert_render(cli_put_json_str, "\xff\xc0\xaf", "\"\\u00ff\\u00c0\\u00af\"");
}

static void test_base64(void **state)
{
	/* RFC 4648 section 10. */
	assert_render(cli_put_base64, "", "");
	assert_render(cli_put_base64, "f", "Zg==");
	assert_render(cli_put_base64, "fo", "Zm8=");
	assert_render(cli_put_base64, "foo", "Zm9v");
	assert_render(cli_put_base64, "foob", "Zm9vYg==");
	assert_render(cli_put_base64, "fooba", "Zm9vYmE=");
	assert_render(cli_put_base64, "foobar", "Zm9vYmFy");
	assert_render(cli_put_base64, "\xff\xfe\x00", "//4A");
}

static void test_format(void **state)
{
	char buf[32];

	assert_string_equal(cli_fmt_bytes(buf, sizeof(buf), 0), "0 B");
	assert_string_equal(cli_fmt_bytes(buf, sizeof(buf), 1023), "1023 B");
	assert_string_equal(cli_fmt_bytes(buf, sizeof(buf), 1536), "1.50 KiB");
	assert_string_equal(cli_fmt_bytes(buf, sizeof(buf), 1 << 20), "1.00 MiB");
	assert_string_equal(cli_fmt_bytes(buf, sizeof(buf), 200ull << 20), "200 MiB");
	assert_string_equal(cli_fmt_bytes(buf, sizeof(buf), UINT64_MAX), "16.0 EiB");
	assert_string_equal(cli_fmt_ns(buf, sizeof(buf), 0), "0 ns");
	assert_string_equal(cli_fmt_ns(buf, sizeof(buf), 850), "850 ns");
	assert_string_equal(cli_fmt_ns(buf, sizeof(buf), 12345), "12.3 us");
	assert_string_equal(cli_fmt_ns(buf, sizeof(buf), 4560000), "4.56 ms");
	assert_string_equal(cli_fmt_ns(buf, sizeof(buf), 1500000000), "1.50 s");
}

static void test_socket_name(void **state)
{
	assert_string_equal(cli_socket_name("/tmp/given.sock"), "/tmp/given.sock");
	setenv("RINGCAST_SOCKET", "/tmp/env.sock", 1);
	assert_string_equal(cli_socket_name(NULL), "/tmp/env.sock");
	assert_string_equal(cli_socket_name("/tmp/given.sock"), "/tmp/given.sock");
	setenv("RINGCAST_SOCKET", "", 1);
	assert_string_equal(cli_socket_name(NULL), RINGCAST_DEFAULT_SOCKET);
	unsetenv("RINGCAST_SOCKET");
	assert_string_equal(cli_socket_name(NULL), RINGCAST_DEFAULT_SOCKET);
}

static void test_check_socket(void **state)
{
	/* The library takes "" for no path at all: as an option value it is bad usage. */
	assert_int_equal(cli_check_socket("test", ""), CLI_EXIT_USAGE);
	assert_int_equal(cli_check_socket("test", "/tmp/given.sock"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_escape_text),
		cmocka_unit_test(test_escape_json),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_socket_name),
		cmocka_unit_test(test_check_socket),
	};

	return cmocka_run_group_tests_name("cli_args", tests, NULL, NULL);
}
