/* SPDX-License-Identifier: MIT */
/*
 * Reclaiming idle topics (reclaim.h).
 *
 * Whether a topic is in use is decided from the daemon's own records
 * (its clients' references, the orphan table, pending repairs), never
 * from slots in the ctl file: a client could write those to keep a topic,
 * or to make another's look unused.
 */
#include <inttypes.h>

#include "config.h"
#include "conn.h"
#include "duties.h"
#include "log.h"
#include "reclaim.h"
#include "registry.h"
#include "server.h"

static void mark_used(struct rcd_server *srv)
{
	struct rcd_topic *t;
	struct rcd_client *c;
	unsigned i;
	size_t k;

	for (t = srv->reg->first; t; t = t->next)
		t->used = t->repairs;
	for (c = srv->clients; c; c = c->next) {
		for (i = 0; i < c->nsubs; i++)
			c->subs[i].t->used = true;
		for (i = 0; i < c->npubs; i++)
			c->pubs[i].t->used = true;
	}
	for (k = 0; k < srv->duties->norphans; k++)
		srv->duties->orphans[k].t->used = true;
}

static void reclaim(struct rcd_server *srv, struct rcd_topic *t)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	struct rcd_client *c;

	/* A STAT in progress walks the topic list: step it past t. */
	for (c = srv->clients; c; c = c->next)
		if (c->stat_next == t)
			c->stat_next = t->next;
	rcd_info(srv->log, "removed topic '%s' (%s): nobody had it open for %" PRIu32 " ms",
		 rcd_escape(t->name, t->len, esc, sizeof(esc)), t->file, srv->cfg->topic_idle_ms);
	rcd_registry_remove(srv->reg, t);
}

void rcd_reclaim_tick(struct rcd_server *srv, uint64_t now_ns)
{
	uint64_t idle_ns = (uint64_t)srv->cfg->topic_idle_ms * 1000000ull;
	struct rcd_topic *t, *next;

	if (!idle_ns)
		return;
	mark_used(srv);
	for (t = srv->reg->first; t; t = next) {
		next = t->next; /* t may go */
		if (t->used)
			t->idle_since_ns = 0;
		else if (!t->idle_since_ns)
			t->idle_since_ns = now_ns;
		else if (now_ns - t->idle_since_ns >= idle_ns)
			reclaim(srv, t);
	}
}
