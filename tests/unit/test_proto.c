/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the control-protocol codec (lib/proto.c).
 *
 * Malformed packets are built byte by byte with the small pk_* writer below,
 * not with rc_proto_encode(), so a decoder bug cannot hide behind the same
 * bug in the encoder.  The golden packets pin the wire layout of
 * docs/protocol.md: a change there must show up here.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"
#include "ring_format.h"

#define SUB_WIRE 48
#define BIG (RC_PROTO_MAX_MSG + 8192)

static const char *err_str(int r)
{
	return r < 0 ? strerror(-r) : "ok";
}

/* Compare a return value and say what both mean when they differ. */
#define check_ret(got, want, fmt, ...)                                        \
	do {                                                                  \
		int g_ = (got), w_ = (want);                                  \
		if (g_ != w_)                                                 \
			fail_msg(fmt ": got %d (%s), want %d (%s)", ##__VA_ARGS__, \
				 g_, err_str(g_), w_, err_str(w_));           \
	} while (0)

/* ---- an independent packet writer ---- */

struct pkt {
	size_t n;
	uint8_t b[BIG];
};

static void pk_u8(struct pkt *p, uint8_t v)
{
	assert_true(p->n < sizeof(p->b));
	p->b[p->n++] = v;
}

static void pk_u16(struct pkt *p, uint16_t v)
{
	pk_u8(p, (uint8_t)v);
	pk_u8(p, (uint8_t)(v >> 8));
}

static void pk_u32(struct pkt *p, uint32_t v)
{
	pk_u16(p, (uint16_t)v);
	pk_u16(p, (uint16_t)(v >> 16));
}

static void pk_u64(struct pkt *p, uint64_t v)
{
	pk_u32(p, (uint32_t)v);
	pk_u32(p, (uint32_t)(v >> 32));
}

static void pk_bytes(struct pkt *p, const void *s, size_t n)
{
	assert_true(n <= sizeof(p->b) - p->n);
	memcpy(p->b + p->n, s, n);
	p->n += n;
}

static void pk_name(struct pkt *p, const char *s, size_t n)
{
	pk_u16(p, (uint16_t)n);
	pk_bytes(p, s, n);
}

static void pk_set_len(struct pkt *p, uint32_t len)
{
	p->b[8] = (uint8_t)len;
	p->b[9] = (uint8_t)(len >> 8);
	p->b[10] = (uint8_t)(len >> 16);
	p->b[11] = (uint8_t)(len >> 24);
}

/* Start a packet; pk_decode() fills in the length field. */
static struct pkt *pk_new(uint16_t type, uint32_t req)
{
	struct pkt *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	pk_u32(p, RC_PROTO_MAGIC);
	pk_u16(p, RC_PROTO_VERSION);
	pk_u16(p, type);
	pk_u32(p, 0);
	pk_u32(p, req);
	return p;
}

static int pk_decode(struct pkt *p, struct rc_msg *m)
{
	pk_set_len(p, (uint32_t)p->n);
	return rc_proto_decode(p->b, p->n, m);
}

/* Decode p, expecting want; frees p. */
static void pk_expect(struct pkt *p, int want, const char *what)
{
	struct rc_msg m;

	check_ret(pk_decode(p, &m), want, "decode %s", what);
	free(p);
}

static void pk_topic_msg(struct pkt *p, uint32_t flags, uint32_t slot,
			 const char *topic, size_t len)
{
	pk_u32(p, flags);
	pk_u32(p, slot);
	pk_name(p, topic, len);
}

static void pk_sub(struct pkt *p, uint32_t state)
{
	pk_u32(p, 1);     /* client_id */
	pk_u32(p, 100);   /* pid */
	pk_u32(p, 1000);  /* uid */
	pk_u32(p, state);
	pk_u64(p, 0x80);  /* pos */
	pk_u64(p, 0x80);  /* lag */
	pk_u64(p, 2);     /* delivered */
	pk_u64(p, 0);     /* lost */
}

/* A STAT_TOPIC head claiming n_subs entries; the caller adds entries. */
static struct pkt *pk_stat_topic(const char *topic, size_t len, uint32_t n_subs)
{
	struct pkt *p = pk_new(RC_MSG_STAT_TOPIC, 5);

	pk_name(p, topic, len);
	pk_u32(p, 2);            /* publishers */
	pk_u64(p, 65536);        /* capacity */
	pk_u64(p, 0x100);        /* tail */
	pk_u64(p, 3);            /* messages */
	pk_u32(p, n_subs);
	return p;
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned int v;

		if (*s == ' ')
			continue;
		assert_int_equal(sscanf(s, "%2x", &v), 1);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		s++;
	}
	return n;
}

/* ---- one valid message of every type, with its exact wire bytes ---- */

static const struct rc_stat_sub two_subs[] = {
	{ .client_id = 1, .pid = 100, .uid = 1000, .state = RC_SUB_TETHERED,
	  .pos = 0x80, .lag = 0x80, .delivered = 2, .lost = 0 },
	{ .client_id = 2, .pid = 101, .uid = 0, .state = RC_SUB_UNTETHERED,
	  .pos = 0x40, .lag = 0xc0, .delivered = 1, .lost = 5 },
};

static const struct sample {
	struct rc_msg msg;
	const char *hex;
} samples[] = {
	{ { .type = RC_MSG_HELLO, .req = 1,
	    .hello = { .flags = RC_HELLO_RESUME, .client_id = 0x01020304, .bell = 7 } },
	  "52435031 0300 0100 1c000000 01000000  01000000 04030201 07000000" },
	{ { .type = RC_MSG_SUBSCRIBE, .req = 2,
	    .topic = { .topic = "a/b", .topic_len = 3 } },
	  "52435031 0300 0200 1d000000 02000000  00000000 00000000 0300 612f62" },
	{ { .type = RC_MSG_UNSUBSCRIBE, .req = 3,
	    .topic = { .topic = "a/b", .topic_len = 3 } },
	  "52435031 0300 0300 1d000000 03000000  00000000 00000000 0300 612f62" },
	{ { .type = RC_MSG_PUB_OPEN, .req = 4,
	    .topic = { .flags = RC_TOPIC_RESUME, .slot = 5, .topic = "x", .topic_len = 1 } },
	  "52435031 0300 0400 1b000000 04000000  01000000 05000000 0100 78" },
	{ { .type = RC_MSG_STAT, .req = 5,
	    .topic = { .topic = NULL, .topic_len = 0 } },
	  "52435031 0300 0500 1a000000 05000000  00000000 00000000 0000" },
	{ { .type = RC_MSG_HELLO_OK, .req = 1,
	    .hello_ok = { .client_id = 9, .bell = 3, .daemon_gen = 0x1122334455667788ull,
			  .node = "a@h", .node_len = 3 } },
	  "52435031 0300 4000 25000000 01000000  09000000 03000000 8877665544332211 0300 614068" },
	{ { .type = RC_MSG_SUB_OK, .req = 2,
	    .opened = { .slot = 1, .topic_id = 42, .capacity = 1u << 20, .pos = 0x40, .seq = 3,
			.flags = RC_OPENED_RESUMED } },
	  "52435031 0300 4100 34000000 02000000  01000000 2a000000 0000100000000000"
	  " 4000000000000000 0300000000000000 01000000" },
	{ { .type = RC_MSG_PUB_OK, .req = 4,
	    .opened = { .slot = 5, .topic_id = 43, .capacity = 65536 } },
	  "52435031 0300 4200 34000000 04000000  05000000 2b000000 0000010000000000"
	  " 0000000000000000 0000000000000000 00000000" },
	{ { .type = RC_MSG_OK, .req = 3 },
	  "52435031 0300 4300 10000000 03000000" },
	{ { .type = RC_MSG_ERROR, .req = 7,
	    .error = { .err = EACCES, .text = "denied", .text_len = 6 } },
	  "52435031 0300 4400 1c000000 07000000  0d000000 0600 64656e696564" },
	{ { .type = RC_MSG_STAT_TOPIC, .req = 5,
	    .stat_topic = { .topic = "t", .topic_len = 1, .publishers = 2,
			    .capacity = 65536, .tail = 0x100, .messages = 3,
			    .n_subs = 2, .subs = two_subs } },
	  "52435031 0300 4500 93000000 05000000  0100 74 02000000"
	  " 0000010000000000 0001000000000000 0300000000000000 02000000"
	  " 01000000 64000000 e8030000 01000000 8000000000000000"
	  " 8000000000000000 0200000000000000 0000000000000000"
	  " 02000000 65000000 00000000 02000000 4000000000000000"
	  " c000000000000000 0100000000000000 0500000000000000" },
	{ { .type = RC_MSG_STAT_END, .req = 5 },
	  "52435031 0300 4600 10000000 05000000" },
	{ { .type = RC_MSG_TRACE_SAMPLE, .req = 8, .trace = { .sample = 16 } },
	  "52435031 0300 0600 14000000 08000000  10000000" },
	{ { .type = RC_MSG_TRACE_SAMPLE_OK, .req = 8, .trace = { .sample = 1 } },
	  "52435031 0300 4700 14000000 08000000  01000000" },
};

#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

static void assert_name_equal(const char *want, uint16_t want_len,
			      const char *got, uint16_t got_len,
			      const uint8_t *pkt, size_t len)
{
	assert_int_equal(got_len, want_len);
	/* Decoded names point into the packet, never elsewhere. */
	assert_non_null(got);
	assert_true((const uint8_t *)got >= pkt && (const uint8_t *)got + got_len <= pkt + len);
	if (want_len)
		assert_memory_equal(got, want, want_len);
}

static void assert_sub_equal(const struct rc_stat_sub *a, const struct rc_stat_sub *b)
{
	assert_int_equal(a->client_id, b->client_id);
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->pos, b->pos);
	assert_int_equal(a->lag, b->lag);
	assert_int_equal(a->delivered, b->delivered);
	assert_int_equal(a->lost, b->lost);
}

/* got was decoded from pkt[0..len); want is what was encoded. */
static void assert_msg_equal(const struct rc_msg *want, const struct rc_msg *got,
			     const uint8_t *pkt, size_t len)
{
	uint32_t i;

	assert_int_equal(got->type, want->type);
	assert_int_equal(got->req, want->req);
	switch (want->type) {
	case RC_MSG_HELLO:
		assert_int_equal(got->hello.flags, want->hello.flags);
		assert_int_equal(got->hello.client_id, want->hello.client_id);
		assert_int_equal(got->hello.bell, want->hello.bell);
		break;
	case RC_MSG_SUBSCRIBE:
	case RC_MSG_UNSUBSCRIBE:
	case RC_MSG_PUB_OPEN:
	case RC_MSG_STAT:
		assert_int_equal(got->topic.flags, want->topic.flags);
		assert_int_equal(got->topic.slot, want->topic.slot);
		assert_name_equal(want->topic.topic, want->topic.topic_len,
				  got->topic.topic, got->topic.topic_len, pkt, len);
		break;
	case RC_MSG_HELLO_OK:
		assert_int_equal(got->hello_ok.client_id, want->hello_ok.client_id);
		assert_int_equal(got->hello_ok.bell, want->hello_ok.bell);
		assert_int_equal(got->hello_ok.daemon_gen, want->hello_ok.daemon_gen);
		assert_name_equal(want->hello_ok.node, want->hello_ok.node_len,
				  got->hello_ok.node, got->hello_ok.node_len, pkt, len);
		break;
	case RC_MSG_SUB_OK:
	case RC_MSG_PUB_OK:
		assert_int_equal(got->opened.slot, want->opened.slot);
		assert_int_equal(got->opened.topic_id, want->opened.topic_id);
		assert_int_equal(got->opened.capacity, want->opened.capacity);
		assert_int_equal(got->opened.pos, want->opened.pos);
		assert_int_equal(got->opened.flags, want->opened.flags);
		assert_int_equal(got->opened.seq, want->opened.seq);
		break;
	case RC_MSG_TRACE_SAMPLE:
	case RC_MSG_TRACE_SAMPLE_OK:
		assert_int_equal(got->trace.sample, want->trace.sample);
		break;
	case RC_MSG_ERROR:
		assert_int_equal(got->error.err, want->error.err);
		assert_name_equal(want->error.text, want->error.text_len,
				  got->error.text, got->error.text_len, pkt, len);
		break;
	case RC_MSG_STAT_TOPIC:
		assert_name_equal(want->stat_topic.topic, want->stat_topic.topic_len,
				  got->stat_topic.topic, got->stat_topic.topic_len, pkt, len);
		assert_int_equal(got->stat_topic.publishers, want->stat_topic.publishers);
		assert_int_equal(got->stat_topic.capacity, want->stat_topic.capacity);
		assert_int_equal(got->stat_topic.tail, want->stat_topic.tail);
		assert_int_equal(got->stat_topic.messages, want->stat_topic.messages);
		assert_int_equal(got->stat_topic.n_subs, want->stat_topic.n_subs);
		for (i = 0; i < want->stat_topic.n_subs; i++) {
			struct rc_stat_sub s;

			rc_proto_stat_sub(got, i, &s);
			assert_sub_equal(&s, &want->stat_topic.subs[i]);
		}
		break;
	case RC_MSG_OK:
	case RC_MSG_STAT_END:
		break;
	default:
		fail_msg("sample of unknown type %u", want->type);
	}
}

/* Encode m, decode the packet, compare; returns the packet length. */
static int round_trip(const struct rc_msg *m)
{
	uint8_t *buf = malloc(BIG);
	struct rc_msg d;
	int n;

	assert_non_null(buf);
	n = rc_proto_encode(m, buf, BIG);
	if (n < 0)
		fail_msg("encode %s: %d (%s)", rc_proto_type_name(m->type), n, err_str(n));
	memset(&d, 0, sizeof(d));
	check_ret(rc_proto_decode(buf, (size_t)n, &d), 0, "decode %s",
		  rc_proto_type_name(m->type));
	assert_msg_equal(m, &d, buf, (size_t)n);
	free(buf);
	return n;
}

/* Encode must refuse m with want and leave the buffer untouched. */
static void expect_encode(const struct rc_msg *m, int want, const char *what)
{
	uint8_t *buf = malloc(BIG), *ref = malloc(BIG);

	assert_non_null(buf);
	assert_non_null(ref);
	memset(buf, 0xa5, BIG);
	memset(ref, 0xa5, BIG);
	check_ret(rc_proto_encode(m, buf, BIG), want, "encode %s", what);
	assert_memory_equal(buf, ref, BIG);
	free(buf);
	free(ref);
}

/* ---- tests ---- */

static void test_golden_bytes(void **state)
{
	uint8_t want[512], got[512];
	size_t i, n;

	for (i = 0; i < N_SAMPLES; i++) {
		const struct rc_msg *m = &samples[i].msg;
		struct rc_msg d;

		n = unhex(samples[i].hex, want, sizeof(want));
		check_ret(rc_proto_encode(m, got, sizeof(got)), (int)n,
			  "encode %s", rc_proto_type_name(m->type));
		assert_memory_equal(got, want, n);

		memset(&d, 0, sizeof(d));
		check_ret(rc_proto_decode(want, n, &d), 0, "decode golden %s",
			  rc_proto_type_name(m->type));
		assert_msg_equal(m, &d, want, n);
	}
}

static void test_round_trip_every_type(void **state)
{
	size_t i;
	int seen[128] = { 0 };

	for (i = 0; i < N_SAMPLES; i++) {
		round_trip(&samples[i].msg);
		seen[samples[i].msg.type] = 1;
	}
	/* A new message type must get a sample (and a golden packet). */
	for (i = 0; i < 128; i++)
		if (strcmp(rc_proto_type_name((uint16_t)i), "?"))
			assert_true(seen[i]);
}

/* Every limit at its largest allowed value, and extreme integers. */
static void test_round_trip_limits(void **state)
{
	struct rc_stat_sub *subs = calloc(RC_PROTO_STAT_SUBS_MAX, sizeof(*subs));
	char name[RC_PROTO_TEXT_MAX];
	struct rc_msg m;
	uint32_t i;
	int n;

	assert_non_null(subs);
	for (i = 0; i < sizeof(name); i++)
		name[i] = (char)(1 + i % 255); /* every byte value but NUL */

	m = (struct rc_msg){ .type = RC_MSG_SUBSCRIBE, .req = UINT32_MAX,
			     .topic = { .flags = RC_TOPIC_RESUME, .slot = UINT32_MAX,
					.topic = name, .topic_len = 255 } };
	round_trip(&m);
	m = (struct rc_msg){ .type = RC_MSG_HELLO_OK,
			     .hello_ok = { .client_id = UINT32_MAX, .bell = UINT32_MAX,
					   .daemon_gen = UINT64_MAX, .node = name,
					   .node_len = RC_PROTO_NODE_MAX } };
	round_trip(&m);
	m = (struct rc_msg){ .type = RC_MSG_ERROR,
			     .error = { .err = 4095, .text = name,
					.text_len = RC_PROTO_TEXT_MAX } };
	round_trip(&m);
	m = (struct rc_msg){ .type = RC_MSG_ERROR, .error = { .err = 1 } };
	round_trip(&m);
	m = (struct rc_msg){ .type = RC_MSG_PUB_OK,
			     .opened = { .slot = UINT32_MAX, .topic_id = UINT32_MAX,
					 .capacity = 1ull << 63 } };
	round_trip(&m);

	for (i = 0; i < RC_PROTO_STAT_SUBS_MAX; i++)
		subs[i] = (struct rc_stat_sub){
			.client_id = i, .pid = ~i, .uid = i * 7,
			.state = i % 2 ? RC_SUB_TETHERED : RC_SUB_UNTETHERED,
			.pos = UINT64_MAX - i, .lag = i, .delivered = (uint64_t)i << 32,
			.lost = UINT64_MAX,
		};
	m = (struct rc_msg){ .type = RC_MSG_STAT_TOPIC,
			     .stat_topic = { .topic = name, .topic_len = 255,
					     .publishers = UINT32_MAX, .capacity = 1,
					     .tail = UINT64_MAX, .messages = UINT64_MAX,
					     .n_subs = RC_PROTO_STAT_SUBS_MAX, .subs = subs } };
	n = round_trip(&m);
	/* The largest possible message still fits in one packet. */
	assert_true(n <= RC_PROTO_MAX_MSG);
	assert_int_equal(n, RC_PROTO_HDR_SIZE + 2 + 255 + 4 + 8 + 8 + 8 + 4 +
			    RC_PROTO_STAT_SUBS_MAX * SUB_WIRE);
	free(subs);
}

/* A decoded message re-encodes to the very same bytes. */
static void test_reencode_identical(void **state)
{
	uint8_t pkt[512], again[512];
	struct rc_stat_sub subs[2];
	size_t i, n;

	for (i = 0; i < N_SAMPLES; i++) {
		struct rc_msg d;
		uint32_t j;

		n = unhex(samples[i].hex, pkt, sizeof(pkt));
		check_ret(rc_proto_decode(pkt, n, &d), 0, "decode sample %zu", i);
		if (d.type == RC_MSG_STAT_TOPIC) {
			assert_true(d.stat_topic.n_subs <= 2);
			for (j = 0; j < d.stat_topic.n_subs; j++)
				rc_proto_stat_sub(&d, j, &subs[j]);
			d.stat_topic.subs = subs;
		}
		check_ret(rc_proto_encode(&d, again, sizeof(again)), (int)n,
			  "re-encode %s", rc_proto_type_name(d.type));
		assert_memory_equal(again, pkt, n);
	}
}

/* Every prefix of a valid packet is malformed, also with a matching length field. */
static void test_truncated(void **state)
{
	uint8_t pkt[512], cut[512];
	struct rc_msg m;
	size_t i, len, n;

	for (i = 0; i < N_SAMPLES; i++) {
		const char *name = rc_proto_type_name(samples[i].msg.type);

		n = (size_t)rc_proto_encode(&samples[i].msg, pkt, sizeof(pkt));
		for (len = 0; len < n; len++) {
			/* Exactly len bytes on the heap, so ASan sees any overread. */
			uint8_t *exact = malloc(len ? len : 1);

			assert_non_null(exact);
			memcpy(exact, pkt, len);
			check_ret(rc_proto_decode(exact, len, &m), -EBADMSG,
				  "%s cut to %zu of %zu bytes", name, len, n);
			if (len >= RC_PROTO_HDR_SIZE) {
				/* Now the header agrees, so only the body parser can notice. */
				memcpy(cut, pkt, len);
				cut[8] = (uint8_t)len;
				cut[9] = (uint8_t)(len >> 8);
				memcpy(exact, cut, len);
				check_ret(rc_proto_decode(exact, len, &m), -EBADMSG,
					  "%s cut to %zu of %zu bytes, length patched",
					  name, len, n);
			}
			free(exact);
		}
	}
}

static void test_trailing_byte(void **state)
{
	uint8_t pkt[512];
	struct rc_msg m;
	size_t i, n;

	for (i = 0; i < N_SAMPLES; i++) {
		const char *name = rc_proto_type_name(samples[i].msg.type);

		n = (size_t)rc_proto_encode(&samples[i].msg, pkt, sizeof(pkt) - 1);
		pkt[n] = 0;
		/* The length field still says n. */
		check_ret(rc_proto_decode(pkt, n + 1, &m), -EBADMSG, "%s + 1 byte", name);
		/* The length field says n + 1: the body parser must see the extra byte. */
		pkt[8] = (uint8_t)(n + 1);
		check_ret(rc_proto_decode(pkt, n + 1, &m), -EBADMSG,
			  "%s + 1 byte, length patched", name);
	}
}

/* A length field that disagrees with the packet, in either direction. */
static void test_length_mismatch(void **state)
{
	uint8_t pkt[512];
	struct rc_msg m;
	int n = rc_proto_encode(&samples[1].msg, pkt, sizeof(pkt));

	assert_true(n > 0);
	pkt[8] = (uint8_t)(n - 1);
	check_ret(rc_proto_decode(pkt, (size_t)n, &m), -EBADMSG, "length field n-1");
	pkt[8] = (uint8_t)(n + 1);
	check_ret(rc_proto_decode(pkt, (size_t)n, &m), -EBADMSG, "length field n+1");
	pkt[8] = (uint8_t)n;
	pkt[11] = 1; /* n + 16 MiB */
	check_ret(rc_proto_decode(pkt, (size_t)n, &m), -EBADMSG, "length field n+2^24");
}

static void test_oversized(void **state)
{
	struct rc_stat_sub *subs = calloc(1366, sizeof(*subs));
	struct rc_msg m;
	struct pkt *p;
	uint32_t i;

	assert_non_null(subs);

	/*
	 * Decode: a STAT_TOPIC whose every length agrees, 1364 entries and a
	 * 15-byte topic: exactly RC_PROTO_MAX_MSG + 1 bytes.
	 */
	p = pk_stat_topic("fifteen-bytes!!", 15, 1364);
	for (i = 0; i < 1364; i++)
		pk_sub(p, RC_SUB_TETHERED);
	assert_int_equal(p->n, RC_PROTO_MAX_MSG + 1);
	pk_expect(p, -EBADMSG, "STAT_TOPIC of RC_PROTO_MAX_MSG + 1 bytes");

	/* Decode: any packet over the limit, whatever its type says. */
	p = pk_new(RC_MSG_OK, 1);
	p->n = RC_PROTO_MAX_MSG + 1;
	pk_expect(p, -EBADMSG, "OK of RC_PROTO_MAX_MSG + 1 bytes");

	/* Decode: one entry over the limit, though the packet is small enough. */
	p = pk_stat_topic("t", 1, RC_PROTO_STAT_SUBS_MAX + 1);
	for (i = 0; i < RC_PROTO_STAT_SUBS_MAX + 1; i++)
		pk_sub(p, RC_SUB_TETHERED);
	assert_true(p->n <= RC_PROTO_MAX_MSG);
	pk_expect(p, -EBADMSG, "STAT_TOPIC with RC_PROTO_STAT_SUBS_MAX + 1 entries");

	/*
	 * Encode: entries enough for more than RC_PROTO_MAX_MSG bytes.  The
	 * entry limit catches it first (-EINVAL), the same rule as above.
	 */
	for (i = 0; i < 1366; i++)
		subs[i].state = RC_SUB_TETHERED;
	m = (struct rc_msg){ .type = RC_MSG_STAT_TOPIC,
			     .stat_topic = { .topic = "t", .topic_len = 1, .capacity = 4096,
					     .n_subs = 1366, .subs = subs } };
	expect_encode(&m, -EINVAL, "STAT_TOPIC of more than RC_PROTO_MAX_MSG bytes");
	m.stat_topic.n_subs = RC_PROTO_STAT_SUBS_MAX + 1;
	expect_encode(&m, -EINVAL, "STAT_TOPIC with RC_PROTO_STAT_SUBS_MAX + 1 entries");
	m.stat_topic.n_subs = RC_PROTO_STAT_SUBS_MAX;
	round_trip(&m);
	free(subs);
}

static void test_bad_magic(void **state)
{
	uint8_t pkt[512];
	struct rc_msg m;
	int i, n = rc_proto_encode(&samples[0].msg, pkt, sizeof(pkt));

	assert_true(n > 0);
	for (i = 0; i < 4; i++) {
		pkt[i] ^= 0x20;
		check_ret(rc_proto_decode(pkt, (size_t)n, &m), -EBADMSG, "magic byte %d flipped", i);
		/* Magic is checked before version: a stranger is not "another version". */
		pkt[4] = RC_PROTO_VERSION + 1;
		check_ret(rc_proto_decode(pkt, (size_t)n, &m), -EBADMSG,
			  "magic byte %d flipped, another version", i);
		pkt[4] = RC_PROTO_VERSION;
		pkt[i] ^= 0x20;
	}
	check_ret(rc_proto_decode(pkt, (size_t)n, &m), 0, "magic restored");
}

static void test_wrong_version(void **state)
{
	static const uint16_t versions[] = { 0, 1, 2, 4, 0x100, 0xffff };
	uint8_t pkt[512];
	struct rc_msg m;
	size_t i;
	int n = rc_proto_encode(&samples[0].msg, pkt, sizeof(pkt));

	assert_true(n > 0);
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		pkt[4] = (uint8_t)versions[i];
		pkt[5] = (uint8_t)(versions[i] >> 8);
		check_ret(rc_proto_decode(pkt, (size_t)n, &m), -EPROTO, "version %u", versions[i]);
		/*
		 * Another version may lay out its body differently: a bare
		 * header with a length that disagrees is still -EPROTO.
		 */
		check_ret(rc_proto_decode(pkt, RC_PROTO_HDR_SIZE, &m), -EPROTO,
			  "version %u, header only", versions[i]);
	}
}

static void test_unknown_type(void **state)
{
	static const uint16_t types[] = { 0, 7, 63, 72, 0x100, 0xffff };
	struct rc_msg m;
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		char what[64];

		snprintf(what, sizeof(what), "type %u", types[i]);
		pk_expect(pk_new(types[i], 1), -EBADMSG, what);
		m = (struct rc_msg){ .type = types[i] };
		expect_encode(&m, -EINVAL, what);
		assert_string_equal(rc_proto_type_name(types[i]), "?");
	}
}

/* Topic rules for every message that carries one, on both sides. */
static void test_topic_rules(void **state)
{
	static const uint16_t types[] = {
		RC_MSG_SUBSCRIBE, RC_MSG_UNSUBSCRIBE, RC_MSG_PUB_OPEN, RC_MSG_STAT,
		RC_MSG_STAT_TOPIC,
	};
	char big[256];
	size_t i;

	memset(big, 'x', sizeof(big));
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		static const struct { const char *s; size_t len; const char *what; } bad[] = {
			{ "a\0b", 3, "NUL inside" },
			{ "ab\0", 3, "NUL at the end" },
			{ "\0", 1, "just NUL" },
			{ NULL, 256, "256 bytes" },
			{ "", 0, "empty" },
		};
		uint16_t t = types[i];
		const char *name = rc_proto_type_name(t);
		size_t j;

		for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			const char *s = bad[j].s ? bad[j].s : big;
			int want = -EBADMSG;
			struct rc_msg m = { .type = t };
			struct pkt *p;
			char what[96];

			/* STAT with an empty topic means "every topic". */
			if (t == RC_MSG_STAT && bad[j].len == 0)
				want = 0;
			snprintf(what, sizeof(what), "%s topic %s", name, bad[j].what);

			if (t == RC_MSG_STAT_TOPIC) {
				p = pk_stat_topic(s, bad[j].len, 0);
				m.stat_topic = (typeof(m.stat_topic)){
					.topic = s, .topic_len = (uint16_t)bad[j].len,
					.capacity = 4096 };
			} else {
				p = pk_new(t, 1);
				pk_topic_msg(p, 0, 0, s, bad[j].len);
				m.topic = (typeof(m.topic)){ .topic = s,
							     .topic_len = (uint16_t)bad[j].len };
			}
			pk_expect(p, want, what);
			if (want)
				expect_encode(&m, -EINVAL, what);
			else
				round_trip(&m);
		}

		/* 255 bytes is fine. */
		{
			struct rc_msg m = { .type = t };

			if (t == RC_MSG_STAT_TOPIC)
				m.stat_topic = (typeof(m.stat_topic)){
					.topic = big, .topic_len = 255, .capacity = 4096 };
			else
				m.topic = (typeof(m.topic)){ .topic = big, .topic_len = 255 };
			round_trip(&m);
		}
	}
}

/* A name or text with a length but no bytes is the caller's bug. */
static void test_null_pointers_encode(void **state)
{
	struct rc_msg m = { .type = RC_MSG_SUBSCRIBE,
			    .topic = { .topic = NULL, .topic_len = 3 } };

	expect_encode(&m, -EINVAL, "SUBSCRIBE topic NULL, length 3");
	m = (struct rc_msg){ .type = RC_MSG_STAT_TOPIC,
			     .stat_topic = { .topic = "t", .topic_len = 1, .capacity = 4096,
					     .n_subs = 1, .subs = NULL } };
	expect_encode(&m, -EINVAL, "STAT_TOPIC subs NULL, n_subs 1");
	m = (struct rc_msg){ .type = RC_MSG_ERROR, .error = { .err = EIO, .text_len = 4 } };
	expect_encode(&m, -EINVAL, "ERROR text NULL, length 4");
}

static void test_stat_topic_counts(void **state)
{
	struct pkt *p;

	p = pk_stat_topic("t", 1, 2);
	pk_sub(p, RC_SUB_TETHERED);
	pk_expect(p, -EBADMSG, "n_subs 2, one entry present");

	p = pk_stat_topic("t", 1, 2);
	pk_sub(p, RC_SUB_TETHERED);
	pk_bytes(p, "0123456789abcdef0123456789abcdef0123456789abcde", SUB_WIRE - 1);
	pk_expect(p, -EBADMSG, "n_subs 2, second entry one byte short");

	pk_expect(pk_stat_topic("t", 1, RC_PROTO_STAT_SUBS_MAX), -EBADMSG,
		  "n_subs RC_PROTO_STAT_SUBS_MAX, none present");
	pk_expect(pk_stat_topic("t", 1, UINT32_MAX), -EBADMSG, "n_subs UINT32_MAX, none present");

	/* n_subs * 48 overflows 32 bits to 0: still nothing present. */
	pk_expect(pk_stat_topic("t", 1, 0x80000000u / 24), -EBADMSG, "n_subs * 48 == 2^32");

	p = pk_stat_topic("t", 1, 0);
	pk_sub(p, RC_SUB_TETHERED);
	pk_expect(p, -EBADMSG, "n_subs 0, one entry present");

	p = pk_stat_topic("t", 1, 1);
	pk_sub(p, RC_SUB_TETHERED);
	pk_expect(p, 0, "n_subs 1, one entry present");
}

static void test_stat_sub_state(void **state)
{
	static const uint32_t bad[] = { RC_SUB_FREE, 3, UINT32_MAX };
	struct rc_stat_sub s = two_subs[0];
	struct rc_msg m = samples[10].msg;
	size_t i;

	assert_int_equal(m.type, RC_MSG_STAT_TOPIC);
	m.stat_topic.n_subs = 1;
	m.stat_topic.subs = &s;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pkt *p = pk_stat_topic("t", 1, 1);
		char what[64];

		snprintf(what, sizeof(what), "subscriber state %u", bad[i]);
		pk_sub(p, bad[i]);
		pk_expect(p, -EBADMSG, what);
		s.state = bad[i];
		expect_encode(&m, -EINVAL, what);
	}
}

/*
 * Where a subscriber starts is the daemon's word (a client's own slot line
 * can be written by others): a SUB_OK must carry a real start, sequence 1
 * or more at an aligned position, and a PUB_OK none at all.
 */
static void test_opened_start(void **state)
{
	struct rc_msg m = samples[6].msg; /* SUB_OK */

	(void)state;
	m.opened.seq = 0;
	expect_encode(&m, -EINVAL, "SUB_OK with sequence 0");
	m = samples[6].msg;
	m.opened.pos = 0x41;
	expect_encode(&m, -EINVAL, "SUB_OK at an unaligned position");
	m = samples[7].msg; /* PUB_OK */
	m.opened.seq = 1;
	expect_encode(&m, -EINVAL, "PUB_OK with a start");
	m = samples[7].msg;
	m.opened.pos = 8;
	expect_encode(&m, -EINVAL, "PUB_OK with a start position");
}

static void test_capacity(void **state)
{
	static const uint64_t bad[] = { 0, 3, 65537, UINT64_MAX, (1ull << 63) + 1 };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rc_msg m = samples[6].msg; /* SUB_OK */
		struct pkt *p;
		char what[64];

		snprintf(what, sizeof(what), "SUB_OK capacity %#llx", (unsigned long long)bad[i]);
		m.opened.capacity = bad[i];
		expect_encode(&m, -EINVAL, what);
		p = pk_new(RC_MSG_SUB_OK, 2);
		pk_u32(p, 1);
		pk_u32(p, 42);
		pk_u64(p, bad[i]);
		pk_u64(p, 0x40);
		pk_u64(p, 3);
		pk_expect(p, -EBADMSG, what);

		snprintf(what, sizeof(what), "STAT_TOPIC capacity %#llx", (unsigned long long)bad[i]);
		m = samples[10].msg;
		m.stat_topic.capacity = bad[i];
		expect_encode(&m, -EINVAL, what);
		p = pk_new(RC_MSG_STAT_TOPIC, 5);
		pk_name(p, "t", 1);
		pk_u32(p, 0);
		pk_u64(p, bad[i]);
		pk_u64(p, 0);
		pk_u64(p, 0);
		pk_u32(p, 0);
		pk_expect(p, -EBADMSG, what);
	}
}

static void test_flags(void **state)
{
	struct rc_msg m;
	struct pkt *p;

	/* HELLO: only RC_HELLO_RESUME. */
	m = (struct rc_msg){ .type = RC_MSG_HELLO, .hello = { .flags = 0x2 } };
	expect_encode(&m, -EINVAL, "HELLO flags 0x2");
	m.hello.flags = 0x80000000u | RC_HELLO_RESUME;
	expect_encode(&m, -EINVAL, "HELLO flags 0x80000001");
	p = pk_new(RC_MSG_HELLO, 1);
	pk_u32(p, 0x2);
	pk_u32(p, 0);
	pk_u32(p, 0);
	pk_expect(p, -EBADMSG, "HELLO flags 0x2");

	/* HELLO: ids only with RC_HELLO_RESUME. */
	m = (struct rc_msg){ .type = RC_MSG_HELLO, .hello = { .client_id = 5 } };
	expect_encode(&m, -EINVAL, "HELLO client_id without RESUME");
	m = (struct rc_msg){ .type = RC_MSG_HELLO, .hello = { .bell = 5 } };
	expect_encode(&m, -EINVAL, "HELLO bell without RESUME");
	p = pk_new(RC_MSG_HELLO, 1);
	pk_u32(p, 0);
	pk_u32(p, 5);
	pk_u32(p, 0);
	pk_expect(p, -EBADMSG, "HELLO client_id without RESUME");
	m = (struct rc_msg){ .type = RC_MSG_HELLO };
	round_trip(&m);

	/* SUBSCRIBE / PUB_OPEN: only RC_TOPIC_RESUME; slot only with it. */
	m = (struct rc_msg){ .type = RC_MSG_SUBSCRIBE,
			     .topic = { .flags = 0x4, .topic = "a", .topic_len = 1 } };
	expect_encode(&m, -EINVAL, "SUBSCRIBE flags 0x4");
	p = pk_new(RC_MSG_PUB_OPEN, 1);
	pk_topic_msg(p, RC_TOPIC_RESUME | 0x100, 0, "a", 1);
	pk_expect(p, -EBADMSG, "PUB_OPEN flags 0x101");
	p = pk_new(RC_MSG_SUBSCRIBE, 1);
	pk_topic_msg(p, 0, 3, "a", 1);
	pk_expect(p, -EBADMSG, "SUBSCRIBE slot without RESUME");
	m = (struct rc_msg){ .type = RC_MSG_PUB_OPEN,
			     .topic = { .slot = 3, .topic = "a", .topic_len = 1 } };
	expect_encode(&m, -EINVAL, "PUB_OPEN slot without RESUME");

	/* UNSUBSCRIBE and STAT take no flags at all. */
	p = pk_new(RC_MSG_UNSUBSCRIBE, 1);
	pk_topic_msg(p, RC_TOPIC_RESUME, 0, "a", 1);
	pk_expect(p, -EBADMSG, "UNSUBSCRIBE flags RESUME");
	p = pk_new(RC_MSG_STAT, 1);
	pk_topic_msg(p, RC_TOPIC_RESUME, 0, "", 0);
	pk_expect(p, -EBADMSG, "STAT flags RESUME");
	m = (struct rc_msg){ .type = RC_MSG_STAT, .topic = { .flags = RC_TOPIC_RESUME } };
	expect_encode(&m, -EINVAL, "STAT flags RESUME");
	p = pk_new(RC_MSG_STAT, 1);
	pk_topic_msg(p, 0, 1, "", 0);
	pk_expect(p, -EBADMSG, "STAT slot 1");
}

static void test_error_rules(void **state)
{
	static const int32_t bad_err[] = { 0, -1, -EACCES, INT32_MIN, 4096, INT32_MAX };
	char text[RC_PROTO_TEXT_MAX + 1];
	struct rc_msg m;
	struct pkt *p;
	size_t i;

	memset(text, 'e', sizeof(text));
	for (i = 0; i < sizeof(bad_err) / sizeof(bad_err[0]); i++) {
		char what[64];

		snprintf(what, sizeof(what), "ERROR err %d", bad_err[i]);
		m = (struct rc_msg){ .type = RC_MSG_ERROR, .error = { .err = bad_err[i] } };
		expect_encode(&m, -EINVAL, what);
		p = pk_new(RC_MSG_ERROR, 1);
		pk_u32(p, (uint32_t)bad_err[i]);
		pk_name(p, "", 0);
		pk_expect(p, -EBADMSG, what);
	}

	m = (struct rc_msg){ .type = RC_MSG_ERROR,
			     .error = { .err = EIO, .text = text, .text_len = RC_PROTO_TEXT_MAX + 1 } };
	expect_encode(&m, -EINVAL, "ERROR text of RC_PROTO_TEXT_MAX + 1");
	p = pk_new(RC_MSG_ERROR, 1);
	pk_u32(p, EIO);
	pk_name(p, text, RC_PROTO_TEXT_MAX + 1);
	pk_expect(p, -EBADMSG, "ERROR text of RC_PROTO_TEXT_MAX + 1");

	m.error.text = "no\0pe";
	m.error.text_len = 5;
	expect_encode(&m, -EINVAL, "ERROR text with NUL");
	p = pk_new(RC_MSG_ERROR, 1);
	pk_u32(p, EIO);
	pk_name(p, "no\0pe", 5);
	pk_expect(p, -EBADMSG, "ERROR text with NUL");

	/* A text length pointing past the packet. */
	p = pk_new(RC_MSG_ERROR, 1);
	pk_u32(p, EIO);
	pk_u16(p, 10);
	pk_bytes(p, "short", 5);
	pk_expect(p, -EBADMSG, "ERROR text_len past the end");
}

static void test_node_rules(void **state)
{
	char node[RC_PROTO_NODE_MAX + 1];
	static const struct { const char *s; size_t len; const char *what; } bad[] = {
		{ "", 0, "empty" },
		{ "a\0b", 3, "with NUL" },
		{ NULL, RC_PROTO_NODE_MAX + 1, "of RC_PROTO_NODE_MAX + 1 bytes" },
	};
	size_t i;

	memset(node, 'n', sizeof(node));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *s = bad[i].s ? bad[i].s : node;
		struct rc_msg m = { .type = RC_MSG_HELLO_OK,
				    .hello_ok = { .node = s, .node_len = (uint16_t)bad[i].len } };
		struct pkt *p = pk_new(RC_MSG_HELLO_OK, 1);
		char what[64];

		snprintf(what, sizeof(what), "HELLO_OK node %s", bad[i].what);
		expect_encode(&m, -EINVAL, what);
		pk_u32(p, 1);
		pk_u32(p, 2);
		pk_u64(p, 3);
		pk_name(p, s, bad[i].len);
		pk_expect(p, -EBADMSG, what);
	}
}

/* Too small a buffer: -EMSGSIZE, and not one byte written. */
static void test_encode_small_buffer(void **state)
{
	uint8_t buf[512], ref[512];
	size_t i, cap;

	for (i = 0; i < N_SAMPLES; i++) {
		const struct rc_msg *m = &samples[i].msg;
		int n = rc_proto_encode(m, buf, sizeof(buf));

		assert_true(n > 0);
		for (cap = 0; cap < (size_t)n; cap++) {
			memset(buf, 0xa5, sizeof(buf));
			memset(ref, 0xa5, sizeof(ref));
			check_ret(rc_proto_encode(m, buf, cap), -EMSGSIZE,
				  "%s into %zu of %d bytes", rc_proto_type_name(m->type), cap, n);
			assert_memory_equal(buf, ref, sizeof(buf));
		}
		check_ret(rc_proto_encode(m, buf, cap), n, "%s into exactly %d bytes",
			  rc_proto_type_name(m->type), n);
	}
	/* cap 0 with no buffer at all. */
	check_ret(rc_proto_encode(&samples[8].msg, NULL, 0), -EMSGSIZE, "OK into NULL");
}

/* A failed decode leaves the caller's message as it was. */
static void test_decode_failure_leaves_msg(void **state)
{
	struct rc_msg m, ref;
	struct pkt *p = pk_stat_topic("t", 1, 2);

	pk_sub(p, RC_SUB_TETHERED); /* one entry short */
	memset(&m, 0x5a, sizeof(m));
	memcpy(&ref, &m, sizeof(m));
	check_ret(pk_decode(p, &m), -EBADMSG, "STAT_TOPIC one entry short");
	assert_memory_equal(&m, &ref, sizeof(m));
	free(p);
}

/* Packets at odd addresses: the codec reads bytes, never casts to structs. */
static void test_unaligned(void **state)
{
	uint8_t *raw = malloc(600);
	size_t i;

	assert_non_null(raw);
	for (i = 0; i < N_SAMPLES; i++) {
		const struct rc_msg *m = &samples[i].msg;
		size_t off;

		for (off = 1; off < 8; off++) {
			struct rc_msg d;
			int n = rc_proto_encode(m, raw + off, 512);

			assert_true(n > 0);
			check_ret(rc_proto_decode(raw + off, (size_t)n, &d), 0,
				  "%s at offset %zu", rc_proto_type_name(m->type), off);
			assert_msg_equal(m, &d, raw + off, (size_t)n);
		}
	}
	free(raw);
}

static void test_stat_sub_bounds(void **state)
{
	uint8_t pkt[512];
	struct rc_stat_sub s;
	struct rc_msg d;
	size_t n;

	/* Bytes after the packet are not zero, so reading them would show. */
	memset(pkt, 0xff, sizeof(pkt));
	n = unhex(samples[10].hex, pkt, sizeof(pkt));

	check_ret(rc_proto_decode(pkt, n, &d), 0, "STAT_TOPIC");
	rc_proto_stat_sub(&d, 1, &s);
	assert_sub_equal(&s, &two_subs[1]);

	/* Past the end: zeros, not the bytes after the packet. */
	memset(&s, 0xff, sizeof(s));
	rc_proto_stat_sub(&d, 2, &s);
	assert_int_equal(s.client_id, 0);
	assert_int_equal(s.state, 0);
	assert_int_equal(s.lost, 0);
	memset(&s, 0xff, sizeof(s));
	rc_proto_stat_sub(&d, UINT32_MAX, &s);
	assert_int_equal(s.pos, 0);

	/*
	 * Not a STAT_TOPIC: zeros too, even when the union still holds a
	 * STAT_TOPIC's entry pointer and count.
	 */
	d.type = RC_MSG_HELLO_OK;
	memset(&s, 0xff, sizeof(s));
	rc_proto_stat_sub(&d, 0, &s);
	assert_int_equal(s.client_id, 0);
	assert_int_equal(s.pos, 0);
}

static void test_type_names(void **state)
{
	static const struct { uint16_t type; const char *name; } names[] = {
		{ RC_MSG_HELLO, "HELLO" }, { RC_MSG_SUBSCRIBE, "SUBSCRIBE" },
		{ RC_MSG_UNSUBSCRIBE, "UNSUBSCRIBE" }, { RC_MSG_PUB_OPEN, "PUB_OPEN" },
		{ RC_MSG_STAT, "STAT" }, { RC_MSG_HELLO_OK, "HELLO_OK" },
		{ RC_MSG_SUB_OK, "SUB_OK" }, { RC_MSG_PUB_OK, "PUB_OK" },
		{ RC_MSG_OK, "OK" }, { RC_MSG_ERROR, "ERROR" },
		{ RC_MSG_STAT_TOPIC, "STAT_TOPIC" }, { RC_MSG_STAT_END, "STAT_END" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(rc_proto_type_name(names[i].type), names[i].name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_bytes),
		cmocka_unit_test(test_round_trip_every_type),
		cmocka_unit_test(test_round_trip_limits),
		cmocka_unit_test(test_reencode_identical),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_trailing_byte),
		cmocka_unit_test(test_length_mismatch),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_topic_rules),
		cmocka_unit_test(test_null_pointers_encode),
		cmocka_unit_test(test_stat_topic_counts),
		cmocka_unit_test(test_stat_sub_state),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_opened_start),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_error_rules),
		cmocka_unit_test(test_node_rules),
		cmocka_unit_test(test_encode_small_buffer),
		cmocka_unit_test(test_decode_failure_leaves_msg),
		cmocka_unit_test(test_unaligned),
		cmocka_unit_test(test_stat_sub_bounds),
		cmocka_unit_test(test_type_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
