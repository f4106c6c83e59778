/* SPDX-License-Identifier: MIT */
/*
 * The daemon's periodic duties, run by a 10 ms io_uring timer:
 *
 *  - publisher repairs: a publisher that died between claim and commit
 *    blocks every subscriber of the topic at its record; the design allows
 *    at most 100 ms of that.  Repairs that cannot finish at once (a live
 *    publisher claims the same position) are retried every tick.
 *  - untethering: a tethered subscriber that does not move for the
 *    topic's tether timeout stops holding publishers back.
 *  - orphans: slots found in use when the daemon started belong to clients
 *    of the previous daemon.  They keep their slots (and bells) for
 *    cfg.reap_grace_ms so a reconnecting client can resume them, then are
 *    released.
 *  - the node clock: a new line of the TSC against CLOCK_MONOTONIC in
 *    the bells file, for clients to stamp and read time cheaply
 *    (lib/clock.h).
 */
#ifndef RINGCASTD_DUTIES_H
#define RINGCASTD_DUTIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "lives.h"
#include "loop.h"

struct rcd_config;
struct rcd_log;
struct rcd_registry;
struct rcd_topic;

struct rcd_orphan {
	struct rcd_topic *t;
	unsigned slot;
	bool pub;
	uint32_t client_id;
	uint32_t bell; /* subscriber slots only */
	uint32_t uid;  /* subscriber slots only */
	uint32_t pid;
};

struct rcd_duties {
	struct rcd_loop *loop;
	struct rcd_registry *reg;
	const struct rcd_config *cfg;
	struct rcd_log *log;
	struct rcd_op tick_op;
	struct __kernel_timespec period;
	bool oneshot;   /* the kernel refused a multishot timer */
	bool stopping;
	struct rcd_orphan *orphans;
	size_t norphans;
	uint64_t orphans_deadline_ns; /* reap what is left after this */
	struct rc_clock_fit clock;
	struct rcd_life memo;  /* recorded_alive(): the last client looked up */
	bool memo_alive;
	/* counters for the shutdown summary */
	uint64_t ticks, repaired, untethered, resumed, reaped;
	uint64_t forged; /* subscriber slots freed that a client wrote (rc_ring_free_unowned) */
	uint64_t dead; /* slots released because their client was gone (lives.h) */
};

/*
 * Set up; records every in-use slot of the registry's (just adopted) rings
 * as an orphan and reserves its bell.  0 or -ENOMEM.
 */
int rcd_duties_init(struct rcd_duties *d, struct rcd_loop *loop, struct rcd_registry *reg,
		    const struct rcd_config *cfg, struct rcd_log *log);
/* Arm the timer.  0 or negative errno. */
int rcd_duties_start(struct rcd_duties *d);
/* Cancel the timer (at shutdown); slots stay as they are. */
void rcd_duties_stop(struct rcd_duties *d);
void rcd_duties_free(struct rcd_duties *d);

/* One tick's work (the timer calls it; tests may too). */
void rcd_duties_tick(struct rcd_duties *d, uint64_t now_ns);

/*
 * Release a gone client's publisher slot: repair its claim now, or mark
 * the repair pending for the tick (a bit in the topic: never fails).
 */
void rcd_duties_release_pub(struct rcd_duties *d, struct rcd_topic *t, unsigned slot,
			    uint32_t client_id);

/* Wake the adopted subscribers' clients, so sleeping ones resume before the grace ends. */
void rcd_duties_wake_orphans(const struct rcd_duties *d);

/*
 * May a client in process pid HELLO with RESUME as client_id: does an
 * orphan slot of client_id, attached for that same pid, wait?  (The pid
 * check keeps one local process from resuming another's identity.)
 */
bool rcd_duties_orphan_client(const struct rcd_duties *d, uint32_t client_id, uint32_t pid);
/* Does any orphan slot still carry client_id (not to be handed out anew)? */
bool rcd_duties_orphan_id(const struct rcd_duties *d, uint32_t client_id);
/*
 * May client_id resume bell: no orphan subscriber slot of another client
 * rings it?  (That it is not live is the registry's to say.)
 */
bool rcd_duties_orphan_bell_ok(const struct rcd_duties *d, uint32_t client_id, uint32_t bell);
/*
 * Adopt an orphan: subscriber (pub false) or publisher slot `slot` of t,
 * if it is an orphan of client_id attached for pid (and, for a
 * subscriber, for uid, ringing bell).  0 and the slot is the caller's
 * now, or -ENOENT.
 */
int rcd_duties_orphan_take(struct rcd_duties *d, struct rcd_topic *t, bool pub, unsigned slot,
			   uint32_t client_id, uint32_t pid, uint32_t uid, uint32_t bell);

#endif /* RINGCASTD_DUTIES_H */
