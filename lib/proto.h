/* SPDX-License-Identifier: MIT */
/*
 * The ringcastd control protocol: one message per SOCK_SEQPACKET packet.
 * Every message is a 16-byte header followed by a type-specific body; all
 * integers are little-endian on the wire, every length is explicit and
 * checked.  The wire layout is documented in docs/protocol.md.
 *
 * rc_proto_encode() and rc_proto_decode() are the only code that touches
 * wire bytes; the daemon and libringcast both go through them.
 */
#ifndef RINGCAST_PROTO_H
#define RINGCAST_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define RC_PROTO_MAGIC 0x31504352u /* "RCP1" read as a little-endian u32 */
/* 2: HELLO_OK passes the node file; SUB_OK the start; TRACE_SAMPLE.  3: opened.flags */
#define RC_PROTO_VERSION 3
#define RC_PROTO_HDR_SIZE 16
#define RC_PROTO_MAX_MSG 65536 /* largest packet either side sends or accepts */
#define RC_PROTO_NODE_MAX 255
#define RC_PROTO_TEXT_MAX 1024
#define RC_PROTO_STAT_SUBS_MAX 1024 /* subscriber entries in one STAT_TOPIC */

enum rc_msg_type {
	/* client -> daemon */
	RC_MSG_HELLO = 1,
	RC_MSG_SUBSCRIBE = 2,
	RC_MSG_UNSUBSCRIBE = 3,
	RC_MSG_PUB_OPEN = 4,
	RC_MSG_STAT = 5,
	RC_MSG_TRACE_SAMPLE = 6,
	/* daemon -> client */
	RC_MSG_HELLO_OK = 64,
	RC_MSG_SUB_OK = 65,
	RC_MSG_PUB_OK = 66,
	RC_MSG_OK = 67,
	RC_MSG_ERROR = 68,
	RC_MSG_STAT_TOPIC = 69,
	RC_MSG_STAT_END = 70,
	RC_MSG_TRACE_SAMPLE_OK = 71,
};

/* HELLO flags */
#define RC_HELLO_RESUME 0x1 /* re-attach as client_id after a daemon restart */

/* SUBSCRIBE / PUB_OPEN flags */
#define RC_TOPIC_RESUME 0x1 /* re-adopt the slot named in .slot */
/* SUB_OK, PUB_OK: the slot asked for was re-adopted, in the ring the client had */
#define RC_OPENED_RESUMED 0x1

/* One subscriber as seen by STAT. */
struct rc_stat_sub {
	uint32_t client_id;
	uint32_t pid;
	uint32_t uid;
	uint32_t state;     /* RC_SUB_* of ring_format.h */
	uint64_t pos;       /* next position the subscriber reads */
	uint64_t lag;       /* bytes between pos and the ring's tail */
	uint64_t delivered; /* messages it has handled */
	uint64_t lost;      /* messages it has missed */
};

/*
 * A decoded (or to-be-encoded) message.  Pointers (topic, node, text,
 * subs_raw) point into the packet buffer passed to rc_proto_decode() and
 * live as long as it does; on encode they are read, never kept.
 */
struct rc_msg {
	uint16_t type;
	uint32_t req; /* request id; a reply echoes its request's */
	union {
		struct { /* HELLO */
			uint32_t flags;
			uint32_t client_id; /* with RC_HELLO_RESUME */
			uint32_t bell;      /* with RC_HELLO_RESUME */
		} hello;
		struct { /* HELLO_OK; fds: the node file (read-only), the bells file (read-write) */
			uint32_t client_id;
			uint32_t bell;
			uint64_t daemon_gen; /* bumped at every daemon start */
			const char *node;    /* 1..RC_PROTO_NODE_MAX bytes, no NUL on the wire */
			uint16_t node_len;
		} hello_ok;
		struct { /* SUBSCRIBE, UNSUBSCRIBE, PUB_OPEN, STAT (topic_len 0: all) */
			uint32_t flags;
			uint32_t slot; /* with RC_TOPIC_RESUME */
			const char *topic;
			uint16_t topic_len;
		} topic;
		struct { /* SUB_OK, PUB_OK; fds: ring file (RO to subscribers), ctl file (RW) */
			uint32_t slot;
			uint32_t topic_id;
			uint64_t capacity;
			uint64_t pos; /* SUB_OK: the position the subscriber starts at; PUB_OK: 0 */
			uint64_t seq; /* SUB_OK: the sequence it expects there; PUB_OK: 0 */
			uint32_t flags; /* RC_OPENED_* */
		} opened;
		struct { /* TRACE_SAMPLE (the rate to set), TRACE_SAMPLE_OK (the rate before) */
			uint32_t sample;
		} trace;
		struct { /* ERROR */
			int32_t err; /* positive errno */
			const char *text;
			uint16_t text_len;
		} error;
		struct { /* STAT_TOPIC */
			const char *topic;
			uint16_t topic_len;
			uint32_t publishers;
			uint64_t capacity;
			uint64_t tail;     /* bytes ever claimed (unbounded position) */
			uint64_t messages; /* messages ever published (next sequence) */
			uint32_t n_subs;
			const struct rc_stat_sub *subs; /* encode: array of n_subs */
			const void *subs_raw;           /* decode: use rc_proto_stat_sub() */
		} stat_topic;
	};
};

/*
 * Encode m into buf[0..cap).  Returns the packet length, -EMSGSIZE if it
 * does not fit (or exceeds RC_PROTO_MAX_MSG), -EINVAL if a field is out of
 * range (unknown type, empty or oversized topic/node, NUL in a name).
 */
int rc_proto_encode(const struct rc_msg *m, void *buf, size_t cap);

/*
 * Decode the packet buf[0..len) into *m.  Returns 0, or -EBADMSG for a
 * malformed packet (bad magic, short, length mismatch, trailing bytes,
 * field out of range, unknown type), -EPROTO for another protocol version.
 * Never reads outside buf.
 */
int rc_proto_decode(const void *buf, size_t len, struct rc_msg *m);

/* Copy subscriber entry i of a decoded STAT_TOPIC (i < n_subs). */
void rc_proto_stat_sub(const struct rc_msg *m, uint32_t i, struct rc_stat_sub *out);

/* Name of a message type for logs ("?" if unknown). */
const char *rc_proto_type_name(uint16_t type);

#endif /* RINGCAST_PROTO_H */
