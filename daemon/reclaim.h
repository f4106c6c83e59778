/* SPDX-License-Identifier: MIT */
/*
 * Reclaiming topics nobody uses.  A SUBSCRIBE or PUB_OPEN makes a topic,
 * and its ring and ctl files take their room in the runtime directory
 * for as long as the topic exists.  A topic that no client has had open,
 * that no client of the previous daemon may still resume, and that no
 * repair waits on, for topic-idle-ms, is removed: its files go, and the
 * next client that asks for the name gets a new ring.
 */
#ifndef RINGCASTD_RECLAIM_H
#define RINGCASTD_RECLAIM_H

#include <stdint.h>

struct rcd_server;

/* Look at every topic once (the connection tick, every 100 ms). */
void rcd_reclaim_tick(struct rcd_server *srv, uint64_t now_ns);

#endif /* RINGCASTD_RECLAIM_H */
