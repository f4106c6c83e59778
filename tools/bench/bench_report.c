/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: turning the reports into results, and printing them.
 * Rates run from the first publish to each subscriber's last delivery,
 * so a subscriber that lags behind the publishers shows a lower rate.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "hist.h"

#define CMD "bench"

static double sub_rate(const struct bench_result *res, unsigned i)
{
	const struct bench_sub_report *s = &res->sub[i];

	if (!s->received || s->last_ns <= res->start_ns)
		return 0;
	return (double)s->received * 1e9 / (double)(s->last_ns - res->start_ns);
}

/* Warnings for anything that is not a clean run; false if a count is off or a message was bad. */
static bool check_counts(const struct bench_result *res)
{
	bool ok = true;

	for (unsigned i = 0; i < res->cfg->subs; i++) {
		const struct bench_sub_report *s = &res->sub[i];

		if (s->received + s->lost != res->sent) {
			cli_warn(CMD, "%s: subscriber %u received %llu and lost %llu, but %llu were sent: %lld unaccounted "
				 "for", res->cfg->tr->name, i, (unsigned long long)s->received,
				 (unsigned long long)s->lost, (unsigned long long)res->sent,
				 (long long)(res->sent - s->received - s->lost));
			ok = false;
		} else if (s->lost) {
			cli_warn(CMD, "%s: subscriber %u lost %llu of %llu messages", res->cfg->tr->name, i,
				 (unsigned long long)s->lost, (unsigned long long)res->sent);
		}
		if (s->bad) {
			cli_warn(CMD, "%s: subscriber %u saw %llu bad messages (out of order, torn or foreign)",
				 res->cfg->tr->name, i, (unsigned long long)s->bad);
			ok = false;
		}
		if (s->total != res->sent || s->ends != res->cfg->pubs) {
			cli_warn(CMD, "%s: subscriber %u saw %u end messages announcing %llu, not %u announcing %llu",
				 res->cfg->tr->name, i, s->ends, (unsigned long long)s->total, res->cfg->pubs,
				 (unsigned long long)res->sent);
			ok = false;
		}
	}
	return ok;
}

void bench_summarize(struct bench_result *res)
{
	const struct bench_cfg *cfg = res->cfg;
	uint64_t last = 0, cost = 0;

	res->start_ns = UINT64_MAX;
	for (unsigned i = 0; i < cfg->pubs; i++) {
		const struct bench_pub_report *p = &res->pub[i];

		res->sent += p->sent;
		res->retries += p->retries;
		cost += p->cost_ns;
		if (p->start_ns < res->start_ns)
			res->start_ns = p->start_ns;
		if (p->end_ns > res->end_ns)
			res->end_ns = p->end_ns;
	}
	if (res->start_ns > res->end_ns)
		res->start_ns = res->end_ns;
	for (unsigned i = 0; i < cfg->subs; i++) {
		const struct bench_sub_report *s = &res->sub[i];
		double r = sub_rate(res, i);

		hist_merge(res->all, res->hist[i]);
		if (i == 0 || r < res->per_sub_rate)
			res->per_sub_rate = r;
		res->received += s->received;
		res->lost += s->lost;
		res->bad += s->bad;
		if (s->last_ns > last)
			last = s->last_ns;
	}
	if (last > res->start_ns)
		res->total_rate = (double)res->received * 1e9 / (double)(last - res->start_ns);
	if (res->sent) {
		res->broker_ns_per_msg = (double)res->broker_cpu_ns / (double)res->sent;
		res->pub_ns_per_msg = (double)cost / (double)res->sent + res->broker_ns_per_msg;
	}
	res->ok = check_counts(res);
}

static const char *wait_name(const struct bench_cfg *cfg)
{
	return cfg->spin ? "spin" : "sleep";
}

void bench_print_json(FILE *f, const struct bench_result *res)
{
	const struct bench_cfg *cfg = res->cfg;
	const struct hist *h = res->all;

	fprintf(f,
		"{\"transport\":\"%s\",\"size\":%zu,\"subs\":%u,\"pubs\":%u,\"wait\":\"%s\",\"count\":%llu,"
		"\"duration_s\":%.6f,\"rate\":%llu,\"pace\":\"%s\",\"topic\":",
		cfg->tr->name, cfg->size, cfg->subs, cfg->pubs, wait_name(cfg), (unsigned long long)res->sent,
		(double)(res->end_ns - res->start_ns) / 1e9, (unsigned long long)cfg->rate, bench_pace_name(cfg));
	cli_put_json_str(f, cfg->topic, strlen(cfg->topic));
	fprintf(f,
		",\"zero_copy\":%s,\"batch\":%u,\"msgs_per_sec_per_sub\":%.1f,\"msgs_per_sec_total\":%.1f,"
		"\"bytes_per_sec_total\":%.1f,\"lost\":%llu,\"bad\":%llu,\"backpressure_retries\":%llu,"
		"\"publisher_ns_per_msg\":%.1f,\"broker_ns_per_msg\":%.1f,",
		cfg->o->zero_copy ? "true" : "false", cfg->batch, res->per_sub_rate, res->total_rate,
		res->total_rate * (double)cfg->size, (unsigned long long)res->lost, (unsigned long long)res->bad,
		(unsigned long long)res->retries, res->pub_ns_per_msg, res->broker_ns_per_msg);
	fprintf(f, "\"latency_ns\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"p9999\":%llu,\"max\":%llu},",
		(unsigned long long)hist_percentile(h, 50), (unsigned long long)hist_percentile(h, 90),
		(unsigned long long)hist_percentile(h, 99), (unsigned long long)hist_percentile(h, 99.9),
		(unsigned long long)hist_percentile(h, 99.99), (unsigned long long)hist_max(h));
	fprintf(f, "\"interrupted\":%s,\"ok\":%s,\"per_sub\":[", res->interrupted ? "true" : "false",
		res->ok ? "true" : "false");
	for (unsigned i = 0; i < cfg->subs; i++) {
		const struct bench_sub_report *s = &res->sub[i];

		fprintf(f,
			"%s{\"received\":%llu,\"lost\":%llu,\"bad\":%llu,\"msgs_per_sec\":%.1f,\"cpu_ns_per_msg\":%.1f,"
			"\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu}",
			i ? "," : "", (unsigned long long)s->received, (unsigned long long)s->lost,
			(unsigned long long)s->bad, sub_rate(res, i),
			s->received ? (double)s->cpu_ns / (double)s->received : 0.0,
			(unsigned long long)hist_percentile(res->hist[i], 50),
			(unsigned long long)hist_percentile(res->hist[i], 99),
			(unsigned long long)hist_percentile(res->hist[i], 99.9), (unsigned long long)hist_max(res->hist[i]));
	}
	fputs("]}\n", f);
}

void bench_print_human(FILE *f, const struct bench_result *res, bool per_sub)
{
	const struct bench_cfg *cfg = res->cfg;
	const struct hist *h = res->all;
	char t[6][32];

	fprintf(f, "%s bench: %u publisher%s -> %u subscriber%s (%s), %zu-byte messages%s", cfg->tr->name, cfg->pubs,
		cfg->pubs == 1 ? "" : "s", cfg->subs, cfg->subs == 1 ? "" : "s", wait_name(cfg), cfg->size,
		cfg->o->zero_copy ? " (zero-copy claim/commit)" : "");
	if (cfg->batch > 1)
		fprintf(f, ", %u a call", cfg->batch);
	if (!strcmp(cfg->tr->name, "ringcast"))
		fprintf(f, ", topic %s", cfg->topic);
	fputc('\n', f);
	fprintf(f, "  sent         %llu messages in %.3f s ", (unsigned long long)res->sent,
		(double)(res->end_ns - res->start_ns) / 1e9);
	if (cfg->rate)
		fprintf(f, "(paced at %llu msg/s, --pace %s)", (unsigned long long)cfg->rate, bench_pace_name(cfg));
	else
		fputs("(flat out)", f);
	fputs(res->interrupted ? ", interrupted\n" : "\n", f);
	fprintf(f, "  publisher    %.1f ns/msg %s", res->pub_ns_per_msg, cfg->rate ? "in send calls" : "CPU");
	if (res->broker_cpu_ns)
		fprintf(f, " (%.1f of it the broker's CPU)", res->broker_ns_per_msg);
	fprintf(f, ", %llu backpressure retries\n", (unsigned long long)res->retries);
	fprintf(f, "  throughput   %.0f msg/s per subscriber (slowest), %.0f msg/s total, %s/s\n", res->per_sub_rate,
		res->total_rate, cli_fmt_bytes(t[0], sizeof(t[0]), (uint64_t)(res->total_rate * (double)cfg->size)));
	fprintf(f, "  latency      p50 %s  p90 %s  p99 %s  p99.9 %s  p99.99 %s  max %s\n",
		cli_fmt_ns(t[0], sizeof(t[0]), hist_percentile(h, 50)),
		cli_fmt_ns(t[1], sizeof(t[1]), hist_percentile(h, 90)),
		cli_fmt_ns(t[2], sizeof(t[2]), hist_percentile(h, 99)),
		cli_fmt_ns(t[3], sizeof(t[3]), hist_percentile(h, 99.9)),
		cli_fmt_ns(t[4], sizeof(t[4]), hist_percentile(h, 99.99)), cli_fmt_ns(t[5], sizeof(t[5]), hist_max(h)));
	fprintf(f, "  received     %llu deliveries, %llu lost, %llu bad\n", (unsigned long long)res->received,
		(unsigned long long)res->lost, (unsigned long long)res->bad);
	if (!per_sub)
		return;
	fprintf(f, "  %4s %10s %8s %5s %12s %9s %10s %10s %10s %10s\n", "SUB", "RECEIVED", "LOST", "BAD", "MSG/S",
		"CPU/MSG", "P50", "P99", "P99.9", "MAX");
	for (unsigned i = 0; i < cfg->subs; i++) {
		const struct bench_sub_report *s = &res->sub[i];

		fprintf(f, "  %4u %10llu %8llu %5llu %12.0f %9s %10s %10s %10s %10s\n", i,
			(unsigned long long)s->received, (unsigned long long)s->lost, (unsigned long long)s->bad,
			sub_rate(res, i), cli_fmt_ns(t[0], sizeof(t[0]), s->received ? s->cpu_ns / s->received : 0),
			cli_fmt_ns(t[1], sizeof(t[1]), hist_percentile(res->hist[i], 50)),
			cli_fmt_ns(t[2], sizeof(t[2]), hist_percentile(res->hist[i], 99)),
			cli_fmt_ns(t[3], sizeof(t[3]), hist_percentile(res->hist[i], 99.9)),
			cli_fmt_ns(t[4], sizeof(t[4]), hist_max(res->hist[i])));
	}
}

void bench_print_csv_header(FILE *f)
{
	fputs("round,transport,size,subs,pubs,wait,rate,sent,duration_s,msgs_per_sec_per_sub,msgs_per_sec_total,"
	      "bytes_per_sec_total,received,lost,bad,backpressure_retries,publisher_ns_per_msg,broker_ns_per_msg,"
	      "p50_ns,p90_ns,p99_ns,p999_ns,p9999_ns,max_ns,ok,error,interrupted,batch,pace\n",
	      f);
}

/*
 * One row; a failed run has ok=0 and its error, quoted, with the counts
 * it got.  interrupted (1: Ctrl-C cut the run short), batch (messages a
 * send call) and pace (bench_pace_name) came last, after error, so that
 * readers of the older columns by position still work.
 */
void bench_print_csv_row(FILE *f, const struct bench_result *res)
{
	const struct bench_cfg *cfg = res->cfg;
	const struct hist *h = res->all;

	fprintf(f, "%u,%s,%zu,%u,%u,%s,%llu,%llu,%.6f,%.1f,%.1f,%.1f,%llu,%llu,%llu,%llu,%.1f,%.1f,", cfg->round,
		cfg->tr->name, cfg->size, cfg->subs, cfg->pubs, wait_name(cfg), (unsigned long long)cfg->rate,
		(unsigned long long)res->sent, (double)(res->end_ns - res->start_ns) / 1e9, res->per_sub_rate,
		res->total_rate, res->total_rate * (double)cfg->size, (unsigned long long)res->received,
		(unsigned long long)res->lost, (unsigned long long)res->bad, (unsigned long long)res->retries,
		res->pub_ns_per_msg, res->broker_ns_per_msg);
	fprintf(f, "%llu,%llu,%llu,%llu,%llu,%llu,%d,\"", (unsigned long long)hist_percentile(h, 50),
		(unsigned long long)hist_percentile(h, 90), (unsigned long long)hist_percentile(h, 99),
		(unsigned long long)hist_percentile(h, 99.9), (unsigned long long)hist_percentile(h, 99.99),
		(unsigned long long)hist_max(h), res->ok && !res->err);
	for (const char *p = res->err ? res->what : ""; *p; p++)
		fputc(*p == '"' ? '\'' : (*p == '\n' ? ' ' : *p), f);
	fprintf(f, "\",%d,%u,%s\n", res->interrupted, cfg->batch, bench_pace_name(cfg));
}
