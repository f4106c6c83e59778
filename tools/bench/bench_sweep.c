/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench --sweep: the grid rounds x sizes x subs x waits, and at
 * each point every run back to back: each transport once, or once per
 * --batch value if it takes batches (ringcast).  The order of those runs
 * rotates from one point to the next, so that on a noisy machine a slow
 * patch (another tenant, a frequency change) does not always land on the
 * same one.  Every run is a CSV row; a failed run is a row too, and the
 * sweep goes on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "hist.h"

#define CMD "bench"

static void print_line(FILE *f, const struct bench_result *res, unsigned k, unsigned total)
{
	const struct bench_cfg *cfg = res->cfg;
	char t[3][32];

	fprintf(f, "[%u/%u] %-8s %8zu B %3u sub %-5s %4u/call ", k, total, cfg->tr->name, cfg->size, cfg->subs,
		cfg->spin ? "spin" : "sleep", cfg->batch);
	if (cfg->rate)
		fprintf(f, "pace %-5s ", bench_pace_name(cfg));
	if (res->err) {
		fprintf(f, "FAILED: %s\n", res->what);
		return;
	}
	fprintf(f, "%8.3f M/s/sub %8.3f M/s total  p50 %s  p99 %s  max %s  pub %.0f ns/msg  lost %llu%s%s\n",
		res->per_sub_rate / 1e6, res->total_rate / 1e6,
		cli_fmt_ns(t[0], sizeof(t[0]), hist_percentile(res->all, 50)),
		cli_fmt_ns(t[1], sizeof(t[1]), hist_percentile(res->all, 99)),
		cli_fmt_ns(t[2], sizeof(t[2]), hist_max(res->all)), res->pub_ns_per_msg,
		(unsigned long long)res->lost, res->ok ? "" : "  COUNTS OFF", res->interrupted ? "  INTERRUPTED" : "");
}

int bench_sweep(const struct bench_opts *o, volatile int *stop)
{
	/* The runs of a point: (transport, batch). */
	const struct bench_transport *tr[BENCH_TRANSPORTS_MAX * BENCH_LIST_MAX];
	unsigned batch[BENCH_TRANSPORTS_MAX * BENCH_LIST_MAX];
	unsigned nt = 0, total, k = 0, point = 0, failed = 0;
	FILE *csv = stdout, *lines = o->csv ? stdout : stderr;
	char topic[RINGCAST_TOPIC_MAX + 1];

	/* Every transport loads before the first run, or the sweep does not start. */
	for (unsigned i = 0; i < o->n_transports; i++) {
		const struct bench_transport *t = bench_transport_get(o->transports[i]);

		if (!t)
			return CLI_EXIT_ERR;
		for (unsigned b = 0; b < o->n_batches; b++) {
			/* A transport without batches runs once, at its only one. */
			if (!t->pub_send_many && b)
				break;
			tr[nt] = t;
			batch[nt++] = t->pub_send_many ? o->batches[b] : 1;
		}
	}
	if (o->csv) {
		csv = fopen(o->csv, "w");
		if (!csv)
			return cli_error(CMD, -errno, "opening %s", o->csv);
	}
	total = o->rounds * o->n_sizes * o->n_subs * o->n_waits * nt;
	bench_print_csv_header(csv);
	fflush(csv);
	for (unsigned round = 0; round < o->rounds && !*stop; round++)
		for (unsigned a = 0; a < o->n_sizes && !*stop; a++)
			for (unsigned b = 0; b < o->n_subs && !*stop; b++)
				for (unsigned w = 0; w < o->n_waits && !*stop; w++, point++)
					for (unsigned t = 0; t < nt && !*stop; t++) {
						struct bench_cfg cfg = {
							.o = o,
							.tr = tr[(t + point) % nt],
							.batch = batch[(t + point) % nt],
							.topic = topic,
							.size = o->sizes[a],
							.subs = o->subs[b],
							.pubs = o->pubs,
							.spin = o->waits[w],
							.count = o->count,
							.duration_ns = o->duration_ns,
							.rate = o->rate,
							.round = round,
						};
						struct bench_result res;

						/* A ring per size: capacity can follow size with a [topic] rule. */
						snprintf(topic, sizeof(topic), "%s.s%zu", o->topic, cfg.size);
						bench_run(&cfg, &res, stop);
						failed += res.err || !res.ok;
						k++;
						bench_print_csv_row(csv, &res);
						fflush(csv);
						if (o->json && !res.err) /* --json implies --csv */
							bench_print_json(stdout, &res);
						else
							print_line(lines, &res, k, total);
						fflush(lines);
						bench_result_free(&res);
					}
	if (o->csv && fclose(csv))
		return cli_error(CMD, -errno, "writing %s", o->csv);
	if (*stop)
		return 130;
	if (failed)
		cli_warn(CMD, "%u of %u runs failed or did not add up", failed, total);
	return failed ? CLI_EXIT_ERR : CLI_EXIT_OK;
}
