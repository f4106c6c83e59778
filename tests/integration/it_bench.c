/* SPDX-License-Identifier: MIT */
/*
 * it_bench: short `ringcast bench` runs against a real daemon.  They check
 * the report's structure (parsed as JSON, or as CSV for --sweep) and that
 * the counts add up: every subscriber received every message sent, none
 * lost or bad.  Never timing: this machine may be busy.  Only the
 * built-in transports (ringcast, uds) run here; the peers need packages
 * that make check does not install.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* ---- a small JSON reader: enough to check structure and read numbers ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	bool b;
	double num;
	char *str;          /* J_STR (escapes kept as they are: we compare plain keys) */
	struct jv *items;   /* J_ARR, J_OBJ */
	char **keys;        /* J_OBJ */
	size_t n;
};

static void jskip(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static bool jparse(const char **p, struct jv *v, int depth);

static char *jstring(const char **p)
{
	const char *s = ++*p;
	char *out;

	while (**p && **p != '"') {
		if (**p == '\\' && (*p)[1])
			(*p)++;
		(*p)++;
	}
	if (**p != '"')
		return NULL;
	out = strndup(s, (size_t)(*p - s));
	(*p)++;
	return out;
}

static bool jparse_list(const char **p, struct jv *v, int depth, bool obj)
{
	char close = obj ? '}' : ']';

	(*p)++;
	jskip(p);
	if (**p == close) {
		(*p)++;
		return true;
	}
	for (;;) {
		v->items = realloc(v->items, (v->n + 1) * sizeof(*v->items));
		v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
		if (!v->items || !v->keys)
			return false;
		v->keys[v->n] = NULL;
		jskip(p);
		if (obj) {
			if (**p != '"' || !(v->keys[v->n] = jstring(p)))
				return false;
			jskip(p);
			if (*(*p)++ != ':')
				return false;
		}
		if (!jparse(p, &v->items[v->n++], depth + 1))
			return false;
		jskip(p);
		if (**p == ',') {
			(*p)++;
			continue;
		}
		if (**p == close) {
			(*p)++;
			return true;
		}
		return false;
	}
}

static bool jparse(const char **p, struct jv *v, int depth)
{
	char *end;

	memset(v, 0, sizeof(*v));
	jskip(p);
	if (depth > 16)
		return false;
	switch (**p) {
	case '{':
		v->t = J_OBJ;
		return jparse_list(p, v, depth, true);
	case '[':
		v->t = J_ARR;
		return jparse_list(p, v, depth, false);
	case '"':
		v->t = J_STR;
		return (v->str = jstring(p)) != NULL;
	case 't':
	case 'f':
	case 'n':
		v->t = **p == 'n' ? J_NULL : J_BOOL;
		v->b = **p == 't';
		end = (char *)*p + (**p == 'f' ? 5 : 4);
		if (strncmp(*p, **p == 't' ? "true" : **p == 'f' ? "false" : "null", (size_t)(end - *p)))
			return false;
		*p = end;
		return true;
	default:
		v->t = J_NUM;
		v->num = strtod(*p, &end);
		if (end == *p)
			return false;
		*p = end;
		return true;
	}
}

static struct jv *jget(const struct jv *obj, const char *key, enum jtype t)
{
	IT_ASSERT(obj->t == J_OBJ, "not an object where '%s' was expected", key);
	for (size_t i = 0; i < obj->n; i++) {
		if (!strcmp(obj->keys[i], key)) {
			IT_ASSERT(obj->items[i].t == t, "'%s' has JSON type %d, expected %d", key, obj->items[i].t, t);
			return &obj->items[i];
		}
	}
	IT_FAIL("key '%s' is missing", key);
}

static double jnum(const struct jv *obj, const char *key)
{
	return jget(obj, key, J_NUM)->num;
}

/* ---- running the CLI ---- */

static char cli_path[320];

/* Start `ringcast bench --socket SOCK ARGS...` with its stdout and stderr on pipes; returns its pid. */
static pid_t bench_spawn_v(struct it_daemon *d, int *ofd, int *efd, va_list ap)
{
	char *argv[48] = { cli_path, "bench", "--socket", d->sock };
	int argc = 4;

	snprintf(cli_path, sizeof(cli_path), "%s/ringcast", d->build);
	IT_ASSERT(access(cli_path, X_OK) == 0, "%s: %s (build it first: make)", cli_path, strerror(errno));
	for (char *a = va_arg(ap, char *); a && argc < 47; a = va_arg(ap, char *))
		argv[argc++] = a;
	argv[argc] = NULL;
	printf("  $ ringcast bench");
	for (int i = 2; i < argc; i++)
		printf(" %s", argv[i]);
	putchar('\n');
	return it_spawn(argv, NULL, ofd, efd);
}

static pid_t bench_spawn(struct it_daemon *d, int *ofd, int *efd, ...)
{
	va_list ap;
	pid_t pid;

	va_start(ap, efd);
	pid = bench_spawn_v(d, ofd, efd, ap);
	va_end(ap);
	return pid;
}

/* Collect a spawned bench: asserts its exit code within timeout_ms, returns stdout (and stderr in *err_out). */
static char *bench_finish(pid_t pid, int ofd, int efd, int code, int timeout_ms, char **err_out)
{
	char *out = it_read_all(ofd, timeout_ms, NULL);
	char *err = it_read_all(efd, 5000, NULL);

	close(ofd);
	close(efd);
	if (err[0])
		printf("  [stderr] %s", err);
	it_expect_exit(pid, timeout_ms, code, "ringcast bench");
	if (err_out)
		*err_out = err;
	else
		free(err);
	return out;
}

/* Run `ringcast bench --socket SOCK ARGS...` (NULL-terminated); asserts the exit code, returns stdout. */
static char *bench(struct it_daemon *d, int code, char **err_out, ...)
{
	int ofd, efd;
	va_list ap;
	pid_t pid;

	va_start(ap, err_out);
	pid = bench_spawn_v(d, &ofd, &efd, ap);
	va_end(ap);
	return bench_finish(pid, ofd, efd, code, 60000, err_out);
}

static void jfree(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		if (v->keys)
			free(v->keys[i]);
		jfree(&v->items[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

/* The JSON line of one run, checked key by key. */
static void check_json(const char *out, const char *transport, unsigned size, unsigned subs, unsigned pubs,
			     const char *wait, uint64_t count)
{
	static const char *const pct[] = { "p50", "p90", "p99", "p999", "p9999", "max" };
	struct jv *v = calloc(1, sizeof(*v));
	const char *p = out;
	struct jv *lat, *per_sub;
	double prev = 0;

	IT_ASSERT(v && jparse(&p, v, 0), "not JSON: '%s'", out);
	jskip(&p);
	IT_ASSERT(*p == '\0' && strchr(out, '\n') == out + strlen(out) - 1, "more than one JSON line: '%s'", out);
	IT_ASSERT(!strcmp(jget(v, "transport", J_STR)->str, transport), "transport");
	IT_ASSERT(jnum(v, "size") == size, "size %g", jnum(v, "size"));
	IT_ASSERT(jnum(v, "subs") == subs, "subs %g", jnum(v, "subs"));
	IT_ASSERT(jnum(v, "pubs") == pubs, "pubs %g", jnum(v, "pubs"));
	IT_ASSERT(!strcmp(jget(v, "wait", J_STR)->str, wait), "wait");
	if (count)
		IT_ASSERT(jnum(v, "count") == (double)count, "count %g, expected %llu", jnum(v, "count"),
			  (unsigned long long)count);
	else
		IT_ASSERT(jnum(v, "count") > 0, "nothing sent");
	IT_ASSERT(jnum(v, "msgs_per_sec_per_sub") > 0 && jnum(v, "msgs_per_sec_total") >= jnum(v, "msgs_per_sec_per_sub"),
		  "rates");
	IT_ASSERT(jnum(v, "bytes_per_sec_total") >= 0, "bytes_per_sec_total");
	IT_ASSERT(jnum(v, "publisher_ns_per_msg") >= 0, "publisher_ns_per_msg");
	IT_ASSERT(jnum(v, "lost") == 0, "lost %g", jnum(v, "lost"));
	IT_ASSERT(jnum(v, "bad") == 0, "bad %g", jnum(v, "bad"));
	IT_ASSERT(jget(v, "ok", J_BOOL)->b, "ok is false");
	IT_ASSERT(!jget(v, "interrupted", J_BOOL)->b, "interrupted");
	lat = jget(v, "latency_ns", J_OBJ);
	IT_ASSERT(lat->n == 6, "latency_ns has %zu keys", lat->n);
	/* Percentiles of one histogram cannot decrease: a structural property, not a timing. */
	for (size_t i = 0; i < 6; i++) {
		double x = jnum(lat, pct[i]);

		IT_ASSERT(x >= prev, "latency_ns.%s = %g < %g", pct[i], x, prev);
		prev = x;
	}
	per_sub = jget(v, "per_sub", J_ARR);
	IT_ASSERT(per_sub->n == subs, "per_sub has %zu entries, expected %u", per_sub->n, subs);
	for (size_t i = 0; i < subs; i++) {
		const struct jv *s = &per_sub->items[i];

		/* The heart of it: sent == received for every subscriber. */
		IT_ASSERT(jnum(s, "received") == jnum(v, "count"), "subscriber %zu received %g of %g", i,
			  jnum(s, "received"), jnum(v, "count"));
		IT_ASSERT(jnum(s, "lost") == 0 && jnum(s, "bad") == 0, "subscriber %zu lost or bad", i);
		IT_ASSERT(jnum(s, "p50") <= jnum(s, "max"), "subscriber %zu: p50 > max", i);
	}
	jfree(v);
	free(v);
}

/* ---- tests ---- */

static void test_json_sleep(void **state)
{
	struct it_daemon *d = *state;
	char *out;

	it_daemon_start(d, NULL);
	out = bench(d, 0, NULL, "--json", "--subs", "3", "--count", "20000", "--wait", "sleep", NULL);
	check_json(out, "ringcast", 64, 3, 1, "sleep", 20000);
	free(out);
}

/* --batch: ringcast_broadcast_many, every message counted once and in order (bad would say otherwise). */
static void test_json_batch(void **state)
{
	struct it_daemon *d = *state;
	char *out;

	it_daemon_start(d, NULL);
	/* A count that is not a multiple of the batch: the last batch is short. */
	out = bench(d, 0, NULL, "--json", "--subs", "2", "--count", "20007", "--batch", "16", "--wait", "spin", NULL);
	check_json(out, "ringcast", 64, 2, 1, "spin", 20007);
	IT_ASSERT(strstr(out, "\"batch\":16,"), "the JSON does not say batch 16: %s", out);
	free(out);
	/* Two publishers, larger messages than the inline copy, a small ring that fills. */
	out = bench(d, 0, NULL, "--json", "--pubs", "2", "--subs", "1", "--count", "30000", "--size", "300",
		    "--batch", "64", "--wait", "sleep", NULL);
	check_json(out, "ringcast", 300, 1, 2, "sleep", 30000);
	free(out);
}

static void test_json_pubs_spin_zero_copy(void **state)
{
	struct it_daemon *d = *state;
	char *out;

	it_daemon_start(d, NULL);
	/* An odd count over two publishers, 16-byte messages (an end message of another length). */
	out = bench(d, 0, NULL, "--json", "--pubs", "2", "--subs", "2", "--count", "10001", "--size", "16", "--wait",
		    "spin", "--zero-copy", NULL);
	check_json(out, "ringcast", 16, 2, 2, "spin", 10001);
	free(out);
	/* No stamp at all: 4-byte messages are counted, not checked. */
	out = bench(d, 0, NULL, "--json", "--subs", "2", "--count", "3000", "--size", "4", NULL);
	check_json(out, "ringcast", 4, 2, 1, "sleep", 3000);
	free(out);
}

static void test_json_uds(void **state)
{
	struct it_daemon *d = *state;
	char *out;

	it_daemon_start(d, NULL);
	/* 8 bytes: the packed stamp (time and index in one word). */
	out = bench(d, 0, NULL, "--json", "--transport", "uds", "--pubs", "2", "--subs", "3", "--size", "8",
		    "--count", "6000", NULL);
	check_json(out, "uds", 8, 3, 2, "sleep", 6000);
	free(out);
	out = bench(d, 0, NULL, "--json", "-T", "uds", "--subs", "2", "--size", "100Ki", "--count", "300", "--wait",
		    "spin", NULL);
	check_json(out, "uds", 100 * 1024, 2, 1, "spin", 300);
	free(out);
}

static void test_paced_and_duration(void **state)
{
	struct it_daemon *d = *state;
	char *out;

	it_daemon_start(d, NULL);
	/* The report says how the publisher paced: at 20k msg/s it sleeps by default. */
	out = bench(d, 0, NULL, "--json", "--rate", "20k", "--count", "2000", "--size", "1Ki", NULL);
	check_json(out, "ringcast", 1024, 1, 1, "sleep", 2000);
	IT_ASSERT(strstr(out, "\"pace\":\"sleep\","), "the JSON does not say pace sleep: %s", out);
	free(out);
	out = bench(d, 0, NULL, "--json", "--rate", "20k", "--count", "2000", "--pace", "spin", NULL);
	check_json(out, "ringcast", 64, 1, 1, "sleep", 2000);
	IT_ASSERT(strstr(out, "\"pace\":\"spin\","), "the JSON does not say pace spin: %s", out);
	free(out);
	out = bench(d, 0, NULL, "--json", "-T", "uds", "--rate", "20k", "--count", "2000", "--pubs", "2", NULL);
	check_json(out, "uds", 64, 1, 2, "sleep", 2000);
	free(out);
	/* A duration: whatever was sent, every subscriber has it all. */
	out = bench(d, 0, NULL, "--json", "--duration", "200ms", "--subs", "2", NULL);
	check_json(out, "ringcast", 64, 2, 1, "sleep", 0);
	IT_ASSERT(strstr(out, "\"pace\":\"none\","), "the JSON does not say pace none (flat out): %s", out);
	free(out);
}

static bool has_messages(const struct ringcast_topic_stat *st, const void *arg)
{
	return st->messages >= *(const uint64_t *)arg;
}

/* Wait up to timeout_ms until at least n messages were published to topic. */
static bool wait_published(struct it_daemon *d, const char *topic, uint64_t n, int timeout_ms)
{
	return it_wait_stat(d, topic, has_messages, &n, timeout_ms);
}

/*
 * A first Ctrl-C stops a paced run promptly and it still reports.  At 2
 * msg/s, 120 messages take a minute; a publisher that looked at the stop
 * flag only every 64 messages went on for half a minute.  The bound only
 * catches that: the report itself needs well under a second.
 */
static void test_interrupt_paced(void **state)
{
	struct it_daemon *d = *state;
	struct jv *v = calloc(1, sizeof(*v));
	const struct jv *per_sub;
	const char *p;
	int ofd, efd;
	char *out;
	pid_t pid;

	it_daemon_start(d, NULL);
	pid = bench_spawn(d, &ofd, &efd, "--json", "--topic", "it.bench.int", "--rate", "2", "--count", "120", NULL);
	/* Interrupt while it sends, not while it starts (that fails the run instead). */
	IT_ASSERT(wait_published(d, "it.bench.int", 1, 10000), "bench published nothing within 10 s");
	IT_ASSERT(kill(pid, SIGINT) == 0, "kill: %s", strerror(errno));
	out = bench_finish(pid, ofd, efd, 130, 10000, NULL);
	p = out;
	IT_ASSERT(v && jparse(&p, v, 0), "not JSON: '%s'", out);
	IT_ASSERT(jget(v, "interrupted", J_BOOL)->b, "interrupted is false: %s", out);
	IT_ASSERT(jget(v, "ok", J_BOOL)->b, "ok is false: %s", out);
	IT_ASSERT(jnum(v, "count") >= 1 && jnum(v, "count") < 120, "count %g", jnum(v, "count"));
	per_sub = jget(v, "per_sub", J_ARR);
	IT_ASSERT(per_sub->n == 1 && jnum(&per_sub->items[0], "received") == jnum(v, "count"),
		  "the subscriber did not get what was sent: %s", out);
	jfree(v);
	free(v);
	free(out);
}

/*
 * A paced run by duration ends with the duration, not with the wait for
 * a slot past it.  16 publishers at 1 msg/s in all: each sends at once,
 * and its next slot is 16 s away, long after the 100 ms are over.  The
 * bound only catches that wait.
 */
static void test_paced_duration_ends_on_time(void **state)
{
	struct it_daemon *d = *state;
	int ofd, efd;
	char *out;
	pid_t pid;

	it_daemon_start(d, NULL);
	pid = bench_spawn(d, &ofd, &efd, "--json", "--rate", "1", "--pubs", "16", "--duration", "100ms", NULL);
	out = bench_finish(pid, ofd, efd, 0, 8000, NULL);
	check_json(out, "ringcast", 64, 1, 16, "sleep", 0);
	free(out);
}

/*
 * A slow paced run is not judged stalled.  The coordinator fails a run
 * when no live counter moves for its stall timeout, 15 s, shortened here
 * to 2 s through $RINGCAST_BENCH_STALL_MS (docs/testing.md).  At 4 msg/s
 * the counters must move with every message, not every 1024th; and 4
 * publishers at 1 msg/s in all each send every 4 s, all at the same
 * moments, so the timeout must allow for the pace too.
 */
static void test_slow_paced_not_stalled(void **state)
{
	struct it_daemon *d = *state;
	char *out;

	it_daemon_start(d, NULL);
	setenv("RINGCAST_BENCH_STALL_MS", "2000", 1);
	out = bench(d, 0, NULL, "--json", "--rate", "4", "--count", "16", NULL);
	check_json(out, "ringcast", 64, 1, 1, "sleep", 16);
	free(out);
	out = bench(d, 0, NULL, "--json", "--rate", "1", "--pubs", "4", "--count", "8", NULL);
	check_json(out, "ringcast", 64, 1, 4, "sleep", 8);
	free(out);
	unsetenv("RINGCAST_BENCH_STALL_MS");
}

static void test_human(void **state)
{
	struct it_daemon *d = *state;
	static const char *const lines[] = { "ringcast bench: 1 publisher -> 2 subscribers (sleep), 64-byte messages",
					     "  sent ", "  publisher ", "  throughput ", "  latency      p50 ",
					     "  received     6000 deliveries, 0 lost, 0 bad", "   SUB   RECEIVED" };
	char *out;

	it_daemon_start(d, NULL);
	out = bench(d, 0, NULL, "--subs", "2", "--count", "3000", "--per-sub", NULL);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		IT_ASSERT(strstr(out, lines[i]), "no '%s' in:\n%s", lines[i], out);
	free(out);
}

/* Split a CSV line (no quoted commas in our numbers) into fields; returns the count. */
static int csv_fields(char *line, char **f, int max)
{
	int n = 0;

	for (char *save = NULL, *t = strtok_r(line, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
		f[n++] = t;
	return n;
}

static void test_sweep_csv(void **state)
{
	struct it_daemon *d = *state;
	char csv[256], *out, *text, *line, *save = NULL, *hdr[32], *f[32];
	int nh, rows = 0, col_transport = -1, col_subs = -1, col_sent = -1, col_received = -1, col_lost = -1,
		col_ok = -1, col_size = -1, col_int = -1, col_batch = -1, col_pace = -1, batched = 0;
	size_t len;

	it_daemon_start(d, NULL);
	snprintf(csv, sizeof(csv), "%s/sweep.csv", d->dir);
	/* Two batch sizes: ringcast runs at each, uds (no batches) once. */
	out = bench(d, 0, NULL, "--sweep", "-T", "ringcast,uds", "--size", "8,100", "--subs", "1,2", "--count", "500",
		    "--batch", "1,8", "--csv", csv, NULL);
	/* A line per run on stdout when the CSV goes to a file. */
	IT_ASSERT(strstr(out, "[12/12]"), "no progress line for the 12th run:\n%s", out);
	free(out);
	{
		int fd = open(csv, O_RDONLY);

		IT_ASSERT(fd >= 0, "%s: %s", csv, strerror(errno));
		text = it_read_all(fd, 1000, &len);
		close(fd);
	}
	line = strtok_r(text, "\n", &save);
	IT_ASSERT(line, "empty CSV");
	nh = csv_fields(line, hdr, 32);
	for (int i = 0; i < nh; i++) {
		col_transport = !strcmp(hdr[i], "transport") ? i : col_transport;
		col_size = !strcmp(hdr[i], "size") ? i : col_size;
		col_subs = !strcmp(hdr[i], "subs") ? i : col_subs;
		col_sent = !strcmp(hdr[i], "sent") ? i : col_sent;
		col_received = !strcmp(hdr[i], "received") ? i : col_received;
		col_lost = !strcmp(hdr[i], "lost") ? i : col_lost;
		col_ok = !strcmp(hdr[i], "ok") ? i : col_ok;
		col_int = !strcmp(hdr[i], "interrupted") ? i : col_int;
		col_batch = !strcmp(hdr[i], "batch") ? i : col_batch;
		col_pace = !strcmp(hdr[i], "pace") ? i : col_pace;
	}
	IT_ASSERT(col_transport >= 0 && col_size >= 0 && col_subs >= 0 && col_sent >= 0 && col_received >= 0 &&
		  col_lost >= 0 && col_ok >= 0 && col_int >= 0 && col_batch >= 0 && col_pace >= 0,
		  "CSV header lacks a column: %s", text);
	IT_ASSERT(nh >= 20, "CSV header has %d columns", nh);
	while ((line = strtok_r(NULL, "\n", &save))) {
		int n = csv_fields(line, f, 32);

		rows++;
		/* error is "" on success. */
		IT_ASSERT(n == nh, "row %d has %d fields, the header %d", rows, n, nh);
		IT_ASSERT(!strcmp(f[col_int], "0"), "row %d: interrupted %s", rows, f[col_int]);
		IT_ASSERT(!strcmp(f[col_transport], "ringcast") || !strcmp(f[col_transport], "uds"), "transport %s",
			  f[col_transport]);
		IT_ASSERT(!strcmp(f[col_size], "8") || !strcmp(f[col_size], "100"), "size %s", f[col_size]);
		IT_ASSERT(!strcmp(f[col_sent], "500"), "row %d sent %s", rows, f[col_sent]);
		IT_ASSERT(atoi(f[col_received]) == 500 * atoi(f[col_subs]), "row %d: %s received by %s subscribers",
			  rows, f[col_received], f[col_subs]);
		IT_ASSERT(!strcmp(f[col_lost], "0") && !strcmp(f[col_ok], "1"), "row %d: lost %s ok %s", rows,
			  f[col_lost], f[col_ok]);
		IT_ASSERT(!strcmp(f[col_batch], "1") || (!strcmp(f[col_batch], "8") && !strcmp(f[col_transport], "ringcast")),
			  "row %d: %s at batch %s", rows, f[col_transport], f[col_batch]);
		batched += !strcmp(f[col_batch], "8");
		/* Flat out: no pacing. */
		IT_ASSERT(!strcmp(f[col_pace], "none"), "row %d: pace %s, expected none", rows, f[col_pace]);
	}
	IT_ASSERT(rows == 12, "%d rows, expected (ringcast x 2 batches + uds) x 2 sizes x 2 subscriber counts", rows);
	IT_ASSERT(batched == 4, "%d ringcast rows at batch 8, expected 4", batched);
	free(text);
}

/*
 * A sweep cut short by Ctrl-C marks the run it cut short: interrupted=1
 * in its CSV row, which otherwise reads like a finished run (ok=1).
 */
static void test_sweep_interrupted(void **state)
{
	struct it_daemon *d = *state;
	char csv[256], *text, *line, *save = NULL, *hdr[32], *f[32];
	int nh, n, ofd, efd, col_int = -1, col_ok = -1;
	pid_t pid;

	it_daemon_start(d, NULL);
	snprintf(csv, sizeof(csv), "%s/interrupted.csv", d->dir);
	pid = bench_spawn(d, &ofd, &efd, "--sweep", "--topic", "it.bench.sw", "--rate", "2", "--count", "120", "--csv",
			  csv, NULL);
	IT_ASSERT(wait_published(d, "it.bench.sw.s64", 1, 10000), "the sweep published nothing within 10 s");
	IT_ASSERT(kill(pid, SIGINT) == 0, "kill: %s", strerror(errno));
	free(bench_finish(pid, ofd, efd, 130, 10000, NULL));
	{
		int fd = open(csv, O_RDONLY);

		IT_ASSERT(fd >= 0, "%s: %s", csv, strerror(errno));
		text = it_read_all(fd, 1000, NULL);
		close(fd);
	}
	printf("  %s", text);
	line = strtok_r(text, "\n", &save);
	IT_ASSERT(line, "empty CSV");
	nh = csv_fields(line, hdr, 32);
	for (int i = 0; i < nh; i++) {
		col_int = !strcmp(hdr[i], "interrupted") ? i : col_int;
		col_ok = !strcmp(hdr[i], "ok") ? i : col_ok;
	}
	IT_ASSERT(col_int >= 0 && col_ok >= 0, "no interrupted or ok column: %s", text);
	line = strtok_r(NULL, "\n", &save);
	IT_ASSERT(line, "no row for the interrupted run");
	n = csv_fields(line, f, 32);
	IT_ASSERT(n == nh && !strcmp(f[col_int], "1"), "the row does not say interrupted: %s", line);
	IT_ASSERT(!strtok_r(NULL, "\n", &save), "more than one row after the interrupt");
	free(text);
}

static void test_usage_and_missing_peer(void **state)
{
	struct it_daemon *d = *state;
	char *err;

	it_daemon_start(d, NULL);
	free(bench(d, 2, NULL, "--size", "64,128", NULL));
	free(bench(d, 2, NULL, "--count", "5", "--duration", "1", NULL));
	/* --json in a sweep needs --csv (the CSV takes stdout otherwise); it was ignored. */
	free(bench(d, 2, NULL, "--sweep", "--json", "--count", "10", NULL));
	/* A peer that is not built: a runtime error that says how to build it. */
	setenv("RINGCAST_BENCH_PEERS", d->dir, 1);
	free(bench(d, 1, &err, "--transport", "zmq", NULL));
	unsetenv("RINGCAST_BENCH_PEERS");
	IT_ASSERT(strstr(err, "make bench-peers"), "the error does not say how to get the peer: %s", err);
	free(err);
	/* --help tells the JSON keys. */
	err = bench(d, 0, NULL, "--help", NULL);
	IT_ASSERT(strstr(err, "msgs_per_sec_per_sub") && strstr(err, "--sweep"), "--help lacks the keys");
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_json_sleep, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_json_batch, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_json_pubs_spin_zero_copy, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_json_uds, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_paced_and_duration, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_paced, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_paced_duration_ends_on_time, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_slow_paced_not_stalled, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_human, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_sweep_csv, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_sweep_interrupted, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_usage_and_missing_peer, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_bench", tests, NULL, NULL);
}
