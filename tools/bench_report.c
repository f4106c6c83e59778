/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: turning the subscribers' reports into results.  Rates
 * are measured from the first publish to each subscriber's last delivery,
 * so a subscriber that lags behind the publisher shows a lower rate.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "hist.h"

#define CMD "bench"

struct bench_summary {
	struct hist *all;
	double per_sub_rate;  /* slowest subscriber */
	double total_rate;
	uint64_t lost, bad, received;
};

static double sub_rate(const struct bench *b, const struct bench_child *c)
{
	if (!c->rep.received || c->rep.last_ns <= b->start_ns)
		return 0;
	return (double)c->rep.received * 1e9 / (double)(c->rep.last_ns - b->start_ns);
}

static void summarize(const struct bench *b, struct bench_summary *s)
{
	uint64_t last = 0;

	for (unsigned i = 0; i < b->n; i++) {
		const struct bench_child *c = &b->c[i];
		double r = sub_rate(b, c);

		hist_merge(s->all, c->hist);
		if (i == 0 || r < s->per_sub_rate)
			s->per_sub_rate = r;
		s->received += c->rep.received;
		s->lost += c->rep.lost;
		s->bad += c->rep.bad;
		if (c->rep.last_ns > last)
			last = c->rep.last_ns;
	}
	if (last > b->start_ns)
		s->total_rate = (double)s->received * 1e9 / (double)(last - b->start_ns);
}

static void print_json(const struct bench *b, const struct bench_summary *s, bool ok)
{
	const struct bench_opts *o = b->o;
	const struct hist *h = s->all;

	printf("{\"transport\":\"ringcast\",\"size\":%zu,\"subs\":%u,\"pubs\":1,\"wait\":\"%s\",\"count\":%llu,"
	       "\"duration_s\":%.6f,\"rate\":%llu,\"topic\":",
	       o->cfg.size, o->subs, o->cfg.spin ? "spin" : "sleep", (unsigned long long)b->sent,
	       (double)(b->end_ns - b->start_ns) / 1e9, (unsigned long long)o->rate);
	cli_put_json_str(stdout, o->cfg.topic, strlen(o->cfg.topic));
	fputs(",\"node\":", stdout);
	cli_put_json_str(stdout, ringcast_node_name(b->rc), strlen(ringcast_node_name(b->rc)));
	printf(",\"zero_copy\":%s,\"msgs_per_sec_per_sub\":%.1f,\"msgs_per_sec_total\":%.1f,"
	       "\"bytes_per_sec_total\":%.1f,\"lost\":%llu,\"bad\":%llu,\"backpressure_retries\":%llu,"
	       "\"publisher_ns_per_msg\":%.1f,",
	       o->zero_copy ? "true" : "false", s->per_sub_rate, s->total_rate, s->total_rate * (double)o->cfg.size,
	       (unsigned long long)s->lost, (unsigned long long)s->bad, (unsigned long long)b->retries,
	       b->sent ? (double)b->cost_ns / (double)b->sent : 0.0);
	printf("\"latency_ns\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"p9999\":%llu,\"max\":%llu},",
	       (unsigned long long)hist_percentile(h, 50), (unsigned long long)hist_percentile(h, 90),
	       (unsigned long long)hist_percentile(h, 99), (unsigned long long)hist_percentile(h, 99.9),
	       (unsigned long long)hist_percentile(h, 99.99), (unsigned long long)hist_max(h));
	printf("\"interrupted\":%s,\"ok\":%s,\"per_sub\":[", b->interrupted ? "true" : "false",
	       ok ? "true" : "false");
	for (unsigned i = 0; i < b->n; i++) {
		const struct bench_child *c = &b->c[i];

		printf("%s{\"received\":%llu,\"lost\":%llu,\"bad\":%llu,\"msgs_per_sec\":%.1f,\"cpu_ns_per_msg\":%.1f,"
		       "\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu}",
		       i ? "," : "", (unsigned long long)c->rep.received, (unsigned long long)c->rep.lost,
		       (unsigned long long)c->rep.bad, sub_rate(b, c),
		       c->rep.received ? (double)c->rep.cpu_ns / (double)c->rep.received : 0.0,
		       (unsigned long long)hist_percentile(c->hist, 50),
		       (unsigned long long)hist_percentile(c->hist, 99),
		       (unsigned long long)hist_percentile(c->hist, 99.9), (unsigned long long)hist_max(c->hist));
	}
	fputs("]}\n", stdout);
}

static void print_human(const struct bench *b, const struct bench_summary *s)
{
	const struct bench_opts *o = b->o;
	const struct hist *h = s->all;
	char t[6][32];

	printf("ringcast bench: 1 publisher -> %u subscriber%s (%s), %zu-byte messages%s, topic %s on node %s\n",
	       o->subs, o->subs == 1 ? "" : "s", o->cfg.spin ? "spin" : "sleep", o->cfg.size,
	       o->zero_copy ? " (zero-copy claim/commit)" : "", o->cfg.topic, ringcast_node_name(b->rc));
	if (o->rate)
		printf("  sent         %llu messages in %.3f s (paced at %llu msg/s)%s\n", (unsigned long long)b->sent,
		       (double)(b->end_ns - b->start_ns) / 1e9, (unsigned long long)o->rate,
		       b->interrupted ? ", interrupted" : "");
	else
		printf("  sent         %llu messages in %.3f s (flat out)%s\n", (unsigned long long)b->sent,
		       (double)(b->end_ns - b->start_ns) / 1e9, b->interrupted ? ", interrupted" : "");
	printf("  publisher    %.1f ns/msg %s, %llu backpressure retries\n",
	       b->sent ? (double)b->cost_ns / (double)b->sent : 0.0, o->rate ? "in publish calls" : "CPU",
	       (unsigned long long)b->retries);
	printf("  throughput   %.0f msg/s per subscriber (slowest), %.0f msg/s total, %s/s\n", s->per_sub_rate,
	       s->total_rate, cli_fmt_bytes(t[0], sizeof(t[0]), (uint64_t)(s->total_rate * (double)o->cfg.size)));
	printf("  latency      p50 %s  p90 %s  p99 %s  p99.9 %s  p99.99 %s  max %s\n",
	       cli_fmt_ns(t[0], sizeof(t[0]), hist_percentile(h, 50)),
	       cli_fmt_ns(t[1], sizeof(t[1]), hist_percentile(h, 90)),
	       cli_fmt_ns(t[2], sizeof(t[2]), hist_percentile(h, 99)),
	       cli_fmt_ns(t[3], sizeof(t[3]), hist_percentile(h, 99.9)),
	       cli_fmt_ns(t[4], sizeof(t[4]), hist_percentile(h, 99.99)),
	       cli_fmt_ns(t[5], sizeof(t[5]), hist_max(h)));
	printf("  received     %llu deliveries, %llu lost, %llu bad\n", (unsigned long long)s->received,
	       (unsigned long long)s->lost, (unsigned long long)s->bad);
	if (!o->per_sub)
		return;
	printf("  %4s %10s %8s %5s %12s %9s %10s %10s %10s %10s\n", "SUB", "RECEIVED", "LOST", "BAD", "MSG/S",
	       "CPU/MSG", "P50", "P99", "P99.9", "MAX");
	for (unsigned i = 0; i < b->n; i++) {
		const struct bench_child *c = &b->c[i];

		printf("  %4u %10llu %8llu %5llu %12.0f %9s %10s %10s %10s %10s\n", i,
		       (unsigned long long)c->rep.received, (unsigned long long)c->rep.lost,
		       (unsigned long long)c->rep.bad, sub_rate(b, c),
		       cli_fmt_ns(t[0], sizeof(t[0]), c->rep.received ? c->rep.cpu_ns / c->rep.received : 0),
		       cli_fmt_ns(t[1], sizeof(t[1]), hist_percentile(c->hist, 50)),
		       cli_fmt_ns(t[2], sizeof(t[2]), hist_percentile(c->hist, 99)),
		       cli_fmt_ns(t[3], sizeof(t[3]), hist_percentile(c->hist, 99.9)),
		       cli_fmt_ns(t[4], sizeof(t[4]), hist_max(c->hist)));
	}
}

/* Warnings for anything that is not a clean run; returns false if a count is off. */
static bool check_counts(const struct bench *b, const struct bench_summary *s)
{
	bool ok = true;

	for (unsigned i = 0; i < b->n; i++) {
		const struct bench_child *c = &b->c[i];

		if (c->rep.received + c->rep.lost != b->sent) {
			cli_warn(CMD, "subscriber %u received %llu and was told of %llu lost, but %llu were sent: "
				 "%lld unaccounted for", i, (unsigned long long)c->rep.received,
				 (unsigned long long)c->rep.lost, (unsigned long long)b->sent,
				 (long long)(b->sent - c->rep.received - c->rep.lost));
			ok = false;
		} else if (c->rep.lost) {
			cli_warn(CMD, "subscriber %u lost %llu of %llu messages (it was untethered and lapped)", i,
				 (unsigned long long)c->rep.lost, (unsigned long long)b->sent);
		}
		if (c->rep.bad) {
			cli_warn(CMD, "subscriber %u saw %llu bad messages (out of order, torn or foreign)", i,
				 (unsigned long long)c->rep.bad);
			ok = false;
		}
		if (c->rep.total && c->rep.total != b->sent) {
			cli_warn(CMD, "subscriber %u's end message said %llu, not %llu", i,
				 (unsigned long long)c->rep.total, (unsigned long long)b->sent);
			ok = false;
		}
	}
	return ok;
}

int bench_report_print(const struct bench *b, bool *ok)
{
	struct bench_summary s = { 0 };

	s.all = malloc(sizeof(*s.all));
	if (!s.all)
		return -ENOMEM;
	hist_reset(s.all);
	summarize(b, &s);
	*ok = check_counts(b, &s);
	if (b->o->json)
		print_json(b, &s, *ok);
	else
		print_human(b, &s);
	free(s.all);
	return 0;
}
