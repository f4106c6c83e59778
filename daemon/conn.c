/* SPDX-License-Identifier: MIT */
/*
 * A control connection's I/O and life cycle (struct in conn.h).
 *
 * accepted (credentials read once, from the socket, so a later exec or
 * setuid in the peer cannot change what the ACL sees) -> one receive in
 * flight, replies sent one at a time from a queue -> gone (everything the
 * client held released at once, socket shut down) -> freed once no
 * io_uring operation still points into it.
 *
 * At most one receive: requests are handled in order, and we stop
 * receiving while the reply queue is long, so a client that never reads
 * cannot make us buffer without bound.  At most one send: replies leave in
 * the order they were queued, which concurrent io_uring sends would not
 * promise.
 *
 * At most one reply with fds unread: fds in a packet the peer has not
 * read are in flight, charged to the daemon's user until it reads them
 * (the kernel refuses the user's next fd-passing with ETOOMANYREFS past
 * its RLIMIT_NOFILE), and they leave our queue as soon as they are sent.
 * So after a reply with fds we handle the next request only once the peer
 * has read everything we sent (SIOCOUTQ is 0).  A client that waits for
 * each reply has always read it before its next request arrives and never
 * waits; one that sends without reading has its next request held, and
 * the server's tick looks again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "conn.h"
#include "lives.h"
#include "duties.h"
#include "log.h"
#include "registry.h"
#include "server.h"
#include "trace.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define QUEUE_MAX 64   /* replies queued before we stop reading requests */
#define MAX_GROUPS 65536
#define DRAIN_MAX 8    /* packets a refused connection may have sent already */

static void reply_free(struct rcd_reply *r)
{
	unsigned i;

	for (i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	free(r);
}

static void send_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags);
static void client_gone(struct rcd_client *c, const char *why);

/* Put the head of the queue on the wire unless a send is in flight. */
static void send_next(struct rcd_client *c)
{
	struct rcd_reply *r = c->qhead;

	if (!r || c->send_op.armed || c->gone)
		return;
	memset(&c->smsg, 0, sizeof(c->smsg));
	c->siov.iov_base = r->data;
	c->siov.iov_len = r->len;
	c->smsg.msg_iov = &c->siov;
	c->smsg.msg_iovlen = 1;
	if (r->nfds) {
		struct cmsghdr *cm;

		memset(&c->cmsg, 0, sizeof(c->cmsg));
		c->smsg.msg_control = c->cmsg.buf;
		c->smsg.msg_controllen = CMSG_SPACE(r->nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&c->smsg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(r->nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), r->fds, r->nfds * sizeof(int));
	}
	if (rcd_loop_sendmsg(c->srv->loop, &c->send_op, c->fd, &c->smsg) < 0)
		client_gone(c, "cannot queue a send");
}

/*
 * Queue m for c with nfds fds attached.  The fds become the reply's in
 * every case (closed once sent, or now on failure).  0 or negative errno.
 */
int rcd_reply_fds(struct rcd_client *c, const struct rc_msg *m, const int *fds, unsigned nfds)
{
	struct rcd_server *srv = c->srv;
	struct rcd_reply *r = NULL;
	unsigned i;
	int len;

	if (nfds > RCD_REPLY_FDS) {
		len = -EINVAL; /* no reply carries more (conn.h) */
		goto fail;
	}
	len = rc_proto_encode(m, srv->scratch, sizeof(srv->scratch));
	if (len < 0) {
		rcd_err(srv->log, "cannot encode a %s reply: %s", rc_proto_type_name(m->type),
			strerror(-len));
		goto fail;
	}
	r = malloc(sizeof(*r) + (size_t)len);
	if (!r) {
		len = -ENOMEM;
		rcd_err(srv->log, "out of memory for a %s reply", rc_proto_type_name(m->type));
		goto fail;
	}
	memcpy(r->data, srv->scratch, (size_t)len);
	r->len = (size_t)len;
	r->nfds = nfds;
	for (i = 0; i < nfds; i++)
		r->fds[i] = fds[i];
	r->next = NULL;
	if (c->qtail)
		c->qtail->next = r;
	else
		c->qhead = r;
	c->qtail = r;
	c->qlen++;
	c->qfds += nfds;
	if (nfds)
		c->fds_out = true;
	send_next(c);
	return 0;
fail:
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	return len;
}

int rcd_reply(struct rcd_client *c, const struct rc_msg *m)
{
	return rcd_reply_fds(c, m, NULL, 0);
}

int rcd_reply_ok(struct rcd_client *c, uint16_t type, uint32_t req)
{
	struct rc_msg m = { .type = type, .req = req };

	return rcd_reply(c, &m);
}

/* An ERROR reply (err: positive errno) with a printf-style text. */
int rcd_reply_error(struct rcd_client *c, uint32_t req, int err, const char *fmt, ...)
{
	char text[RC_PROTO_TEXT_MAX + 1];
	struct rc_msg m = { .type = RC_MSG_ERROR, .req = req };
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	n = strlen(text);
	m.error.err = err;
	m.error.text = text;
	m.error.text_len = (uint16_t)(n > RC_PROTO_TEXT_MAX ? RC_PROTO_TEXT_MAX : n);
	return rcd_reply(c, &m);
}

/* A protocol error: tell the client why, then hang up once it is sent. */
void rcd_client_fail(struct rcd_client *c, uint32_t req, int err, const char *fmt, ...)
{
	char text[RC_PROTO_TEXT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->srv->bad_requests++;
	if (c->hello)
		rcd_info(c->srv->log, "client %" PRIu32 " (pid %d): %s; closing the connection",
			 c->id, (int)c->pid, text);
	else
		rcd_info(c->srv->log, "connection from pid %d: %s; closing it", (int)c->pid, text);
	c->closing = true;
	if (rcd_reply_error(c, req, err, "%s", text) < 0)
		client_gone(c, "cannot queue an error reply");
}

static void recv_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags);

void rcd_client_free(struct rcd_client *c)
{
	struct rcd_server *srv = c->srv;
	struct rcd_reply *r;

	while ((r = c->qhead)) {
		c->qhead = r->next;
		reply_free(r);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nclients--;
	if (c->fd >= 0)
		close(c->fd);
	free(c->groups);
	free(c->subs);
	free(c->pubs);
	free(c);
}

/* Free c if it is gone and the kernel holds no pointer into it.  true if freed. */
static bool client_reap(struct rcd_client *c)
{
	if (!c->gone || c->recv_op.armed || c->send_op.armed)
		return false;
	rcd_client_free(c);
	return true;
}

/* Release everything c holds, now; freeing waits for its operations. */
static void client_gone(struct rcd_client *c, const char *why)
{
	struct rcd_server *srv = c->srv;
	unsigned i;

	if (c->gone)
		return;
	c->gone = true;
	for (i = 0; i < c->nsubs; i++)
		rc_ring_sub_release(&c->subs[i].t->ring, c->subs[i].slot);
	for (i = 0; i < c->npubs; i++)
		rcd_duties_release_pub(srv->duties, c->pubs[i].t, c->pubs[i].slot, c->id);
	if (c->hello) {
		rcd_bell_put(srv->reg, c->bell);
		/* Gone for good: it can no more resume than it can reconnect. */
		rcd_lives_forget(srv->reg->lives_fd, c->id);
		RC_TRACE_CLIENT_DROP(c->id, c->pid, c->nsubs, c->npubs);
		rcd_info(srv->log, "client %" PRIu32 " (pid %d) gone: released %u subscriptions, "
			 "%u publisher slots", c->id, (int)c->pid, c->nsubs, c->npubs);
	} else {
		rcd_debug(srv->log, "connection from pid %d closed before HELLO (%s)", (int)c->pid,
			  why);
	}
	c->nsubs = c->npubs = 0;
	/* Make a receive or send still in flight complete now (EOF, EPIPE)
	 * instead of whenever the peer acts: shutdown is not I/O, it only
	 * changes the socket's state. */
	if (c->recv_op.armed || c->send_op.armed)
		shutdown(c->fd, SHUT_RDWR);
}

/* Keep one receive in flight while the client may send and we can keep up. */
static void client_recv(struct rcd_client *c)
{
	if (c->gone || c->closing || c->recv_op.armed || c->stat_active || c->qlen >= QUEUE_MAX ||
	    c->held)
		return;
	memset(&c->rmsg, 0, sizeof(c->rmsg));
	c->riov.iov_base = c->rbuf;
	c->riov.iov_len = sizeof(c->rbuf);
	c->rmsg.msg_iov = &c->riov;
	c->rmsg.msg_iovlen = 1;
	/* No control buffer: fds a client sends us are closed by the kernel,
	 * which sets MSG_CTRUNC. */
	if (rcd_loop_recvmsg(c->srv->loop, &c->recv_op, c->fd, &c->rmsg) < 0)
		client_gone(c, "cannot queue a receive");
}

/* The client is done sending if it hung up after an error reply went out. */
static void client_after_io(struct rcd_client *c)
{
	if (!c->gone && c->closing && !c->qhead && !c->send_op.armed)
		client_gone(c, "protocol error");
	if (!client_reap(c))
		client_recv(c);
}

/*
 * May a reply with fds we sent still be unread?  A queued one is; a sent
 * one is until the peer has read every byte we sent: SIOCOUTQ is what the
 * peer has not taken from its receive queue (freed, and uncharged, when
 * read or when the peer closes).  If we cannot tell, it may be.
 */
static bool fds_unread(struct rcd_client *c)
{
	int outq;

	if (!c->fds_out)
		return false;
	if (c->qfds || ioctl(c->fd, SIOCOUTQ, &outq) < 0 || outq > 0)
		return true;
	c->fds_out = false;
	return false;
}

static void recv_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags)
{
	struct rcd_client *c = op->ctx;

	if (c->gone) {
		client_reap(c);
		return;
	}
	if (res <= 0) {
		/* 0: EOF (or an empty packet, which no valid request is). */
		client_gone(c, res ? strerror(-res) : "EOF");
	} else if (c->rmsg.msg_flags & MSG_TRUNC) {
		rcd_client_fail(c, 0, EMSGSIZE, "request over %d bytes", RC_PROTO_MAX_MSG);
	} else if (c->rmsg.msg_flags & MSG_CTRUNC) {
		/* Requests never carry fds or credentials (docs/protocol.md);
		 * the kernel has already dropped what came, we reject. */
		rcd_client_fail(c, 0, EBADMSG, "request with ancillary data (fds)");
	} else {
		c->srv->requests++;
		if (fds_unread(c))
			c->held = (size_t)res; /* for the tick; no receive meanwhile */
		else
			rcd_request(c, c->rbuf, (size_t)res);
	}
	client_after_io(c);
}

static void send_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags)
{
	struct rcd_client *c = op->ctx;
	struct rcd_reply *r = c->qhead;

	/* The reply in flight is the head; it is done either way. */
	if (r) {
		c->qhead = r->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->qlen--;
		c->qfds -= r->nfds;
		if (res >= 0 && (size_t)res != r->len)
			res = -EMSGSIZE; /* SOCK_SEQPACKET sends all or nothing */
		reply_free(r);
	}
	if (!c->gone && res < 0) {
		rcd_debug(c->srv->log, "client %" PRIu32 ": send: %s", c->id, strerror(-res));
		client_gone(c, "send failed");
	}
	if (!c->gone) {
		rcd_stat_pump(c);
		send_next(c);
	}
	client_after_io(c);
}

/* The peer's supplementary groups, for the ACL.  0 or negative errno. */
static int peer_groups(struct rcd_client *c)
{
	socklen_t len = 64 * sizeof(gid_t);
	char path[64], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int tries;

	/* SO_PEERGROUPS: taken at connect time, race-free, unlike /proc. */
	for (tries = 0; tries < 4; tries++) {
		gid_t *g = realloc(c->groups, len ? len : sizeof(gid_t));

		if (!g)
			return -ENOMEM;
		c->groups = g;
		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
			c->ngroups = len / sizeof(gid_t);
			return 0;
		}
		if (errno != ERANGE || len > MAX_GROUPS * sizeof(gid_t))
			break;
	}
	/* Older kernels: the "Groups:" line of /proc/PID/status. */
	c->ngroups = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *p = line + 7, *end;

		if (strncmp(line, "Groups:", 7))
			continue;
		for (;;) {
			unsigned long v = strtoul(p, &end, 10);
			gid_t *g;

			if (end == p || c->ngroups >= MAX_GROUPS)
				break;
			g = realloc(c->groups, (c->ngroups + 1) * sizeof(gid_t));
			if (!g)
				break;
			c->groups = g;
			c->groups[c->ngroups++] = (gid_t)v;
			p = end;
		}
		break;
	}
	free(line);
	fclose(f);
	return 0;
}

/*
 * Tell the peer of fd why we hang up: an ERROR with req 0 (a
 * connection-level error, docs/protocol.md), which a client takes as the
 * answer to its HELLO, if the socket takes it now.  Then make sure the
 * peer can read it: closing a socket with unread packets in its receive
 * queue resets the peer (ECONNRESET), which it sees before our ERROR.  So
 * stop the peer sending (its HELLO then fails with EPIPE, and it reads
 * our answer) and drop what it sent already.  The caller closes fd.
 */
static void say_goodbye(struct rcd_server *srv, int fd, int err, const char *text)
{
	struct rc_msg m = { .type = RC_MSG_ERROR };
	int n, i;

	m.error.err = err;
	m.error.text = text;
	m.error.text_len = (uint16_t)strlen(text);
	n = rc_proto_encode(&m, srv->scratch, sizeof(srv->scratch));
	if (n > 0)
		send(fd, srv->scratch, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_RD);
	for (i = 0; i < DRAIN_MAX; i++)
		if (recv(fd, srv->scratch, sizeof(srv->scratch), MSG_DONTWAIT) <= 0)
			break;
}

/*
 * Log why a connection was turned away, at most one line a second: a user
 * over its share can be refused as fast as it connects, and must not fill
 * the log (or the journal) for everyone.  The next line counts the ones
 * left out.
 */
static void __attribute__((format(printf, 2, 3)))
refusal_log(struct rcd_server *srv, const char *fmt, ...)
{
	uint64_t now = rcd_now_ns();
	char line[256];
	va_list ap;

	if (srv->refusal_logged_ns && now - srv->refusal_logged_ns < 1000000000ull) {
		srv->refusals_unlogged++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (srv->refusals_unlogged)
		rcd_warn(srv->log, "%s (and %" PRIu64 " more turned away since the last such line)",
			 line, srv->refusals_unlogged);
	else
		rcd_warn(srv->log, "%s", line);
	srv->refusal_logged_ns = now;
	srv->refusals_unlogged = 0;
}

/* Turn a connection away before it has a client. */
static void refuse(struct rcd_server *srv, int fd, int err, const char *text)
{
	say_goodbye(srv, fd, err, text);
	srv->refused++;
	close(fd);
}

/* Connections of uid still here, and how many of them have not said HELLO. */
static unsigned clients_of(const struct rcd_server *srv, uid_t uid, unsigned *silent)
{
	const struct rcd_client *c;
	unsigned n = 0;

	*silent = 0;
	for (c = srv->clients; c; c = c->next) {
		if (c->gone || c->uid != uid)
			continue;
		n++;
		*silent += !c->hello;
	}
	return n;
}

void rcd_client_new(struct rcd_server *srv, int fd)
{
	struct rcd_client *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	unsigned mine, silent;

	if (srv->nclients >= RCD_MAX_CLIENTS) {
		refusal_log(srv, "refusing a connection: %u clients connected", srv->nclients);
		refuse(srv, fd, EUSERS, "the daemon has as many connections as it takes");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		rcd_warn(srv->log, "SO_PEERCRED: %m; dropping the connection");
		srv->refused++;
		close(fd);
		return;
	}
	/*
	 * Over its user's share: refused now, not at HELLO.  A connection
	 * we keep until it speaks is one more its user holds, and one that
	 * never speaks would hold it for good.
	 */
	mine = cred.uid ? clients_of(srv, cred.uid, &silent) : 0;
	if (cred.uid && mine >= RCD_MAX_CLIENTS_PER_UID) {
		refusal_log(srv, "refusing a connection from pid %d: uid %u has %u connections",
			    (int)cred.pid, (unsigned)cred.uid, mine);
		refuse(srv, fd, EUSERS, "this user has as many connections as one user may have");
		return;
	}
	if (cred.uid && silent >= RCD_MAX_SILENT_PER_UID) {
		refusal_log(srv, "refusing a connection from pid %d: uid %u has %u connections "
			    "that have not said HELLO", (int)cred.pid, (unsigned)cred.uid, silent);
		refuse(srv, fd, EUSERS, "this user has as many connections without HELLO as one "
		       "user may have; try again");
		return;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		srv->refused++;
		rcd_err(srv->log, "out of memory for a new connection");
		close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	rcd_op_init(&c->recv_op, recv_cb, c);
	rcd_op_init(&c->send_op, send_cb, c);
	c->next = srv->clients;
	if (c->next)
		c->next->prev = c;
	srv->clients = c;
	srv->nclients++;
	srv->accepted++;
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->born_ns = rcd_now_ns();
	if (peer_groups(c) < 0)
		rcd_debug(srv->log, "pid %d: supplementary groups unknown; ACL by uid and gid only",
			  (int)c->pid);
	rcd_debug(srv->log, "connection from pid %d uid %u", (int)c->pid, (unsigned)c->uid);
	client_recv(c);
	client_reap(c);
}

/* Past its HELLO deadline: say why if nothing else is on its way, and go. */
static void hello_late(struct rcd_client *c)
{
	struct rcd_server *srv = c->srv;

	refusal_log(srv, "closing a connection from pid %d (uid %u): no HELLO within %llu ms",
		    (int)c->pid, (unsigned)c->uid, RCD_HELLO_TIMEOUT_NS / 1000000);
	srv->refused++;
	/* Before HELLO the only reply there can be is an ERROR, which says why. */
	if (!c->qhead && !c->send_op.armed)
		say_goodbye(srv, c->fd, ETIMEDOUT, "no HELLO in time");
	client_gone(c, "no HELLO in time");
	client_reap(c);
}

void rcd_clients_tick(struct rcd_server *srv, uint64_t now_ns)
{
	struct rcd_client *c, *next;

	for (c = srv->clients; c; c = next) {
		next = c->next; /* c may be freed below; no other client is */
		if (c->gone)
			continue;
		if (!c->hello && now_ns - c->born_ns >= RCD_HELLO_TIMEOUT_NS) {
			hello_late(c);
		} else if (c->held && !fds_unread(c)) {
			size_t len = c->held;

			c->held = 0;
			rcd_request(c, c->rbuf, len);
			client_after_io(c);
		}
	}
}
