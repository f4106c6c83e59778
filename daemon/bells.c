/* SPDX-License-Identifier: MIT */
/*
 * The doorbell allocator (registry.h, "Bells"): which of the bells file's
 * RC_BELLS doorbells a connected client holds, and which an orphan slot of
 * the previous daemon still names.  Its state is the daemon's own, in
 * struct rcd_registry; the bells file is only what clients ring.
 */
#include <errno.h>

#include "registry.h"

bool rcd_bell_live(const struct rcd_registry *reg, uint32_t bell)
{
	return bell < RC_BELLS && (reg->bell_live[bell / 8] & (1u << (bell % 8)));
}

int rcd_bell_take(struct rcd_registry *reg, uint32_t bell)
{
	if (bell >= RC_BELLS)
		return -EINVAL;
	if (rcd_bell_live(reg, bell))
		return -EBUSY;
	reg->bell_live[bell / 8] |= (uint8_t)(1u << (bell % 8));
	return 0;
}

int rcd_bell_get(struct rcd_registry *reg)
{
	unsigned i;

	/* Round-robin from the last one handed out: a just-freed bell may
	 * still get a late ring from a publisher that looked it up before
	 * the slot was released, so do not reuse it first. */
	for (i = 0; i < RC_BELLS; i++) {
		uint32_t b = (reg->bell_cursor + i) % RC_BELLS;

		if (!rcd_bell_live(reg, b) && !reg->bell_orphan_refs[b]) {
			rcd_bell_take(reg, b);
			reg->bell_cursor = b + 1;
			return (int)b;
		}
	}
	return -ENOSPC;
}

void rcd_bell_put(struct rcd_registry *reg, uint32_t bell)
{
	if (bell < RC_BELLS)
		reg->bell_live[bell / 8] &= (uint8_t)~(1u << (bell % 8));
}

void rcd_bell_orphan_ref(struct rcd_registry *reg, uint32_t bell, int delta)
{
	if (bell >= RC_BELLS)
		return;
	if (delta < 0 && reg->bell_orphan_refs[bell])
		reg->bell_orphan_refs[bell]--;
	else if (delta > 0 && reg->bell_orphan_refs[bell] < UINT16_MAX)
		reg->bell_orphan_refs[bell]++;
}
