/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * What ringcast_trace.bpf.c (kernel side) and its loader (user side)
 * share: the maps' key and value types.  The maps carry these types as
 * BTF, so `bpftool map dump pinned /sys/fs/bpf/ringcast/<map>` prints
 * them field by field, and the topic as a string.
 *
 *   latency     topic -> struct rc_trace_hist: publish-to-deliver latency,
 *               log2 buckets of nanoseconds
 *   deliveries  topic -> __u64: deliveries that reached the probe
 *   publishes   topic -> struct rc_trace_pub
 *   lag         (topic, client_id, pid) -> struct rc_trace_lag: one
 *               subscribing client's latency and backlog
 *
 * Counts are of sampled messages: with `--sample N` only messages whose
 * seq is a multiple of N reach the probes (lib/trace.h).
 */
#ifndef RINGCAST_TRACE_BPF_H
#define RINGCAST_TRACE_BPF_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define RC_TRACE_TOPIC_LEN 256 /* a topic is 1..255 bytes; zero-padded */
/* slot 0: [0, 1] ns; slot i > 0: [2^i, 2^(i+1)) ns; the last one takes the rest */
#define RC_TRACE_SLOTS 48
#define RC_TRACE_MAX_TOPICS 4096
#define RC_TRACE_MAX_SUBS 16384

/* The map names, for pinning under the pin directory. */
#define RC_TRACE_MAP_LATENCY "latency"
#define RC_TRACE_MAP_DELIVERIES "deliveries"
#define RC_TRACE_MAP_PUBLISHES "publishes"
#define RC_TRACE_MAP_LAG "lag"

/*
 * Keys: the topic's bytes then zeros, so a topic is one key whatever
 * process reads it, and bpftool shows it as a string.
 */
struct rc_trace_topic {
	char topic[RC_TRACE_TOPIC_LEN];
} __attribute__((aligned(8)));

/* Begins like struct rc_trace_topic: one buffer serves as both keys. */
struct rc_trace_sub_key {
	char topic[RC_TRACE_TOPIC_LEN];
	__u32 client_id; /* the subscribing client, as the daemon numbered it */
	__u32 pid;       /* its process */
} __attribute__((aligned(8)));

struct rc_trace_hist {
	__u64 slots[RC_TRACE_SLOTS];
};

struct rc_trace_pub {
	__u64 count;    /* publishes that reached the probe */
	__u64 last_seq; /* highest seq seen published */
	__u64 topic_id; /* names the ring's files: <topic_id in hex>.ring */
};

struct rc_trace_lag {
	__u64 deliveries; /* that reached the probe */
	__u64 last_seq;   /* seq of the latest one */
	__u64 last_ns;    /* its publish-to-deliver latency */
	__u64 max_ns;
	__u64 sum_ns;     /* sum_ns / deliveries: the mean */
	/*
	 * Backlog: how many messages had been published (as far as a traced
	 * publisher told us) beyond the one being delivered, at the latest
	 * delivery and at worst.  0 when the publisher is not traced.
	 */
	__u64 behind;
	__u64 max_behind;
	__u64 topic_id;
};

#endif /* RINGCAST_TRACE_BPF_H */
