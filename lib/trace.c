/* SPDX-License-Identifier: MIT */
/*
 * The "ringcast" provider's USDT semaphores (lib/trace.h), and the knob
 * `ringcast trace` turns to sample.
 */
#include <errno.h>

#include "client.h"
#include "trace.h"

RC_TRACE_DEFINE(ringcast, publish);
RC_TRACE_DEFINE(ringcast, deliver);

RINGCAST_API int ringcast_trace_sample(struct ringcast *rc, uint32_t n, uint32_t *old)
{
	struct rc_msg req = { .type = RC_MSG_TRACE_SAMPLE }, rep;
	int ret;

	if (!rc)
		return -EINVAL;
	/* The rate is node-wide state: the daemon alone writes it (docs/security.md). */
	req.trace.sample = n;
	ret = rc_client_request(rc, &req, &rep, NULL, NULL);
	if (ret < 0)
		return ret;
	if (rep.type != RC_MSG_TRACE_SAMPLE_OK)
		return -EPROTO;
	if (old)
		*old = rep.trace.sample;
	return 0;
}
