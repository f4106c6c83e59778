/* SPDX-License-Identifier: MIT */
/*
 * ringcast sub: subscribe to topics and print each message as it arrives.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "sub"

/* How often a sleeping or spinning loop looks at the stop flag and the clock. */
#define SUB_SLICE_MS 200

static volatile sig_atomic_t sub_stop;

static void on_signal(int sig)
{
	sub_stop = sig;
}

/* A subscribed topic: what messages have told of its losses, for the count at exit. */
struct sub_topic {
	const char *name;
	size_t len;
	uint64_t told;     /* sum of msg->lost */
	uint64_t last_seq; /* of the last message delivered; 0: none yet */
};

struct sub_ctx {
	struct ringcast *rc; /* its clock is the one publish_ns was stamped with */
	const char *node; /* this node: latency is only meaningful for its messages */
	bool json;
	uint64_t count;   /* stop after this many; 0: never */
	uint64_t received;
	uint64_t lost;
	int out_err;      /* a failed write to stdout: negative errno; 0 none */
	struct sub_topic *topics; /* [ntopics], owned */
	int ntopics;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcast sub [OPTIONS] TOPIC...\n"
		"\n"
		"Subscribe to every TOPIC and print each message as it arrives, one line\n"
		"per message, flushed at once (so it works in pipes).  Only messages\n"
		"published after the subscription are seen.\n"
		"\n"
		"Default line:  TOPIC SEQ: PAYLOAD\n"
		"  TOPIC and PAYLOAD are printed with \\\\ \\n \\r \\t and \\xHH escapes for\n"
		"  anything that is not printable ASCII or printable UTF-8.\n"
		"--json line:   {\"topic\",\"seq\",\"origin\",\"publish_ns\",\"latency_ns\",\"len\",\n"
		"                \"data\",\"lost\"}\n"
		"  latency_ns is now - publish_ns (CLOCK_MONOTONIC) for messages that\n"
		"  originate on this node, null for other nodes (their clocks differ).\n"
		"  data is the payload as a string when it is valid UTF-8; otherwise\n"
		"  data is null and \"data_base64\" holds the bytes.  lost is the number\n"
		"  of messages skipped just before this one.\n"
		"\n"
		"Losses are never silent: each one also prints to stderr\n"
		"  lost N messages before seq S on TOPIC\n"
		"and, at exit, losses that no later message revealed (sub was lapped\n"
		"after the last one came) are asked of the daemon and print as\n"
		"  lost N messages after seq S on TOPIC   (or: on TOPIC, if none came)\n"
		"\n"
		"Options:\n"
		"  -n, --count N      exit after N messages (k M G suffixes accepted)\n"
		"  -t, --timeout MS   exit when no message came for MS milliseconds\n"
		"                     (or with a unit: ns us ms s m h); without it, run\n"
		"                     until SIGINT or SIGTERM\n"
		"  -j, --json         one JSON object per message\n"
		"      --spin         busy-poll (ringcast_poll in a loop: lowest latency,\n"
		"                     one CPU at 100%%) instead of sleeping in ringcast_wait\n"
		"  -q, --quiet        no summary on stderr at exit\n"
		"      --socket PATH  ringcastd's socket (default: $RINGCAST_SOCKET, then\n"
		"                     %s)\n"
		"  -h, --help         this help\n"
		"\n"
		"At exit a summary (messages received, lost, why it stopped) goes to stderr.\n"
		"Exit status: 0 after --count messages, --timeout, SIGINT or SIGTERM; 1 on\n"
		"a runtime error (cannot connect or subscribe, a failed read; a closed\n"
		"stdout before subscribing, or a failed write, which stops sub at that\n"
		"message); 2 on bad usage.\n",
		RINGCAST_DEFAULT_SOCKET);
}

static void print_json(const struct sub_ctx *c, const struct ringcast_msg *m, uint64_t now)
{
	bool local = c->node && m->origin && !strcmp(m->origin, c->node);
	bool text = cli_utf8_valid(m->data, m->len);

	fputs("{\"topic\":", stdout);
	cli_put_json_str(stdout, m->topic, m->topic_len);
	printf(",\"seq\":%llu,\"origin\":", (unsigned long long)m->seq);
	if (m->origin)
		cli_put_json_str(stdout, m->origin, strlen(m->origin));
	else
		fputs("null", stdout);
	printf(",\"publish_ns\":%llu,\"latency_ns\":", (unsigned long long)m->publish_ns);
	if (local)
		printf("%llu", (unsigned long long)(now > m->publish_ns ? now - m->publish_ns : 0));
	else
		fputs("null", stdout);
	printf(",\"len\":%zu,\"data\":", m->len);
	if (text) {
		cli_put_json_str(stdout, m->data, m->len);
	} else {
		fputs("null,\"data_base64\":\"", stdout);
		cli_put_base64(stdout, m->data, m->len);
		fputc('"', stdout);
	}
	printf(",\"lost\":%llu}\n", (unsigned long long)m->lost);
}

static struct sub_topic *find_topic(const struct sub_ctx *c, const char *name, size_t len)
{
	for (int i = 0; i < c->ntopics; i++)
		if (c->topics[i].len == len && !memcmp(c->topics[i].name, name, len))
			return &c->topics[i];
	return NULL;
}

static int on_msg(const struct ringcast_msg *m, void *arg)
{
	struct sub_ctx *c = arg;
	struct sub_topic *t = find_topic(c, m->topic, m->topic_len);
	uint64_t now = ringcast_now_ns(c->rc);

	if (t) {
		t->told += m->lost;
		t->last_seq = m->seq;
	}
	if (m->lost) {
		c->lost += m->lost;
		fprintf(stderr, "lost %llu messages before seq %llu on ", (unsigned long long)m->lost,
			(unsigned long long)m->seq);
		cli_put_escaped(stderr, m->topic, m->topic_len);
		fputc('\n', stderr);
	}
	if (c->json) {
		print_json(c, m, now);
	} else {
		cli_put_escaped(stdout, m->topic, m->topic_len);
		printf(" %llu: ", (unsigned long long)m->seq);
		cli_put_escaped(stdout, m->data, m->len);
		fputc('\n', stdout);
	}
	/* Per message, so a reader at the other end of a pipe sees it now. */
	if (fflush(stdout) || ferror(stdout)) {
		/* Printed nowhere: stop, rather than go on taking messages that nobody sees. */
		c->out_err = errno ? -errno : -EIO;
		return 1;
	}
	c->received++;
	return c->count && c->received >= c->count;
}

/* The lost line of losses found at exit, as on_msg prints those a message tells of. */
static void print_untold(const struct sub_topic *t, uint64_t n)
{
	fprintf(stderr, "lost %llu messages ", (unsigned long long)n);
	if (t->last_seq)
		fprintf(stderr, "after seq %llu ", (unsigned long long)t->last_seq);
	fputs("on ", stderr);
	cli_put_escaped(stderr, t->name, t->len);
	fputc('\n', stderr);
}

/*
 * Losses no message revealed.  When sub is lapped after the last message
 * that came, the library counts the skipped messages in our slot (stat
 * shows them) but has no message to hand them over with.  Ask the daemon
 * for our slot's count on each topic: what it holds beyond what messages
 * told us is the rest.  (A slot counts from its subscription, or from a
 * daemon restart that gave us a new one: this may say too little, never
 * too much.)  0, or a negative errno from ringcast_stat().
 */
static int untold_losses(struct sub_ctx *c)
{
	uint32_t me = ringcast_client_id(c->rc);

	for (int i = 0; i < c->ntopics; i++) {
		struct sub_topic *t = &c->topics[i];
		struct ringcast_topic_stat *st;
		size_t n;
		int err = ringcast_stat(c->rc, t->name, &st, &n);

		if (err)
			return err;
		for (size_t j = 0; n == 1 && j < st[0].n_subs; j++) {
			const struct ringcast_sub_stat *s = &st[0].subs[j];

			if (s->client_id != me || s->lost <= t->told)
				continue;
			print_untold(t, s->lost - t->told);
			c->lost += s->lost - t->told;
			t->told = s->lost;
		}
		ringcast_stat_free(st, n);
	}
	return 0;
}

int cmd_sub(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "spin", no_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sub_ctx c = { 0 };
	const char *socket = NULL, *why = "interrupted";
	uint64_t timeout_ns = 0, t0, last;
	bool spin = false, quiet = false;
	struct ringcast *rc = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	int opt, ret = CLI_EXIT_OK, err;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "n:t:jqh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			c.count = cli_u64_or_exit(CMD, "--count", optarg, 1, UINT64_MAX);
			break;
		case 't':
			timeout_ns = cli_duration_or_exit(CMD, "--timeout", optarg, 1000000, 1000000,
							  (uint64_t)INT32_MAX * 1000000);
			break;
		case 'j':
			c.json = true;
			break;
		case 'S':
			spin = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 's':
			if (cli_check_socket(CMD, optarg))
				return CLI_EXIT_USAGE;
			socket = optarg;
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
	for (int i = optind; i < argc; i++)
		if (!*argv[i] || strlen(argv[i]) > RINGCAST_TOPIC_MAX)
			return cli_usage_error(CMD, "TOPIC must be 1 to %d bytes: '%s'", RINGCAST_TOPIC_MAX, argv[i]);
	/* Before subscribing: a message taken off the ring and printed nowhere would be lost. */
	if (cli_check_stdout(CMD))
		return CLI_EXIT_ERR;
	c.topics = calloc((size_t)(argc - optind), sizeof(*c.topics));
	if (!c.topics)
		return cli_error(CMD, -ENOMEM, "allocating");

	/* No SA_RESTART: a signal should cut a wait short, not be retried past. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (cli_open(CMD, socket, &rc)) {
		free(c.topics);
		return CLI_EXIT_ERR;
	}
	c.rc = rc;
	c.node = ringcast_node_name(rc);
	for (int i = optind; i < argc; i++) {
		err = ringcast_subscribe(rc, argv[i]);
		if (err == -EALREADY) {
			cli_warn(CMD, "'%s' is listed twice; subscribed once", argv[i]);
		} else if (err) {
			ret = cli_error(CMD, err, "cannot subscribe to '%s'", argv[i]);
			goto out;
		} else {
			c.topics[c.ntopics++] = (struct sub_topic){ .name = argv[i], .len = strlen(argv[i]) };
		}
	}

	t0 = last = now_ns();
	while (!sub_stop) {
		int n = ringcast_poll(rc, on_msg, &c, 0);
		uint64_t now;

		if (n == -EBADMSG) {
			/* The library drops the corrupt topic and keeps the others going. */
			cli_error(CMD, n, "a subscribed ring is corrupt; that topic is no longer received");
			n = 0;
		} else if (n < 0) {
			ret = cli_error(CMD, n, "receiving failed after %llu messages",
					(unsigned long long)c.received);
			goto out;
		}
		if (c.out_err)
			break;
		if (c.count && c.received >= c.count) {
			why = "count reached";
			break;
		}
		now = now_ns();
		if (n > 0) {
			last = now;
			continue;
		}
		if (timeout_ns && now - last >= timeout_ns) {
			why = "timeout";
			break;
		}
		if (spin)
			continue;
		{
			/* Sleep in slices so a signal is seen even if the wait restarts itself. */
			uint64_t slice = (uint64_t)SUB_SLICE_MS * 1000000;

			if (timeout_ns && timeout_ns - (now - last) < slice)
				slice = timeout_ns - (now - last);
			err = ringcast_wait(rc, (int)((slice + 999999) / 1000000));
			if (err && err != -ETIMEDOUT && err != -EINTR) {
				ret = cli_error(CMD, err, "waiting for messages failed");
				goto out;
			}
		}
	}
	if (c.out_err || ferror(stdout)) {
		/* strerror: ringcast_strerror would explain ENOSPC as a full ring. */
		ret = cli_error(CMD, 0, "writing to stdout failed after %llu messages: %s",
				(unsigned long long)c.received, strerror(c.out_err ? -c.out_err : EIO));
		goto out;
	}
	err = untold_losses(&c);
	if (err)
		cli_warn(CMD, "cannot ask ringcastd for losses after the last message: %s", ringcast_strerror(err));
	if (!quiet) {
		char tbuf[32], obuf[32];

		if (!strcmp(why, "timeout"))
			snprintf(obuf, sizeof(obuf), "no message for %s", cli_fmt_ns(tbuf, sizeof(tbuf), timeout_ns));
		else
			snprintf(obuf, sizeof(obuf), "%s", why);
		fprintf(stderr, "ringcast sub: %llu message%s on %d topic%s, %llu lost, in %s (%s)\n",
			(unsigned long long)c.received, c.received == 1 ? "" : "s", c.ntopics,
			c.ntopics == 1 ? "" : "s", (unsigned long long)c.lost,
			cli_fmt_ns(tbuf, sizeof(tbuf), now_ns() - t0), obuf);
	}
out:
	ringcast_close(rc);
	free(c.topics);
	return ret;
}
