/* SPDX-License-Identifier: MIT */
/*
 * The "ringcastd" provider's USDT semaphores (lib/trace.h has the probe
 * macros, docs/tracing.md the list).  They must be defined in the program
 * that fires the probes: the kernel raises them by file offset in the
 * binary whose notes name them.
 */
#include "trace.h"

RC_TRACE_DEFINE(ringcastd, client_connect);
RC_TRACE_DEFINE(ringcastd, client_drop);
RC_TRACE_DEFINE(ringcastd, untether);
RC_TRACE_DEFINE(ringcastd, publisher_repair);
