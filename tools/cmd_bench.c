/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: fan-out benchmark.  This process publishes; N forked
 * processes subscribe (bench_sub.c), each with its own connection, and
 * report counts, losses and a latency histogram back through pipes.
 *
 * Every path out of cmd_bench() after the first fork goes through
 * bench_reap(), which kills and reaps whatever children are left; the
 * children also die with their parent (PR_SET_PDEATHSIG), so a bench never
 * leaves processes behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "hist.h"

#define CMD "bench"
#define BENCH_SUBS_MAX 256
#define BENCH_READY_TIMEOUT_NS (10ull * 1000000000)
/* Give up on the subscribers when none has reported for this long. */
#define BENCH_DRAIN_TIMEOUT_NS (15ull * 1000000000)
/* Give up when publish has been refused (ring full) for this long in a row. */
#define BENCH_STALL_NS (10ull * 1000000000)
#define BENCH_PROGRESS_NS 250000000ull

/* Counts SIGINT/SIGTERM: 1 ends publishing early, 2 abandons the run. */
static volatile sig_atomic_t bench_stop;

static void on_signal(int sig)
{
	if (bench_stop < 2)
		bench_stop++;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcast bench [OPTIONS]\n"
		"\n"
		"Fan-out benchmark: this process publishes to one topic and N forked\n"
		"subscriber processes (each with its own connection) receive.  All\n"
		"subscribers are subscribed before the first message is sent.\n"
		"\n"
		"Options:\n"
		"  -n, --subs N         subscriber processes (default 1, at most %d)\n"
		"  -s, --size B         payload bytes per message (default 64; k M Ki Mi\n"
		"                       suffixes; at most the topic's ringcast_max_msg())\n"
		"  -c, --count N        send N messages (default 100000; k M G suffixes)\n"
		"  -d, --duration S     send for S seconds instead (or with a unit:\n"
		"                       ns us ms s m h)\n"
		"  -r, --rate R         pace at R messages/s, busy-waiting on\n"
		"                       CLOCK_MONOTONIC (default: as fast as possible)\n"
		"  -w, --wait MODE      how subscribers wait: sleep (ringcast_wait, the\n"
		"                       default) or spin (ringcast_poll in a loop, one CPU\n"
		"                       each)\n"
		"  -t, --topic T        topic (default ringcast.bench); nothing else may\n"
		"                       publish to it during the run, so give benches\n"
		"                       that run at the same time topics of their own\n"
		"      --zero-copy      publish with ringcast_claim/ringcast_commit instead\n"
		"                       of ringcast_broadcast\n"
		"  -j, --json           exactly one JSON object on one line on stdout\n"
		"  -p, --per-sub        a line per subscriber in the human report\n"
		"      --socket PATH    ringcastd's socket (default: $RINGCAST_SOCKET, then\n"
		"                       %s)\n"
		"  -h, --help           this help\n"
		"\n"
		"Method.  Latency of a message is CLOCK_MONOTONIC at delivery minus the\n"
		"publish_ns the library stamped (one way, same host), recorded in a\n"
		"log-linear histogram (< 0.8%% error) per subscriber and merged.  A full\n"
		"ring (-EAGAIN) is retried, never dropped; retries are reported as\n"
		"backpressure.  When sending ends, an end message tells the subscribers\n"
		"how many were sent.  With size >= 8 each payload carries its index (and\n"
		"with size >= 16 again in its last 8 bytes): subscribers count reordered\n"
		"or torn messages as \"bad\".\n"
		"\n"
		"Report (human on stdout; a live progress line on stderr when it is a\n"
		"terminal):\n"
		"  count                 messages sent; duration_s: time spent sending\n"
		"  msgs_per_sec_per_sub  the slowest subscriber's received / (its last\n"
		"                        delivery - first publish)\n"
		"  msgs_per_sec_total    all deliveries / (last delivery - first publish);\n"
		"                        bytes_per_sec_total is that times size\n"
		"  latency_ns            p50 p90 p99 p999 p9999 max over all subscribers\n"
		"  lost                  sum of the loss counts the subscribers were given\n"
		"  publisher_ns_per_msg  flat out: the process's CPU time while sending /\n"
		"                        messages; with --rate: time inside the publish\n"
		"                        calls / messages (the pacing spin is not a cost)\n"
		"--json keys: transport size subs pubs wait count duration_s rate topic\n"
		"node zero_copy msgs_per_sec_per_sub msgs_per_sec_total bytes_per_sec_total\n"
		"lost bad backpressure_retries publisher_ns_per_msg latency_ns{p50 p90 p99\n"
		"p999 p9999 max} interrupted ok per_sub[{received lost bad msgs_per_sec\n"
		"cpu_ns_per_msg p50 p99 p999 max}].\n"
		"\n"
		"Exit status: 0 when every subscriber received or was told it lost every\n"
		"message (losses print a warning); 1 on a runtime error, a failed\n"
		"subscriber, or a count mismatch or bad message (with a warning); 2 on\n"
		"bad usage; 130 when interrupted (a first Ctrl-C stops sending and still\n"
		"reports; a second abandons the run).\n",
		BENCH_SUBS_MAX, RINGCAST_DEFAULT_SOCKET);
}

/* ---- children ---- */

static bool read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static int bench_fork(struct bench *b)
{
	pid_t parent = getpid();

	/* Buffered output would otherwise be written once per process. */
	fflush(NULL);
	for (unsigned i = 0; i < b->o->subs; i++) {
		struct bench_child *c = &b->c[i];
		int p[2];
		pid_t pid;

		if (pipe2(p, O_CLOEXEC))
			return cli_error(CMD, -errno, "pipe");
		pid = fork();
		if (pid < 0) {
			int err = -errno;

			close(p[0]);
			close(p[1]);
			return cli_error(CMD, err, "fork of subscriber %u", i);
		}
		if (pid == 0) {
			/* Die with the publisher, whatever kills it. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			/* Ctrl-C goes to the whole group; the publisher decides what it means. */
			signal(SIGINT, SIG_IGN);
			signal(SIGTERM, SIG_DFL);
			close(p[0]);
			for (unsigned j = 0; j < i; j++)
				close(b->c[j].fd);
			bench_sub_main(&b->o->cfg, p[1]);
		}
		close(p[1]);
		c->pid = pid;
		c->fd = p[0];
		b->n = i + 1;
	}
	return 0;
}

/* Read child i's report; 0, or CLI_EXIT_ERR after printing why not. */
static int read_report(struct bench *b, unsigned i)
{
	struct bench_child *c = &b->c[i];
	void *buf = NULL;
	int ret = 0;

	if (!read_full(c->fd, &c->rep, sizeof(c->rep)))
		return cli_error(CMD, 0, "subscriber %u (pid %d) exited without a report", i, (int)c->pid);
	c->rep.what[sizeof(c->rep.what) - 1] = '\0';
	if (c->rep.hist_len > sizeof(struct hist) * 2)
		return cli_error(CMD, -EBADMSG, "subscriber %u sent a histogram of %u bytes", i, c->rep.hist_len);
	if (c->rep.hist_len) {
		buf = malloc(c->rep.hist_len);
		if (!buf)
			return cli_error(CMD, -ENOMEM, "reading subscriber %u's report", i);
		if (!read_full(c->fd, buf, c->rep.hist_len))
			ret = cli_error(CMD, 0, "subscriber %u's report is truncated", i);
		else if (hist_deserialize(c->hist, buf, c->rep.hist_len))
			ret = cli_error(CMD, -EBADMSG, "subscriber %u's histogram", i);
		free(buf);
	}
	if (!ret && c->rep.err)
		ret = cli_error(CMD, c->rep.err, "subscriber %u (pid %d): %s", i, (int)c->pid, c->rep.what);
	c->reported = true;
	close(c->fd);
	c->fd = -1;
	return ret;
}

/* Wait for every child's readiness byte. */
static int bench_wait_ready(struct bench *b)
{
	uint64_t deadline = now_ns() + BENCH_READY_TIMEOUT_NS;
	struct pollfd *pf = calloc(b->n, sizeof(*pf));
	unsigned ready = 0;
	int ret = 0;

	if (!pf)
		return cli_error(CMD, -ENOMEM, "waiting for subscribers");
	while (ready < b->n) {
		uint64_t now = now_ns();
		int n;

		if (bench_stop) {
			ret = cli_error(CMD, 0, "interrupted while subscribers were starting");
			break;
		}
		if (now >= deadline) {
			ret = cli_error(CMD, -ETIMEDOUT, "only %u of %u subscribers subscribed within %llu s", ready,
					b->n, BENCH_READY_TIMEOUT_NS / 1000000000);
			break;
		}
		for (unsigned i = 0; i < b->n; i++)
			pf[i] = (struct pollfd){ .fd = b->c[i].ready ? -1 : b->c[i].fd, .events = POLLIN };
		n = poll(pf, b->n, (int)((deadline - now) / 1000000) + 1);
		if (n < 0 && errno != EINTR) {
			ret = cli_error(CMD, -errno, "poll");
			break;
		}
		for (unsigned i = 0; i < b->n && n > 0; i++) {
			char byte = 0;

			if (!pf[i].revents)
				continue;
			if (!read_full(b->c[i].fd, &byte, 1)) {
				ret = cli_error(CMD, 0, "subscriber %u (pid %d) died before subscribing", i,
						(int)b->c[i].pid);
				goto out;
			}
			if (byte != BENCH_READY) {
				/* It failed and says why in its report. */
				ret = read_report(b, i);
				if (!ret)
					ret = cli_error(CMD, 0, "subscriber %u failed to start", i);
				goto out;
			}
			b->c[i].ready = true;
			ready++;
		}
	}
out:
	free(pf);
	return ret;
}

/* Kill what is left and reap every child.  Safe to call more than once. */
static void bench_reap(struct bench *b, bool kill_all)
{
	for (unsigned i = 0; i < b->n; i++) {
		struct bench_child *c = &b->c[i];

		if (c->fd >= 0) {
			close(c->fd);
			c->fd = -1;
		}
		if (!c->pid)
			continue;
		if (kill_all || !c->reported)
			kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
			;
		c->pid = 0;
	}
}

/* ---- publishing ---- */

static void progress(struct bench *b, uint64_t now, bool final)
{
	uint64_t el = now - b->start_ns;
	const struct bench_opts *o = b->o;

	if (!b->progress)
		return;
	if (final) {
		fputs("\r\033[K", stderr);
		return;
	}
	if (o->count)
		fprintf(stderr, "\r\033[Kbench: sent %llu/%llu", (unsigned long long)b->sent,
			(unsigned long long)o->count);
	else
		fprintf(stderr, "\r\033[Kbench: sent %llu, %.1f/%.1f s", (unsigned long long)b->sent,
			(double)el / 1e9, (double)o->duration_ns / 1e9);
	fprintf(stderr, "  %.0f msg/s  backpressure retries %llu", el ? (double)b->sent * 1e9 / (double)el : 0.0,
		(unsigned long long)b->retries);
}

/* Publish one message of len bytes: index in the first and last 8 bytes when they fit. */
static int publish_one(struct bench *b, void *buf, size_t len, uint64_t index)
{
	const struct bench_opts *o = b->o;
	struct ringcast_claim claim;
	int err;

	if (!o->zero_copy) {
		if (len >= 8)
			memcpy(buf, &index, 8);
		if (len >= 16)
			memcpy((char *)buf + len - 8, &index, 8);
		return ringcast_broadcast(b->rc, o->cfg.topic, buf, len);
	}
	err = ringcast_claim(b->rc, o->cfg.topic, len, &claim);
	if (err)
		return err;
	if (len >= 8)
		memcpy(claim.data, &index, 8);
	if (len >= 16)
		memcpy((char *)claim.data + len - 8, &index, 8);
	return ringcast_commit(&claim);
}

/*
 * Publish with retries on a full ring: nothing may be dropped.  Fails only
 * on another error or after BENCH_STALL_NS of continuous refusal.
 */
static int publish_retry(struct bench *b, void *buf, size_t len, uint64_t index, const void *end_msg)
{
	uint64_t first_refusal = 0;
	int err;

	for (;;) {
		err = end_msg ? ringcast_broadcast(b->rc, b->o->cfg.topic, end_msg, len)
			      : publish_one(b, buf, len, index);
		if (err != -EAGAIN)
			return err;
		b->retries++;
		if (!first_refusal) {
			first_refusal = now_ns();
		} else if (now_ns() - first_refusal > BENCH_STALL_NS) {
			return err;
		}
		if (bench_stop > 1)
			return -EINTR;
		/* Subscribers may share our CPU: let them drain the ring. */
		sched_yield();
	}
}

static int send_end(struct bench *b)
{
	unsigned char msg[24] = { 0 };
	uint64_t magic = BENCH_END_MAGIC;
	size_t len = bench_end_len(b->o->cfg.size);

	memcpy(msg, &magic, 8);
	memcpy(msg + 8, &b->sent, 8);
	return publish_retry(b, NULL, len, 0, msg);
}

static int bench_publish(struct bench *b)
{
	const struct bench_opts *o = b->o;
	size_t size = o->cfg.size;
	uint64_t now, next_progress, cpu0, end_at;
	void *buf = calloc(1, size ? size : 1);
	int err = 0;

	if (!buf)
		return cli_error(CMD, -ENOMEM, "payload buffer");
	memset(buf, 'x', size);
	cpu0 = cpu_ns();
	b->start_ns = now = now_ns();
	end_at = o->duration_ns ? b->start_ns + o->duration_ns : UINT64_MAX;
	next_progress = now + BENCH_PROGRESS_NS;
	for (uint64_t i = 0;; i++) {
		if (o->count && i == o->count)
			break;
		if (bench_stop) {
			b->interrupted = true;
			break;
		}
		if (o->rate) {
			/* Absolute schedule: a late message is sent at once, keeping the average. */
			uint64_t due = b->start_ns + (uint64_t)((unsigned __int128)i * 1000000000u / o->rate);
			uint64_t t;

			while ((now = now_ns()) < due)
				bench_relax();
			if (now >= end_at)
				break;
			err = publish_retry(b, buf, size, i, NULL);
			t = now_ns();
			b->cost_ns += t - now;
			now = t;
		} else {
			/* Reading the clock every message would be part of what we measure. */
			if ((i & 63) == 0) {
				now = now_ns();
				if (now >= end_at)
					break;
			}
			err = publish_retry(b, buf, size, i, NULL);
		}
		if (err)
			break;
		b->sent++;
		if ((i & 1023) == 0 && b->progress && now >= next_progress) {
			progress(b, now, false);
			next_progress = now + BENCH_PROGRESS_NS;
		}
	}
	b->end_ns = now_ns();
	if (!o->rate)
		b->cost_ns = cpu_ns() - cpu0;
	progress(b, b->end_ns, true);
	free(buf);
	if (err == -EAGAIN)
		return cli_error(CMD, err, "publishing stalled for %llu s after %llu messages: a subscriber stopped "
				 "reading", BENCH_STALL_NS / 1000000000, (unsigned long long)b->sent);
	if (err == -EINTR)
		return cli_error(CMD, 0, "interrupted");
	if (err)
		return cli_error(CMD, err, "publishing failed after %llu messages", (unsigned long long)b->sent);
	err = send_end(b);
	if (err)
		return cli_error(CMD, err, "publishing the end message");
	return 0;
}

/*
 * Collect every report.  The end message is re-sent while we wait: a
 * lapped (untethered) subscriber may have lost the first one, and an extra
 * one costs nothing to those that are done.
 */
static int bench_collect(struct bench *b)
{
	struct pollfd *pf = calloc(b->n, sizeof(*pf));
	uint64_t last_news = now_ns();
	unsigned left = b->n;
	int ret = 0;

	if (!pf)
		return cli_error(CMD, -ENOMEM, "collecting reports");
	while (left) {
		int n;

		if (bench_stop > 1) {
			ret = cli_error(CMD, 0, "interrupted while collecting reports");
			break;
		}
		if (now_ns() - last_news > BENCH_DRAIN_TIMEOUT_NS) {
			ret = cli_error(CMD, -ETIMEDOUT, "%u subscriber%s did not finish within %llu s of the last "
					"report", left, left == 1 ? "" : "s", BENCH_DRAIN_TIMEOUT_NS / 1000000000);
			break;
		}
		for (unsigned i = 0; i < b->n; i++)
			pf[i] = (struct pollfd){ .fd = b->c[i].reported ? -1 : b->c[i].fd, .events = POLLIN };
		n = poll(pf, b->n, 500);
		if (n < 0 && errno != EINTR) {
			ret = cli_error(CMD, -errno, "poll");
			break;
		}
		if (n <= 0) {
			int err = send_end(b);

			if (err && err != -EINTR) {
				ret = cli_error(CMD, err, "re-sending the end message");
				break;
			}
			continue;
		}
		for (unsigned i = 0; i < b->n; i++) {
			if (!pf[i].revents)
				continue;
			if (read_report(b, i))
				ret = CLI_EXIT_ERR;
			left--;
			last_news = now_ns();
		}
		if (ret)
			break;
	}
	free(pf);
	return ret;
}

/* ---- options ---- */

static int parse(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "subs", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "wait", required_argument, NULL, 'w' },
		{ "topic", required_argument, NULL, 't' },
		{ "zero-copy", no_argument, NULL, 'Z' },
		{ "json", no_argument, NULL, 'j' },
		{ "per-sub", no_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool have_count = false;
	int opt;

	o->subs = 1;
	o->cfg.size = 64;
	o->count = 100000;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "n:s:c:d:r:w:t:jph", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			o->subs = (unsigned)cli_u64_or_exit(CMD, "--subs", optarg, 1, BENCH_SUBS_MAX);
			break;
		case 's':
			o->cfg.size = (size_t)cli_u64_or_exit(CMD, "--size", optarg, 0, 1ull << 30);
			break;
		case 'c':
			o->count = cli_u64_or_exit(CMD, "--count", optarg, 1, 1ull << 48);
			have_count = true;
			break;
		case 'd':
			o->duration_ns = cli_duration_or_exit(CMD, "--duration", optarg, 1000000000, 1000000,
							      7ull * 86400 * 1000000000);
			break;
		case 'r':
			o->rate = cli_u64_or_exit(CMD, "--rate", optarg, 1, 1000000000);
			break;
		case 'w':
			if (!strcmp(optarg, "spin"))
				o->cfg.spin = true;
			else if (!strcmp(optarg, "sleep"))
				o->cfg.spin = false;
			else
				return cli_usage_error(CMD, "--wait: '%s' is neither spin nor sleep", optarg);
			break;
		case 't':
			o->cfg.topic = optarg;
			break;
		case 'Z':
			o->zero_copy = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'p':
			o->per_sub = true;
			break;
		case 'S':
			o->cfg.socket = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(CLI_EXIT_OK);
		default:
			return cli_usage_hint(CMD);
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (have_count && o->duration_ns)
		return cli_usage_error(CMD, "--count and --duration exclude each other");
	if (o->duration_ns)
		o->count = 0;
	o->cfg.count = o->count;
	/* One fixed default: the daemon keeps every topic's ring, so one per run would pile up. */
	if (!o->cfg.topic)
		o->cfg.topic = "ringcast.bench";
	if (!*o->cfg.topic || strlen(o->cfg.topic) > RINGCAST_TOPIC_MAX)
		return cli_usage_error(CMD, "--topic must be 1 to %d bytes", RINGCAST_TOPIC_MAX);
	return 0;
}

/* The publisher's connection, and a check that the messages fit the topic. */
static int bench_open_publisher(struct bench *b)
{
	const struct bench_opts *o = b->o;
	size_t need = o->cfg.size > bench_end_len(o->cfg.size) ? o->cfg.size : bench_end_len(o->cfg.size);
	long max;

	if (cli_open(CMD, o->cfg.socket, &b->rc))
		return CLI_EXIT_ERR;
	max = ringcast_max_msg(b->rc, o->cfg.topic);
	if (max < 0)
		return cli_error(CMD, (int)max, "cannot learn the largest message of '%s'", o->cfg.topic);
	if ((size_t)max < need)
		return cli_error(CMD, -EMSGSIZE, "--size %zu does not fit '%s' (at most %ld bytes%s)", o->cfg.size,
				 o->cfg.topic, max, o->cfg.size <= (size_t)max ? ", with room for the end message" : "");
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	struct bench b = { .o = &o };
	struct sigaction sa = { .sa_handler = on_signal };
	bool ok = false;
	int ret, err;

	ret = parse(argc, argv, &o);
	if (ret)
		return ret;
	b.progress = isatty(STDERR_FILENO);
	b.c = calloc(o.subs, sizeof(*b.c));
	if (!b.c)
		return cli_error(CMD, -ENOMEM, "allocating");
	for (unsigned i = 0; i < o.subs; i++) {
		b.c[i].fd = -1;
		b.c[i].hist = malloc(sizeof(struct hist));
		if (!b.c[i].hist) {
			ret = cli_error(CMD, -ENOMEM, "allocating");
			goto out;
		}
		hist_reset(b.c[i].hist);
	}
	/* Installed before fork: the children replace it at once. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = bench_fork(&b);
	if (!ret)
		ret = bench_wait_ready(&b);
	if (!ret)
		ret = bench_open_publisher(&b);
	if (!ret)
		ret = bench_publish(&b);
	if (!ret)
		ret = bench_collect(&b);
	bench_reap(&b, ret != 0);
	if (ret)
		goto out;

	err = bench_report_print(&b, &ok);
	if (err)
		ret = cli_error(CMD, err, "building the report");
	else if (fflush(stdout) || ferror(stdout))
		ret = cli_error(CMD, 0, "writing to stdout failed");
	else if (b.interrupted)
		ret = 130;
	else if (!ok)
		ret = CLI_EXIT_ERR;
out:
	bench_reap(&b, true);
	if (bench_stop && ret == CLI_EXIT_ERR)
		ret = 130;
	ringcast_close(b.rc);
	for (unsigned i = 0; i < o.subs; i++)
		free(b.c[i].hist);
	free(b.c);
	return ret;
}
