/* SPDX-License-Identifier: MIT */
/*
 * USDT probes: the one place where libringcast and ringcastd define the
 * static probes a tracer attaches to (docs/tracing.md lists every probe
 * and argument).  Internal: not installed.
 *
 * Each probe is a nop in the code and an ELF note (.note.stapsdt) naming
 * it, its arguments' locations and its semaphore.  The semaphore is a
 * counter in .probes (a file-backed, writable section: the kernel finds
 * it by file offset) that the kernel raises in every process it installs
 * the uprobe in.  Every site tests it first, so an untraced process pays
 * one load and one never-taken branch: it computes no argument, reads no
 * sampling rate and never traps.
 *
 * The message probes are sampled: `deliver` and `publish` fire only for
 * sequence numbers that are multiples of the node's trace_sample (in the
 * bells header, set by `ringcast trace --sample N`; 0 or 1: every
 * message).  Deciding by seq, not by a private counter, makes the set of
 * traced messages the same in every process and the count exact:
 * floor(K / N) of the seqs 1..K.
 *
 * Semaphores are defined (RC_TRACE_DEFINE) in the file of the program
 * that fires them: lib/trace.c for the "ringcast" provider (so they live
 * in libringcast.so and libringcast.a), daemon/probes.c for "ringcastd".
 */
#ifndef RINGCAST_TRACE_H
#define RINGCAST_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#include "barrier.h"
#include "ring.h"

struct ringcast;

#define RC_TRACE_SEMAPHORE(provider, name) provider##_##name##_semaphore
/*
 * volatile: the kernel changes it under our feet (when a tracer attaches
 * or detaches), so a loop must not keep an old value in a register.
 * hidden: one RIP-relative load, not one through the GOT; tools find the
 * semaphore through the ELF note, not the symbol table.
 */
#define RC_TRACE_DECLARE(provider, name)                                             \
	extern volatile unsigned short RC_TRACE_SEMAPHORE(provider, name)                \
		__attribute__((visibility("hidden")))
#define RC_TRACE_DEFINE(provider, name)                                              \
	volatile unsigned short RC_TRACE_SEMAPHORE(provider, name)                       \
		__attribute__((section(".probes"), used, visibility("hidden"))) = 0
#define RC_TRACE_ENABLED(provider, name) \
	__builtin_expect(RC_TRACE_SEMAPHORE(provider, name) != 0, 0)

/* ---- libringcast: provider "ringcast" ---- */

RC_TRACE_DECLARE(ringcast, publish);
RC_TRACE_DECLARE(ringcast, deliver);

#define RC_TRACE_PUBLISH_ENABLED() RC_TRACE_ENABLED(ringcast, publish)
#define RC_TRACE_DELIVER_ENABLED() RC_TRACE_ENABLED(ringcast, deliver)

/* Does the message with sequence seq reach the probes?  (Only asked when traced.) */
static inline bool rc_trace_sampled(const struct rc_node_hdr *node, uint64_t seq)
{
	/* Relaxed: a rate change may take effect a few messages late. */
	uint32_t n = node ? rc_load_relaxed(&node->trace_sample) : 0;

	return n <= 1 || seq % n == 0;
}

/*
 * publish(topic_id, topic, topic_len, seq, len, publish_ns), after the
 * commit of the record at pos of topic t (struct rc_topic *) by rc.  seq
 * and publish_ns are read back from the record: it cannot have been
 * reused yet unless a whole ring's worth was published and read since
 * the commit, a few instructions ago (then the tracer sees a later seq).
 */
#define RC_TRACE_PUBLISH(rc_, t_, pos_, len_)                                             \
	do {                                                                              \
		if (RC_TRACE_PUBLISH_ENABLED()) {                                         \
			const struct rc_rec *rec_ = rc_ring_rec(&(t_)->pub, (pos_));      \
			uint64_t seq_ = rec_->seq;                                        \
			if (rc_trace_sampled((rc_)->node_hdr, seq_))                         \
				STAP_PROBE6(ringcast, publish,                            \
					    (t_)->pub.topic_id,                 \
					    (const char *)(t_)->name, (uint64_t)(t_)->len, \
					    seq_, (uint64_t)(len_), rec_->publish_ns);    \
		}                                                                         \
	} while (0)

/*
 * deliver(topic_id, topic, topic_len, seq, publish_ns, client_id), just
 * before the handler of client rc sees message m (struct ringcast_msg *)
 * of topic t.
 */
#define RC_TRACE_DELIVER(rc_, t_, m_)                                                     \
	do {                                                                              \
		if (RC_TRACE_DELIVER_ENABLED() && rc_trace_sampled((rc_)->node_hdr, (m_)->seq)) \
			STAP_PROBE6(ringcast, deliver, (t_)->sub.topic_id,      \
				    (m_)->topic, (uint64_t)(m_)->topic_len, (m_)->seq,    \
				    (m_)->publish_ns, (rc_)->client_id);                  \
	} while (0)

/* ---- ringcastd: provider "ringcastd" (daemon/probes.c, docs/tracing.md) ---- */

RC_TRACE_DECLARE(ringcastd, client_connect);
RC_TRACE_DECLARE(ringcastd, client_drop);
RC_TRACE_DECLARE(ringcastd, untether);
RC_TRACE_DECLARE(ringcastd, publisher_repair);

/* client_connect(client_id, pid, uid, bell, resumed): its HELLO was answered. */
#define RC_TRACE_CLIENT_CONNECT(id, pid, uid, bell, resumed)                              \
	do {                                                                              \
		if (RC_TRACE_ENABLED(ringcastd, client_connect))                          \
			STAP_PROBE5(ringcastd, client_connect, (uint32_t)(id),            \
				    (int32_t)(pid), (uint32_t)(uid), (uint32_t)(bell),    \
				    (int32_t)(resumed));                                  \
	} while (0)

/* client_drop(client_id, pid, subscriptions, publisher_slots): released at once. */
#define RC_TRACE_CLIENT_DROP(id, pid, nsubs, npubs)                                       \
	do {                                                                              \
		if (RC_TRACE_ENABLED(ringcastd, client_drop))                             \
			STAP_PROBE4(ringcastd, client_drop, (uint32_t)(id), (int32_t)(pid), \
				    (uint32_t)(nsubs), (uint32_t)(npubs));                \
	} while (0)

/* untether(topic_id, topic, topic_len, client_id, slot, stalled_ms) */
#define RC_TRACE_UNTETHER(topic_id, topic, topic_len, id, slot, ms)                       \
	do {                                                                              \
		if (RC_TRACE_ENABLED(ringcastd, untether))                                \
			STAP_PROBE6(ringcastd, untether, (uint64_t)(topic_id), (topic),   \
				    (uint64_t)(topic_len), (uint32_t)(id), (uint32_t)(slot), \
				    (uint64_t)(ms));                                      \
	} while (0)

/* publisher_repair(topic_id, topic, topic_len, slot, result): result 1 done, < 0 errno */
#define RC_TRACE_PUBLISHER_REPAIR(topic_id, topic, topic_len, slot, result)               \
	do {                                                                              \
		if (RC_TRACE_ENABLED(ringcastd, publisher_repair))                        \
			STAP_PROBE5(ringcastd, publisher_repair, (uint64_t)(topic_id),    \
				    (topic), (uint64_t)(topic_len), (uint32_t)(slot),     \
				    (int32_t)(result));                                   \
	} while (0)

#endif /* RINGCAST_TRACE_H */
