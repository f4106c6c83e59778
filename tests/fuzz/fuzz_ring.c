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
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ring_sub.h"

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
	return 0;
}
