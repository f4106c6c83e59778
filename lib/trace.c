// SPDX-License-Identifier: MIT
/*
 * The "ringcast" provider's USDT semaphores (lib/trace.h), and the knob
 * `ringcast trace` turns to sample.
 */
#include <errno.h>

#include "client.h"
#include "trace.h"

RC_TRACE_DEFINE(ringcast, publish);
RC_TRACE_DEFINE(ringcast, deliver);

int rc_trace_set_sample(struct ringcast *rc, uint32_t n, uint32_t *old)
{
	uint32_t prev;

	if (!rc)
		return -EINVAL;
	if (!rc->bells)
		return -ENOTCONN;
	/*
	 * Relaxed, and read relaxed by every probe site (rc_trace_sampled):
	 * the rate orders nothing else, and a site may apply the old rate to
	 * the few messages it is handling while the new one lands.
	 */
	prev = atomic_exchange_explicit(&rc->bells->trace_sample, n, memory_order_relaxed);
	if (old)
		*old = prev;
	return 0;
}
