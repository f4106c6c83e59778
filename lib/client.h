/* SPDX-License-Identifier: MIT */
/*
 * libringcast's private state: struct ringcast and its topics.  Internal.
 */
#ifndef RINGCAST_CLIENT_H
#define RINGCAST_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "ringcast.h"
#include "proto.h"
#include "clock.h"
#include "barrier.h"
#include "ring.h"

struct io_uring;

struct rc_topic {
	struct ringcast *rc;
	char name[RINGCAST_TOPIC_MAX + 1];
	size_t len;
	/* name and its NUL as 8-byte words, for the publisher's compare (client_pub.c) */
	uint32_t words;
	uint64_t last_mask; /* the bytes of the last word that belong to it */
	uint64_t hash;
	/* subscription: read-only ring mapping, our sub slot */
	bool subscribed;
	struct rc_ring sub;
	uint64_t pos;        /* next position to read (mirrors our slot's pos) */
	uint64_t next_seq;   /* seq we expect next */
	uint64_t safe_from;  /* read by copy until pos reaches this (re-tether) */
	uint64_t pending_lost;
	bool untethered;
	bool sleep_enabled;  /* raised the ring's fenced count (rc_ring_sleep_enable) */
	/* publishing: read-write ring mapping, our pub slot */
	bool publishing;
	bool claim_open;
	struct rc_ring pub;
};

struct ringcast {
	int sock;
	int life_fd;             /* holds the lock that says we live (daemon/lives.h) */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char node[RC_PROTO_NODE_MAX + 1];
	uint32_t client_id, bell, req;
	uint64_t daemon_gen;
	struct rc_bells_hdr *bells;        /* read-write: we arm ours, publishers ring */
	const struct rc_node_hdr *node_hdr; /* read-only: the daemon's alone */
	int send_timeout_ms;
	bool light_commit;       /* registered for membarrier: see fence.c */
	bool fence_ok;           /* the last heavy fence worked: bells can be trusted */
	/* topics: open-addressing table keyed by name, plus the subscribed ones in order */
	struct rc_topic **table;
	size_t table_cap, n_topics;
	struct rc_topic **subs;
	size_t n_subs, subs_cap;
	size_t rr;               /* where the next poll starts, for fairness */
	int poll_err;            /* -EBADMSG of a topic a poll dropped while it had messages to count: the next poll returns it */
	struct rc_topic *last;   /* last topic published to */
	uint8_t *rx;             /* RC_PROTO_MAX_MSG bytes for replies */
	uint64_t reconnect_ns;   /* last reconnect attempt */
	uint8_t *copy;           /* untethered reads land here */
	size_t copy_cap;
	/* ringcast_fd(): a private io_uring waiting on our bell */
	struct io_uring *uring;
	bool uring_pending;
};

/* client.c */
int rc_client_request(struct ringcast *rc, struct rc_msg *req, struct rc_msg *reply,
		      int *fds, int *nfds);
int rc_client_recv(struct ringcast *rc, uint32_t req, struct rc_msg *reply, int *fds, int *nfds);
/* rc_client_check_daemon() found a new daemon generation or no socket: re-attach (rate-limited). */
void rc_client_daemon_changed(struct ringcast *rc);

/*
 * A restarted daemon bumps daemon_gen (release) once it has adopted the
 * rings; re-attach then so it does not reap our slots.  The load is of a
 * line nobody writes in steady state, so it stays cached.  Inline: every
 * publish and poll asks.
 */
static inline bool rc_client_daemon_same(const struct ringcast *rc)
{
	return rc_load_acquire(&rc->node_hdr->daemon_gen) == rc->daemon_gen && rc->sock >= 0;
}

static inline void rc_client_check_daemon(struct ringcast *rc)
{
	if (!rc_client_daemon_same(rc))
		rc_client_daemon_changed(rc);
}

int rc_topic_check(const char *topic, size_t *len);
struct rc_topic *rc_topic_get(struct ringcast *rc, const char *topic, size_t len, bool create);
int rc_topic_open_pub(struct ringcast *rc, struct rc_topic *t, bool resume);
int rc_topic_open_sub(struct ringcast *rc, struct rc_topic *t, bool resume);
int rc_client_reconnect(struct ringcast *rc);

/* client_sub.c */
int rc_client_has_work(struct ringcast *rc);
void rc_topic_close_sub(struct ringcast *rc, struct rc_topic *t);

/* client_wait.c */
void rc_client_fd_rearm(struct ringcast *rc);
void rc_client_fd_reap(struct ringcast *rc);
void rc_client_fd_free(struct ringcast *rc);

#endif /* RINGCAST_CLIENT_H */
