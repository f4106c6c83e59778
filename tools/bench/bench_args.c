/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: options and --help.  Parsing never exits (the unit test
 * drives it directly): bad usage returns CLI_EXIT_USAGE after saying why.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

#define CMD "bench"

const char *const bench_all_transports[] = { "ringcast", "uds", "zmq", "nng", "redis", NULL };

void bench_usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcast bench [OPTIONS]\n"
		"       ringcast bench --sweep [OPTIONS with lists] [--csv FILE]\n"
		"\n"
		"Fan-out benchmark: P publisher processes send to one topic and N\n"
		"subscriber processes (each with its own connection) receive.  Every\n"
		"subscriber is connected before the first message is sent.  The same\n"
		"workload runs over ringcast or a peer transport (--transport).\n"
		"\n"
		"Workload:\n"
		"  -T, --transport T    ringcast (default); uds: a Unix stream socket per\n"
		"                       subscriber, the publisher writes to each; zmq:\n"
		"                       ZeroMQ XPUB/SUB over ipc:// (XPUB_NODROP, blocking);\n"
		"                       nng: pub0/sub0 over ipc:// (drops when a queue is\n"
		"                       full: counted as lost); redis: PUBLISH/SUBSCRIBE\n"
		"                       through a private redis-server on 127.0.0.1\n"
		"                       (persistence off, pubsub output limits off).  The\n"
		"                       peers are loaded from bench-peers/ next to this\n"
		"                       program (make bench-peers) or $RINGCAST_BENCH_PEERS\n"
		"  -n, --subs N         subscriber processes (default 1, at most %d)\n"
		"  -P, --pubs N         publisher processes (default 1, at most %d); they\n"
		"                       share --count and --rate\n"
		"  -s, --size B         payload bytes (default 64; k M Ki Mi suffixes; 8 B\n"
		"                       to 64 MiB, ringcast from 0; at most the topic's\n"
		"                       ringcast_max_msg())\n"
		"  -c, --count N        send N messages in all (default 100000)\n"
		"  -d, --duration S     send for S seconds instead (or ns us ms s m h)\n"
		"  -r, --rate R         pace at R messages/s in all, on an absolute\n"
		"                       schedule (default: flat out)\n"
		"      --pace MODE      how a paced publisher waits for each message's\n"
		"                       time: sleep (clock_nanosleep to it, timer slack\n"
		"                       1 ns: wakes some us late, leaves the CPU to\n"
		"                       others) or spin (reads the clock in a loop:\n"
		"                       exact, holds a CPU).  Default: sleep when a\n"
		"                       publisher's messages are %d us or more apart\n"
		"                       (--rate / --pubs up to %d msg/s), spin when\n"
		"                       closer.  Needs --rate\n"
		"  -w, --wait MODE      subscribers sleep (the default: ringcast_wait, or a\n"
		"                       blocking receive) or spin (poll without blocking)\n"
		"      --cpus LIST      pin the processes, publishers first then\n"
		"                       subscribers, round-robin over LIST (0,1 or 0-3)\n"
		"  -t, --topic T        ringcast topic (default ringcast.bench; --sweep\n"
		"                       appends .s<size>); nothing else may publish to it\n"
		"      --zero-copy      ringcast: publish with claim/commit, writing only\n"
		"                       the stamp in place\n"
		"  -b, --batch N        ringcast, flat out: hand it N messages a call\n"
		"                       (ringcast_broadcast_many: one claim and one\n"
		"                       publish_ns for as many as fit; default 1, at most\n"
		"                       %d).  The peers send one a call whatever N is (a\n"
		"                       --sweep runs them once; Redis always pipelines)\n"
		"      --socket PATH    ringcastd's socket (default: $RINGCAST_SOCKET, then\n"
		"                       %s)\n"
		"\n"
		"Output:\n"
		"  -j, --json           one JSON object per run, on its own line\n"
		"  -p, --per-sub        a line per subscriber in the human report\n"
		"  -h, --help           this help\n"
		"\n"
		"Sweep: --sweep runs the grid transports x sizes x subs x waits x batches (each\n"
		"option above takes a comma-separated list; --transport all is\n"
		"ringcast,uds,zmq,nng,redis), --rounds R times.  At each point of the\n"
		"grid the transports run back to back in an order that rotates, so drift\n"
		"on a noisy machine hits them all alike.  One CSV row per run goes to\n"
		"--csv FILE (default stdout); with --csv, stdout gets a short line per\n"
		"run, or with --json (which needs --csv) its JSON line.  A failed run is\n"
		"a row with ok=0 and its error; the sweep goes on.  The column\n"
		"interrupted is 1 for the run a Ctrl-C cut short (ok says only whether\n"
		"its counts add up); batch is how many messages a send call took; the\n"
		"last, pace, how a paced publisher waited (spin, sleep; none: flat\n"
		"out).\n"
		"\n"
		"Method.  Latency is CLOCK_MONOTONIC at delivery minus the publish time:\n"
		"ringcast's record header (msg->publish_ns), or for the peers the time\n"
		"the publisher read just before the send call and carried in the\n"
		"payload; a receive call that delivers several messages times the\n"
		"first in its handler and the rest when it returns (never early).\n"
		"It goes into a log-linear histogram (< 0.8%% error) per\n"
		"subscriber, merged over all.  A full ringcast ring (-EAGAIN) is\n"
		"retried, never dropped (\"backpressure retries\").  Each publisher ends\n"
		"with an end message that says how many it sent.  Payloads carry\n"
		"(publisher, index) at both ends: subscribers count reordered or torn\n"
		"messages as bad and index gaps as lost (ringcast reports its own\n"
		"losses).\n"
		"\n"
		"Report (human; a live progress line on stderr when it is a terminal):\n"
		"  msgs_per_sec_per_sub  the slowest subscriber's received / (its last\n"
		"                        delivery - first publish)\n"
		"  msgs_per_sec_total    all deliveries / (last delivery - first publish);\n"
		"                        bytes_per_sec_total is that times size\n"
		"  latency_ns            p50 p90 p99 p999 p9999 max over all subscribers\n"
		"  lost                  messages the subscribers were told of or found\n"
		"                        missing\n"
		"  publisher_ns_per_msg  the publishers' CPU per message sent: flat out,\n"
		"                        the whole process (helper threads included) less\n"
		"                        what it burnt retrying on a full ring; with\n"
		"                        --rate, the sending thread's CPU inside the send\n"
		"                        calls (timed on a sample, the clock's own cost\n"
		"                        taken off) plus other threads' CPU, not the\n"
		"                        pacing; for redis plus the server's CPU\n"
		"                        (broker_ns_per_msg)\n"
		"JSON keys: transport size subs pubs wait count duration_s rate pace topic\n"
		"zero_copy batch msgs_per_sec_per_sub msgs_per_sec_total bytes_per_sec_total\n"
		"lost bad backpressure_retries publisher_ns_per_msg broker_ns_per_msg\n"
		"latency_ns{p50 p90 p99 p999 p9999 max} interrupted ok per_sub[{received\n"
		"lost bad msgs_per_sec cpu_ns_per_msg p50 p99 p999 max}].\n"
		"\n"
		"Exit status: 0 when every subscriber received or was told it lost every\n"
		"message (losses print a warning); 1 on a runtime error, a failed\n"
		"process, a count that does not add up or a bad message (a sweep: any\n"
		"failed run); 2 on bad usage; 130 when interrupted (a first Ctrl-C stops\n"
		"sending and still reports; a second abandons the run).\n",
		BENCH_SUBS_MAX, BENCH_PUBS_MAX, BENCH_PACE_SLEEP_MIN_NS / 1000, 1000000000 / BENCH_PACE_SLEEP_MIN_NS,
		BENCH_BATCH_MAX, RINGCAST_DEFAULT_SOCKET);
}

/*
 * Split a comma-separated list in place into at most max items.  The
 * count, -EINVAL for an empty item (",,", a comma at either end, or
 * nothing at all) or -E2BIG.
 */
static int split(char *s, char **items, unsigned max)
{
	unsigned n = 0;
	size_t len = strlen(s);

	if (!len || s[0] == ',' || s[len - 1] == ',' || strstr(s, ",,"))
		return -EINVAL;
	for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return -E2BIG;
		items[n++] = tok;
	}
	return (int)n;
}

/* A list option: copy (strtok writes into it), split, check.  The count, or -1 after a usage error. */
static int list_arg(const char *opt, const char *arg, char *copy, size_t cap, char **items)
{
	int n;

	if (strlen(arg) >= cap) {
		cli_usage_error(CMD, "%s: list too long", opt);
		return -1;
	}
	strcpy(copy, arg);
	n = split(copy, items, BENCH_LIST_MAX);
	if (n == -E2BIG) {
		cli_usage_error(CMD, "%s: at most %d values", opt, BENCH_LIST_MAX);
		return -1;
	}
	if (n < 0) {
		cli_usage_error(CMD, "%s: empty item in '%s'", opt, arg);
		return -1;
	}
	return n;
}

static int num(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (cli_parse_u64(s, &v) || v < min || v > max)
		return cli_usage_error(CMD, "%s: '%s' is not a number from %llu to %llu", opt, s,
				       (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

/* A list of numbers from min to max into vals[BENCH_LIST_MAX]: how many, or -1 after saying why. */
static int num_list(const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *vals)
{
	char copy[1024], *items[BENCH_LIST_MAX];
	int n = list_arg(opt, arg, copy, sizeof(copy), items);

	for (int i = 0; i < n; i++)
		if (num(opt, items[i], min, max, &vals[i]))
			return -1;
	return n;
}

/* "0,2,4-7": CPU numbers into o->cpus, in order. */
static int parse_cpus(const char *arg, struct bench_opts *o)
{
	static char copy[1024];
	char *items[BENCH_CPUS_MAX];
	unsigned n = 0;
	int k;

	k = strlen(arg) < sizeof(copy) ? (strcpy(copy, arg), split(copy, items, BENCH_CPUS_MAX)) : -EINVAL;
	if (k < 0)
		return cli_usage_error(CMD, "--cpus: '%s' is not a list like 0,1 or 0-3", arg);
	for (int i = 0; i < k; i++) {
		char *dash = strchr(items[i], '-');
		uint64_t lo = 0, hi = 0;

		if (dash)
			*dash = '\0';
		if (num("--cpus", items[i], 0, BENCH_CPUS_MAX - 1, &lo) ||
		    num("--cpus", dash ? dash + 1 : items[i], 0, BENCH_CPUS_MAX - 1, &hi))
			return CLI_EXIT_USAGE;
		if (hi < lo)
			return cli_usage_error(CMD, "--cpus: range %llu-%llu is backwards", (unsigned long long)lo,
					       (unsigned long long)hi);
		for (uint64_t c = lo; c <= hi; c++) {
			if (n == BENCH_CPUS_MAX)
				return cli_usage_error(CMD, "--cpus: at most %d entries", BENCH_CPUS_MAX);
			o->cpus[n++] = (int)c;
		}
	}
	o->n_cpus = n;
	return 0;
}

enum { OPT_ZERO_COPY = 256, OPT_SOCKET, OPT_CPUS, OPT_SWEEP, OPT_CSV, OPT_ROUNDS, OPT_PACE };

int bench_parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "transport", required_argument, NULL, 'T' },
		{ "subs", required_argument, NULL, 'n' },
		{ "pubs", required_argument, NULL, 'P' },
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "pace", required_argument, NULL, OPT_PACE },
		{ "wait", required_argument, NULL, 'w' },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "topic", required_argument, NULL, 't' },
		{ "zero-copy", no_argument, NULL, OPT_ZERO_COPY },
		{ "batch", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "per-sub", no_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "sweep", no_argument, NULL, OPT_SWEEP },
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	/* List options keep their text here: strtok writes into it and o points into it. */
	static char lists[2][1024];
	char *items[BENCH_LIST_MAX];
	uint64_t vals[BENCH_LIST_MAX];
	bool have_count = false;
	uint64_t v = 0; /* num() sets it; LTO cannot see that */
	int opt, n;

	memset(o, 0, sizeof(*o));
	o->pubs = 1;
	o->count = 100000;
	o->rounds = 1;
	optind = 0;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "T:n:P:s:c:d:r:w:t:b:jph", longopts, NULL)) != -1) {
		switch (opt) {
		case 'T':
			n = list_arg("--transport", optarg, lists[0], sizeof(lists[0]), items);
			if (n < 0)
				return CLI_EXIT_USAGE;
			o->n_transports = 0;
			for (int i = 0; i < n; i++) {
				if (!strcmp(items[i], "all")) {
					for (const char *const *t = bench_all_transports; *t; t++)
						if (o->n_transports < BENCH_TRANSPORTS_MAX)
							o->transports[o->n_transports++] = *t;
					continue;
				}
				if (o->n_transports == BENCH_TRANSPORTS_MAX)
					return cli_usage_error(CMD, "--transport: at most %d", BENCH_TRANSPORTS_MAX);
				o->transports[o->n_transports++] = items[i];
			}
			break;
		case 'n':
			n = num_list("--subs", optarg, 1, BENCH_SUBS_MAX, vals);
			if (n < 0)
				return CLI_EXIT_USAGE;
			for (int i = 0; i < n; i++)
				o->subs[i] = (unsigned)vals[i];
			o->n_subs = (unsigned)n;
			break;
		case 'P':
			if (num("--pubs", optarg, 1, BENCH_PUBS_MAX, &v))
				return CLI_EXIT_USAGE;
			o->pubs = (unsigned)v;
			break;
		case 's':
			n = num_list("--size", optarg, 0, BENCH_SIZE_MAX, vals);
			if (n < 0)
				return CLI_EXIT_USAGE;
			for (int i = 0; i < n; i++)
				o->sizes[i] = (size_t)vals[i];
			o->n_sizes = (unsigned)n;
			break;
		case 'c':
			if (num("--count", optarg, 1, BENCH_INDEX_MAX, &o->count))
				return CLI_EXIT_USAGE;
			have_count = true;
			break;
		case 'd':
			if (cli_parse_duration_ns(optarg, 1000000000, &v) || v < 1000000 ||
			    v > 7ull * 86400 * 1000000000)
				return cli_usage_error(CMD, "--duration: '%s' is not a duration from 1 ms to 7 days",
						       optarg);
			o->duration_ns = v;
			break;
		case 'r':
			if (num("--rate", optarg, 1, 1000000000, &o->rate))
				return CLI_EXIT_USAGE;
			break;
		case OPT_PACE:
			if (!strcmp(optarg, "spin"))
				o->pace = BENCH_PACE_SPIN;
			else if (!strcmp(optarg, "sleep"))
				o->pace = BENCH_PACE_SLEEP;
			else
				return cli_usage_error(CMD, "--pace: '%s' is neither spin nor sleep", optarg);
			break;
		case 'w':
			n = list_arg("--wait", optarg, lists[1], sizeof(lists[1]), items);
			if (n < 0)
				return CLI_EXIT_USAGE;
			for (int i = 0; i < n; i++) {
				if (!strcmp(items[i], "spin"))
					o->waits[i] = true;
				else if (!strcmp(items[i], "sleep"))
					o->waits[i] = false;
				else
					return cli_usage_error(CMD, "--wait: '%s' is neither spin nor sleep", items[i]);
			}
			o->n_waits = (unsigned)n;
			break;
		case OPT_CPUS:
			if (parse_cpus(optarg, o))
				return CLI_EXIT_USAGE;
			break;
		case 't':
			o->topic = optarg;
			break;
		case OPT_ZERO_COPY:
			o->zero_copy = true;
			break;
		case 'b':
			n = num_list("--batch", optarg, 1, BENCH_BATCH_MAX, vals);
			if (n < 0)
				return CLI_EXIT_USAGE;
			for (int i = 0; i < n; i++)
				o->batches[i] = (unsigned)vals[i];
			o->n_batches = (unsigned)n;
			break;
		case 'j':
			o->json = true;
			break;
		case 'p':
			o->per_sub = true;
			break;
		case OPT_SOCKET:
			if (cli_check_socket(CMD, optarg))
				return CLI_EXIT_USAGE;
			o->socket = optarg;
			break;
		case OPT_SWEEP:
			o->sweep = true;
			break;
		case OPT_CSV:
			o->csv = optarg;
			break;
		case OPT_ROUNDS:
			if (num("--rounds", optarg, 1, 100, &v))
				return CLI_EXIT_USAGE;
			o->rounds = (unsigned)v;
			break;
		case 'h':
			o->help = true;
			return 0;
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
	if (!o->sweep && (o->n_transports > 1 || o->n_sizes > 1 || o->n_subs > 1 || o->n_waits > 1 ||
			  o->n_batches > 1))
		return cli_usage_error(CMD, "lists of values need --sweep");
	if (o->pace != BENCH_PACE_AUTO && !o->rate)
		return cli_usage_error(CMD, "--pace says how to wait between paced messages: it needs --rate");
	if (!o->sweep && (o->csv || o->rounds > 1))
		return cli_usage_error(CMD, "--csv and --rounds need --sweep");
	/* Without --csv the CSV rows take stdout, and JSON lines between them would spoil both. */
	if (o->sweep && o->json && !o->csv)
		return cli_usage_error(CMD, "--json with --sweep needs --csv FILE: the CSV goes to stdout otherwise");
	if (!o->n_transports)
		o->transports[o->n_transports++] = "ringcast";
	if (!o->n_sizes)
		o->sizes[o->n_sizes++] = 64;
	if (!o->n_subs)
		o->subs[o->n_subs++] = 1;
	if (!o->n_waits)
		o->waits[o->n_waits++] = false;
	if (!o->n_batches)
		o->batches[o->n_batches++] = 1;
	for (unsigned i = 0; i < o->n_batches; i++) {
		if (o->batches[i] == 1)
			continue;
		if (o->rate)
			return cli_usage_error(CMD, "--batch sends flat out: it does not go with --rate");
		if (o->zero_copy)
			return cli_usage_error(CMD, "--batch and --zero-copy exclude each other");
		/* The publisher keeps a batch's payloads in memory. */
		for (unsigned k = 0; k < o->n_sizes; k++)
			if ((uint64_t)o->batches[i] * o->sizes[k] > BENCH_BATCH_BYTES_MAX)
				return cli_usage_error(CMD, "--batch %u of --size %zu is over %d MiB a batch",
						       o->batches[i], o->sizes[k], BENCH_BATCH_BYTES_MAX >> 20);
	}
	if (o->count && o->count < o->pubs)
		return cli_usage_error(CMD, "--count %llu is less than one message per publisher",
				       (unsigned long long)o->count);
	/* The daemon keeps every topic's ring, so the default is one fixed name, not one per run. */
	if (!o->topic)
		o->topic = "ringcast.bench";
	/* --sweep appends ".s<size>" (at most 10 more bytes). */
	if (!*o->topic || strlen(o->topic) > RINGCAST_TOPIC_MAX - (o->sweep ? 10 : 0))
		return cli_usage_error(CMD, "--topic must be 1 to %d bytes", RINGCAST_TOPIC_MAX - (o->sweep ? 10 : 0));
	for (unsigned i = 0; i < o->n_transports; i++) {
		bool known = false;

		for (const char *const *t = bench_all_transports; *t; t++)
			known |= !strcmp(*t, o->transports[i]);
		if (!known)
			return cli_usage_error(CMD, "--transport: '%s' is not one of ringcast uds zmq nng redis all",
					       o->transports[i]);
		if (o->zero_copy && strcmp(o->transports[i], "ringcast"))
			return cli_usage_error(CMD, "--zero-copy is for the ringcast transport only");
		if (!o->sweep && o->batches[0] > 1 && strcmp(o->transports[i], "ringcast"))
			return cli_usage_error(CMD, "--batch is for the ringcast transport only");
		for (unsigned k = 0; k < o->n_sizes; k++)
			if (strcmp(o->transports[i], "ringcast") && o->sizes[k] < 8)
				return cli_usage_error(CMD, "--size %zu: transport %s needs at least 8 bytes for the "
						       "stamp", o->sizes[k], o->transports[i]);
	}
	return 0;
}
