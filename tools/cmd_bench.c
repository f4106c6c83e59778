/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: fan-out benchmark over ringcast or a peer transport.
 * One run, or with --sweep a grid of runs (bench_sweep.c); a run itself is
 * bench_run.c.  See bench.h for how the files divide the work.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "cli.h"

#define CMD "bench"

/* Counts SIGINT/SIGTERM: 1 ends sending (and a sweep) early, 2 abandons the run. */
static volatile int bench_stop;

static void on_signal(int sig)
{
	if (bench_stop < 2)
		bench_stop++;
}

static int run_one(const struct bench_opts *o)
{
	struct bench_cfg cfg = {
		.o = o,
		.topic = o->topic,
		.size = o->sizes[0],
		.subs = o->subs[0],
		.pubs = o->pubs,
		.spin = o->waits[0],
		.count = o->count,
		.duration_ns = o->duration_ns,
		.rate = o->rate,
		.batch = o->batches[0],
	};
	struct bench_result res;
	int ret, err;

	cfg.tr = bench_transport_get(o->transports[0]);
	if (!cfg.tr)
		return CLI_EXIT_ERR;
	if (!cfg.tr->pub_send_many)
		cfg.batch = 1;
	err = bench_run(&cfg, &res, &bench_stop);
	if (err) {
		cli_error(CMD, err == BENCH_ERR_OTHER ? 0 : err, "%s: %s", cfg.tr->name, res.what);
		bench_result_free(&res);
		return bench_stop ? 130 : CLI_EXIT_ERR;
	}
	if (o->json)
		bench_print_json(stdout, &res);
	else
		bench_print_human(stdout, &res, o->per_sub);
	ret = res.ok ? CLI_EXIT_OK : CLI_EXIT_ERR;
	if (fflush(stdout) || ferror(stdout))
		ret = cli_error(CMD, 0, "writing to stdout failed");
	else if (res.interrupted)
		ret = 130;
	bench_result_free(&res);
	return ret;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct sigaction sa = { .sa_handler = on_signal };
	int ret;

	ret = bench_parse_args(argc, argv, &o);
	if (ret)
		return ret;
	if (o.help) {
		bench_usage(stdout);
		return CLI_EXIT_OK;
	}
	/* Before a run that may take minutes and then have nowhere to report. */
	if (cli_check_stdout(CMD))
		return CLI_EXIT_ERR;
	/* Installed before any fork: the children replace it at once. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Before any fork, so every process reads the same clock; no daemon: NULL. */
	if (ringcast_open(&o.clock, o.socket) < 0)
		o.clock = NULL;
	ret = o.sweep ? bench_sweep(&o, &bench_stop) : run_one(&o);
	ringcast_close(o.clock);
	return ret;
}
