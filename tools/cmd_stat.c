/* SPDX-License-Identifier: MIT */
/*
 * ringcast stat: the daemon's view of topics, rings and subscribers.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CMD "stat"

static volatile sig_atomic_t stat_stop;

static void on_signal(int sig)
{
	stat_stop = sig;
}

/* One snapshot from ringcast_stat(), and when it was taken. */
struct snap {
	struct ringcast_topic_stat *t;
	size_t n;
	uint64_t at_ns;
};

struct stat_opts {
	const char *socket;
	const char *topic;
	bool json;
	bool watch;
	uint64_t interval_ns;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcast stat [OPTIONS] [TOPIC]\n"
		"\n"
		"Show the node's topics you may subscribe to (root and the daemon's user\n"
		"see all), or only TOPIC: ring capacity, publishers,\n"
		"subscribers, messages and ring bytes ever published, messages lost (LOST:\n"
		"the sum of the current subscribers' LOST, so it drops when a subscriber\n"
		"that lost messages leaves); then each subscriber: client id, pid, uid,\n"
		"lag (ring bytes published but not yet read), messages delivered and\n"
		"lost, and whether it is tethered (publishers wait for it) or untethered\n"
		"(it can be lapped and lose messages, which it is told about).\n"
		"\n"
		"Options:\n"
		"  -j, --json          one JSON document:\n"
		"                      {\"node\",\"time_ns\",\"topics\":[{\"topic\",\"capacity\",\n"
		"                      \"publishers\",\"subscribers\",\"messages\",\"bytes\",\"lost\",\n"
		"                      \"subs\":[{\"client_id\",\"pid\",\"uid\",\"lag_bytes\",\n"
		"                      \"delivered\",\"lost\",\"state\"}]}]}\n"
		"                      (state is \"tethered\" or \"untethered\")\n"
		"  -w, --watch[=SEC]   refresh every SEC seconds (default 1; fractions and\n"
		"                      a unit ns us ms s m h) until Ctrl-C; adds a MSG/S\n"
		"                      column (\"msgs_per_sec\" in JSON, one document per\n"
		"                      line per refresh).  A number right after a bare\n"
		"                      --watch is taken as SEC; write --watch=1 before a\n"
		"                      TOPIC that looks like a number.\n"
		"      --socket PATH   ringcastd's socket (default: $RINGCAST_SOCKET, then\n"
		"                      %s)\n"
		"  -h, --help          this help\n"
		"\n"
		"Exit status: 0 on success (and when --watch is stopped by Ctrl-C or\n"
		"SIGTERM); 1 on a runtime error, or when TOPIC does not exist or you may\n"
		"not subscribe to it (the two look the same); 2 on bad usage.\n",
		RINGCAST_DEFAULT_SOCKET);
}

static const char *state_name(int state)
{
	switch (state) {
	case RINGCAST_TETHERED:
		return "tethered";
	case RINGCAST_UNTETHERED:
		return "untethered";
	}
	return "unknown";
}

/* The same topic in an earlier snapshot, for rates; NULL if it is new. */
static const struct ringcast_topic_stat *find_prev(const struct snap *prev,
						   const struct ringcast_topic_stat *t)
{
	if (!prev)
		return NULL;
	for (size_t i = 0; i < prev->n; i++)
		if (prev->t[i].topic_len == t->topic_len && !memcmp(prev->t[i].topic, t->topic, t->topic_len))
			return &prev->t[i];
	return NULL;
}

/* Messages per second since prev, or a negative value when unknown. */
static double msg_rate(const struct snap *cur, const struct snap *prev, const struct ringcast_topic_stat *t)
{
	const struct ringcast_topic_stat *p = find_prev(prev, t);

	if (!p || cur->at_ns <= prev->at_ns || t->messages < p->messages)
		return -1;
	return (double)(t->messages - p->messages) * 1e9 / (double)(cur->at_ns - prev->at_ns);
}

static void print_json(const struct snap *cur, const struct snap *prev, const char *node, bool rates)
{
	fputs("{\"node\":", stdout);
	cli_put_json_str(stdout, node, strlen(node));
	printf(",\"time_ns\":%llu,\"topics\":[", (unsigned long long)cur->at_ns);
	for (size_t i = 0; i < cur->n; i++) {
		const struct ringcast_topic_stat *t = &cur->t[i];

		fputs(i ? ",{\"topic\":" : "{\"topic\":", stdout);
		cli_put_json_str(stdout, t->topic, t->topic_len);
		printf(",\"capacity\":%llu,\"publishers\":%u,\"subscribers\":%zu,\"messages\":%llu,"
		       "\"bytes\":%llu,\"lost\":%llu",
		       (unsigned long long)t->capacity, t->publishers, t->n_subs,
		       (unsigned long long)t->messages, (unsigned long long)t->bytes,
		       (unsigned long long)t->lost);
		if (rates) {
			double r = msg_rate(cur, prev, t);

			if (r < 0)
				fputs(",\"msgs_per_sec\":null", stdout);
			else
				printf(",\"msgs_per_sec\":%.1f", r);
		}
		fputs(",\"subs\":[", stdout);
		for (size_t j = 0; j < t->n_subs; j++) {
			const struct ringcast_sub_stat *s = &t->subs[j];

			printf("%s{\"client_id\":%u,\"pid\":%u,\"uid\":%u,\"lag_bytes\":%llu,\"delivered\":%llu,"
			       "\"lost\":%llu,\"state\":\"%s\"}",
			       j ? "," : "", s->client_id, s->pid, s->uid, (unsigned long long)s->lag_bytes,
			       (unsigned long long)s->delivered, (unsigned long long)s->lost, state_name(s->state));
		}
		fputs("]}", stdout);
	}
	fputs("]}\n", stdout);
}

static void print_table(const struct snap *cur, const struct snap *prev, const char *node, bool rates)
{
	char cap[32], bytes[32], lag[32];

	/* Escaped like topics: the daemon checks its node name, but a client trusts nothing it is told. */
	fputs("node ", stdout);
	cli_put_escaped(stdout, node, strlen(node));
	printf(": %zu topic%s\n", cur->n, cur->n == 1 ? "" : "s");
	if (!cur->n)
		return;
	printf("%-24s %10s %5s %5s %12s %11s %8s%s\n", "TOPIC", "CAPACITY", "PUBS", "SUBS", "MESSAGES", "BYTES",
	       "LOST", rates ? "       MSG/S" : "");
	for (size_t i = 0; i < cur->n; i++) {
		const struct ringcast_topic_stat *t = &cur->t[i];
		char *name = NULL;
		size_t name_len = 0;
		FILE *m = open_memstream(&name, &name_len);

		/* Escape into a string first so the column can be padded. */
		if (m) {
			cli_put_escaped(m, t->topic, t->topic_len);
			fclose(m);
		}
		printf("%-24s %10s %5u %5zu %12llu %11s %8llu", name ? name : "?",
		       cli_fmt_bytes(cap, sizeof(cap), t->capacity), t->publishers, t->n_subs,
		       (unsigned long long)t->messages, cli_fmt_bytes(bytes, sizeof(bytes), t->bytes),
		       (unsigned long long)t->lost);
		free(name);
		if (rates) {
			double r = msg_rate(cur, prev, t);

			if (r < 0)
				printf(" %11s", "-");
			else
				printf(" %11.0f", r);
		}
		fputc('\n', stdout);
		if (!t->n_subs)
			continue;
		printf("    %10s %8s %6s %11s %12s %8s  %s\n", "CLIENT", "PID", "UID", "LAG", "DELIVERED", "LOST",
		       "STATE");
		for (size_t j = 0; j < t->n_subs; j++) {
			const struct ringcast_sub_stat *s = &t->subs[j];

			printf("    %10u %8u %6u %11s %12llu %8llu  %s\n", s->client_id, s->pid, s->uid,
			       cli_fmt_bytes(lag, sizeof(lag), s->lag_bytes), (unsigned long long)s->delivered,
			       (unsigned long long)s->lost, state_name(s->state));
		}
	}
}

static int take(struct ringcast *rc, const struct stat_opts *o, struct snap *s)
{
	int err = ringcast_stat(rc, o->topic, &s->t, &s->n);

	s->at_ns = now_ns();
	if (err == -ENOENT && o->topic) {
		/* A missing topic is an empty answer, not a broken daemon. */
		s->t = NULL;
		s->n = 0;
		return 0;
	}
	if (err) {
		s->t = NULL;
		s->n = 0;
	}
	return err;
}

/* Sleep ns unless a signal comes first. */
static void nap(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000) };

	while (!stat_stop && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int cmd_stat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct stat_opts o = { .interval_ns = 1000000000 };
	struct snap cur = { 0 }, prev = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct ringcast *rc = NULL;
	bool have_prev = false, clear;
	const char *node;
	int opt, err, ret = CLI_EXIT_OK;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "jw::h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			o.json = true;
			break;
		case 'w': {
			const char *arg = optarg;
			uint64_t v;

			o.watch = true;
			/* getopt only binds --watch=SEC; accept "--watch SEC" too when SEC is a duration. */
			if (!arg && optind < argc && !cli_parse_duration_ns(argv[optind], 1000000000, &v))
				arg = argv[optind++];
			if (arg)
				o.interval_ns = cli_duration_or_exit(CMD, "--watch", arg, 1000000000, 10000000,
								     86400ull * 1000000000);
			break;
		}
		case 's':
			if (cli_check_socket(CMD, optarg))
				return CLI_EXIT_USAGE;
			o.socket = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_usage_hint(CMD);
		}
	}
	if (argc - optind > 1)
		return cli_usage_error(CMD, "at most one TOPIC");
	if (optind < argc) {
		o.topic = argv[optind];
		if (!*o.topic || strlen(o.topic) > RINGCAST_TOPIC_MAX)
			return cli_usage_error(CMD, "TOPIC must be 1 to %d bytes", RINGCAST_TOPIC_MAX);
	}

	if (cli_check_stdout(CMD))
		return CLI_EXIT_ERR;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (cli_open(CMD, o.socket, &rc))
		return CLI_EXIT_ERR;
	node = ringcast_node_name(rc);
	clear = o.watch && !o.json && isatty(STDOUT_FILENO);

	for (;;) {
		err = take(rc, &o, &cur);
		if (err) {
			ret = cli_error(CMD, err, "cannot read the daemon's statistics");
			break;
		}
		if (!o.watch && o.topic && !cur.n) {
			fputs("ringcast stat: no topic '", stderr);
			cli_put_escaped(stderr, o.topic, strlen(o.topic));
			fputs("' on node ", stderr);
			cli_put_escaped(stderr, node, strlen(node));
			fputc('\n', stderr);
			ret = CLI_EXIT_ERR;
			break;
		}
		if (clear)
			fputs("\033[H\033[2J", stdout);
		if (o.watch && !o.json) {
			char when[64];
			time_t t = time(NULL);

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
			printf("%s  every %.3g s, Ctrl-C to stop\n", when, (double)o.interval_ns / 1e9);
		}
		if (o.json)
			print_json(&cur, have_prev ? &prev : NULL, node, o.watch);
		else
			print_table(&cur, have_prev ? &prev : NULL, node, o.watch);
		fflush(stdout);
		if (have_prev && prev.t)
			ringcast_stat_free(prev.t, prev.n);
		prev = cur;
		have_prev = true;
		cur = (struct snap){ 0 };
		if (!o.watch || stat_stop)
			break;
		nap(o.interval_ns);
		if (stat_stop)
			break;
	}
	if (have_prev && prev.t)
		ringcast_stat_free(prev.t, prev.n);
	if (cur.t)
		ringcast_stat_free(cur.t, cur.n);
	if (ret == CLI_EXIT_OK && ferror(stdout))
		ret = cli_error(CMD, 0, "writing to stdout failed");
	ringcast_close(rc);
	return ret;
}
