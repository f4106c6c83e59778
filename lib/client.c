/* SPDX-License-Identifier: MIT */
/*
 * libringcast's connection to ringcastd: open/close, the synchronous
 * request/reply exchange (fds arrive with SCM_RIGHTS), the topic table,
 * and reconnecting to a restarted daemon.
 *
 * The control socket is only used to set things up.  Publishing and
 * delivery go through the shared rings and never touch it, which is why
 * clients keep exchanging messages while the daemon is down.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "client.h"

#define RC_MAX_FDS 4 /* more than any reply carries (HELLO_OK: 3) */
#define RC_REPLY_TIMEOUT_S 10
#define RC_RECONNECT_EVERY_NS 100000000ull

static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (len--)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
	return h;
}

int rc_topic_check(const char *topic, size_t *len)
{
	if (!topic)
		return -EINVAL;
	*len = strnlen(topic, RINGCAST_TOPIC_MAX + 1);
	if (*len == 0)
		return -EINVAL;
	if (*len > RINGCAST_TOPIC_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static void close_fds(int *fds, int n)
{
	while (n-- > 0)
		close(fds[n]);
}

int rc_client_recv(struct ringcast *rc, uint32_t req, struct rc_msg *reply, int *fds, int *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(RC_MAX_FDS * sizeof(int))];
	} cbuf;
	struct iovec iov = { rc->rx, RC_PROTO_MAX_MSG };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *cm;
	int got = 0, ret;
	ssize_t n;

	do
		n = recvmsg(rc->sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -ENOTCONN;
	if (n == 0)
		return -ENOTCONN;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fds && got < RC_MAX_FDS && got < *nfds)
				fds[got++] = fd;
			else
				close(fd); /* more than we asked for: not ours to keep */
		}
	}
	if (nfds)
		*nfds = got;
	ret = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -EBADMSG :
	      rc_proto_decode(rc->rx, (size_t)n, reply);
	/* An ERROR with req 0 is about the connection (docs/protocol.md): ours too. */
	if (ret == 0 && reply->req != req && !(reply->type == RC_MSG_ERROR && reply->req == 0))
		ret = -EPROTO;
	if (ret == 0 && reply->type == RC_MSG_ERROR)
		ret = -reply->error.err;
	if (ret < 0) {
		close_fds(fds, got);
		if (nfds)
			*nfds = 0;
	}
	return ret;
}

static int send_req(struct ringcast *rc, struct rc_msg *req)
{
	uint8_t out[1024];
	int n;

	req->req = ++rc->req;
	n = rc_proto_encode(req, out, sizeof(out));
	if (n < 0)
		return n;
	if (rc->sock < 0)
		return -ENOTCONN;
	if (send(rc->sock, out, (size_t)n, MSG_NOSIGNAL) != n)
		return -ENOTCONN;
	return 0;
}

int rc_client_request(struct ringcast *rc, struct rc_msg *req, struct rc_msg *reply,
		      int *fds, int *nfds)
{
	int ret = send_req(rc, req);

	if (ret == 0)
		ret = rc_client_recv(rc, req->req, reply, fds, nfds);
	if (ret == -ENOTCONN && rc_client_reconnect(rc) == 0) {
		ret = send_req(rc, req);
		if (ret == 0)
			ret = rc_client_recv(rc, req->req, reply, fds, nfds);
	}
	return ret;
}

static int expect(const struct rc_msg *m, uint16_t type, int nfds, int want_fds)
{
	return m->type == type && nfds == want_fds ? 0 : -EPROTO;
}

/*
 * Connect and say HELLO; with resume, ask to be the same client again.
 * The old connection stays ours until the new HELLO succeeds: closing it
 * first would let a live daemon release our slots (and the tail we own)
 * although we go on using them if the new HELLO is refused.
 * -ECONNREFUSED/-ENOENT: no daemon listens; any other error came from one.
 */
static int hello(struct ringcast *rc, bool resume)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { RC_REPLY_TIMEOUT_S, 0 };
	struct rc_msg req = { .type = RC_MSG_HELLO }, rep;
	struct rc_bells_hdr *bells = NULL;
	struct rc_node_hdr *node = NULL;
	int fd, old = rc->sock, fds[3] = { -1, -1, -1 }, nfds = 3, ret;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, rc->path, sizeof(rc->path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rc->sock = fd; /* send_req and rc_client_recv use it */
	if (resume) {
		req.hello.flags = RC_HELLO_RESUME;
		req.hello.client_id = rc->client_id;
		req.hello.bell = rc->bell;
	}
	ret = send_req(rc, &req);
	/*
	 * A daemon that refuses us (over a per-user cap) answers at accept
	 * and hangs up, maybe before our HELLO left: its ERROR still waits.
	 */
	if (ret == 0 || ret == -ENOTCONN)
		ret = rc_client_recv(rc, req.req, &rep, fds, &nfds);
	else
		nfds = 0;
	if (ret == 0)
		ret = expect(&rep, RC_MSG_HELLO_OK, nfds, 3);
	if (ret == 0 && rep.hello_ok.bell >= RC_BELLS)
		ret = -EPROTO;
	/* fds[0]: the node file, read-only; fds[1]: the bells; fds[2]: our life lock. */
	if (ret == 0)
		ret = rc_node_map(fds[0], false, &node);
	if (ret == 0 && (ret = rc_bells_map(fds[1], &bells)) < 0)
		rc_node_unmap(node);
	if (ret < 0) {
		close_fds(fds, nfds);
		close(fd);
		rc->sock = old;
		return ret == -ECONNREFUSED || ret == -ENOENT ? -EPROTO : ret;
	}
	close_fds(fds, 2); /* the mappings stay */
	/*
	 * The lock on fds[2] lasts as long as we hold it: it is how a daemon
	 * learns we died when it did not see our socket close (it was not
	 * running).  Keep it until the next HELLO or ringcast_close().
	 */
	if (rc->life_fd >= 0)
		close(rc->life_fd);
	rc->life_fd = fds[2];
	if (old >= 0)
		close(old);
	rc_bells_unmap(rc->bells);
	rc_node_unmap(rc->node_hdr);
	rc->bells = bells;
	rc->node_hdr = node;
	rc->client_id = rep.hello_ok.client_id;
	rc->bell = rep.hello_ok.bell;
	rc->daemon_gen = rep.hello_ok.daemon_gen;
	memcpy(rc->node, rep.hello_ok.node, rep.hello_ok.node_len);
	rc->node[rep.hello_ok.node_len] = 0;
	return 0;
}

int ringcast_open(struct ringcast **out, const char *socket_path)
{
	struct ringcast *rc;
	int ret;

	if (!out)
		return -EINVAL;
	if (!socket_path)
		socket_path = getenv("RINGCAST_SOCKET");
	if (!socket_path || !*socket_path)
		socket_path = RINGCAST_DEFAULT_SOCKET;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	rc->sock = rc->life_fd = -1;
	if (strlen(socket_path) >= sizeof(rc->path)) {
		free(rc);
		return -ENAMETOOLONG;
	}
	strcpy(rc->path, socket_path);
	rc->rx = malloc(RC_PROTO_MAX_MSG);
	rc->table_cap = 16;
	rc->table = calloc(rc->table_cap, sizeof(*rc->table));
	if (!rc->rx || !rc->table) {
		ringcast_close(rc);
		return -ENOMEM;
	}
	rc->light_commit = rc_fence_register();
	rc->fence_ok = true;
	ret = hello(rc, false);
	if (ret < 0) {
		ringcast_close(rc);
		return ret;
	}
	*out = rc;
	return 0;
}

void ringcast_close(struct ringcast *rc)
{
	size_t i;

	if (!rc)
		return;
	rc_client_fd_free(rc);
	/* Closing the socket is what tells the daemon to release our slots. */
	if (rc->sock >= 0)
		close(rc->sock);
	if (rc->life_fd >= 0)
		close(rc->life_fd);
	for (i = 0; i < rc->table_cap; i++) {
		struct rc_topic *t = rc->table ? rc->table[i] : NULL;

		if (!t)
			continue;
		rc_ring_unmap(&t->sub);
		rc_ring_unmap(&t->pub);
		free(t);
	}
	rc_bells_unmap(rc->bells);
	rc_node_unmap(rc->node_hdr);
	free(rc->table);
	free(rc->subs);
	free(rc->rx);
	free(rc->copy);
	free(rc);
}

const char *ringcast_node_name(struct ringcast *rc)
{
	return rc ? rc->node : NULL;
}

uint32_t ringcast_client_id(struct ringcast *rc)
{
	return rc ? rc->client_id : 0;
}

uint64_t ringcast_now_ns(struct ringcast *rc)
{
	return rc_clock_ns(rc ? rc->node_hdr : NULL);
}

int ringcast_set_send_timeout(struct ringcast *rc, int timeout_ms)
{
	if (!rc || timeout_ms < 0)
		return -EINVAL;
	rc->send_timeout_ms = timeout_ms;
	return 0;
}

static int table_grow(struct ringcast *rc)
{
	size_t cap = rc->table_cap * 2, i;
	struct rc_topic **t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (i = 0; i < rc->table_cap; i++) {
		struct rc_topic *e = rc->table[i];
		size_t j;

		if (!e)
			continue;
		for (j = e->hash & (cap - 1); t[j]; j = (j + 1) & (cap - 1))
			;
		t[j] = e;
	}
	free(rc->table);
	rc->table = t;
	rc->table_cap = cap;
	return 0;
}

struct rc_topic *rc_topic_get(struct ringcast *rc, const char *topic, size_t len, bool create)
{
	uint64_t h = fnv1a(topic, len);
	size_t j;
	struct rc_topic *t;

	for (j = h & (rc->table_cap - 1); (t = rc->table[j]); j = (j + 1) & (rc->table_cap - 1))
		if (t->hash == h && t->len == len && !memcmp(t->name, topic, len))
			return t;
	if (!create)
		return NULL;
	if ((rc->n_topics + 1) * 2 > rc->table_cap) {
		if (table_grow(rc) < 0)
			return NULL;
		for (j = h & (rc->table_cap - 1); rc->table[j]; j = (j + 1) & (rc->table_cap - 1))
			;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->rc = rc;
	memcpy(t->name, topic, len);
	t->len = len;
	t->hash = h;
	t->sub.pub_slot = t->sub.sub_slot = -1;
	t->pub.pub_slot = t->pub.sub_slot = -1;
	rc->table[j] = t;
	rc->n_topics++;
	return t;
}

static int open_topic(struct ringcast *rc, struct rc_topic *t, uint16_t type, bool resume,
		      struct rc_ring *r, bool writable, uint32_t *slot, struct rc_msg *rep)
{
	struct rc_msg req = { .type = type };
	struct rc_ring fresh;
	int fds[2], nfds = 2, ret;

	req.topic.topic = t->name;
	req.topic.topic_len = (uint16_t)t->len;
	if (resume) {
		req.topic.flags = RC_TOPIC_RESUME;
		req.topic.slot = *slot;
	}
	ret = rc_client_request(rc, &req, rep, fds, &nfds);
	if (ret < 0)
		return ret;
	ret = expect(rep, type == RC_MSG_SUBSCRIBE ? RC_MSG_SUB_OK : RC_MSG_PUB_OK, nfds, 2);
	if (ret == 0 && rep->opened.slot >= (type == RC_MSG_SUBSCRIBE ? RC_SUB_SLOTS : RC_PUB_SLOTS))
		ret = -EPROTO;
	/*
	 * The daemon re-adopted our slot in the ring we have mapped.  Its
	 * word, not the slot number: a daemon that lost the rings (its keeper
	 * gone) hands the same number out in a new ring.
	 */
	if (ret == 0 && resume && r->hdr && (rep->opened.flags & RC_OPENED_RESUMED) &&
	    rep->opened.slot == *slot) {
		close_fds(fds, nfds);
		return 0;
	}
	if (ret == 0)
		ret = rc_ring_map(&fresh, fds[0], fds[1], writable);
	if (ret == 0 && fresh.cap != rep->opened.capacity) {
		rc_ring_unmap(&fresh);
		ret = -EBADMSG; /* not the ring the daemon meant */
	}
	close_fds(fds, nfds);
	if (ret < 0)
		return ret;
	rc_ring_unmap(r);
	*r = fresh;
	*slot = rep->opened.slot;
	return 1; /* a new mapping */
}

int rc_topic_open_sub(struct ringcast *rc, struct rc_topic *t, bool resume)
{
	uint32_t slot = (uint32_t)t->sub.sub_slot;
	struct rc_msg rep;
	int ret = open_topic(rc, t, RC_MSG_SUBSCRIBE, resume, &t->sub, false, &slot, &rep);
	uint64_t seq;

	if (ret <= 0)
		return ret;
	t->sub.sub_slot = (int)slot;
	/*
	 * Where to start comes from the daemon's reply, not from our slot's
	 * line, which other clients of the topic can write.
	 */
	seq = rep.opened.seq;
	if (t->next_seq && seq > t->next_seq) {
		/*
		 * A new slot for a topic we read before (a daemon restart, a
		 * refused resume, a dropped connection): it starts at the live
		 * tail, and what we skipped is lost, and said so.
		 */
		t->pending_lost += seq - t->next_seq;
		rc_store_relaxed(&t->sub.ctl->subs[slot].lost, seq - t->next_seq);
	}
	t->next_seq = seq;
	t->pos = rep.opened.pos;
	t->untethered = false;
	t->safe_from = 0;
	t->sleep_enabled = false; /* a new slot: raise the ring's fenced count again */
	return 0;
}

int rc_topic_open_pub(struct ringcast *rc, struct rc_topic *t, bool resume)
{
	uint32_t slot = (uint32_t)t->pub.pub_slot;
	struct rc_msg rep;
	int ret = open_topic(rc, t, RC_MSG_PUB_OPEN, resume, &t->pub, true, &slot, &rep);

	if (ret <= 0)
		return ret;
	t->pub.pub_slot = (int)slot;
	t->pub.limit = 0;
	t->pub.light_commit = rc->light_commit;
	return 0;
}

/*
 * A daemon is up but refused our HELLO: it will reap the slots we held
 * once its grace ends, and may give our pub slots to others.  Stop
 * writing to them now; the next publish asks for a slot again and reports
 * the refusal.  (A zero-copy claim still open keeps its mapping until
 * ringcast_commit or ringcast_abort, which find it expired: -ESTALE.)
 */
static void drop_pub_slots(struct ringcast *rc)
{
	size_t i;

	for (i = 0; i < rc->table_cap; i++) {
		struct rc_topic *t = rc->table[i];

		if (!t || !t->publishing)
			continue;
		if (!t->claim_open)
			rc_ring_unmap(&t->pub);
		t->publishing = false;
	}
}

int rc_client_reconnect(struct ringcast *rc)
{
	uint32_t old_id = rc->client_id, old_bell = rc->bell;
	bool resume;
	size_t i;
	int ret;

	rc->reconnect_ns = rc_now_ns();
	ret = hello(rc, true);
	if (ret < 0) {
		/* Only a dead connection brings us here: let it go. */
		if (rc->sock >= 0)
			close(rc->sock);
		rc->sock = -1;
		/* No daemon listening: carry on through the rings as we are. */
		if (ret != -ECONNREFUSED && ret != -ENOENT)
			drop_pub_slots(rc);
		return ret;
	}
	resume = rc->client_id == old_id && rc->bell == old_bell;
	for (i = 0; i < rc->table_cap; i++) {
		struct rc_topic *t = rc->table[i];

		if (!t)
			continue;
		if (t->subscribed && (ret = rc_topic_open_sub(rc, t, resume)) < 0)
			return ret;
		/*
		 * A claim holds on to the mapping, so its topic is opened
		 * again only once the claim ends (the next publish, in
		 * pub_topic_slow).  Until then the new daemon counts the slot
		 * an orphan and may expire the claim: commit says -ESTALE.
		 */
		if (t->publishing && t->claim_open)
			t->publishing = false;
		else if (t->publishing && (ret = rc_topic_open_pub(rc, t, resume)) < 0)
			return ret;
	}
	return 0;
}

void rc_client_daemon_changed(struct ringcast *rc)
{
	if (rc_now_ns() - rc->reconnect_ns < RC_RECONNECT_EVERY_NS)
		return;
	rc_client_reconnect(rc);
}
