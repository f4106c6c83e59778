/* SPDX-License-Identifier: MIT */
/*
 * What the control requests do (the protocol is lib/proto.h and
 * docs/protocol.md): HELLO, SUBSCRIBE, UNSUBSCRIBE, PUB_OPEN, STAT.
 *
 * Every request gets exactly one reply echoing its req id (STAT: a
 * STAT_TOPIC per topic, then STAT_END).  A request the client may retry
 * or get wrong (ACL denial, unknown topic, full ring) gets an ERROR and
 * the connection stays; a malformed packet, a broken protocol (no HELLO
 * first) or a HELLO from a peer that no ACL list names gets an ERROR and
 * the connection is closed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "conn.h"
#include "config.h"
#include "duties.h"
#include "log.h"
#include "registry.h"
#include "lives.h"
#include "server.h"
#include "trace.h"

#define STAT_BATCH 4   /* STAT_TOPIC replies queued at a time */

static struct rcd_client *client_by_id(struct rcd_server *srv, uint32_t id)
{
	struct rcd_client *c;

	for (c = srv->clients; c; c = c->next)
		if (c->hello && !c->gone && c->id == id)
			return c;
	return NULL;
}

static struct rcd_ref *ref_find(struct rcd_ref *refs, unsigned n, const struct rcd_topic *t)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (refs[i].t == t)
			return &refs[i];
	return NULL;
}

/* Append to a client's subs or pubs.  0 or -ENOMEM. */
static int ref_add(struct rcd_ref **refs, unsigned *n, unsigned *cap, struct rcd_topic *t,
		   unsigned slot)
{
	if (*n == *cap) {
		unsigned ncap = *cap ? *cap * 2 : 4;
		struct rcd_ref *r = realloc(*refs, ncap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		*refs = r;
		*cap = ncap;
	}
	(*refs)[*n].t = t;
	(*refs)[(*n)++].slot = slot;
	return 0;
}

static void ref_del(struct rcd_ref *refs, unsigned *n, struct rcd_ref *r)
{
	*r = refs[--*n];
}

static void do_hello(struct rcd_client *c, const struct rc_msg *m)
{
	struct rcd_server *srv = c->srv;
	struct rc_msg ok = { .type = RC_MSG_HELLO_OK, .req = m->req };
	uint32_t id = m->hello.client_id, bell = m->hello.bell;
	struct rcd_life life;
	bool resumed = false;
	int fds[3], b;

	if (c->hello) {
		rcd_reply_error(c, m->req, EALREADY, "HELLO was already sent");
		return;
	}
	/* A peer no list names could use no topic: it gets no fd either
	 * (rcd_client_fail() logs the line). */
	if (!rcd_acl_admits(srv->cfg, c->uid, c->gid, c->groups, c->ngroups)) {
		srv->refused++;
		rcd_client_fail(c, m->req, EACCES, "uid %u may not publish or subscribe to any topic",
				(unsigned)c->uid);
		return;
	}
	/* Resume only the identity of an orphan of this very process, on a
	 * bell that no connected client and no other orphan rings. */
	if ((m->hello.flags & RC_HELLO_RESUME) && id && bell < RC_BELLS &&
	    rcd_duties_orphan_client(srv->duties, id, (uint32_t)c->pid) &&
	    !client_by_id(srv, id) && rcd_duties_orphan_bell_ok(srv->duties, id, bell) &&
	    rcd_bell_take(srv->reg, bell) == 0)
		resumed = true;
	if (!resumed) {
		b = rcd_bell_get(srv->reg);
		if (b < 0) {
			rcd_client_fail(c, m->req, ENOSPC, "no free doorbell (%u clients)", RC_BELLS);
			return;
		}
		bell = (uint32_t)b;
		/* Ids persist across restarts; skip any still in use here. */
		do
			id = rcd_registry_next_client_id(srv->reg);
		while (rcd_duties_orphan_id(srv->duties, id) || client_by_id(srv, id));
	}
	fds[0] = rcd_registry_node_fd(srv->reg);
	fds[1] = fds[0] < 0 ? -1 : rcd_registry_bells_fd(srv->reg);
	life = (struct rcd_life){ id, (uint32_t)c->pid, (uint32_t)c->uid, bell };
	fds[2] = fds[1] < 0 ? -1 : rcd_lives_record(srv->reg->lives_fd, &life);
	if (fds[2] < 0) {
		int err = fds[0] < 0 ? fds[0] : fds[1] < 0 ? fds[1] : fds[2];

		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		rcd_bell_put(srv->reg, bell);
		rcd_client_fail(c, m->req, -err, "cannot open the node's files: %s", strerror(-err));
		return;
	}
	c->hello = true;
	c->id = id;
	c->bell = bell;
	ok.hello_ok.client_id = id;
	ok.hello_ok.bell = bell;
	ok.hello_ok.daemon_gen = srv->reg->gen;
	ok.hello_ok.node = srv->cfg->node;
	ok.hello_ok.node_len = (uint16_t)strlen(srv->cfg->node);
	RC_TRACE_CLIENT_CONNECT(id, c->pid, c->uid, bell, resumed);
	rcd_info(srv->log, "client %" PRIu32 " (pid %d, uid %u) connected%s, bell %" PRIu32, id,
		 (int)c->pid, (unsigned)c->uid, resumed ? " again (resumed)" : "", bell);
	rcd_reply_fds(c, &ok, fds, 3);
}

/* The ACL check, with the log line and the ERROR reply on denial. */
static bool allowed(struct rcd_client *c, const struct rc_msg *m, enum rcd_acl_op op,
		    const char *esc)
{
	const char *verb = op == RCD_ACL_PUBLISH ? "publish" : "subscribe";

	if (rcd_acl_allows(c->srv->cfg, m->topic.topic, m->topic.topic_len, op, c->uid, c->gid,
			   c->groups, c->ngroups))
		return true;
	rcd_info(c->srv->log, "denied: uid %u (pid %d, client %" PRIu32 ") may not %s to '%s'",
		 (unsigned)c->uid, (int)c->pid, c->id, verb, esc);
	rcd_reply_error(c, m->req, EACCES, "uid %u may not %s to '%s'", (unsigned)c->uid, verb, esc);
	return false;
}

/*
 * Find or create the topic, replying with the error if that fails.  A
 * topic made here is charged to the client's uid, whose share is checked
 * first: one user must not take all of the node's topics or tmpfs.
 */
static struct rcd_topic *topic_get(struct rcd_client *c, const struct rc_msg *m, const char *esc)
{
	struct rcd_registry *reg = c->srv->reg;
	uint32_t topics, max_topics;
	uint64_t bytes, max_bytes;
	struct rcd_topic *t = rcd_registry_find(reg, m->topic.topic, m->topic.topic_len);
	int ret;

	if (!t && rcd_registry_uid_room(reg, c->uid, m->topic.topic, m->topic.topic_len, &topics,
					&bytes, &max_topics, &max_bytes) < 0) {
		rcd_info(c->srv->log, "denied: uid %u (pid %d) made %" PRIu32 " topics of %" PRIu64
			 " bytes, its share is %" PRIu32 " and %" PRIu64 "; '%s' is not made",
			 (unsigned)c->uid, (int)c->pid, topics, bytes, max_topics, max_bytes, esc);
		rcd_reply_error(c, m->req, EDQUOT, "uid %u has made %" PRIu32 " topics (%" PRIu64
				" bytes), its share is %" PRIu32 " topics and %" PRIu64 " bytes; "
				"'%s' is not made", (unsigned)c->uid, topics, bytes, max_topics,
				max_bytes, esc);
		return NULL;
	}
	if (t)
		return t;
	ret = rcd_registry_get(reg, m->topic.topic, m->topic.topic_len, &t);
	if (ret == 0) {
		rcd_registry_charge(t, c->uid); /* made just now, by this client */
		return t;
	}
	if (ret == -ENOSPC)
		rcd_reply_error(c, m->req, ENOSPC, "no space in %s for the ring of '%s'",
			    c->srv->cfg->runtime_dir, esc);
	else if (ret == -EDQUOT)
		rcd_reply_error(c, m->req, EDQUOT, "the daemon has %zu topics, its max-topics; "
			    "'%s' is not made", c->srv->reg->ntopics, esc);
	else
		rcd_reply_error(c, m->req, -ret, "cannot create the ring of '%s': %s", esc,
			    strerror(-ret));
	return NULL;
}

/* Reply SUB_OK or PUB_OK for slot with the fds it needs.  0 or -errno. */
static int reply_opened(struct rcd_client *c, const struct rc_msg *m, struct rcd_topic *t,
			unsigned slot, bool pub, bool resumed, uint64_t pos, uint64_t seq)
{
	struct rc_msg ok = { .type = pub ? RC_MSG_PUB_OK : RC_MSG_SUB_OK, .req = m->req };
	int fds[2];

	fds[0] = rcd_topic_ring_fd(c->srv->reg, t, pub);
	if (fds[0] < 0)
		return fds[0];
	fds[1] = rcd_topic_ctl_fd(t);
	if (fds[1] < 0) {
		close(fds[0]);
		return fds[1];
	}
	ok.opened.slot = slot;
	/* The wire field is 32 bits: the low half of the file id. */
	ok.opened.topic_id = (uint32_t)t->id;
	ok.opened.capacity = t->ring.cap;
	ok.opened.flags = resumed ? RC_OPENED_RESUMED : 0;
	if (!pub) {
		ok.opened.pos = pos;
		ok.opened.seq = seq;
	}
	return rcd_reply_fds(c, &ok, fds, 2);
}

/*
 * Where a resumed subscriber's slot stands, for the reply.  The line is
 * one that clients can write: take it only if it is a position the ring
 * still holds, else the live tail.
 */
static void resume_start(const struct rc_ring *r, unsigned slot, uint64_t *pos, uint64_t *seq)
{
	const struct rc_sub_slot *s = &r->ctl->subs[slot];
	uint64_t p = rc_load_acquire(&s->pos), q = rc_load_acquire(&s->seq), tail, tseq;

	rc_ring_live(r, &tail, &tseq);
	if (p <= tail && tail - p <= r->cap && !(p % RC_REC_ALIGN) && q >= 1 && q <= tseq) {
		*pos = p;
		*seq = q;
	} else {
		*pos = tail;
		*seq = tseq;
	}
}

static void do_open(struct rcd_client *c, const struct rc_msg *m, bool pub)
{
	struct rcd_server *srv = c->srv;
	char esc[RCD_ESCAPED_TOPIC_MAX];
	uint64_t start_pos = 0, start_seq = 0;
	struct rcd_ref *ref;
	struct rcd_topic *t;
	bool resumed;
	int slot, ret;

	rcd_escape(m->topic.topic, m->topic.topic_len, esc, sizeof(esc));
	if (!m->topic.topic_len) {
		rcd_reply_error(c, m->req, EINVAL, "empty topic");
		return;
	}
	if (!allowed(c, m, pub ? RCD_ACL_PUBLISH : RCD_ACL_SUBSCRIBE, esc))
		return;
	t = topic_get(c, m, esc);
	if (!t)
		return;
	ref = pub ? ref_find(c->pubs, c->npubs, t) : ref_find(c->subs, c->nsubs, t);
	/*
	 * Opened on this connection already: the client has the fds.  Fresh
	 * ones for each repeat were a way to pile descriptors on the daemon
	 * (docs/operations.md, "What one user can take").
	 */
	if (ref) {
		rcd_reply_error(c, m->req, EALREADY, "already %s '%s'",
				pub ? "publishing to" : "subscribed to", esc);
		return;
	}
	slot = -1;
	resumed = false;
	if ((m->topic.flags & RC_TOPIC_RESUME) &&
	    rcd_duties_orphan_take(srv->duties, t, pub, m->topic.slot, c->id, (uint32_t)c->pid,
				   (uint32_t)c->uid, c->bell) == 0) {
		slot = (int)m->topic.slot;
		resumed = true;
		/* A resumed subscriber goes on from where it was; it keeps its
		 * own copy of that, and uses ours only if it maps afresh. */
		if (!pub)
			resume_start(&t->ring, (unsigned)slot, &start_pos, &start_seq);
	} else if (pub) {
		slot = rc_ring_pub_attach(&t->ring, c->id, (uint32_t)c->pid);
	} else {
		slot = rc_ring_sub_attach(&t->ring, c->id, (uint32_t)c->pid, (uint32_t)c->uid,
					  c->bell, rcd_now_ns(), &start_pos, &start_seq);
	}
	if (slot < 0) {
		rcd_reply_error(c, m->req, -slot, "no free %s slot in '%s'",
			    pub ? "publisher" : "subscriber", esc);
		return;
	}
	ret = pub ? ref_add(&c->pubs, &c->npubs, &c->pubs_cap, t, (unsigned)slot)
		  : ref_add(&c->subs, &c->nsubs, &c->subs_cap, t, (unsigned)slot);
	if (ret == 0)
		ret = reply_opened(c, m, t, (unsigned)slot, pub, resumed, start_pos, start_seq);
	if (ret < 0) {
		/* Undo: the client never learns of this slot. */
		if (pub) {
			ref = ref_find(c->pubs, c->npubs, t);
			if (ref)
				ref_del(c->pubs, &c->npubs, ref);
			rcd_duties_release_pub(srv->duties, t, (unsigned)slot, c->id);
		} else {
			ref = ref_find(c->subs, c->nsubs, t);
			if (ref)
				ref_del(c->subs, &c->nsubs, ref);
			rc_ring_sub_release(&t->ring, (unsigned)slot);
		}
		rcd_reply_error(c, m->req, -ret, "cannot open '%s': %s", esc, strerror(-ret));
		return;
	}
	rcd_debug(srv->log, "client %" PRIu32 " %s '%s' in slot %d", c->id,
		  pub ? "publishes to" : "subscribes to", esc, slot);
}

static void do_unsubscribe(struct rcd_client *c, const struct rc_msg *m)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	struct rcd_topic *t = rcd_registry_find(c->srv->reg, m->topic.topic, m->topic.topic_len);
	struct rcd_ref *ref = t ? ref_find(c->subs, c->nsubs, t) : NULL;

	if (!ref) {
		rcd_escape(m->topic.topic, m->topic.topic_len, esc, sizeof(esc));
		rcd_reply_error(c, m->req, ENOENT, "not subscribed to '%s'", esc);
		return;
	}
	rc_ring_sub_release(&t->ring, ref->slot);
	ref_del(c->subs, &c->nsubs, ref);
	rcd_reply_ok(c, RC_MSG_OK, m->req);
}

/* Queue one STAT_TOPIC for t. */
static void stat_topic(struct rcd_client *c, uint32_t req, const struct rcd_topic *t)
{
	struct rc_msg m = { .type = RC_MSG_STAT_TOPIC, .req = req };
	struct rc_stat_sub *subs = c->srv->stat_subs;
	const struct rc_ring *r = &t->ring;
	uint32_t n = 0, pubs = 0, i, hi;
	uint64_t tail;

	/* Acquire pairs with the publishers' CAS of the tail in
	 * rc_ring_claim() (a full barrier); a torn pos/seq pair only skews
	 * a statistic. */
	tail = rc_load_acquire(&r->hdr->tail.pos);
	m.stat_topic.messages = rc_load_acquire(&r->hdr->tail.seq);
	for (i = 0; i < RC_PUB_SLOTS; i++)
		pubs += rc_load_relaxed(&r->hdr->pubs[i].client_id) != 0; /* ours: relaxed */
	/* Written by the daemon only, but every client can write the ctl
	 * file: clamp it, like everything read from shared memory. */
	hi = rc_load_relaxed(&r->ctl->slots_hi);
	if (hi > RC_SUB_SLOTS)
		hi = RC_SUB_SLOTS;
	for (i = 0; i < hi && n < RC_PROTO_STAT_SUBS_MAX; i++) {
		struct rc_sub_slot *s = &r->ctl->subs[i];
		/* Acquire pairs with the store that last set state: the
		 * daemon's (seq_cst, in rc_ring_sub_attach) or the
		 * subscriber's CAS from UNTETHERED back to TETHERED. */
		uint32_t state = rc_load_acquire(&s->state);
		uint64_t pos;

		/* A state no code writes comes from a buggy or hostile
		 * client; the codec would refuse the whole reply for it. */
		if (state != RC_SUB_TETHERED && state != RC_SUB_UNTETHERED)
			continue;
		/* Acquire pairs with the subscriber's release store of pos. */
		pos = rc_load_acquire(&s->pos);
		subs[n].client_id = rc_load_relaxed(&s->client_id);
		subs[n].pid = rc_load_relaxed(&s->pid);
		subs[n].uid = rc_load_relaxed(&s->uid);
		subs[n].state = state;
		subs[n].pos = pos;
		subs[n].lag = tail > pos ? tail - pos : 0;
		/* Counters the subscriber bumps; no ordering needed. */
		subs[n].delivered = rc_load_relaxed(&s->delivered);
		subs[n].lost = rc_load_relaxed(&s->lost);
		n++;
	}
	m.stat_topic.topic = t->name;
	m.stat_topic.topic_len = (uint16_t)t->len;
	m.stat_topic.publishers = pubs;
	m.stat_topic.capacity = r->cap;
	m.stat_topic.tail = tail;
	m.stat_topic.n_subs = n;
	m.stat_topic.subs = subs;
	rcd_reply(c, &m);
}

/*
 * May c see t in a STAT?  A STAT_TOPIC names the topic and gives its
 * message count and each subscriber's pid and uid, so it shows only the
 * topics c may subscribe to, which would show it the same and more.  Root
 * and the daemon's own user see every topic, as they set the trace rate.
 */
static bool may_stat(const struct rcd_client *c, const struct rcd_topic *t)
{
	if (c->uid == 0 || c->uid == geteuid())
		return true;
	return rcd_acl_allows(c->srv->cfg, t->name, t->len, RCD_ACL_SUBSCRIBE, c->uid, c->gid,
			      c->groups, c->ngroups);
}

/* Continue a STAT of every topic a few replies at a time. */
void rcd_stat_pump(struct rcd_client *c)
{
	while (c->stat_active && c->qlen < STAT_BATCH) {
		if (c->stat_next) {
			/* Skipping is bounded by the topics there are: no reply queued. */
			if (may_stat(c, c->stat_next))
				stat_topic(c, c->stat_req, c->stat_next);
			c->stat_next = c->stat_next->next;
		} else {
			c->stat_active = false;
			rcd_reply_ok(c, RC_MSG_STAT_END, c->stat_req);
		}
	}
}

static void do_stat(struct rcd_client *c, const struct rc_msg *m)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	struct rcd_topic *t;

	if (m->topic.topic_len == 0) {
		/* Every topic: paced by the client's reading, so a STAT of
		 * many topics never piles up in our memory. */
		c->stat_active = true;
		c->stat_req = m->req;
		c->stat_next = c->srv->reg->first;
		rcd_stat_pump(c);
		return;
	}
	t = rcd_registry_find(c->srv->reg, m->topic.topic, m->topic.topic_len);
	/*
	 * A topic c may not see gets the very answer an unknown one gets, so
	 * that asking does not tell whether it exists.  Logged at debug
	 * level only: a `ringcast stat --watch` would repeat it every second.
	 */
	if (!t || !may_stat(c, t)) {
		rcd_escape(m->topic.topic, m->topic.topic_len, esc, sizeof(esc));
		if (t)
			rcd_debug(c->srv->log, "stat: uid %u (pid %d) may not see '%s'; answered "
				  "as for an unknown topic", (unsigned)c->uid, (int)c->pid, esc);
		rcd_reply_error(c, m->req, ENOENT, "no topic '%s'", esc);
		return;
	}
	stat_topic(c, m->req, t);
	rcd_reply_ok(c, RC_MSG_STAT_END, m->req);
}

/*
 * The trace sampling rate is node-wide: it decides which messages of every
 * client reach the probes.  Only root and the daemon's own user set it.
 */
static void do_trace_sample(struct rcd_client *c, const struct rc_msg *m)
{
	struct rc_msg ok = { .type = RC_MSG_TRACE_SAMPLE_OK, .req = m->req };

	if (c->uid != 0 && c->uid != geteuid()) {
		rcd_info(c->srv->log, "denied: uid %u (pid %d) may not set the trace sampling rate",
			 (unsigned)c->uid, (int)c->pid);
		rcd_reply_error(c, m->req, EACCES, "uid %u may not set the trace sampling rate",
				(unsigned)c->uid);
		return;
	}
	ok.trace.sample = rcd_registry_trace_sample(c->srv->reg, m->trace.sample);
	rcd_info(c->srv->log, "uid %u (pid %d) set the trace sampling rate to 1 in %" PRIu32
		 " (was %" PRIu32 ")", (unsigned)c->uid, (int)c->pid, m->trace.sample,
		 ok.trace.sample);
	rcd_reply(c, &ok);
}

void rcd_request(struct rcd_client *c, const uint8_t *buf, size_t len)
{
	struct rc_msg m;
	int ret;

	memset(&m, 0, sizeof(m));
	ret = rc_proto_decode(buf, len, &m);
	if (ret < 0) {
		if (ret == -EPROTO)
			rcd_client_fail(c, m.req, EPROTO, "unsupported protocol version (want %d)",
				    RC_PROTO_VERSION);
		else
			rcd_client_fail(c, m.req, EBADMSG, "malformed request (%zu bytes)", len);
		return;
	}
	if (!c->hello && m.type != RC_MSG_HELLO) {
		rcd_client_fail(c, m.req, EPROTO, "the first request must be HELLO, not %s",
			    rc_proto_type_name(m.type));
		return;
	}
	switch (m.type) {
	case RC_MSG_HELLO:
		do_hello(c, &m);
		break;
	case RC_MSG_SUBSCRIBE:
		do_open(c, &m, false);
		break;
	case RC_MSG_PUB_OPEN:
		do_open(c, &m, true);
		break;
	case RC_MSG_UNSUBSCRIBE:
		do_unsubscribe(c, &m);
		break;
	case RC_MSG_STAT:
		do_stat(c, &m);
		break;
	case RC_MSG_TRACE_SAMPLE:
		do_trace_sample(c, &m);
		break;
	default:
		rcd_client_fail(c, m.req, EPROTO, "%s is not a request", rc_proto_type_name(m.type));
		break;
	}
}

