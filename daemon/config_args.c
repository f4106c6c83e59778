/* SPDX-License-Identifier: MIT */
/*
 * ringcastd's command line: the flags, --help and --version.
 *
 * Every setting's flag comes from rcd_settings[] (config_settings.c) and
 * is checked exactly as the file's key is.  The file named by --config is
 * read before any flag is applied, so flags win.
 */
#include "config_internal.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#ifndef RINGCAST_VERSION
#define RINGCAST_VERSION "0.1.0"
#endif

enum {
	OPT_CONFIG = 0x100,
	OPT_VERSION,
	OPT_SETTING, /* + index in rcd_settings[] */
};

#define N_OPTS (RCD_N_SETTINGS + 6)

/* From rcd_settings[], so a key and its flag cannot drift apart. */
static void build_opts(struct option opts[N_OPTS])
{
	static const struct option fixed[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
	};
	size_t n = 0;

	for (size_t i = 0; i < RCD_N_SETTINGS; i++)
		if (rcd_settings[i].flag)
			opts[n++] = (struct option){ rcd_settings[i].flag, required_argument, NULL,
						     OPT_SETTING + (int)i };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		opts[n++] = fixed[i];
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcastd [OPTION]...\n"
		"Run the ringcast daemon in the foreground (systemd style): it creates and\n"
		"owns the topic rings in the runtime directory and serves clients on a\n"
		"Unix socket.  SIGTERM shuts it down cleanly.\n"
		"\n"
		"Settings are read from the defaults, then the config file, then these\n"
		"flags (a flag wins over the file):\n"
		"      --config FILE        config file (default %s,\n"
		"                           read only if it exists)\n"
		"      --socket PATH        control socket (default %s)\n"
		"      --socket-mode OCTAL  mode of the socket file (default 0660, group\n"
		"                           ringcast if it exists: who may connect at all)\n"
		"      --runtime-dir DIR    where the topic rings live, on tmpfs\n"
		"                           (default %s)\n"
		"      --node NAME          node name (default: the host name)\n"
		"      --capacity SIZE      ring size of a new topic, a power of two from 64k\n"
		"                           to 2G, e.g. 65536, 256k, 1M (default 1M)\n"
		"      --tether-timeout MS  untether a subscriber that has not moved for MS\n"
		"                           milliseconds (default 5000)\n"
		"      --reap-grace MS      after a restart, keep the cursors of the previous\n"
		"                           daemon's clients for MS milliseconds (default 5000)\n"
		"      --max-topics N       make no topic past N, adopted ones included\n"
		"                           (default 4096; 2 fds and a ring each)\n"
		"      --max-topics-per-uid N  topics one user (not root, not the daemon's)\n"
		"                           may make (default 0: a quarter of max-topics)\n"
		"      --topic-idle MS      remove a topic nobody has had open for MS\n"
		"                           milliseconds, its ring included (default\n"
		"                           3600000; 0: never)\n"
		"      --max-bytes-per-uid SIZE  bytes of rings one such user may make\n"
		"                           (default 0: a quarter of the runtime dir's file\n"
		"                           system)\n"
		"      --publish LIST       who may publish on topics no [topic] rule covers\n"
		"      --subscribe LIST     who may subscribe likewise; LIST is principals\n"
		"                           separated by commas or blanks: uid:N, gid:N,\n"
		"                           user:NAME, group:NAME, * (anyone).  Default: the\n"
		"                           daemon's own uid, root and the group \"ringcast\"\n"
		"      --log-level N        0 quiet, 1 normal, 2 debug (default 1)\n"
		"  -v, --verbose            one log level more\n"
		"  -q, --quiet              log level 0\n"
		"      --cluster GROUP:PORT multicast group and port of the cluster link\n"
		"      --iface IF           network interface of the cluster link\n"
		"      --secret-file FILE   cluster secret that authenticates datagrams\n"
		"                           The cluster flags are checked and accepted, but\n"
		"                           the cluster link is not implemented yet: the\n"
		"                           daemon serves this node only.\n"
		"  -h, --help               print this help and exit\n"
		"      --version            print the version and exit\n"
		"\n"
		"Per-topic capacity, tether timeout and ACLs are set in [topic \"PATTERN\"]\n"
		"sections of the config file; see docs/operations.md.\n",
		RCD_DEFAULT_CONFIG, RINGCAST_DEFAULT_SOCKET, RCD_DEFAULT_RUNTIME_DIR);
}

/*
 * First pass: only --config, --help and --version, and reject bad syntax,
 * so the file is read before any flag is applied and flags win.
 * optind = 0 makes glibc restart its scan: callers (tests) parse twice.
 */
static int scan_args(int argc, char **argv, const struct option *opts, const char **config)
{
	int c;

	optind = 0;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("ringcastd %s\n", RINGCAST_VERSION);
			return 1;
		case OPT_CONFIG:
			*config = optarg;
			break;
		case '?':
			fprintf(stderr, "Try 'ringcastd --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringcastd: unexpected argument '%s'\nTry 'ringcastd --help'.\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int apply_flag(struct rcd_config *cfg, int c, const char *arg)
{
	const struct rcd_setting *set;
	struct rcd_why w;
	int ret;

	switch (c) {
	case 'v':
		if (cfg->log_level < 2)
			cfg->log_level++;
		return 0;
	case 'q':
		cfg->log_level = 0;
		return 0;
	}
	if (c < OPT_SETTING || c >= OPT_SETTING + (int)RCD_N_SETTINGS)
		return 0;
	set = &rcd_settings[c - OPT_SETTING];
	ret = set->apply(&(struct rcd_target){ cfg, NULL }, arg, &w);
	if (ret == -EINVAL)
		fprintf(stderr, "ringcastd: --%s: %s\n", set->flag, w.msg);
	else if (ret)
		fprintf(stderr, "ringcastd: --%s: %s\n", set->flag, strerror(-ret));
	return ret;
}

static int apply_args(struct rcd_config *cfg, int argc, char **argv, const struct option *opts)
{
	int c, ret;

	optind = 0;
	opterr = 0; /* scan_args() already reported any syntax error */
	while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		ret = apply_flag(cfg, c, optarg);
		if (ret)
			return ret;
	}
	return 0;
}

int rcd_config_from_args(struct rcd_config *cfg, int argc, char **argv)
{
	struct option opts[N_OPTS];
	const char *config = NULL;
	int ret;

	build_opts(opts);
	/* a zeroed cfg gets the defaults, so main() needs only this call */
	if (!cfg->runtime_dir) {
		ret = rcd_config_defaults(cfg);
		if (ret)
			return ret;
	}
	ret = scan_args(argc, argv, opts, &config);
	if (ret)
		return ret;
	ret = rcd_config_load(cfg, config ? config : RCD_DEFAULT_CONFIG, config != NULL);
	if (ret)
		return ret;
	return apply_args(cfg, argc, argv, opts);
}
