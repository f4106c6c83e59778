/* SPDX-License-Identifier: MIT */
/*
 * The "ringcastd" provider's USDT semaphores, and the cluster link's probe
 * sites (see probes.h).  The semaphores must be defined in the program
 * that fires the probes: the kernel raises them by file offset in the
 * binary whose notes name them.
 */
#include "probes.h"
#include "registry.h"
#include "trace.h"

RC_TRACE_DEFINE(ringcastd, client_connect);
RC_TRACE_DEFINE(ringcastd, client_drop);
RC_TRACE_DEFINE(ringcastd, untether);
RC_TRACE_DEFINE(ringcastd, publisher_repair);
RC_TRACE_DEFINE(ringcastd, cluster_send);
RC_TRACE_DEFINE(ringcastd, cluster_recv);

/* Not called yet: the cluster link will (probes.h).  Kept linked so the probes are listed. */
void rcd_probe_cluster_send(const struct rcd_topic *t, uint64_t seq, size_t len, uint16_t node)
{
	RC_TRACE_CLUSTER(cluster_send, t->id, (const char *)t->name, t->len, seq, len, node);
}

void rcd_probe_cluster_recv(const struct rcd_topic *t, uint64_t seq, size_t len, uint16_t node)
{
	RC_TRACE_CLUSTER(cluster_recv, t->id, (const char *)t->name, t->len, seq, len, node);
}
