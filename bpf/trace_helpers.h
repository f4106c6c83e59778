/* SPDX-License-Identifier: MIT */
/*
 * What every BPF loader and tool of ringcast needs, once: libbpf's log,
 * the checks that say exactly what a machine lacks for tracing, the BPF
 * filesystem, reading USDT notes from ELF files, and printing log2
 * histograms the way bcc's tools do.
 */
#ifndef RINGCAST_TRACE_HELPERS_H
#define RINGCAST_TRACE_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- libbpf's messages ---- */

/* Route libbpf's messages to stderr: warnings always, debug ones when verbose. */
void rct_libbpf_log(bool verbose);

/* ---- what is missing ---- */

/*
 * Can this process load and attach the tracer?  0, or a negative errno
 * with a sentence in why[0..len) naming what is missing: privileges
 * (root, or CAP_BPF + CAP_PERFMON), the kernel's BTF, uprobes, USDT
 * semaphore support (uprobe ref_ctr_offset), or the bpf() system call.
 */
int rct_check_support(char *why, size_t len);

/* Write what went wrong into why[0..len) (both may be NULL/0). */
void rct_say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Make sure dir exists on a BPF filesystem, mounting bpffs on
 * /sys/fs/bpf if nothing is mounted there yet (as bpftool does).
 * *created tells whether we made dir (so it is ours to remove).  0 or a
 * negative errno with why filled.
 */
int rct_prepare_pin_dir(const char *dir, bool *created, char *why, size_t len);

/* ---- USDT notes ---- */

struct rct_usdt_note {
	const char *provider;
	const char *name;
	const char *args;   /* "8@%rdi -4@8(%rbx) ..." */
	uint64_t pc;        /* link-time address of the probe's nop */
	uint64_t base;      /* of .stapsdt.base, as linked */
	uint64_t semaphore; /* link-time address, 0 if none */
};

/*
 * Call fn for each USDT note (NT_STAPSDT) of the ELF file at path, until
 * fn returns non-zero.  Returns the number of notes seen, fn's non-zero
 * value, or a negative errno (-ENOEXEC: not ELF).  The strings in the
 * note are valid during the call only.
 */
int rct_usdt_notes(const char *path, int (*fn)(const struct rct_usdt_note *n, void *ctx),
		   void *ctx);
/* Does the file at path carry a probe of provider (any name when name is NULL)? */
bool rct_has_usdt(const char *path, const char *provider, const char *name);

/* ---- log2 histograms (slot 0: [0, 1]; slot i: [2^i, 2^(i+1) - 1]) ---- */

static inline uint64_t rct_slot_lo(unsigned i) { return i ? 1ull << i : 0; }
static inline uint64_t rct_slot_hi(unsigned i) { return i < 63 ? (2ull << i) - 1 : UINT64_MAX; }
/* The slot holding value v. */
unsigned rct_slot_of(uint64_t v);
/* The slot holding the sample of rank ceil(q * total) (q in (0, 1]); -1 if empty. */
int rct_hist_quantile_slot(const uint64_t *slots, unsigned nslots, double q);
uint64_t rct_hist_total(const uint64_t *slots, unsigned nslots);

/*
 * Print slots like bcc's print_log2_hist(): one line per power of two
 * from the first to the last non-empty slot, a bar of stars scaled to
 * the biggest count, every line under 80 columns.  unit names the
 * values ("nsec").
 */
void rct_print_log2_hist(FILE *f, const uint64_t *slots, unsigned nslots, const char *unit);

#endif /* RINGCAST_TRACE_HELPERS_H */
