/* SPDX-License-Identifier: MIT */
/*
 * The periodic tick (see duties.h for what it does and why).
 *
 * Nothing here allocates after start: pending publisher repairs are a bit
 * per pub slot in the topic itself, and the orphan table is sized once
 * when the rings are adopted.  So a daemon under memory pressure still
 * repairs dead publishers, which is what keeps subscribers moving.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "config.h"
#include "duties.h"
#include "lives.h"
#include "log.h"
#include "registry.h"
#include "trace.h"

#define TICK_NS 10000000ll           /* 10 ms */
#define REPAIR_LATE_NS 100000000ull  /* the design's bound on a dead publisher's stall */
/* Every 50 ms, look whether orphans' clients died: a few syscalls each. */
#define ORPHAN_CHECK_TICKS 5
#define KEEPER_CHECK_TICKS 100 /* 1 s: a dead keeper is replaced within it, forged slots freed */

static void tick_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags);

/* Count the in-use slots of every adopted ring, then record them. */
static size_t count_in_use(struct rcd_registry *reg)
{
	struct rcd_topic *t;
	size_t n = 0;
	unsigned i;

	for (t = reg->first; t; t = t->next) {
		/* Acquire pairs with the (seq_cst) store of state in
		 * rc_ring_sub_attach() and the release store of client_id in
		 * rc_ring_pub_attach() by the previous daemon: a slot seen in
		 * use has its owner fields set. */
		for (i = 0; i < RC_SUB_SLOTS; i++)
			n += rc_load_acquire(&t->ring.ctl->subs[i].state) != RC_SUB_FREE;
		for (i = 0; i < RC_PUB_SLOTS; i++)
			n += rc_load_acquire(&t->ring.hdr->pubs[i].client_id) != 0;
	}
	return n;
}

/*
 * Is the client that held a slot alive, by our own record of it?  *l gets
 * the record.  One client holds many slots: the last answer is kept.
 */
static bool recorded_alive(struct rcd_duties *d, uint32_t id, struct rcd_life *l)
{
	if (id && id == d->memo.client_id) {
		*l = d->memo;
		return d->memo_alive;
	}
	d->memo_alive = rcd_lives_read(d->reg->lives_fd, id, l) == 0 &&
			rcd_lives_alive(d->reg->lives_fd, id);
	if (!d->memo_alive)
		*l = (struct rcd_life){ id, 0, 0, RC_BELLS };
	d->memo = *l;
	return d->memo_alive;
}

/*
 * The slots in use in the adopted rings.  A slot whose client is alive by
 * our record (lives.h) waits for it to resume, under the pid, uid and
 * bell of the record, not those in the slot, which clients can write.
 * Any other slot's client is dead, or was never ours: released at once,
 * so a publisher that died while no daemon ran is repaired now, not
 * after the reap grace.
 */
static void collect_orphans(struct rcd_duties *d, size_t max)
{
	struct rcd_topic *t;
	struct rcd_life l;
	unsigned i;

	for (t = d->reg->first; t; t = t->next) {
		for (i = 0; i < RC_SUB_SLOTS && d->norphans < max; i++) {
			struct rc_sub_slot *s = &t->ring.ctl->subs[i];
			struct rcd_orphan *o = &d->orphans[d->norphans];

			/* Acquire: pairs as in count_in_use(). */
			if (rc_load_acquire(&s->state) == RC_SUB_FREE)
				continue;
			if (!recorded_alive(d, rc_load_relaxed(&s->client_id), &l) ||
			    l.bell >= RC_BELLS) {
				rc_ring_sub_release(&t->ring, i);
				d->dead++;
				continue;
			}
			o->t = t;
			o->slot = i;
			o->pub = false;
			o->client_id = l.client_id;
			o->bell = l.bell;
			o->uid = l.uid;
			o->pid = l.pid;
			rcd_bell_orphan_ref(d->reg, o->bell, +1);
			d->norphans++;
		}
		for (i = 0; i < RC_PUB_SLOTS && d->norphans < max; i++) {
			struct rc_pub_slot *p = &t->ring.hdr->pubs[i];
			struct rcd_orphan *o = &d->orphans[d->norphans];
			uint32_t id = rc_load_acquire(&p->client_id); /* pairs as above */

			if (!id)
				continue;
			if (!recorded_alive(d, id, &l)) {
				rcd_duties_release_pub(d, t, i, id);
				d->dead++;
				continue;
			}
			o->t = t;
			o->slot = i;
			o->pub = true;
			o->client_id = id;
			o->bell = RC_BELLS;
			o->uid = l.uid;
			o->pid = l.pid;
			d->norphans++;
		}
	}
}

/* Records of clients that are gone: nobody will resume them. */
static void sweep_records(struct rcd_duties *d)
{
	int fd = dup(d->reg->lives_fd);
	struct dirent *e;
	DIR *dir;

	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(dir))) {
		char *end;
		unsigned long id = strtoul(e->d_name, &end, 16);

		if (e->d_name[0] == '.' || *end || id > UINT32_MAX)
			continue;
		if (!rcd_lives_alive(d->reg->lives_fd, (uint32_t)id))
			rcd_lives_forget(d->reg->lives_fd, (uint32_t)id);
	}
	closedir(dir);
}

int rcd_duties_init(struct rcd_duties *d, struct rcd_loop *loop, struct rcd_registry *reg,
		    const struct rcd_config *cfg, struct rcd_log *log)
{
	size_t n;

	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->reg = reg;
	d->cfg = cfg;
	d->log = log;
	d->period.tv_sec = 0;
	d->period.tv_nsec = TICK_NS;
	rcd_op_init(&d->tick_op, tick_cb, d);
	rc_clock_fit_init(&d->clock);
	rc_clock_fit_tick(&d->clock, reg->node);

	n = count_in_use(reg);
	if (n) {
		d->orphans = calloc(n, sizeof(*d->orphans));
		if (!d->orphans)
			return -ENOMEM;
		/* Only daemons attach slots, so none appears between the
		 * two passes; collect_orphans() stops at n all the same. */
		collect_orphans(d, n);
		d->orphans_deadline_ns = rcd_now_ns() + (uint64_t)cfg->reap_grace_ms * 1000000ull;
		rcd_info(log, "%zu slots of live clients of the previous daemon wait up to %u ms "
			 "to be resumed; %" PRIu64 " of clients that are gone were released",
			 d->norphans, cfg->reap_grace_ms, d->dead);
	}
	sweep_records(d);
	return 0;
}

static int arm(struct rcd_duties *d)
{
	return rcd_loop_timeout(d->loop, &d->tick_op, &d->period, !d->oneshot);
}

int rcd_duties_start(struct rcd_duties *d)
{
	return arm(d);
}

void rcd_duties_stop(struct rcd_duties *d)
{
	d->stopping = true;
	rcd_loop_cancel(d->loop, &d->tick_op);
}

void rcd_duties_free(struct rcd_duties *d)
{
	free(d->orphans);
	d->orphans = NULL;
	d->norphans = 0;
}

static void tick_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags)
{
	struct rcd_duties *d = op->ctx;

	if (res == -EINVAL && !d->oneshot) {
		/* Kernel before 6.4: no multishot timeouts; re-arm by hand. */
		rcd_info(d->log, "io_uring: no multishot timeouts; using one-shot ones");
		d->oneshot = true;
	} else if (res != -ETIME && res != -ECANCELED && res != 0) {
		loop->errors++;
		rcd_warn(d->log, "tick timer: %s", strerror(-res));
	}
	if (d->stopping)
		return;
	if (res == -ETIME)
		rcd_duties_tick(d, rcd_now_ns());
	if (!(flags & RCD_OP_MORE) && arm(d) < 0)
		rcd_err(d->log, "cannot re-arm the tick timer: dead publishers stay unrepaired");
}

/* Try one pub slot's repair.  true when it is done (slot released). */
static bool try_repair(struct rcd_duties *d, struct rcd_topic *t, unsigned slot)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	int ret = rc_ring_repair_pub(&t->ring, slot, d->reg->bells);

	if (ret == 0)
		return false;
	RC_TRACE_PUBLISHER_REPAIR(t->id, (const char *)t->name, t->len, slot, ret);
	if (ret < 0) {
		/* A corrupt ring: nothing more we can do for this slot, and
		 * retrying every 10 ms would only flood the log. */
		rcd_err(d->log, "cannot repair publisher slot %u of '%s': %s", slot,
			rcd_escape(t->name, t->len, esc, sizeof(esc)), strerror(-ret));
	} else {
		d->repaired++;
	}
	return true;
}

void rcd_duties_release_pub(struct rcd_duties *d, struct rcd_topic *t, unsigned slot,
			    uint32_t client_id)
{
	if (slot >= RC_PUB_SLOTS)
		return;
	if (try_repair(d, t, slot))
		return;
	if (!t->repairs)
		t->repairs_since_ns = rcd_now_ns();
	t->repairs |= 1ull << slot;
	rcd_debug(d->log, "publisher slot %u (client %" PRIu32 ") waits for its repair", slot,
		  client_id);
}

static void retry_repairs(struct rcd_duties *d, struct rcd_topic *t, uint64_t now)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	uint64_t left = t->repairs;

	while (left) {
		unsigned slot = (unsigned)__builtin_ctzll(left);

		left &= left - 1;
		if (try_repair(d, t, slot))
			t->repairs &= ~(1ull << slot);
	}
	if (!t->repairs) {
		t->repairs_late = false;
	} else if (!t->repairs_late && now - t->repairs_since_ns > REPAIR_LATE_NS) {
		t->repairs_late = true;
		rcd_warn(d->log, "'%s': dead publishers' claims still unrepaired after %" PRIu64
			 " ms (a live publisher holds the same position)",
			 rcd_escape(t->name, t->len, esc, sizeof(esc)),
			 (now - t->repairs_since_ns) / 1000000);
	}
}

struct untether_ctx {
	struct rcd_duties *d;
	struct rcd_topic *t;
	uint64_t now;
};

static void untethered(struct rc_ring *r, unsigned slot, void *arg)
{
	struct untether_ctx *c = arg;
	char esc[RCD_ESCAPED_TOPIC_MAX];
	struct rc_sub_slot *s;
	uint64_t moved, ms;

	c->d->untethered++;
	if (slot >= RC_SUB_SLOTS)
		return;
	s = &r->ctl->subs[slot];
	/* Our own record of its last progress (ring.h), not the slot's writable one. */
	moved = r->seen ? r->seen[slot].ns : 0;
	ms = moved && moved <= c->now ? (c->now - moved) / 1000000
				      : r->tether_timeout_ms;
	RC_TRACE_UNTETHER(c->t->id, (const char *)c->t->name, c->t->len,
			  rc_load_relaxed(&s->client_id), slot, ms);
	rcd_info(c->d->log, "untethered client %" PRIu32 " from '%s' after %" PRIu64
		 " ms without progress", rc_load_relaxed(&s->client_id),
		 rcd_escape(c->t->name, c->t->len, esc, sizeof(esc)), ms);
}

/* Release orphan i (its client did not come back) and drop it from the table. */
static void reap_orphan(struct rcd_duties *d, size_t i, const char *why)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	struct rcd_orphan o = d->orphans[i];

	d->orphans[i] = d->orphans[--d->norphans];
	rcd_info(d->log, "reaping %s slot %u of '%s': client %" PRIu32 " (pid %" PRIu32 ") %s",
		 o.pub ? "publisher" : "subscriber", o.slot,
		 rcd_escape(o.t->name, o.t->len, esc, sizeof(esc)), o.client_id, o.pid, why);
	if (o.pub) {
		rcd_duties_release_pub(d, o.t, o.slot, o.client_id);
	} else {
		rc_ring_sub_release(&o.t->ring, o.slot);
		/*
		 * No publisher rings a released slot's client.  If it is alive
		 * and asleep, wake it: it reconnects, takes a new slot and is
		 * told what it missed.
		 */
		rc_bell_ring(d->reg->bells, o.bell);
		rcd_bell_orphan_ref(d->reg, o.bell, -1);
	}
	d->reaped++;
}

static void reap_orphans(struct rcd_duties *d)
{
	char why[64];

	snprintf(why, sizeof(why), "did not resume it within %u ms", d->cfg->reap_grace_ms);
	while (d->norphans)
		reap_orphan(d, d->norphans - 1, why);
}

/*
 * An orphan's client that dies before it resumes leaves its lock: release
 * its slots now (a half-made claim of its own stalls its subscribers).
 */
static void reap_dead_orphans(struct rcd_duties *d)
{
	size_t i = 0;

	d->memo.client_id = 0; /* they may have died since the last look */
	while (i < d->norphans) {
		struct rcd_life l;

		if (recorded_alive(d, d->orphans[i].client_id, &l)) {
			i++;
			continue;
		}
		d->dead++;
		reap_orphan(d, i, "is gone");
	}
}

/*
 * A client of t wrote subscriber slots the daemon never gave out: freed,
 * so they neither hold publishers back nor keep new subscribers out.
 * Logged once per topic: a client doing it does it on every tick.
 */
static void forged_slots(struct rcd_duties *d, struct rcd_topic *t, unsigned n)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];

	d->forged += n;
	if (t->forged_logged)
		return;
	t->forged_logged = true;
	rcd_warn(d->log, "a client of '%s' wrote %u subscriber slots the daemon never gave out; "
		 "freed (and again each tick while it goes on)",
		 rcd_escape(t->name, t->len, esc, sizeof(esc)), n);
}

void rcd_duties_tick(struct rcd_duties *d, uint64_t now)
{
	struct rcd_topic *t;
	unsigned forged;

	d->ticks++;
	if (d->ticks % KEEPER_CHECK_TICKS == 0)
		rcd_registry_check_keeper(d->reg);
	rc_clock_fit_tick(&d->clock, d->reg->node);
	for (t = d->reg->first; t; t = t->next) {
		struct untether_ctx c = { d, t, now };

		if (t->repairs)
			retry_repairs(d, t, now);
		/* Every slot once a second; those publishers scan every tick. */
		forged = rc_ring_free_unowned(&t->ring, d->ticks % KEEPER_CHECK_TICKS == 0);
		if (forged)
			forged_slots(d, t, forged);
		rc_ring_untether_stalled(&t->ring, now, untethered, &c);
	}
	if (d->norphans && now >= d->orphans_deadline_ns)
		reap_orphans(d);
	else if (d->norphans && d->ticks % ORPHAN_CHECK_TICKS == 0)
		reap_dead_orphans(d);
}

void rcd_duties_wake_orphans(const struct rcd_duties *d)
{
	size_t i;

	for (i = 0; i < d->norphans; i++)
		if (!d->orphans[i].pub)
			rc_bell_ring(d->reg->bells, d->orphans[i].bell);
}

bool rcd_duties_orphan_client(const struct rcd_duties *d, uint32_t client_id, uint32_t pid)
{
	size_t i;

	for (i = 0; i < d->norphans; i++)
		if (d->orphans[i].client_id == client_id && d->orphans[i].pid == pid)
			return true;
	return false;
}

bool rcd_duties_orphan_id(const struct rcd_duties *d, uint32_t client_id)
{
	size_t i;

	for (i = 0; i < d->norphans; i++)
		if (d->orphans[i].client_id == client_id)
			return true;
	return false;
}

bool rcd_duties_orphan_bell_ok(const struct rcd_duties *d, uint32_t client_id, uint32_t bell)
{
	size_t i;

	for (i = 0; i < d->norphans; i++)
		if (!d->orphans[i].pub && d->orphans[i].bell == bell &&
		    d->orphans[i].client_id != client_id)
			return false;
	return true;
}

int rcd_duties_orphan_take(struct rcd_duties *d, struct rcd_topic *t, bool pub, unsigned slot,
			   uint32_t client_id, uint32_t pid, uint32_t uid, uint32_t bell)
{
	size_t i;

	for (i = 0; i < d->norphans; i++) {
		struct rcd_orphan *o = &d->orphans[i];

		if (o->t != t || o->pub != pub || o->slot != slot || o->client_id != client_id)
			continue;
		if (o->pid != pid)
			return -ENOENT;
		/* A subscriber slot rings o->bell and was attached for o->uid:
		 * only the same principal on the same bell may take it over. */
		if (!pub && (o->uid != uid || o->bell != bell))
			return -ENOENT;
		if (!pub)
			rcd_bell_orphan_ref(d->reg, o->bell, -1);
		d->orphans[i] = d->orphans[--d->norphans];
		d->resumed++;
		return 0;
	}
	return -ENOENT;
}
