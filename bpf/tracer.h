/* SPDX-License-Identifier: MIT */
/*
 * The loader of ringcast_trace.bpf.c (ringcast_trace.c): opens the BPF
 * object, sets its rodata, loads it, attaches it to the USDT probes of
 * the files that carry libringcast, pins its maps, reads them, and
 * undoes all of it.  Used by `ringcast trace` (tools/cmd_trace.c) and the
 * tests.  Setting the sampling rate is the library's business
 * (rc_trace_set_sample() in lib/trace.h), not the loader's.
 */
#ifndef RINGCAST_TRACER_H
#define RINGCAST_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ringcast_trace.h"

#define RCT_PIN_DIR_DEFAULT "/sys/fs/bpf/ringcast"

struct rct_opts {
	size_t sz;                /* sizeof(struct rct_opts): fields may be added */
	const char *pin_dir;      /* NULL: RCT_PIN_DIR_DEFAULT */
	bool no_pin;              /* do not pin the maps at all */
	int pid;                  /* 0: every process; else only this one */
	const char *topic;        /* NULL: every topic; else only this one (in the kernel) */
	const char *const *paths; /* attach to these files too (programs, libraries) */
	size_t npaths;
	/*
	 * Also attach to every file with ringcast probes that a running
	 * process (or, with pid, that process) has mapped, to this program
	 * itself, and to the libringcast.so next to it or installed beside
	 * it (../lib/libringcast.so.0).
	 */
	bool discover;
	FILE *warn;               /* where warnings go; NULL: nowhere */
};

/* A struct rct_opts with sz set and the named fields given (libbpf's LIBBPF_OPTS idea). */
#define RCT_OPTS(name, ...) struct rct_opts name = { .sz = sizeof(struct rct_opts), __VA_ARGS__ }

struct rct;

/*
 * Load, attach and pin.  On success *out is the caller's, freed with
 * rct_close().  On failure: a negative errno, why[0..len) says what went
 * wrong (rct_check_support()'s sentence when the machine cannot trace),
 * and nothing is left loaded or pinned.
 */
int rct_open(struct rct **out, const struct rct_opts *opts, char *why, size_t len);

/* The files the probes are attached to (for the banner), and where the maps are pinned ("" if not). */
size_t rct_nfiles(const struct rct *t);
const char *rct_file(const struct rct *t, size_t i);
const char *rct_pin_dir(const struct rct *t);

struct rct_topic_stat {
	char topic[RC_TRACE_TOPIC_LEN];  /* NUL-terminated */
	uint64_t topic_id;               /* names the ring's files; 0 if not seen yet */
	uint64_t deliveries;             /* the deliveries map */
	uint64_t slots[RC_TRACE_SLOTS];  /* the latency map */
	struct rc_trace_pub pub;         /* the publishes map (zero if no traced publisher) */
};

struct rct_sub_stat {
	struct rc_trace_sub_key key;
	struct rc_trace_lag lag;
};

struct rct_snapshot {
	struct rct_topic_stat *topics;   /* sorted by topic */
	size_t ntopics;
	struct rct_sub_stat *subs;       /* sorted by topic, then client id */
	size_t nsubs;
	uint64_t dropped;                /* events lost to full maps */
};

/* Read every map now.  0 or a negative errno; free with rct_snapshot_free(). */
int rct_read(struct rct *t, struct rct_snapshot *s);
void rct_snapshot_free(struct rct_snapshot *s);
/* The topic's entry in s, or NULL. */
const struct rct_topic_stat *rct_snapshot_topic(const struct rct_snapshot *s, const char *topic);

/*
 * Detach every probe now (idempotent): the maps stop changing, so a last
 * rct_read() sees exactly what --keep leaves pinned.  Maps stay readable.
 */
void rct_detach(struct rct *t);

/*
 * Detach and unload.  Unless keep_pins, remove the pins that are still
 * ours (a pin replaced since by another tracer stays) and the pin
 * directory if we created it.  NULL is fine.
 */
void rct_close(struct rct *t, bool keep_pins);

#endif /* RINGCAST_TRACER_H */
