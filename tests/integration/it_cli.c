/* SPDX-License-Identifier: MIT */
/*
 * it_cli: the ringcast command line tool against a real daemon, driven
 * like a user's shell would (fork/exec, pipes), from C so that every wait
 * is bounded and every process is reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TOPIC "cli.topic"

static char cli_path[320];

static const char *cli(struct it_daemon *d)
{
	snprintf(cli_path, sizeof(cli_path), "%s/ringcast", d->build);
	IT_ASSERT(access(cli_path, X_OK) == 0, "%s: %s (build it first: make)", cli_path,
		  strerror(errno));
	return cli_path;
}

/*
 * Run argv to completion (10 s at most); returns its stdout, and its
 * stderr in *err_out unless NULL; asserts the exit code.
 */
static char *run_err(char **argv, int code, const char *what, char **err_out)
{
	int ofd, efd;
	pid_t pid = it_spawn(argv, NULL, &ofd, &efd);
	char *out = it_read_all(ofd, 10000, NULL);
	char *err = it_read_all(efd, 1000, NULL);

	close(ofd);
	close(efd);
	if (err[0])
		printf("  [%s stderr] %s", what, err);
	it_expect_exit(pid, 10000, code, what);
	IT_ASSERT(out != NULL, "no output buffer");
	if (err_out)
		*err_out = err;
	else
		free(err);
	return out;
}

static char *run(char **argv, int code, const char *what)
{
	return run_err(argv, code, what, NULL);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_pub_sub_pipe(void **state)
{
	struct it_daemon *d = *state;
	char *sub_argv[] = { (char *)cli(d), "sub", "--socket", d->sock, "--count", "3", "--timeout",
			     "10000", TOPIC, NULL };
	char *pub_argv[] = { (char *)cli(d), "pub", "--socket", d->sock, TOPIC, NULL };
	static const char *const want[] = { "one", "two", "three" };
	int sub_out, pub_in;
	pid_t sub, pub;
	char *out, *line, *save = NULL;
	int i = 0;

	it_daemon_start(d, NULL);
	sub = it_spawn(sub_argv, NULL, &sub_out, NULL);
	/* sub sees only what is published after it subscribed: wait for its slot. */
	IT_ASSERT(it_wait_subscribers(d, TOPIC, 1, sub, 5000),
		  "'ringcast sub' did not subscribe within 5 s");

	pub = it_spawn(pub_argv, &pub_in, NULL, NULL);
	IT_ASSERT(it_write_all(pub_in, "one\ntwo\nthree\n", 14), "writing to pub: %s",
		  strerror(errno));
	close(pub_in);
	it_expect_exit(pub, 10000, 0, "ringcast pub (3 lines on stdin)");

	out = it_read_all(sub_out, 10000, NULL);
	close(sub_out);
	it_expect_exit(sub, 10000, 0, "ringcast sub --count 3");
	printf("  sub printed:\n%s", out);
	IT_ASSERT(count_lines(out) == 3, "sub printed %d lines, expected 3: '%s'", count_lines(out),
		  out);
	/* Default format: "TOPIC SEQ: PAYLOAD". */
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		const char *colon = strstr(line, ": ");

		IT_ASSERT(i < 3 && !strncmp(line, TOPIC " ", strlen(TOPIC) + 1) && colon &&
			  !strcmp(colon + 2, want[i]),
			  "line %d is '%s', expected '%s SEQ: %s'", i, line, TOPIC, i < 3 ? want[i] : "");
	}
	free(out);

	/* One message from the command line, received with --json. */
	{
		char *jsub_argv[] = { (char *)cli(d), "sub", "--socket", d->sock, "--count", "1", "--json",
				      "--timeout", "10000", TOPIC, NULL };
		char *jpub_argv[] = { (char *)cli(d), "pub", "--socket", d->sock, TOPIC, "json me", NULL };

		sub = it_spawn(jsub_argv, NULL, &sub_out, NULL);
		IT_ASSERT(it_wait_subscribers(d, TOPIC, 1, sub, 5000), "sub --json did not subscribe");
		free(run(jpub_argv, 0, "ringcast pub TOPIC MSG"));
		out = it_read_all(sub_out, 10000, NULL);
		close(sub_out);
		it_expect_exit(sub, 10000, 0, "ringcast sub --json --count 1");
		printf("  sub --json printed: %s", out);
		IT_ASSERT(out[0] == '{' && strstr(out, "\"data\":\"json me\"") &&
			  strstr(out, "\"topic\":\"" TOPIC "\"") &&
			  strstr(out, "\"origin\":\"" IT_NODE "\"") && strstr(out, "\"lost\":0"),
			  "unexpected JSON line: '%s'", out);
		free(out);
	}
}

struct redirected_run {
	char **argv;
	int fd;           /* the fd to close, or to point at path */
	const char *path; /* NULL: leave fd closed */
	int err_fd;       /* stderr goes here, unless fd is 2 */
};

static int exec_redirected(void *arg)
{
	const struct redirected_run *r = arg;
	int fd;

	if (r->fd != 2 && dup2(r->err_fd, 2) < 0)
		return 127;
	close(r->fd);
	if (r->path) {
		fd = open(r->path, r->fd ? O_WRONLY : O_RDONLY);
		if (fd < 0 || (fd != r->fd && dup2(fd, r->fd) < 0))
			return 127;
	}
	execv(r->argv[0], r->argv);
	return 127;
}

/*
 * Start argv with fd closed (path NULL, as `CMD >&-` or `<&-` would) or
 * opened on path, and stderr on a pipe (*err_fd).
 */
static pid_t spawn_redirected(char **argv, int fd, const char *path, int *err_fd)
{
	int p[2];
	struct redirected_run r = { argv, fd, path, -1 };
	pid_t pid;

	IT_ASSERT(pipe2(p, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
	r.err_fd = p[1];
	pid = it_fork(exec_redirected, &r);
	close(p[1]);
	*err_fd = p[0];
	return pid;
}

/*
 * A closed stdin or stdout is never taken by the daemon's socket.  sub
 * used to write its message lines into the socket and exit 0; now it
 * says stdout is closed and fails before subscribing.  pub used to wait
 * forever reading the socket as stdin; now its read fails.  The 5 s
 * bounds only catch that hang.
 */
static void test_closed_std_fds(void **state)
{
	struct it_daemon *d = *state;
	char *sub_argv[] = { (char *)cli(d), "sub", "--socket", d->sock, "--timeout", "1500ms", TOPIC, NULL };
	char *pub_argv[] = { (char *)cli(d), "pub", "--socket", d->sock, TOPIC, NULL };
	char *msg_argv[] = { (char *)cli(d), "pub", "--socket", d->sock, TOPIC, "lost?", NULL };
	char *err;
	int efd;
	pid_t pid;

	it_daemon_start(d, NULL);
	pid = spawn_redirected(sub_argv, 1, NULL, &efd);
	/* Give a sub that does subscribe a message to print. */
	if (it_wait_subscribers(d, TOPIC, 1, pid, 1000))
		free(run(msg_argv, 0, "ringcast pub TOPIC MSG"));
	err = it_read_all(efd, 5000, NULL);
	close(efd);
	printf("  [sub >&- stderr] %s", err);
	it_expect_exit(pid, 5000, 1, "ringcast sub >&-");
	IT_ASSERT(strstr(err, "stdout is closed"), "sub >&- does not say stdout is closed: '%s'", err);
	free(err);

	pid = spawn_redirected(pub_argv, 0, NULL, &efd);
	err = it_read_all(efd, 5000, NULL);
	close(efd);
	printf("  [pub <&- stderr] %s", err);
	it_expect_exit(pid, 5000, 1, "ringcast pub <&-");
	IT_ASSERT(strstr(err, "reading stdin failed"), "pub <&- does not say reading stdin failed: '%s'", err);
	free(err);
	it_assert_daemon_alive(d);
}

/*
 * sub stops at the first message it cannot print (here /dev/full: ENOSPC)
 * instead of going on taking messages that nobody sees; without
 * --timeout it used to run until a signal.  The bound catches that.
 */
static void test_sub_stops_on_write_error(void **state)
{
	struct it_daemon *d = *state;
	char *sub_argv[] = { (char *)cli(d), "sub", "--socket", d->sock, TOPIC, NULL };
	char *msg_argv[] = { (char *)cli(d), "pub", "--socket", d->sock, TOPIC, "to /dev/full", NULL };
	char *err;
	int efd;
	pid_t pid;

	it_daemon_start(d, NULL);
	pid = spawn_redirected(sub_argv, 1, "/dev/full", &efd);
	IT_ASSERT(it_wait_subscribers(d, TOPIC, 1, pid, 5000), "sub >/dev/full did not subscribe within 5 s");
	free(run(msg_argv, 0, "ringcast pub TOPIC MSG"));
	err = it_read_all(efd, 5000, NULL);
	close(efd);
	printf("  [sub >/dev/full stderr] %s", err);
	it_expect_exit(pid, 5000, 1, "ringcast sub >/dev/full");
	IT_ASSERT(strstr(err, "writing to stdout failed after 0 messages"), "sub does not say its write failed: '%s'",
		  err);
	free(err);
}

struct delivered_want {
	pid_t pid;
	uint64_t n;
};

static bool has_delivered(const struct ringcast_topic_stat *st, const void *arg)
{
	const struct delivered_want *w = arg;

	for (size_t i = 0; i < st->n_subs; i++)
		if (st->subs[i].pid == (uint32_t)w->pid && st->subs[i].delivered >= w->n)
			return true;
	return false;
}

/* Wait up to timeout_ms until the subscriber pid has had n messages delivered on topic. */
static bool wait_delivered(struct it_daemon *d, const char *topic, pid_t pid, uint64_t n, int timeout_ms)
{
	struct delivered_want w = { pid, n };

	return it_wait_stat(d, topic, has_delivered, &w, timeout_ms);
}

/*
 * sub's summary counts the losses known at exit.  A subscriber stopped
 * with SIGSTOP is untethered after the daemon's tether timeout (100 ms
 * here) and lapped; when it runs again the library finds it was lapped
 * and counts the loss in its slot, but no later message comes to tell the
 * handler.  Every message published must then be in the summary, received
 * or lost, and the loss must have its own line.
 */
static void test_sub_counts_untold_losses(void **state)
{
	struct it_daemon *d = *state;
	char *sub_argv[] = { (char *)cli(d), "sub", "--socket", d->sock, "--timeout", "2s", TOPIC, NULL };
	enum { LAP = 3000 };
	unsigned long long received = 0, lost = 0;
	char *out, *err, *sum;
	struct ringcast *rc;
	int ofd, efd, st;
	pid_t pid;

	it_daemon_start(d, "--tether-timeout", "100", "--capacity", "64k", NULL);
	pid = it_spawn(sub_argv, NULL, &ofd, &efd);
	IT_ASSERT(it_wait_subscribers(d, TOPIC, 1, pid, 5000), "sub did not subscribe within 5 s");
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(rc, TOPIC, "first", 5));
	/* Stopped past its handler: a message overwritten under a handler would count as lost too. */
	IT_ASSERT(wait_delivered(d, TOPIC, pid, 1, 5000), "sub did not take the first message within 5 s");
	IT_ASSERT(kill(pid, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
	IT_ASSERT_OK(it_wait_flags(pid, 5000, &st, WUNTRACED));
	IT_ASSERT(WIFSTOPPED(st), "sub did not stop");
	/* Over 100 KiB through a 64 KiB ring: the stopped sub is untethered, then lapped. */
	IT_ASSERT_OK(ringcast_set_send_timeout(rc, 5000));
	for (int i = 0; i < LAP; i++)
		IT_ASSERT_OK(ringcast_broadcast(rc, TOPIC, "lapping the stopped sub", 23));
	it_close(rc);
	IT_ASSERT(kill(pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
	out = it_read_all(ofd, 10000, NULL);
	err = it_read_all(efd, 5000, NULL);
	close(ofd);
	close(efd);
	printf("  [sub stderr] %s", err);
	it_expect_exit(pid, 10000, 0, "ringcast sub --timeout 2s");
	sum = strstr(err, "ringcast sub: ");
	/* "ringcast sub: R message(s) on 1 topic, L lost, in ..." */
	IT_ASSERT(sum && sscanf(sum, "ringcast sub: %llu", &received) == 1 && strstr(sum, " on 1 topic, ") &&
		  sscanf(strstr(sum, " on 1 topic, ") + 13, "%llu lost", &lost) == 1, "no summary: '%s'", err);
	IT_ASSERT(received + lost == LAP + 1 && lost > 0,
		  "the summary says %llu received and %llu lost, but %d were published", received, lost, LAP + 1);
	IT_ASSERT(strstr(err, "messages after seq ") && strstr(err, " on " TOPIC "\n"),
		  "no line for the loss found at exit: '%s'", err);
	free(out);
	free(err);
}

static bool ring_full(const struct ringcast_topic_stat *st, const void *arg)
{
	(void)arg;
	/* Another record of pub's (a 100-byte line) would not fit. */
	return st->bytes + 136 > st->capacity;
}

/*
 * Ctrl-C while pub waits for room ends it at once: 130, and how many it
 * published, not a wait to the end of --timeout (60 s here) and an error.
 * The ring is full of messages a tethered subscriber, which the daemon
 * will not untether for a minute, has not read.
 */
static void test_pub_interrupted_while_waiting(void **state)
{
	struct it_daemon *d = *state;
	char *argv[] = { (char *)cli(d), "pub", "--socket", d->sock, "--timeout", "60s", TOPIC, NULL };
	char line[101], *err, want[96];
	struct ringcast_topic_stat *st;
	struct ringcast *rc;
	int in_fd, efd;
	size_t n = 0;
	pid_t pid;

	it_daemon_start(d, "--tether-timeout", "60000", "--capacity", "64k", NULL);
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, TOPIC));
	pid = it_spawn(argv, &in_fd, NULL, &efd);
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	/* Twice what the ring holds; pub blocks on the first that does not fit. */
	for (int i = 0; i < 1000; i++)
		IT_ASSERT(it_write_all(in_fd, line, sizeof(line)), "writing pub's stdin: %s", strerror(errno));
	IT_ASSERT(it_wait_stat(d, TOPIC, ring_full, NULL, 10000), "pub did not fill the ring within 10 s");
	IT_ASSERT(kill(pid, SIGINT) == 0, "SIGINT: %s", strerror(errno));
	err = it_read_all(efd, 10000, NULL);
	close(efd);
	close(in_fd);
	printf("  [pub stderr] %s", err);
	it_expect_exit(pid, 5000, 130, "ringcast pub interrupted while waiting for room");
	IT_ASSERT_OK(ringcast_stat(rc, TOPIC, &st, &n));
	IT_ASSERT(n == 1, "stat of %s: %zu topics", TOPIC, n);
	snprintf(want, sizeof(want), "interrupted after %llu messages published", (unsigned long long)st->messages);
	ringcast_stat_free(st, n);
	IT_ASSERT(strstr(err, want), "pub's stderr does not say '%s': '%s'", want, err);
	free(err);
	it_close(rc);
}

static void test_stat_json(void **state)
{
	struct it_daemon *d = *state;
	char *argv[] = { (char *)cli(d), "stat", "--socket", d->sock, "--json", NULL };
	struct ringcast *rc;
	size_t len;
	char *out;

	it_daemon_start(d, NULL);
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, "cli.stat.topic"));
	IT_ASSERT_OK(ringcast_broadcast(rc, "cli.stat.topic", "x", 1));
	out = run(argv, 0, "ringcast stat --json");
	len = strlen(out);
	/* fwrite, not printf("%.*s"): GCC's format check misfires on it under UBSan. */
	fputs("  stat --json: ", stdout);
	fwrite(out, 1, len > 300 ? 300 : len, stdout);
	puts(len > 300 ? "..." : "");
	IT_ASSERT(strstr(out, "\"cli.stat.topic\""), "stat --json does not mention the topic: '%s'",
		  out);
	IT_ASSERT(out[strspn(out, " \n")] == '{' || out[strspn(out, " \n")] == '[',
		  "stat --json output is not JSON: '%.80s'", out);
	free(out);
	it_close(rc);
}

/*
 * stat escapes the node name as it escapes topics.  The daemon takes only
 * printable ASCII now, so the one byte left that shows the difference is
 * a backslash: printed as it is, "a\x41" could be a name with an escape
 * in it or a name with the byte 0x41.
 */
static void test_stat_escapes_node(void **state)
{
	struct it_daemon *d = *state;
	char *argv[] = { (char *)cli(d), "stat", "--socket", d->sock, NULL };
	const char *want = "node it\\\\x41: ";
	char *out;

	/* A second --node wins over the harness's. */
	it_daemon_start(d, "--node", "it\\x41", NULL);
	out = run(argv, 0, "ringcast stat");
	printf("  stat: %s", out);
	IT_ASSERT(!strncmp(out, want, strlen(want)), "the node name is not escaped: '%s'", out);
	free(out);
}

/*
 * --socket "" is bad usage in every command.  The library takes an empty
 * path for none and falls back to the system socket: `--socket "$SOCK"`
 * with $SOCK unset quietly talked to another daemon.
 */
static void test_empty_socket(void **state)
{
	struct it_daemon *d = *state;
	char *cmds[][8] = {
		{ (char *)cli(d), "pub", "--socket", "", TOPIC, "x", NULL },
		{ (char *)cli(d), "sub", "--socket", "", "--timeout", "100ms", TOPIC, NULL },
		{ (char *)cli(d), "stat", "--socket", "", NULL },
		{ (char *)cli(d), "bench", "--socket", "", "--count", "10", NULL },
		{ (char *)cli(d), "trace", "--socket", "", "--duration", "100ms", NULL },
	};

	it_daemon_start(d, NULL);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char what[64], *err;

		snprintf(what, sizeof(what), "ringcast %s --socket ''", cmds[i][1]);
		free(run_err(cmds[i], 2, what, &err));
		IT_ASSERT(strstr(err, "--socket needs a path"), "%s does not say why: '%s'", what, err);
		free(err);
	}
}

/* An oversized message: pub says the limit (ringcast_max_msg), not only "too long". */
static void test_pub_oversized(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *rc;
	char want[64], *msg, *err;
	long max;

	it_daemon_start(d, "--capacity", "64k", NULL);
	rc = it_open(d);
	max = ringcast_max_msg(rc, TOPIC);
	IT_ASSERT_OK(max);
	it_close(rc);
	msg = malloc((size_t)max + 2);
	IT_ASSERT(msg, "malloc");
	memset(msg, 'x', (size_t)max + 1);
	msg[max + 1] = '\0';
	{
		char *argv[] = { (char *)cli(d), "pub", "--socket", d->sock, TOPIC, msg, NULL };

		free(run_err(argv, 1, "ringcast pub (oversized)", &err));
	}
	snprintf(want, sizeof(want), "at most %ld bytes", max);
	IT_ASSERT(strstr(err, want), "pub does not say '%s': '%s'", want, err);
	free(err);
	free(msg);
}

/*
 * pub --timeout below a millisecond rounds up: 0.5 ms is a wait of 1 ms,
 * not the 0 that fails at once.  A subscriber that never reads holds the
 * 64 KiB ring full (the tether timeout, 5 s by default, is far off), and
 * pub's error says how long it waited.
 */
static void test_pub_timeout_rounds_up(void **state)
{
	struct it_daemon *d = *state;
	char *argv[] = { (char *)cli(d), "pub", "--socket", d->sock, "--timeout", "0.5", TOPIC, NULL };
	struct ringcast *rc;
	char *err, *out, line[200];
	int in, ofd, efd;
	pid_t pid;

	it_daemon_start(d, "--capacity", "64k", NULL);
	rc = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(rc, TOPIC));
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	pid = it_spawn(argv, &in, &ofd, &efd);
	/* More than the ring holds; pub fails part way and stops reading. */
	for (int i = 0; i < 1000 && it_write_all(in, line, sizeof(line)); i++)
		;
	close(in);
	out = it_read_all(ofd, 10000, NULL);
	err = it_read_all(efd, 5000, NULL);
	close(ofd);
	close(efd);
	printf("  [pub stderr] %s", err);
	it_expect_exit(pid, 10000, 1, "ringcast pub --timeout 0.5 to a full ring");
	IT_ASSERT(strstr(err, "stayed full for 1 ms"), "pub did not wait 1 ms: '%s'", err);
	free(out);
	free(err);
	it_close(rc);
}

static void test_help(void **state)
{
	struct it_daemon *d = *state;
	static const char *const cmds[] = { "pub", "sub", "stat" };
	char *out;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *argv[] = { (char *)cli(d), (char *)cmds[i], "--help", NULL };
		char what[64];

		snprintf(what, sizeof(what), "ringcast %s --help", cmds[i]);
		out = run(argv, 0, what);
		IT_ASSERT(strstr(out, "Usage") && strstr(out, cmds[i]) && strstr(out, "--socket"),
			  "%s printed no usage: '%.200s'", what, out);
		free(out);
	}
	{
		char *argv[] = { (char *)cli(d), "--help", NULL };

		out = run(argv, 0, "ringcast --help");
		IT_ASSERT(strstr(out, "Usage") && strstr(out, "pub") && strstr(out, "sub") &&
			  strstr(out, "stat"), "ringcast --help lists no commands: '%.200s'", out);
		/* bench takes --pubs: the summary must not promise one publisher. */
		IT_ASSERT(strstr(out, "P publisher and N subscriber") && !strstr(out, "1 publisher"),
			  "ringcast --help misdescribes bench: '%s'", out);
		free(out);
	}
	/* stat's LOST is a sum over the current subscribers, and says so. */
	{
		char *argv[] = { (char *)cli(d), "stat", "--help", NULL };

		out = run(argv, 0, "ringcast stat --help");
		IT_ASSERT(strstr(out, "the sum of the current subscribers' LOST"), "stat --help: '%s'", out);
		free(out);
	}
	/* No daemon behind the socket: a runtime error (1), not a crash or a hang. */
	{
		char *argv[] = { (char *)cli(d), "pub", "--socket", d->sock, TOPIC, "x", NULL };

		free(run(argv, 1, "ringcast pub with no daemon"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pub_sub_pipe, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_closed_std_fds, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_sub_stops_on_write_error, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_sub_counts_untold_losses, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_pub_interrupted_while_waiting, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_stat_json, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_stat_escapes_node, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_empty_socket, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_pub_oversized, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_pub_timeout_rounds_up, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_help, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_cli", tests, NULL, NULL);
}
