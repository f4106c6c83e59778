/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * ringcast delivery tracing, kernel side (libbpf CO-RE).  Attached to the
 * USDT probes of libringcast (lib/trace.h): `publish` counts what was
 * published, `deliver` measures publish-to-deliver latency into a log2
 * histogram per topic and keeps per-subscriber lag.  The loader
 * (ringcast_trace.c) attaches it, pins the maps, and reads them.
 *
 * Latency is bpf_ktime_get_ns() (CLOCK_MONOTONIC) at the deliver probe
 * minus the publish_ns the library stamped with the node clock
 * (CLOCK_MONOTONIC read through the TSC, within 1 µs of it: lib/clock.h):
 * the same clock, so the difference is meaningful for messages published
 * on this host.
 *
 * Dual-licensed: bpf_probe_read_user() is only for GPL-compatible programs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "ringcast_trace.h"

/* Set by the loader before load (rodata): trace only this topic. */
const volatile bool targ_topic_set = false;
const volatile struct rc_trace_topic targ_topic = {};

/* Events lost because a map was full: the loader reports them. */
__u64 dropped = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RC_TRACE_MAX_TOPICS);
	__type(key, struct rc_trace_topic);
	__type(value, struct rc_trace_hist);
} latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RC_TRACE_MAX_TOPICS);
	__type(key, struct rc_trace_topic);
	__type(value, __u64);
} deliveries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RC_TRACE_MAX_TOPICS);
	__type(key, struct rc_trace_topic);
	__type(value, struct rc_trace_pub);
} publishes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RC_TRACE_MAX_SUBS);
	__type(key, struct rc_trace_sub_key);
	__type(value, struct rc_trace_lag);
} lag SEC(".maps");

/* Initial values for new entries: too big for the 512-byte stack. */
static const struct rc_trace_hist zero_hist;
static const struct rc_trace_pub zero_pub;
static const struct rc_trace_lag zero_lag;
static const __u64 zero_count;

static __always_inline void *lookup_or_init(void *map, const void *key, const void *init)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	/* NOEXIST: another CPU may have created it meanwhile; keep theirs. */
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	v = bpf_map_lookup_elem(map, key);
	if (!v)
		__sync_fetch_and_add(&dropped, 1);
	return v;
}

/* floor(log2(v)), 0 for v <= 1. */
static __always_inline int log2_slot(__u64 v)
{
	int r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r < RC_TRACE_SLOTS ? r : RC_TRACE_SLOTS - 1;
}

/*
 * Fill k's topic from the probe's (pointer, length), zero the rest; false
 * if it cannot be read or the topic filter says no.
 */
static __always_inline bool read_topic(struct rc_trace_sub_key *k, const char *topic, __u64 len)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (len == 0 || len >= RC_TRACE_TOPIC_LEN)
		return false;
	/* The mask only tells the verifier what the test above already did. */
	if (bpf_probe_read_user(k->topic, len & (RC_TRACE_TOPIC_LEN - 1), topic))
		return false;
	if (targ_topic_set) {
		/* Word by word: both are zero-padded, 8-byte aligned. */
		const __u64 *a = (const __u64 *)k->topic;
		const volatile __u64 *b = (const volatile __u64 *)targ_topic.topic;

		for (int i = 0; i < RC_TRACE_TOPIC_LEN / 8; i++)
			if (a[i] != b[i])
				return false;
	}
	return true;
}

SEC("usdt")
int BPF_USDT(ringcast_publish, __u64 topic_id, const char *topic, __u64 topic_len, __u64 seq,
	     __u64 len, __u64 publish_ns)
{
	struct rc_trace_sub_key k;
	struct rc_trace_pub *p;

	if (!read_topic(&k, topic, topic_len))
		return 0;
	p = lookup_or_init(&publishes, &k, &zero_pub);
	if (!p)
		return 0;
	__sync_fetch_and_add(&p->count, 1);
	/* Publishers race here; a lost update of the maximum only makes lag smaller for a moment. */
	if (seq > p->last_seq)
		p->last_seq = seq;
	p->topic_id = topic_id;
	return 0;
}

SEC("usdt")
int BPF_USDT(ringcast_deliver, __u64 topic_id, const char *topic, __u64 topic_len, __u64 seq,
	     __u64 publish_ns, __u32 client_id)
{
	__u64 now = bpf_ktime_get_ns(), delta, behind = 0, *count;
	struct rc_trace_sub_key k;
	struct rc_trace_hist *h;
	struct rc_trace_pub *p;
	struct rc_trace_lag *l;

	if (!read_topic(&k, topic, topic_len))
		return 0;
	/* A stamp from the future (another host's clock, a corrupt record) counts as 0. */
	delta = now > publish_ns ? now - publish_ns : 0;

	/* The topic-only maps take the first RC_TRACE_TOPIC_LEN bytes of k. */
	h = lookup_or_init(&latency, &k, &zero_hist);
	count = lookup_or_init(&deliveries, &k, &zero_count);
	if (!h || !count)
		return 0;
	__sync_fetch_and_add(&h->slots[log2_slot(delta)], 1);
	__sync_fetch_and_add(count, 1);

	p = bpf_map_lookup_elem(&publishes, &k);
	if (p && p->last_seq > seq)
		behind = p->last_seq - seq;
	k.client_id = client_id;
	k.pid = bpf_get_current_pid_tgid() >> 32;
	l = lookup_or_init(&lag, &k, &zero_lag);
	if (!l)
		return 0;
	/* One client is one thread's mailbox: the plain stores below do not race in practice. */
	__sync_fetch_and_add(&l->deliveries, 1);
	l->last_seq = seq;
	l->last_ns = delta;
	l->sum_ns += delta;
	if (delta > l->max_ns)
		l->max_ns = delta;
	l->behind = behind;
	if (behind > l->max_behind)
		l->max_behind = behind;
	l->topic_id = topic_id;
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
