/* SPDX-License-Identifier: MIT */
/*
 * The control server: the listening AF_UNIX SOCK_SEQPACKET socket and the
 * list of connections.  Three files share the work: server.c (the socket,
 * accept), conn.c (one connection's I/O and life cycle, struct in conn.h)
 * and requests.c (what each request does).
 *
 * A connection's end (EOF, error, or a protocol error after its ERROR
 * reply went out) releases everything the client held at once: its
 * subscriber slots, its publisher slots (repairing a claim it left open)
 * and its bell.  At daemon shutdown nothing is released: clients keep
 * running on the rings and resume their slots with the next daemon.
 */
#ifndef RINGCASTD_SERVER_H
#define RINGCASTD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "loop.h"
#include "proto.h"

struct rcd_config;
struct rcd_duties;
struct rcd_log;
struct rcd_registry;
struct rcd_client;

struct rcd_server {
	struct rcd_loop *loop;
	struct rcd_registry *reg;
	struct rcd_duties *duties;
	const struct rcd_config *cfg;
	struct rcd_log *log;
	int listen_fd;
	dev_t sock_dev; /* the socket file we bound: unlinked at close only */
	ino_t sock_ino; /* if the path still names it */
	struct rcd_op accept_op, retry_op;
	struct __kernel_timespec retry_ts;
	/* the connections' timer: HELLO deadlines, held requests (conn.h) */
	struct rcd_op tick_op;
	struct __kernel_timespec tick_ts;
	bool tick_oneshot; /* the kernel refused a multishot timer */
	bool stopping;
	struct rcd_client *clients; /* doubly linked */
	unsigned nclients;
	/* counters for the shutdown summary */
	uint64_t accepted, refused, requests, bad_requests;
	/* refusals are logged at most once a second (conn.c): when, and how many since */
	uint64_t refusal_logged_ns, refusals_unlogged;
	/* scratch space for one reply while it is encoded */
	uint8_t scratch[RC_PROTO_MAX_MSG];
	struct rc_stat_sub stat_subs[RC_PROTO_STAT_SUBS_MAX];
};

/*
 * Bind and listen on cfg->socket_path (creating its directory, replacing a
 * stale socket file, refusing if a daemon answers there: -EADDRINUSE).
 * The reason for a failure is logged.  srv is the caller's; it must stay
 * at the same address until rcd_server_close().
 */
int rcd_server_open(struct rcd_server *srv, struct rcd_loop *loop, struct rcd_registry *reg,
		    struct rcd_duties *duties, const struct rcd_config *cfg, struct rcd_log *log);
/* Start accepting, and the connections' timer.  0 or negative errno. */
int rcd_server_start(struct rcd_server *srv);
/* Stop accepting new connections and the timer (the loop still runs). */
void rcd_server_stop(struct rcd_server *srv);
/*
 * After the loop has exited: close every client socket (their slots stay,
 * for the next daemon), close the listening socket, unlink its path, free.
 */
void rcd_server_close(struct rcd_server *srv);

#endif /* RINGCASTD_SERVER_H */
