/* SPDX-License-Identifier: MIT */
/*
 * One control connection, shared by conn.c (its I/O and life cycle) and
 * requests.c (what its requests do).  Internal to the daemon's server.
 *
 * Ownership: the server's list owns every struct rcd_client; a client
 * owns its reply queue (and the fds queued in it), its receive buffer and
 * its slot lists.  The slots themselves belong to the client while it is
 * connected and are released when it goes.
 */
#ifndef RINGCASTD_CONN_H
#define RINGCASTD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "loop.h"
#include "proto.h"
#include "ring_format.h"

struct rcd_server;
struct rcd_topic;

/* A slot a client holds in a topic. */
struct rcd_ref {
	struct rcd_topic *t;
	unsigned slot;
};

/* One encoded reply waiting to be sent, with the fds it carries. */
#define RCD_REPLY_FDS 3 /* HELLO_OK: node, bells, life lock */

/*
 * What connections may take (docs/operations.md, "What one user can
 * take").  Root is not capped per uid: it can stop the daemon anyway.
 *
 * RCD_MAX_CLIENTS: every bell, plus some connections not yet HELLO'd.
 * RCD_MAX_CLIENTS_PER_UID: a quarter of the bells, so that one user
 * cannot take every connection and every bell from the others.  A process
 * needs one connection; a busy user, a few hundred.
 * RCD_MAX_SILENT_PER_UID: connections of one uid that have not said HELLO.
 * A client sends HELLO as soon as it is connected, so a connection is
 * silent for one turn of our loop; 64 leaves room for a job that starts
 * as many processes at once on a big machine, and keeps what one user
 * can hold without a word (and without a bell) to 64 connections of
 * 64 KiB each for RCD_HELLO_TIMEOUT_NS at a time.
 * RCD_HELLO_TIMEOUT_NS: a connection silent this long is closed.
 */
#define RCD_MAX_CLIENTS (RC_BELLS + 256)
#define RCD_MAX_CLIENTS_PER_UID (RC_BELLS / 4)
#define RCD_MAX_SILENT_PER_UID 64
#define RCD_HELLO_TIMEOUT_NS 2000000000ull
/* How often the server looks at its connections: HELLO deadlines, held requests. */
#define RCD_CLIENT_TICK_NS 100000000

struct rcd_reply {
	struct rcd_reply *next;
	int fds[RCD_REPLY_FDS];
	unsigned nfds;
	size_t len;
	uint8_t data[];
};

struct rcd_client {
	struct rcd_client *prev, *next; /* srv->clients */
	struct rcd_server *srv;
	int fd;
	uint32_t id, bell;
	bool hello;   /* HELLO done: id and bell are ours */
	bool closing; /* protocol error: hang up once the replies are out */
	bool gone;    /* released; freed when no operation is armed */
	/*
	 * A reply with fds went out (or is queued) and the peer may not have
	 * read it: the fds are in flight, charged to the daemon's user
	 * (RLIMIT_NOFILE, ETOOMANYREFS).  Cleared once SIOCOUTQ says the
	 * peer has read everything we sent.
	 */
	bool fds_out;
	size_t held;      /* length of a request in rbuf, held until fds_out clears */
	uint64_t born_ns; /* accepted at (rcd_now_ns): the HELLO deadline runs from here */
	pid_t pid;    /* SO_PEERCRED at accept */
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups, for the ACL */
	size_t ngroups;
	struct rcd_op recv_op, send_op;
	struct msghdr rmsg, smsg;
	struct iovec riov, siov;
	union {
		char buf[CMSG_SPACE(RCD_REPLY_FDS * sizeof(int))];
		struct cmsghdr align;
	} cmsg;
	struct rcd_reply *qhead, *qtail;
	unsigned qlen;
	unsigned qfds; /* fds the queued replies hold */
	/* a STAT of every topic in progress: the next topic to report */
	bool stat_active;
	uint32_t stat_req;
	struct rcd_topic *stat_next;
	struct rcd_ref *subs, *pubs;
	unsigned nsubs, npubs, subs_cap, pubs_cap;
	uint8_t rbuf[RC_PROTO_MAX_MSG]; /* one request packet */
};

/*
 * Take a freshly accepted socket fd (ours now, closed on any failure).
 * Over a cap above, the connection is refused at once: a best-effort
 * ERROR EUSERS with req 0, then closed.
 */
void rcd_client_new(struct rcd_server *srv, int fd);
/*
 * The server's timer (every RCD_CLIENT_TICK_NS): close connections past
 * their HELLO deadline, handle held requests whose fds were read.
 */
void rcd_clients_tick(struct rcd_server *srv, uint64_t now_ns);
/* Unlink and free c; the caller made sure no operation is armed. */
void rcd_client_free(struct rcd_client *c);

/*
 * Queue m for c with nfds (<= RCD_REPLY_FDS) fds attached.  The fds are the reply's in
 * every case: closed once sent, or at once on failure.  0 or negative
 * errno (-ENOMEM, or the encoder's, already logged).
 */
int rcd_reply_fds(struct rcd_client *c, const struct rc_msg *m, const int *fds, unsigned nfds);
int rcd_reply(struct rcd_client *c, const struct rc_msg *m);
/* A reply without a body (OK, STAT_END). */
int rcd_reply_ok(struct rcd_client *c, uint16_t type, uint32_t req);
/* An ERROR reply; err is a positive errno, the text printf-style. */
int rcd_reply_error(struct rcd_client *c, uint32_t req, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A protocol error: ERROR reply, then hang up once it is sent. */
void rcd_client_fail(struct rcd_client *c, uint32_t req, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* requests.c: handle one received packet buf[0..len). */
void rcd_request(struct rcd_client *c, const uint8_t *buf, size_t len);
/* requests.c: queue more of a STAT in progress while the queue is short. */
void rcd_stat_pump(struct rcd_client *c);

#endif /* RINGCASTD_CONN_H */
