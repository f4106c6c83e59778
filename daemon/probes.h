/* SPDX-License-Identifier: MIT */
/*
 * ringcastd's USDT probes (provider "ringcastd"; the macros are in
 * lib/trace.h, the list in docs/tracing.md).  client_connect, client_drop,
 * untether and publisher_repair fire where those things happen
 * (requests.c, conn.c, duties.c).  The cluster link does not exist yet:
 * its two probes wait in the functions below, which it is to call.
 */
#ifndef RINGCASTD_PROBES_H
#define RINGCASTD_PROBES_H

#include <stddef.h>
#include <stdint.h>

struct rcd_topic;

/*
 * For the cluster link, once it exists: call these for every record it
 * sends to a peer (node: the peer's node id) or writes into a local ring
 * after receiving it (node: the origin's node id).  Cheap when untraced:
 * one test of the probe's semaphore.
 */
void rcd_probe_cluster_send(const struct rcd_topic *t, uint64_t seq, size_t len, uint16_t node);
void rcd_probe_cluster_recv(const struct rcd_topic *t, uint64_t seq, size_t len, uint16_t node);

#endif /* RINGCASTD_PROBES_H */
