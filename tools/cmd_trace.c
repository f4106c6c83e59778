/* SPDX-License-Identifier: MIT */
/*
 * ringcast trace: per-topic publish-to-deliver latency histograms from
 * eBPF, in the manner of bcc's runqlat.  The BPF side and its loader are
 * in bpf/ (tracer.h); this file is the command: options, the node's
 * sampling rate, the report loop, and a clean exit on every path.
 *
 * Order matters at both ends.  The sampling rate is set before the
 * probes are attached (so no process traces at the old rate) and put
 * back after they are detached; the maps are unpinned after detaching,
 * unless --keep leaves them for bpftool.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "trace_helpers.h"
#include "tracer.h"

#define CMD "trace"
#define MAX_BINARIES 64
#define S_NS 1000000000ull

static volatile sig_atomic_t trace_stop;

static void on_signal(int sig)
{
	(void)sig;
	trace_stop = 1;
}

struct trace_opts {
	const char *socket;
	const char *topic;
	const char *pin_dir;
	const char *binaries[MAX_BINARIES];
	size_t nbinaries;
	uint64_t interval_ns, duration_ns, count;
	uint32_t sample;
	bool sample_given, keep, no_pin, json, cumulative, verbose;
	int pid;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcast trace [OPTIONS]\n"
		"\n"
		"Publish-to-deliver latency per topic, from eBPF: attach to the USDT\n"
		"probes of every process using libringcast, print a log2 histogram\n"
		"(nanoseconds) per topic every interval, and keep the maps pinned for\n"
		"bpftool while tracing.  Needs root (or CAP_BPF and CAP_PERFMON).\n"
		"\n"
		"Options:\n"
		"  -i, --interval S     report every S seconds (default 1; or with a\n"
		"                       unit: ms s m h)\n"
		"  -d, --duration S     stop after S (default: at Ctrl-C)\n"
		"  -c, --count N        stop after N reports\n"
		"  -t, --topic T        only topic T (filtered in the kernel)\n"
		"  -s, --sample N       1 in N messages reaches the probes (default 1:\n"
		"                       every one).  Set for the whole node of --socket,\n"
		"                       running processes included; restored at exit\n"
		"  -p, --pid PID        only process PID\n"
		"  -b, --binary PATH    also attach to PATH: a program linked with\n"
		"                       libringcast.a, or a libringcast.so (repeatable)\n"
		"      --pin-dir DIR    pin the maps under DIR (default %s)\n"
		"      --no-pin         do not pin the maps\n"
		"  -k, --keep           leave the maps pinned at exit, for bpftool\n"
		"  -C, --cumulative     report totals since the start, not per interval\n"
		"  -j, --json           one JSON object per report, one per line\n"
		"  -v, --verbose        libbpf's debug messages (the verifier's log)\n"
		"      --socket PATH    ringcastd's socket, for the sampling rate\n"
		"                       (default: $RINGCAST_SOCKET, then\n"
		"                       %s)\n"
		"  -h, --help           this help\n"
		"\n"
		"What is traced: every file that carries libringcast's probes and is\n"
		"mapped by a running process (libringcast.so, or a program linked\n"
		"with libringcast.a), this program, the libringcast.so beside it, and\n"
		"each --binary.  A probe is attached to a file, so later processes\n"
		"using those files are traced too.\n"
		"\n"
		"Report: per topic, the deliveries and publishes that reached the\n"
		"probes in the interval (with --sample N, about 1/N of them; exactly\n"
		"those whose sequence number is a multiple of N), their latency as a\n"
		"log2 histogram, the buckets of p50/p90/p99, and per subscribing\n"
		"client: deliveries, mean and latest latency, the worst since the\n"
		"start, and how many messages it was behind the newest traced publish.\n"
		"Maps: latency, deliveries, publishes, lag (bpftool map dump pinned\n"
		"DIR/latency).  See docs/tracing.md.\n"
		"\n"
		"Exit status: 0 after Ctrl-C, --duration or --count; 1 if tracing\n"
		"cannot start (the message says what is missing); 2 on bad usage.\n",
		RCT_PIN_DIR_DEFAULT, RINGCAST_DEFAULT_SOCKET);
}

/* ---- the node's sampling rate ---- */

struct sampling {
	struct ringcast *rc;
	uint32_t old;
	bool set;
};

/*
 * Set the node's rate.  Only an explicit --sample makes an unreachable
 * daemon fatal: without one, tracing at whatever rate the node has is
 * still worth doing.
 */
static int sampling_set(struct sampling *s, const struct trace_opts *o)
{
	int ret = ringcast_open(&s->rc, o->socket);

	if (ret < 0) {
		s->rc = NULL;
		if (o->sample_given)
			return cli_error(CMD, ret, "--sample needs ringcastd at %s",
					 cli_socket_name(o->socket));
		cli_warn(CMD, "cannot reach ringcastd at %s (%s): its processes deliver to the "
			 "probes at the node's current sampling rate", cli_socket_name(o->socket),
			 ringcast_strerror(ret));
		return 0;
	}
	ret = ringcast_trace_sample(s->rc, o->sample, &s->old);
	if (ret < 0) {
		ringcast_close(s->rc);
		s->rc = NULL;
		return cli_error(CMD, ret, "cannot set the sampling rate");
	}
	s->set = true;
	return 0;
}

static void sampling_restore(struct sampling *s)
{
	if (s->set)
		ringcast_trace_sample(s->rc, s->old, NULL);
	ringcast_close(s->rc);
	s->rc = NULL;
	s->set = false;
}

/* ---- reports ---- */

/* A deep copy of s into d, to subtract from while s stays the raw totals. */
static int snapshot_dup(struct rct_snapshot *d, const struct rct_snapshot *s)
{
	*d = *s;
	d->topics = NULL;
	d->subs = NULL;
	if (s->ntopics) {
		d->topics = malloc(s->ntopics * sizeof(*d->topics));
		if (!d->topics)
			return -ENOMEM;
		memcpy(d->topics, s->topics, s->ntopics * sizeof(*d->topics));
	}
	if (s->nsubs) {
		d->subs = malloc(s->nsubs * sizeof(*d->subs));
		if (!d->subs) {
			rct_snapshot_free(d);
			return -ENOMEM;
		}
		memcpy(d->subs, s->subs, s->nsubs * sizeof(*d->subs));
	}
	return 0;
}

/* cur - prev for every counter that only grows (cumulative: cur as it is). */
static void subtract(struct rct_snapshot *cur, const struct rct_snapshot *prev)
{
	for (size_t i = 0; i < cur->ntopics; i++) {
		struct rct_topic_stat *c = &cur->topics[i];
		const struct rct_topic_stat *p = rct_snapshot_topic(prev, c->topic);

		if (!p)
			continue;
		c->deliveries -= p->deliveries;
		c->pub.count -= p->pub.count;
		for (unsigned k = 0; k < RC_TRACE_SLOTS; k++)
			c->slots[k] -= p->slots[k];
	}
	for (size_t i = 0; i < cur->nsubs; i++) {
		struct rct_sub_stat *c = &cur->subs[i];

		for (size_t j = 0; j < prev->nsubs; j++) {
			const struct rct_sub_stat *p = &prev->subs[j];

			if (p->key.client_id != c->key.client_id || p->key.pid != c->key.pid ||
			    strcmp(p->key.topic, c->key.topic))
				continue;
			c->lag.deliveries -= p->lag.deliveries;
			c->lag.sum_ns -= p->lag.sum_ns;
			break;
		}
	}
}

static void fmt_slot(char *buf, size_t len, int slot)
{
	char lo[24], hi[24];

	if (slot < 0) {
		snprintf(buf, len, "-");
		return;
	}
	cli_fmt_ns(lo, sizeof(lo), rct_slot_lo((unsigned)slot));
	cli_fmt_ns(hi, sizeof(hi), rct_slot_hi((unsigned)slot) + 1);
	snprintf(buf, len, "%s..%s", lo, hi);
}

static void print_human(const struct rct_snapshot *s, const struct trace_opts *o,
			uint32_t sample)
{
	char when[32], buf[4][80];
	time_t now = time(NULL);
	bool any = false;

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	printf("%s  %s, ", when, o->cumulative ? "since the start" : "this interval");
	if (sample)
		printf("sample 1 in %" PRIu32, sample);
	else
		printf("sampling rate unknown");
	printf("%s\n", s->dropped ? "  (events lost to full maps!)" : "");
	for (size_t i = 0; i < s->ntopics; i++) {
		const struct rct_topic_stat *t = &s->topics[i];

		if (!t->deliveries && !t->pub.count)
			continue;
		any = true;
		printf("\ntopic ");
		cli_put_escaped(stdout, t->topic, strlen(t->topic));
		printf(": %" PRIu64 " deliveries, %" PRIu64 " publishes traced\n", t->deliveries,
		       (uint64_t)t->pub.count);
		if (!t->deliveries)
			continue;
		rct_print_log2_hist(stdout, t->slots, RC_TRACE_SLOTS, "nsec");
		fmt_slot(buf[0], sizeof(buf[0]), rct_hist_quantile_slot(t->slots, RC_TRACE_SLOTS, 0.5));
		fmt_slot(buf[1], sizeof(buf[1]), rct_hist_quantile_slot(t->slots, RC_TRACE_SLOTS, 0.9));
		fmt_slot(buf[2], sizeof(buf[2]), rct_hist_quantile_slot(t->slots, RC_TRACE_SLOTS, 0.99));
		printf("     p50 in %s, p90 in %s, p99 in %s\n", buf[0], buf[1], buf[2]);
		printf("     %-8s %-8s %10s %10s %10s %10s %7s\n", "client", "pid", "delivered",
		       "mean", "last", "max", "behind");
		for (size_t j = 0; j < s->nsubs; j++) {
			const struct rct_sub_stat *u = &s->subs[j];

			if (strcmp(u->key.topic, t->topic) || !u->lag.deliveries)
				continue;
			cli_fmt_ns(buf[0], sizeof(buf[0]), u->lag.sum_ns / u->lag.deliveries);
			cli_fmt_ns(buf[1], sizeof(buf[1]), u->lag.last_ns);
			cli_fmt_ns(buf[2], sizeof(buf[2]), u->lag.max_ns);
			printf("     %-8" PRIu32 " %-8" PRIu32 " %10" PRIu64 " %10s %10s %10s %7" PRIu64 "\n",
			       u->key.client_id, u->key.pid, (uint64_t)u->lag.deliveries, buf[0], buf[1], buf[2],
			       (uint64_t)u->lag.behind);
		}
	}
	if (!any)
		printf("(nothing traced%s)\n", o->cumulative ? " yet" : " in this interval");
	printf("\n");
}

static void json_quantile(const struct rct_topic_stat *t, const char *name, double q)
{
	int slot = rct_hist_quantile_slot(t->slots, RC_TRACE_SLOTS, q);

	if (slot < 0)
		printf(",\"%s\":null", name);
	else
		printf(",\"%s\":[%" PRIu64 ",%" PRIu64 "]", name, rct_slot_lo((unsigned)slot),
		       rct_slot_hi((unsigned)slot));
}

static void print_json(const struct rct_snapshot *s, const struct trace_opts *o, uint32_t sample,
		       uint64_t interval_ns)
{
	struct timespec ts;
	bool first = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	printf("{\"time\":%lld.%03ld,\"interval_s\":%.3f,\"cumulative\":%s,\"sample\":",
	       (long long)ts.tv_sec, ts.tv_nsec / 1000000, (double)interval_ns / 1e9,
	       o->cumulative ? "true" : "false");
	if (sample)
		printf("%" PRIu32, sample);
	else
		printf("null");
	printf(",\"dropped\":%" PRIu64 ",\"topics\":[", s->dropped);
	for (size_t i = 0; i < s->ntopics; i++) {
		const struct rct_topic_stat *t = &s->topics[i];
		bool first_b = true;

		if (!t->deliveries && !t->pub.count)
			continue;
		printf("%s{\"topic\":", first ? "" : ",");
		first = false;
		cli_put_json_str(stdout, t->topic, strlen(t->topic));
		printf(",\"topic_id\":%" PRIu64 ",\"deliveries\":%" PRIu64 ",\"publishes\":%" PRIu64,
		       t->topic_id, t->deliveries, (uint64_t)t->pub.count);
		printf(",\"latency_ns\":{\"buckets\":[");
		for (unsigned k = 0; k < RC_TRACE_SLOTS; k++) {
			if (!t->slots[k])
				continue;
			printf("%s{\"lo\":%" PRIu64 ",\"hi\":%" PRIu64 ",\"count\":%" PRIu64 "}",
			       first_b ? "" : ",", rct_slot_lo(k), rct_slot_hi(k), t->slots[k]);
			first_b = false;
		}
		printf("]");
		json_quantile(t, "p50", 0.5);
		json_quantile(t, "p90", 0.9);
		json_quantile(t, "p99", 0.99);
		printf("},\"subscribers\":[");
		first_b = true;
		for (size_t j = 0; j < s->nsubs; j++) {
			const struct rct_sub_stat *u = &s->subs[j];

			if (strcmp(u->key.topic, t->topic) || !u->lag.deliveries)
				continue;
			printf("%s{\"client_id\":%" PRIu32 ",\"pid\":%" PRIu32 ",\"deliveries\":%" PRIu64
			       ",\"mean_ns\":%" PRIu64 ",\"last_ns\":%" PRIu64 ",\"max_ns\":%" PRIu64
			       ",\"last_seq\":%" PRIu64 ",\"behind\":%" PRIu64 ",\"max_behind\":%" PRIu64 "}",
			       first_b ? "" : ",", u->key.client_id, u->key.pid,
			       (uint64_t)u->lag.deliveries, (uint64_t)(u->lag.sum_ns / u->lag.deliveries),
			       (uint64_t)u->lag.last_ns, (uint64_t)u->lag.max_ns,
			       (uint64_t)u->lag.last_seq, (uint64_t)u->lag.behind,
			       (uint64_t)u->lag.max_behind);
			first_b = false;
		}
		printf("]}");
	}
	printf("]}\n");
}

/* ---- the command ---- */

static int parse(int argc, char **argv, struct trace_opts *o)
{
	enum { OPT_PIN_DIR = 256, OPT_NO_PIN, OPT_SOCKET };
	static const struct option longopts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'c' },
		{ "topic", required_argument, NULL, 't' },
		{ "sample", required_argument, NULL, 's' },
		{ "pid", required_argument, NULL, 'p' },
		{ "binary", required_argument, NULL, 'b' },
		{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
		{ "no-pin", no_argument, NULL, OPT_NO_PIN },
		{ "keep", no_argument, NULL, 'k' },
		{ "cumulative", no_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "i:d:c:t:s:p:b:kCjvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			o->interval_ns = cli_duration_or_exit(CMD, "--interval", optarg, S_NS, 10000000,
							      86400 * S_NS);
			break;
		case 'd':
			o->duration_ns = cli_duration_or_exit(CMD, "--duration", optarg, S_NS, 1000000,
							      365 * 86400 * S_NS);
			break;
		case 'c':
			o->count = cli_u64_or_exit(CMD, "--count", optarg, 1, UINT64_MAX);
			break;
		case 't':
			if (!*optarg || strlen(optarg) > RINGCAST_TOPIC_MAX)
				return cli_usage_error(CMD, "--topic must be 1 to %d bytes",
						       RINGCAST_TOPIC_MAX);
			o->topic = optarg;
			break;
		case 's':
			o->sample = (uint32_t)cli_u64_or_exit(CMD, "--sample", optarg, 1, UINT32_MAX);
			o->sample_given = true;
			break;
		case 'p':
			o->pid = (int)cli_u64_or_exit(CMD, "--pid", optarg, 1, INT32_MAX);
			break;
		case 'b':
			if (o->nbinaries == MAX_BINARIES)
				return cli_usage_error(CMD, "at most %d --binary", MAX_BINARIES);
			o->binaries[o->nbinaries++] = optarg;
			break;
		case OPT_PIN_DIR:
			o->pin_dir = optarg;
			break;
		case OPT_NO_PIN:
			o->no_pin = true;
			break;
		case 'k':
			o->keep = true;
			break;
		case 'C':
			o->cumulative = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case OPT_SOCKET:
			if (cli_check_socket(CMD, optarg))
				return CLI_EXIT_USAGE;
			o->socket = optarg;
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
	if (o->keep && o->no_pin)
		return cli_usage_error(CMD, "--keep and --no-pin contradict each other");
	return 0;
}

/* Sleep until the next report is due or a signal says stop. */
static void nap_until(uint64_t deadline)
{
	while (!trace_stop) {
		uint64_t now = now_ns();
		struct timespec ts;

		if (now >= deadline)
			return;
		ts.tv_sec = (time_t)((deadline - now) / S_NS);
		ts.tv_nsec = (long)((deadline - now) % S_NS);
		nanosleep(&ts, NULL); /* EINTR: loop and look at trace_stop */
	}
}

int cmd_trace(int argc, char **argv)
{
	struct trace_opts o = { .interval_ns = S_NS, .sample = 1 };
	struct rct_snapshot prev = { 0 }, cur, shown;
	struct sigaction sa = { .sa_handler = on_signal };
	struct sampling smp = { 0 };
	struct rct *t = NULL;
	uint64_t start, last, end, reports = 0;
	uint32_t rate;
	char why[512];
	int ret;

	ret = parse(argc, argv, &o);
	if (ret)
		return ret;
	if (cli_check_stdout(CMD))
		return CLI_EXIT_ERR;
	rct_libbpf_log(o.verbose);
	/* Say what is missing before touching the node's rate. */
	ret = rct_check_support(why, sizeof(why));
	if (ret < 0)
		return cli_error(CMD, 0, "cannot trace: %s", why);

	/* Handlers first: a Ctrl-C from here on still restores and unpins. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	ret = sampling_set(&smp, &o);
	if (ret)
		return ret;
	{
		RCT_OPTS(ro, .pin_dir = o.pin_dir, .no_pin = o.no_pin, .pid = o.pid,
			 .topic = o.topic, .paths = o.binaries, .npaths = o.nbinaries,
			 .discover = true, .warn = stderr);

		ret = rct_open(&t, &ro, why, sizeof(why));
	}
	if (ret < 0) {
		sampling_restore(&smp);
		return cli_error(CMD, 0, "cannot trace: %s", why);
	}

	fprintf(stderr, "Tracing ringcast deliveries%s%s%s in %zu file%s, ", o.topic ? " of '" : "",
		o.topic ? o.topic : "", o.topic ? "'" : "", rct_nfiles(t), rct_nfiles(t) == 1 ? "" : "s");
	if (smp.set)
		fprintf(stderr, "sample 1 in %" PRIu32, o.sample);
	else
		fprintf(stderr, "at the node's sampling rate");
	if (*rct_pin_dir(t))
		fprintf(stderr, "; maps pinned in %s", rct_pin_dir(t));
	fprintf(stderr, ":\n");
	for (size_t i = 0; i < rct_nfiles(t); i++)
		fprintf(stderr, "  %s\n", rct_file(t, i));
	/* Last, so whoever waits for this line has the whole announcement. */
	fprintf(stderr, "Ctrl-C to end.\n");

	rate = smp.set ? o.sample : 0; /* 0: unknown; smp is restored before the last report */
	start = last = now_ns();
	end = o.duration_ns ? start + o.duration_ns : UINT64_MAX;
	ret = CLI_EXIT_OK;
	for (;;) {
		uint64_t due = last + o.interval_ns, now;
		bool final;

		nap_until(due < end ? due : end);
		now = now_ns();
		final = trace_stop || now >= end || (o.count && reports + 1 >= o.count);
		/*
		 * Detaching takes a while (uprobes are unregistered one by
		 * one); detach before the last read, or the maps --keep
		 * leaves would count more than the last report.
		 */
		if (final) {
			rct_detach(t);
			sampling_restore(&smp);
		}
		if (rct_read(t, &cur) < 0 || snapshot_dup(&shown, &cur) < 0) {
			rct_snapshot_free(&cur);
			ret = cli_error(CMD, -ENOMEM, "cannot read the maps");
			break;
		}
		/* The maps count since the start (bpftool sees totals); intervals are differences. */
		if (!o.cumulative)
			subtract(&shown, &prev);
		if (o.json)
			print_json(&shown, &o, rate, now - (o.cumulative ? start : last));
		else
			print_human(&shown, &o, rate);
		fflush(stdout);
		rct_snapshot_free(&shown);
		rct_snapshot_free(&prev);
		prev = cur;
		last = now;
		reports++;
		if (final)
			break;
	}
	if (ret == CLI_EXIT_OK && ferror(stdout))
		ret = cli_error(CMD, 0, "writing to stdout failed");
	rct_snapshot_free(&prev);
	rct_close(t, o.keep);
	sampling_restore(&smp);
	return ret;
}
