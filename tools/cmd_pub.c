/* SPDX-License-Identifier: MIT */
/*
 * ringcast pub: publish one message, or one message per line of stdin.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "pub"
/*
 * A publish that finds the ring full waits for room inside the library,
 * up to --timeout, in slices this long: between them pub looks at its
 * stop flag, so Ctrl-C ends a long wait at once.
 */
#define PUB_WAIT_SLICE_MS 50

static volatile sig_atomic_t pub_stop;

static void on_signal(int sig)
{
	pub_stop = sig;
}

enum pub_mode { PUB_ALL, PUB_FROM, PUB_LOCAL, PUB_LOCAL_FROM, PUB_DIRECT };

struct pub_opts {
	const char *socket;
	const char *topic;
	const char *node;
	enum pub_mode mode;
	int timeout_ms;
	bool verbose;
};

static const char *const mode_name[] = {
	[PUB_ALL] = "broadcast",
	[PUB_FROM] = "broadcast_from",
	[PUB_LOCAL] = "local_broadcast",
	[PUB_LOCAL_FROM] = "local_broadcast_from",
	[PUB_DIRECT] = "direct_broadcast",
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcast pub [OPTIONS] TOPIC [MESSAGE]\n"
		"\n"
		"Publish MESSAGE to TOPIC.  Without MESSAGE, publish each line of standard\n"
		"input as one message, without its newline (an empty line is an empty\n"
		"message; a last line without a newline is published too).  Put -- before a\n"
		"MESSAGE that starts with '-'.\n"
		"\n"
		"Options:\n"
		"      --from         ringcast_broadcast_from: every subscriber except this\n"
		"                     client (which does not subscribe, so the difference\n"
		"                     shows only in the API it exercises)\n"
		"      --local        this node only: ringcast_local_broadcast, or\n"
		"                     ringcast_local_broadcast_from with --from\n"
		"      --node NODE    only the subscribers on node NODE:\n"
		"                     ringcast_direct_broadcast (not with --from or --local)\n"
		"      --timeout MS   how long one publish may wait for room when a tethered\n"
		"                     subscriber has not read the ring yet (default 1000;\n"
		"                     or with a unit: ns us ms s m h, rounded up to whole\n"
		"                     milliseconds; 0 fails at once).\n"
		"                     When it runs out, pub fails: nothing is dropped\n"
		"                     silently.\n"
		"  -v, --verbose      print a summary (messages, bytes, time) on stderr\n"
		"      --socket PATH  ringcastd's socket (default: $RINGCAST_SOCKET, then\n"
		"                     %s)\n"
		"  -h, --help         this help\n"
		"\n"
		"Exit status: 0 when every message was published; 1 on a runtime error\n"
		"(the error and how many messages were published before it go to stderr);\n"
		"2 on bad usage; 130 when SIGINT or SIGTERM stops it while reading stdin\n"
		"or waiting for room (how many messages were published goes to stderr).\n",
		RINGCAST_DEFAULT_SOCKET);
}

static int publish(const struct pub_opts *o, struct ringcast *rc, const void *data, size_t len)
{
	switch (o->mode) {
	case PUB_FROM:
		return ringcast_broadcast_from(rc, o->topic, data, len);
	case PUB_LOCAL:
		return ringcast_local_broadcast(rc, o->topic, data, len);
	case PUB_LOCAL_FROM:
		return ringcast_local_broadcast_from(rc, o->topic, data, len);
	case PUB_DIRECT:
		return ringcast_direct_broadcast(rc, o->node, o->topic, data, len);
	case PUB_ALL:
		break;
	}
	return ringcast_broadcast(rc, o->topic, data, len);
}

/*
 * publish(), waiting up to --timeout for room in slices (PUB_WAIT_SLICE_MS).
 * -EINTR: SIGINT or SIGTERM came while it waited; nothing was published.
 */
static int publish_waiting(const struct pub_opts *o, struct ringcast *rc, const void *data, size_t len)
{
	uint64_t start = now_ns(), waited_ms = 0;
	int err;

	for (;;) {
		uint64_t left = (uint64_t)o->timeout_ms - waited_ms;

		err = ringcast_set_send_timeout(rc, (int)(left < PUB_WAIT_SLICE_MS ? left : PUB_WAIT_SLICE_MS));
		if (!err)
			err = publish(o, rc, data, len);
		if (err != -EAGAIN)
			return err;
		if (pub_stop)
			return -EINTR;
		waited_ms = (now_ns() - start) / 1000000;
		if (waited_ms >= (uint64_t)o->timeout_ms)
			return err;
	}
}

/* Say why a publish of len bytes failed, and what to do about it. */
static int publish_failed(const struct pub_opts *o, struct ringcast *rc, int err, uint64_t done, size_t len)
{
	cli_error(CMD, err, "%s to '%s' failed after %llu message%s published", mode_name[o->mode], o->topic,
		  (unsigned long long)done, done == 1 ? "" : "s");
	if (err == -EAGAIN)
		fprintf(stderr, "The ring stayed full for %d ms: a tethered subscriber is not reading "
			"(see 'ringcast stat'; raise --timeout to wait longer).\n", o->timeout_ms);
	if (err == -EMSGSIZE) {
		long max = ringcast_max_msg(rc, o->topic);

		if (max >= 0)
			fprintf(stderr, "The message has %zu bytes; '%s' takes at most %ld bytes (a larger "
				"capacity for the topic takes more).\n", len, o->topic, max);
	}
	return CLI_EXIT_ERR;
}

int cmd_pub(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", no_argument, NULL, 'f' },
		{ "local", no_argument, NULL, 'l' },
		{ "node", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct pub_opts o = { .timeout_ms = 1000 };
	bool from = false, local = false;
	struct sigaction sa = { .sa_handler = on_signal };
	struct ringcast *rc = NULL;
	uint64_t done = 0, bytes = 0, t0;
	int opt, ret = CLI_EXIT_OK, err;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			from = true;
			break;
		case 'l':
			local = true;
			break;
		case 'n':
			o.node = optarg;
			break;
		case 't':
			/* Rounded up: 0.5 ms is a wait, not the 0 that fails at once. */
			o.timeout_ms = (int)((cli_duration_or_exit(CMD, "--timeout", optarg, 1000000, 0,
								   (uint64_t)INT32_MAX * 1000000) + 999999) / 1000000);
			break;
		case 'v':
			o.verbose = true;
			break;
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
	if (optind >= argc)
		return cli_usage_error(CMD, "missing TOPIC");
	if (argc - optind > 2)
		return cli_usage_error(CMD, "too many arguments: one TOPIC and at most one MESSAGE "
				       "(quote a MESSAGE with spaces)");
	o.topic = argv[optind];
	if (!*o.topic || strlen(o.topic) > RINGCAST_TOPIC_MAX)
		return cli_usage_error(CMD, "TOPIC must be 1 to %d bytes", RINGCAST_TOPIC_MAX);
	if (o.node && (from || local))
		return cli_usage_error(CMD, "--node cannot be combined with --from or --local");
	if (o.node && !*o.node)
		return cli_usage_error(CMD, "--node needs a node name");
	o.mode = o.node ? PUB_DIRECT : local ? (from ? PUB_LOCAL_FROM : PUB_LOCAL) : from ? PUB_FROM : PUB_ALL;

	if (cli_open(CMD, o.socket, &rc))
		return CLI_EXIT_ERR;
	t0 = now_ns();
	if (optind + 1 < argc) {
		const char *msg = argv[optind + 1];

		err = publish_waiting(&o, rc, msg, strlen(msg));
		if (err) {
			ret = publish_failed(&o, rc, err, 0, strlen(msg));
			goto out;
		}
		done = 1;
		bytes = strlen(msg);
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;

		/*
		 * No SA_RESTART: Ctrl-C while waiting for input ends the read, so we
		 * can say how many lines made it instead of dying silently.
		 */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		while (!pub_stop && (n = getline(&line, &cap, stdin)) >= 0) {
			if (n > 0 && line[n - 1] == '\n')
				n--;
			err = publish_waiting(&o, rc, line, (size_t)n);
			if (err == -EINTR)
				break; /* reported below, with the count */
			if (err) {
				ret = publish_failed(&o, rc, err, done, (size_t)n);
				break;
			}
			done++;
			bytes += (uint64_t)n;
		}
		if (ret == CLI_EXIT_OK && pub_stop) {
			fprintf(stderr, "ringcast pub: interrupted after %llu message%s published to '%s'\n",
				(unsigned long long)done, done == 1 ? "" : "s", o.topic);
			ret = 130;
		} else if (ret == CLI_EXIT_OK && ferror(stdin)) {
			ret = cli_error(CMD, -errno, "reading stdin failed after %llu messages published",
					(unsigned long long)done);
		}
		free(line);
	}
	if (o.verbose) {
		char tbuf[32], bbuf[32];
		const char *node = ringcast_node_name(rc);

		/* Names escaped as sub and stat show them. */
		fprintf(stderr, "ringcast pub: %llu message%s (%s of payload) via %s to '", (unsigned long long)done,
			done == 1 ? "" : "s", cli_fmt_bytes(bbuf, sizeof(bbuf), bytes), mode_name[o.mode]);
		cli_put_escaped(stderr, o.topic, strlen(o.topic));
		fputc('\'', stderr);
		if (o.node) {
			fputs(" for node ", stderr);
			cli_put_escaped(stderr, o.node, strlen(o.node));
		}
		fputs(" on node ", stderr);
		cli_put_escaped(stderr, node, strlen(node));
		fprintf(stderr, " in %s\n", cli_fmt_ns(tbuf, sizeof(tbuf), now_ns() - t0));
	}
out:
	ringcast_close(rc);
	return ret;
}
