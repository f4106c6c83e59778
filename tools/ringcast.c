/* SPDX-License-Identifier: MIT */
/*
 * ringcast: the command-line client of ringcastd.  `ringcast CMD ARGS...`
 * runs one subcommand; each lives in its own cmd_*.c file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "pub", cmd_pub, "publish a message, or each line of stdin, to a topic" },
	{ "sub", cmd_sub, "subscribe to topics and print messages as they arrive" },
	{ "stat", cmd_stat, "show topics, rings and subscribers (--watch to refresh)" },
	{ "bench", cmd_bench, "measure fan-out: P publisher and N subscriber processes" },
	{ "trace", cmd_trace, "per-topic publish-to-delivery latency histograms from eBPF" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcast COMMAND [OPTIONS] [ARGS]\n"
		"       ringcast help COMMAND\n"
		"\n"
		"Publish/subscribe over shared-memory topic rings, through ringcastd.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"Every command takes --socket PATH (default: $RINGCAST_SOCKET, then\n"
		"%s) and --help.\n"
		"Exit status: 0 success, 1 runtime error, 2 bad usage.\n",
		RINGCAST_DEFAULT_SOCKET);
}

static int run(const struct command *c, int argc, char **argv)
{
	char name[32];

	/* getopt_long prefixes its complaints with argv[0]: make it "ringcast CMD". */
	snprintf(name, sizeof(name), "ringcast %s", c->name);
	argv[0] = name;
	return c->fn(argc, argv);
}

static int dispatch(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "help")) {
		char *help_argv[] = { NULL, "--help", NULL };

		if (argc == 2) {
			usage(stdout);
			return CLI_EXIT_OK;
		}
		c = find(argv[2]);
		if (!c || argc > 3) {
			fprintf(stderr, "ringcast help: %s '%s'\n", c ? "too many arguments after" : "no command",
				argv[2]);
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
		help_argv[0] = argv[2];
		return run(c, 2, help_argv);
	}
	c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "ringcast: '%s' is not a command\n\n", argv[1]);
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	return run(c, argc - 1, argv + 1);
}

/*
 * Take fds 0-2 back if whoever started us closed them.  Left free, the
 * next descriptor opened gets the number: the daemon's socket would be
 * read as stdin or get message lines written into it.  The stand-ins
 * keep a closed stream's meaning: stdin is /dev/null opened write-only
 * and stdout /dev/null opened read-only, so reading or writing them fails
 * with EBADF and the command reports it as it reports any failed read or
 * write; stderr is /dev/null (there is nowhere to say anything else).
 * 0, or a negative errno when /dev/null cannot be opened.
 */
static int hold_std_fds(void)
{
	static const int mode[3] = { O_WRONLY, O_RDONLY, O_WRONLY };

	for (int fd = 0; fd < 3; fd++) {
		int got;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* The lowest free number: fd itself, since those below are open by now. */
		got = open("/dev/null", mode[fd]);
		if (got < 0)
			return -errno;
		if (got != fd) {
			int err = dup2(got, fd) < 0 ? -errno : 0;

			close(got);
			if (err)
				return err;
		}
	}
	return 0;
}

/*
 * What a command printed but did not flush or check (--help) must reach
 * stdout too, or the exit status says it did not, as for any failed write.
 */
static int finish_stdout(int ret)
{
	int err = fflush(stdout) ? errno : 0;

	if (ret != CLI_EXIT_OK || (!err && !ferror(stdout)))
		return ret;
	/* strerror: ringcast_strerror would explain ENOSPC as a full ring. */
	return cli_error(NULL, 0, "writing to stdout failed: %s", strerror(err ? err : EIO));
}

int main(int argc, char **argv)
{
	int err = hold_std_fds();

	if (err)
		return cli_error(NULL, err, "cannot open /dev/null in place of a closed stdin, stdout or stderr");
	return finish_stdout(dispatch(argc, argv));
}
