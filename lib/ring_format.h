/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory layout of a topic: two files in the daemon's runtime
 * directory, plus one bells file for the whole node.  docs/ring-format.md
 * explains every field; the _Static_asserts pin the byte layout, since
 * processes built from different commits may map the same files.
 *
 *   <id>.ring  header (RC_RING_HDR_SIZE) + capacity bytes of records.
 *              Publishers map it read-write, subscribers read-only.
 *   <id>.ctl   subscriber slots: every client of the topic maps it
 *              read-write (a subscriber publishes its read position here).
 *   bells      one doorbell (futex word) per client of the node.
 *   node       the daemon's generation, client ids, trace rate and clock:
 *              the daemon writes it, clients map it read-only.
 *
 * Who writes what:
 *   meta, pub slot owner fields, ctl meta  the daemon, before any client maps
 *   tail (pos + seq)                       publishers, by 16-byte CAS, or its
 *                                          owner by 16-byte store
 *   tail.owner / tail.shared               publishers (CAS / store), daemon (reset)
 *   pub_slot.claim/end                     the publisher owning the slot
 *   record commit word                     its publisher (release store);
 *                                          the daemon by CAS when repairing
 *   sub_slot.pos/seq/delivered/lost/asleep the subscriber owning the slot
 *   sub_slot.state                         daemon (FREE<->TETHERED, T->U),
 *                                          subscriber (U->T, by CAS)
 *   ctl.sleepers                           subscribers (+1 before sleeping)
 *   ctl.fenced                             subscribers (+1 before first sleep), daemon (reset)
 *   bell word                              its client (arm), publishers (ring)
 *   node (all of it)                       the daemon only (clock: a seqlock, clock.c)
 */
#ifndef RINGCAST_RING_FORMAT_H
#define RINGCAST_RING_FORMAT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast.h" /* RINGCAST_TOPIC_MAX */

#define RC_CACHELINE 64
/* The smallest page size of any Linux architecture: the node file is one. */
#define RC_PAGE_MIN 4096u

#define RC_RING_MAGIC 0x31474e4952435221ull /* "!RCRING1" little-endian */
#define RC_CTL_MAGIC 0x314c544352435221ull  /* "!RCCTRL1" */
#define RC_BELLS_MAGIC 0x314c4c4542435221ull /* "!RCBELL1" */
#define RC_NODE_MAGIC 0x3145444f4e435221ull  /* "!RCNODE1" */
#define RC_FORMAT_VERSION 2 /* 2: the node file split from bells */

#define RC_RING_HDR_SIZE 8192u
#define RC_PUB_SLOTS 64u
#define RC_SUB_SLOTS 1024u
#define RC_BELLS 4096u
#define RC_REC_ALIGN 8u
#define RC_CAPACITY_MIN (64u * 1024u)
#define RC_CAPACITY_MAX (1ull << 31)
#define RC_CAPACITY_DEFAULT (1u << 20)

struct rc_ring_meta {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;     /* RC_RING_HDR_SIZE */
	uint64_t capacity;     /* power of two, RC_CAPACITY_MIN..RC_CAPACITY_MAX */
	uint32_t rec_hdr_size; /* sizeof(struct rc_rec) */
	uint32_t pub_slots;    /* RC_PUB_SLOTS */
	uint32_t salt;         /* mixed into commit stamps; random per ring */
	uint32_t topic_len;    /* 1..RINGCAST_TOPIC_MAX */
	uint64_t topic_id;     /* daemon-assigned, names the files */
	uint64_t created_ns;   /* CLOCK_REALTIME */
	uint64_t max_payload;  /* capacity / 2 - sizeof(struct rc_rec) */
	uint32_t tether_timeout_ms;
	uint32_t reserved0;
	char topic[RINGCAST_TOPIC_MAX + 1]; /* topic_len bytes, then zeros */
	uint8_t reserved1[56];
};

/* The claim position and the sequence of the next message, moved together. */
struct rc_ring_tail {
	alignas(16) _Atomic uint64_t pos; /* low half of the 16-byte CAS */
	_Atomic uint64_t seq;              /* high half */
	/*
	 * A publisher alone on the ring may own the tail and move it with
	 * plain stores instead of the CAS (ring_pub.h, "Exclusive claims").
	 * owner: its pub slot + 1, 0 if none; shared: set (and kept) once a
	 * second publisher wants in, reset by the daemon when none is left.
	 */
	_Atomic uint32_t owner;
	_Atomic uint32_t shared;
};

#define RC_CLAIM_BUSY 0x1ull /* pub_slot.claim = start | BUSY from claim to commit */
#define RC_CLAIM_DEAD 0x2ull /* set by the daemon once the owner is gone */

struct rc_pub_slot {
	_Atomic uint64_t claim;     /* owner: start of its claim | RC_CLAIM_BUSY, or 0 */
	_Atomic uint64_t end;       /* owner: end of that claim (valid while claim is) */
	_Atomic uint32_t client_id; /* daemon; 0 = free */
	_Atomic uint32_t pid;       /* daemon */
	uint8_t pad[RC_CACHELINE - 24];
};

struct rc_ring_hdr {
	struct rc_ring_meta meta;
	alignas(RC_CACHELINE) uint8_t pad0[RC_CACHELINE];
	alignas(RC_CACHELINE) struct rc_ring_tail tail; /* its own line: publishers only */
	alignas(RC_CACHELINE) struct rc_pub_slot pubs[RC_PUB_SLOTS];
};

/*
 * A record.  commit is written last: (len_flags << 32) | stamp, where
 * stamp = rc_stamp(salt, pos) ties it to this lap of the ring, so stale
 * bytes from an earlier lap never look committed.  len_flags is the whole
 * record length (header + payload, before alignment) or RC_REC_PAD | the
 * padding length.  A padding record may be only 8 bytes long: just commit.
 */
#define RC_REC_PAD 0x80000000u
#define RC_REC_F_FROM 0x1  /* broadcast_from: not to the publishing client */
#define RC_REC_F_LOCAL 0x2 /* never leaves this node */

struct rc_rec {
	_Atomic uint64_t commit;
	uint64_t seq;
	uint64_t publish_ns;
	uint32_t client_id;   /* publishing client on the origin node */
	uint16_t origin_node; /* 0: this node */
	uint16_t flags;       /* RC_REC_F_* */
	/* payload follows */
};

enum rc_sub_state {
	RC_SUB_FREE = 0,
	RC_SUB_TETHERED = 1,
	RC_SUB_UNTETHERED = 2,
};

struct rc_sub_slot {
	_Atomic uint64_t pos;       /* subscriber: next position it reads (release) */
	_Atomic uint32_t state;     /* enum rc_sub_state; see the table above */
	_Atomic uint32_t bell;      /* daemon: the owner's bell index */
	_Atomic uint32_t client_id; /* daemon */
	_Atomic uint32_t pid;       /* daemon */
	_Atomic uint64_t delivered; /* subscriber, for stat */
	_Atomic uint64_t lost;      /* subscriber, for stat */
	_Atomic uint64_t moved_ns;  /* daemon: when it last saw pos move */
	_Atomic uint32_t uid;       /* daemon */
	_Atomic uint32_t asleep;    /* subscriber: its arming's number (not 0) while counted in ctl.sleepers */
	_Atomic uint64_t seq;       /* daemon at attach, then subscriber: next seq expected */
};

struct rc_ctl_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t sub_slots; /* RC_SUB_SLOTS */
	uint64_t topic_id;  /* matches the ring's */
	alignas(RC_CACHELINE) _Atomic uint32_t sleepers; /* subscribers armed to sleep */
	_Atomic uint32_t fenced; /* subscribers that may sleep: publishers commit with a full fence */
	alignas(RC_CACHELINE) _Atomic uint32_t slots_hi; /* daemon: 1 + highest slot ever used */
	alignas(RC_CACHELINE) struct rc_sub_slot subs[RC_SUB_SLOTS];
};

enum rc_bell_state {
	RC_BELL_IDLE = 0,  /* client awake (busy-polling or working) */
	RC_BELL_ARMED = 1, /* client about to sleep or asleep in FUTEX_WAIT */
	RC_BELL_RUNG = 2,  /* a publisher woke it */
};

struct rc_bell {
	_Atomic uint32_t word; /* enum rc_bell_state; the futex word */
	uint8_t pad[RC_CACHELINE - 4];
};

/*
 * The node file: state of the whole node that only the daemon writes.
 * Clients get it read-only (an O_RDONLY fd), so no client can restart
 * everyone's connections (daemon_gen), skew their clocks or set the trace
 * rate.
 */
struct rc_node_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t reserved;
	_Atomic uint64_t daemon_gen;       /* bumped at each daemon start (release) */
	_Atomic uint32_t next_client_id;   /* the next id the daemon gives out */
	_Atomic uint32_t trace_sample;     /* deliver probes fire for 1 message in N (0: 1) */
	/*
	 * The node clock (clock.h): CLOCK_MONOTONIC = clock_ns + (TSC -
	 * clock_tsc) * clock_mult / 2^32.  A seqlock on clock_seq (odd while
	 * the daemon writes); clock_mult 0: no TSC clock.
	 */
	_Atomic uint32_t clock_seq;
	uint32_t reserved0;
	_Atomic uint64_t clock_mult;
	_Atomic uint64_t clock_tsc;
	_Atomic uint64_t clock_ns;
	uint8_t pad[RC_PAGE_MIN - 64];
};

/* The bells file: one doorbell per client of the node. */
struct rc_bells_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t nbells;                   /* RC_BELLS */
	alignas(RC_CACHELINE) struct rc_bell bells[RC_BELLS];
};

_Static_assert(sizeof(struct rc_ring_meta) == 384, "ring meta layout");
_Static_assert(offsetof(struct rc_ring_hdr, tail) == 448, "tail offset");
_Static_assert(offsetof(struct rc_ring_hdr, pubs) == 512, "pub slots offset");
_Static_assert(sizeof(struct rc_ring_tail) == 32, "tail layout");
_Static_assert(sizeof(struct rc_ring_hdr) <= RC_RING_HDR_SIZE, "ring header fits");
_Static_assert(sizeof(struct rc_pub_slot) == RC_CACHELINE, "pub slot is a line");
_Static_assert(sizeof(struct rc_rec) == 32, "record header layout");
_Static_assert(offsetof(struct rc_rec, seq) == 8, "record seq offset");
_Static_assert(sizeof(struct rc_sub_slot) == RC_CACHELINE, "sub slot is a line");
_Static_assert(offsetof(struct rc_ctl_hdr, sleepers) == 64, "sleepers offset");
_Static_assert(offsetof(struct rc_ctl_hdr, subs) == 192, "sub slots offset");
_Static_assert(offsetof(struct rc_node_hdr, daemon_gen) == 16, "daemon_gen offset");
_Static_assert(offsetof(struct rc_node_hdr, trace_sample) == 28, "trace_sample offset");
_Static_assert(offsetof(struct rc_node_hdr, clock_seq) == 32, "clock_seq offset");
_Static_assert(offsetof(struct rc_node_hdr, clock_ns) == 56, "clock_ns offset");
_Static_assert(sizeof(struct rc_node_hdr) == RC_PAGE_MIN, "node file is a page");
_Static_assert(offsetof(struct rc_bells_hdr, bells) == 64, "bells offset");
_Static_assert(sizeof(struct rc_bell) == RC_CACHELINE, "bell is a line");

#define RC_CTL_SIZE sizeof(struct rc_ctl_hdr)
#define RC_BELLS_SIZE sizeof(struct rc_bells_hdr)
#define RC_NODE_SIZE sizeof(struct rc_node_hdr)

static inline uint32_t rc_stamp(uint32_t salt, uint64_t pos)
{
	return (uint32_t)(pos / RC_REC_ALIGN) ^ salt;
}

/* The commit word of the record (or padding: RC_REC_PAD | n) at pos. */
static inline uint64_t rc_commit_word(uint32_t salt, uint64_t pos, uint32_t len_flags)
{
	return ((uint64_t)len_flags << 32) | rc_stamp(salt, pos);
}

static inline uint64_t rc_align(uint64_t n)
{
	return (n + RC_REC_ALIGN - 1) & ~(uint64_t)(RC_REC_ALIGN - 1);
}

#endif /* RINGCAST_RING_FORMAT_H */
