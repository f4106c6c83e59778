/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: arbitrary bytes as the records of a topic ring, read
 * the way a subscriber reads them (rc_ring_peek, tethered and not).
 *
 * Input: the reader's start position (8 bytes), tail.pos (8 bytes), then
 * the ring's data, zero-filled to RC_CAPACITY_MIN.  The salt is 0, so a
 * record at pos is committed when its commit word's low half is pos / 8.
 *
 * Whatever the bytes, a peek must return 1, 0, -EBADMSG or -ESTALE; a
 * record it hands out must start at the position asked for and lie in the
 * ring (ASan checks every payload byte we touch), and positions only move
 * forward.
 *
 * Then the daemon's crash repair runs on the same bytes, for a dead
 * publisher whose claim starts at the reader's start and whose end and
 * client id come from the tail's high bits: it must return 1, 0 or
 * -EBADMSG, write nothing outside the claim, and leave a ring the reader
 * still walks by the rules above.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "ring_sub.h"
#include "../../daemon/ring_daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP RC_CAPACITY_MIN
#define STEPS 4096

static void walk(const struct rc_ring *r, uint64_t pos, bool tethered)
{
	for (unsigned i = 0; i < STEPS; i++) {
		uint64_t before = pos;
		struct rc_view v;
		volatile uint8_t sum = 0;
		int ret = rc_ring_peek(r, &pos, &v, tethered);

		if (ret != 1 && ret != 0 && ret != -EBADMSG && ret != -ESTALE)
			__builtin_trap();
		if (ret != 1)
			return;
		/* Padding may move pos, never backwards; the record starts where pos now is. */
		if (pos < before || (const uint8_t *)v.rec != r->data + (pos & r->mask))
			__builtin_trap();
		if ((const uint8_t *)v.data != (const uint8_t *)(v.rec + 1) ||
		    v.len > r->max_payload || (const uint8_t *)v.data + v.len > r->data + r->cap ||
		    v.next <= pos)
			__builtin_trap();
		for (size_t k = 0; k < v.len; k++)
			sum += ((const uint8_t *)v.data)[k];
		(void)sum;
		pos = v.next;
	}
}

/* The repair of a dead claim [start, start + (tail >> 48) & ~7) by client (tail >> 32) & 0xffff. */
static void repair(struct rc_ring *r, uint64_t start, uint64_t tail)
{
	static struct rc_ctl_hdr *ctl;
	static uint8_t *before;
	uint64_t s = start & ~(uint64_t)(RC_REC_ALIGN - 1), len = (tail >> 48) & ~(uint64_t)(RC_REC_ALIGN - 1);
	int ret;

	if (!ctl) {
		ctl = calloc(1, sizeof(*ctl));
		before = malloc(CAP);
		if (!ctl || !before)
			abort();
	}
	memset(r->hdr->pubs, 0, sizeof(r->hdr->pubs));
	r->ctl = ctl;
	atomic_store(&r->hdr->pubs[0].client_id, (uint32_t)((tail >> 32) & 0xffff) | 1);
	atomic_store(&r->hdr->pubs[0].end, s + len);
	atomic_store(&r->hdr->pubs[0].claim, s | RC_CLAIM_BUSY);
	memcpy(before, r->data, CAP);
	ret = rc_ring_repair_pub(r, 0, NULL);
	if (ret != 1 && ret != 0 && ret != -EBADMSG)
		__builtin_trap();
	/*
	 * Nothing outside the claim changed (a claim longer than the ring is
	 * refused), and what changed inside is padding that ends within the
	 * claim and the ring: it never hides a record after the claim.
	 */
	for (uint64_t off = 0; off < CAP; off += RC_REC_ALIGN) {
		uint64_t into = (off - (s & (CAP - 1))) & (CAP - 1), word, pad;

		if (!memcmp(before + off, r->data + off, RC_REC_ALIGN))
			continue;
		if (len > CAP || into >= len)
			__builtin_trap();
		memcpy(&word, r->data + off, sizeof(word));
		pad = (word >> 32) & ~(uint64_t)RC_REC_PAD;
		if (!((word >> 32) & RC_REC_PAD) || pad > len - into || pad > CAP - off)
			__builtin_trap();
	}
	walk(r, start, true);
	walk(r, start, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	static struct rc_ring_hdr *hdr;
	static uint8_t *ring;
	struct rc_ring r = { 0 };
	uint64_t start, tail;

	if (size < 16)
		return 0;
	if (!hdr) {
		hdr = calloc(1, RC_RING_HDR_SIZE);
		ring = malloc(CAP); /* exactly the ring: ASan sees any read past it */
		if (!hdr || !ring)
			abort();
	}
	memcpy(&start, in, 8);
	memcpy(&tail, in + 8, 8);
	memset(ring, 0, CAP);
	memcpy(ring, in + 16, size - 16 < CAP ? size - 16 : CAP);
	atomic_store(&hdr->tail.pos, tail);
	r.hdr = hdr;
	r.data = ring;
	r.cap = CAP;
	r.mask = CAP - 1;
	r.max_payload = CAP / 2 - sizeof(struct rc_rec);
	r.salt = 0;
	walk(&r, start, true);
	walk(&r, start, false);
	repair(&r, start, tail);
	return 0;
}
