/* SPDX-License-Identifier: MIT */
/*
 * The control-protocol codec.  docs/protocol.md is the byte-by-byte
 * description; this file is the only code that reads or writes wire bytes.
 *
 * Each message body is described once, by walk_body(), and that one walk
 * runs in three modes: MEASURE (validate and size a message before any byte
 * is written), WRITE (emit it) and READ (parse and validate a packet).
 * Encoder and decoder therefore cannot disagree about the layout or about a
 * validation rule, and every rule lives in exactly one place.
 *
 * Packet bytes are only ever touched through the byte-wise get/put helpers
 * below, after a bounds check, so the decoder never reads outside the
 * packet and never depends on the buffer's alignment or the host's byte
 * order.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"
#include "ring_format.h"

/* Header field offsets. */
#define HDR_MAGIC 0
#define HDR_VERSION 4
#define HDR_TYPE 6
#define HDR_LENGTH 8
#define HDR_REQ 12

/* One STAT_TOPIC subscriber entry on the wire: 4 x u32 + 4 x u64. */
#define STAT_SUB_WIRE 48

/*
 * Linux errno values stay below 4096 (the kernel's MAX_ERRNO); anything
 * larger in an ERROR is not an errno, and handing its negation to a caller
 * would break the "negative errno" convention.
 */
#define ERRNO_MAX 4095

/*
 * The per-field limits bound every message, so a valid message always fits
 * in one packet: the largest is a STAT_TOPIC with a 255-byte topic and the
 * full subscriber list.  If a limit grows past this, the protocol needs
 * paging, not a bigger packet.
 */
#define STAT_TOPIC_BODY_MAX (2 + RINGCAST_TOPIC_MAX + 4 + 8 + 8 + 8 + 4 + \
			     RC_PROTO_STAT_SUBS_MAX * STAT_SUB_WIRE)
_Static_assert(RC_PROTO_HDR_SIZE + STAT_TOPIC_BODY_MAX <= RC_PROTO_MAX_MSG,
	       "the largest STAT_TOPIC must fit in one packet");
_Static_assert(RC_PROTO_HDR_SIZE + 4 + 2 + RC_PROTO_TEXT_MAX <= RC_PROTO_MAX_MSG,
	       "the largest ERROR must fit in one packet");
_Static_assert(RC_PROTO_NODE_MAX <= UINT16_MAX && RC_PROTO_TEXT_MAX <= UINT16_MAX,
	       "name lengths travel as u16");

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

enum wire_mode {
	WIRE_MEASURE, /* encode, first pass: validate and count, write nothing */
	WIRE_WRITE,   /* encode, second pass: emit bytes into out */
	WIRE_READ,    /* decode: fill the message from in */
};

/*
 * A cursor over one packet.  The first error sticks and turns every later
 * step into a no-op, which keeps the body walks free of error plumbing;
 * in READ mode the fields that were not reached keep their zero value.
 */
struct wire {
	enum wire_mode mode;
	const uint8_t *in; /* READ */
	uint8_t *out;      /* WRITE */
	size_t len;        /* bytes available; off <= len always holds */
	size_t off;
	int err;
};

/* Reserve n bytes at the cursor; false (and an error set) if they don't exist. */
static bool wire_room(struct wire *w, size_t n)
{
	if (w->err)
		return false;
	if (n > w->len - w->off) {
		w->err = w->mode == WIRE_READ ? -EBADMSG : -EMSGSIZE;
		return false;
	}
	return true;
}

/* A field value the protocol does not allow: the peer's fault or the caller's. */
static void wire_check(struct wire *w, bool ok)
{
	if (!ok && !w->err)
		w->err = w->mode == WIRE_READ ? -EBADMSG : -EINVAL;
}

static void io_u16(struct wire *w, uint16_t *v)
{
	if (!wire_room(w, 2))
		return;
	if (w->mode == WIRE_READ)
		*v = get_le16(w->in + w->off);
	else if (w->mode == WIRE_WRITE)
		put_le16(w->out + w->off, *v);
	w->off += 2;
}

static void io_u32(struct wire *w, uint32_t *v)
{
	if (!wire_room(w, 4))
		return;
	if (w->mode == WIRE_READ)
		*v = get_le32(w->in + w->off);
	else if (w->mode == WIRE_WRITE)
		put_le32(w->out + w->off, *v);
	w->off += 4;
}

static void io_u64(struct wire *w, uint64_t *v)
{
	if (!wire_room(w, 8))
		return;
	if (w->mode == WIRE_READ)
		*v = get_le64(w->in + w->off);
	else if (w->mode == WIRE_WRITE)
		put_le64(w->out + w->off, *v);
	w->off += 8;
}

/*
 * Two's complement on the wire.  int -> unsigned is defined modulo 2^32;
 * the way back avoids the implementation-defined unsigned -> int cast.
 */
static void io_i32(struct wire *w, int32_t *v)
{
	uint32_t u = (uint32_t)*v;

	io_u32(w, &u);
	if (w->mode == WIRE_READ && !w->err)
		*v = u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/*
 * n raw bytes.  READ points *p into the packet (also for n == 0, so a
 * decoded pointer is never NULL); the encoder copies from *p, which may be
 * NULL only when n == 0.
 */
static void io_bytes(struct wire *w, const char **p, size_t n)
{
	if (w->mode != WIRE_READ && n && !*p)
		wire_check(w, false);
	if (!wire_room(w, n))
		return;
	if (w->mode == WIRE_READ)
		*p = (const char *)w->in + w->off;
	else if (w->mode == WIRE_WRITE && n)
		memcpy(w->out + w->off, *p, n);
	w->off += n;
}

/*
 * A u16 length and that many bytes, min..max long and free of NUL: topics,
 * node names and error texts all end up in C strings or "%.*s" on the far
 * side, where an embedded NUL would silently cut them short.
 */
static void io_name(struct wire *w, const char **p, uint16_t *len,
		    uint16_t min, uint16_t max)
{
	io_u16(w, len);
	wire_check(w, *len >= min && *len <= max);
	io_bytes(w, p, *len);
	if (w->err || !*len) /* an empty name may be NULL: keep it from memchr */
		return;
	wire_check(w, !memchr(*p, 0, *len));
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/*
 * SUBSCRIBE, UNSUBSCRIBE, PUB_OPEN and STAT.  The slot means something only
 * with RC_TOPIC_RESUME; requiring zero otherwise keeps exactly one encoding
 * per message, so a byte-level comparison is a message comparison.
 */
static void walk_topic(struct wire *w, struct rc_msg *m, uint32_t flags_ok,
		       uint16_t topic_min)
{
	io_u32(w, &m->topic.flags);
	io_u32(w, &m->topic.slot);
	wire_check(w, !(m->topic.flags & ~flags_ok));
	wire_check(w, (m->topic.flags & RC_TOPIC_RESUME) || !m->topic.slot);
	io_name(w, &m->topic.topic, &m->topic.topic_len, topic_min, RINGCAST_TOPIC_MAX);
}

static void walk_stat_sub(struct wire *w, struct rc_stat_sub *s)
{
	io_u32(w, &s->client_id);
	io_u32(w, &s->pid);
	io_u32(w, &s->uid);
	io_u32(w, &s->state);
	io_u64(w, &s->pos);
	io_u64(w, &s->lag);
	io_u64(w, &s->delivered);
	io_u64(w, &s->lost);
	/* A free slot is not a subscriber; STAT lists only live ones. */
	wire_check(w, s->state == RC_SUB_TETHERED || s->state == RC_SUB_UNTETHERED);
}

static void walk_stat_topic(struct wire *w, struct rc_msg *m)
{
	uint32_t i;

	io_name(w, &m->stat_topic.topic, &m->stat_topic.topic_len, 1, RINGCAST_TOPIC_MAX);
	io_u32(w, &m->stat_topic.publishers);
	io_u64(w, &m->stat_topic.capacity);
	wire_check(w, is_pow2(m->stat_topic.capacity));
	io_u64(w, &m->stat_topic.tail);
	io_u64(w, &m->stat_topic.messages);
	io_u32(w, &m->stat_topic.n_subs);
	/* Checked before the entries, so a huge count costs nothing to reject. */
	wire_check(w, m->stat_topic.n_subs <= RC_PROTO_STAT_SUBS_MAX);
	if (w->mode == WIRE_READ)
		m->stat_topic.subs_raw = w->in + w->off;
	else
		wire_check(w, !m->stat_topic.n_subs || m->stat_topic.subs);

	/*
	 * Reading validates every entry now, so rc_proto_stat_sub() can
	 * trust them later.  Entries stay in the packet (subs_raw): the
	 * decoder has nowhere to put up to 1024 of them.
	 */
	for (i = 0; i < m->stat_topic.n_subs && !w->err; i++) {
		struct rc_stat_sub s;

		if (w->mode == WIRE_READ)
			memset(&s, 0, sizeof(s));
		else
			s = m->stat_topic.subs[i];
		walk_stat_sub(w, &s);
	}
}

static void walk_body(struct wire *w, struct rc_msg *m)
{
	switch (m->type) {
	case RC_MSG_HELLO:
		io_u32(w, &m->hello.flags);
		io_u32(w, &m->hello.client_id);
		io_u32(w, &m->hello.bell);
		wire_check(w, !(m->hello.flags & ~(uint32_t)RC_HELLO_RESUME));
		/* As for topics: ids without RESUME must be zero (one encoding). */
		wire_check(w, (m->hello.flags & RC_HELLO_RESUME) ||
			      (!m->hello.client_id && !m->hello.bell));
		break;
	case RC_MSG_SUBSCRIBE:
	case RC_MSG_PUB_OPEN:
		walk_topic(w, m, RC_TOPIC_RESUME, 1);
		break;
	case RC_MSG_UNSUBSCRIBE:
		walk_topic(w, m, 0, 1);
		break;
	case RC_MSG_STAT:
		walk_topic(w, m, 0, 0); /* empty topic: every topic */
		break;
	case RC_MSG_HELLO_OK:
		io_u32(w, &m->hello_ok.client_id);
		io_u32(w, &m->hello_ok.bell);
		io_u64(w, &m->hello_ok.daemon_gen);
		io_name(w, &m->hello_ok.node, &m->hello_ok.node_len, 1, RC_PROTO_NODE_MAX);
		break;
	case RC_MSG_SUB_OK:
	case RC_MSG_PUB_OK:
		io_u32(w, &m->opened.slot);
		io_u32(w, &m->opened.topic_id);
		io_u64(w, &m->opened.capacity);
		io_u64(w, &m->opened.pos);
		io_u64(w, &m->opened.seq);
		io_u32(w, &m->opened.flags);
		wire_check(w, !(m->opened.flags & ~(uint32_t)RC_OPENED_RESUMED));
		/* The client masks positions with capacity - 1. */
		wire_check(w, is_pow2(m->opened.capacity));
		/* Sequences start at 1; a publisher has no start (one encoding). */
		wire_check(w, m->type == RC_MSG_SUB_OK ? m->opened.seq != 0 && !(m->opened.pos % 8)
						       : !m->opened.pos && !m->opened.seq);
		break;
	case RC_MSG_TRACE_SAMPLE:
	case RC_MSG_TRACE_SAMPLE_OK:
		io_u32(w, &m->trace.sample);
		break;
	case RC_MSG_OK:
	case RC_MSG_STAT_END:
		break;
	case RC_MSG_ERROR:
		io_i32(w, &m->error.err);
		wire_check(w, m->error.err > 0 && m->error.err <= ERRNO_MAX);
		io_name(w, &m->error.text, &m->error.text_len, 0, RC_PROTO_TEXT_MAX);
		break;
	case RC_MSG_STAT_TOPIC:
		walk_stat_topic(w, m);
		break;
	default:
		wire_check(w, false);
		break;
	}
}

int rc_proto_encode(const struct rc_msg *m, void *buf, size_t cap)
{
	/* The walk takes a mutable message (READ fills it); here it only reads. */
	struct rc_msg copy = *m;
	struct wire w = {
		.mode = WIRE_MEASURE,
		.len = RC_PROTO_MAX_MSG,
		.off = RC_PROTO_HDR_SIZE,
	};
	uint8_t *p = buf;
	size_t size;

	/* Validate and size first, so a failed encode leaves buf untouched. */
	walk_body(&w, &copy);
	if (w.err)
		return w.err;
	size = w.off;
	if (size > cap)
		return -EMSGSIZE;

	put_le32(p + HDR_MAGIC, RC_PROTO_MAGIC);
	put_le16(p + HDR_VERSION, RC_PROTO_VERSION);
	put_le16(p + HDR_TYPE, copy.type);
	put_le32(p + HDR_LENGTH, (uint32_t)size);
	put_le32(p + HDR_REQ, copy.req);
	w = (struct wire){
		.mode = WIRE_WRITE,
		.out = p,
		.len = size,
		.off = RC_PROTO_HDR_SIZE,
	};
	walk_body(&w, &copy);
	if (w.err) /* cannot happen: the same walk just passed */
		return w.err;
	return (int)size;
}

int rc_proto_decode(const void *buf, size_t len, struct rc_msg *m)
{
	const uint8_t *p = buf;
	struct rc_msg d;
	struct wire w;

	if (len < RC_PROTO_HDR_SIZE)
		return -EBADMSG;
	/* Magic before version: only a ringcast peer's version means anything. */
	if (get_le32(p + HDR_MAGIC) != RC_PROTO_MAGIC)
		return -EBADMSG;
	if (get_le16(p + HDR_VERSION) != RC_PROTO_VERSION)
		return -EPROTO;
	/* Compared as size_t, so no packet over 4 GiB can alias a u32 length. */
	if (len > RC_PROTO_MAX_MSG || get_le32(p + HDR_LENGTH) != len)
		return -EBADMSG;

	memset(&d, 0, sizeof(d));
	d.type = get_le16(p + HDR_TYPE);
	d.req = get_le32(p + HDR_REQ);
	w = (struct wire){
		.mode = WIRE_READ,
		.in = p,
		.len = len,
		.off = RC_PROTO_HDR_SIZE,
	};
	walk_body(&w, &d);
	if (!w.err && w.off != len) /* trailing bytes */
		w.err = -EBADMSG;
	if (w.err)
		return w.err;
	/* Only now: a caller's message is never left half-filled. */
	*m = d;
	return 0;
}

void rc_proto_stat_sub(const struct rc_msg *m, uint32_t i, struct rc_stat_sub *out)
{
	struct wire w = { .mode = WIRE_READ, .len = STAT_SUB_WIRE };

	memset(out, 0, sizeof(*out));
	/* A caller's bad index gets zeros, never a read past the packet. */
	if (m->type != RC_MSG_STAT_TOPIC || !m->stat_topic.subs_raw ||
	    i >= m->stat_topic.n_subs)
		return;
	w.in = (const uint8_t *)m->stat_topic.subs_raw + (size_t)i * STAT_SUB_WIRE;
	walk_stat_sub(&w, out);
}

const char *rc_proto_type_name(uint16_t type)
{
	switch (type) {
	case RC_MSG_HELLO:
		return "HELLO";
	case RC_MSG_SUBSCRIBE:
		return "SUBSCRIBE";
	case RC_MSG_UNSUBSCRIBE:
		return "UNSUBSCRIBE";
	case RC_MSG_PUB_OPEN:
		return "PUB_OPEN";
	case RC_MSG_STAT:
		return "STAT";
	case RC_MSG_TRACE_SAMPLE:
		return "TRACE_SAMPLE";
	case RC_MSG_TRACE_SAMPLE_OK:
		return "TRACE_SAMPLE_OK";
	case RC_MSG_HELLO_OK:
		return "HELLO_OK";
	case RC_MSG_SUB_OK:
		return "SUB_OK";
	case RC_MSG_PUB_OK:
		return "PUB_OK";
	case RC_MSG_OK:
		return "OK";
	case RC_MSG_ERROR:
		return "ERROR";
	case RC_MSG_STAT_TOPIC:
		return "STAT_TOPIC";
	case RC_MSG_STAT_END:
		return "STAT_END";
	}
	return "?";
}
