/* SPDX-License-Identifier: MIT */
/*
 * ringcast: publish/subscribe over shared-memory topic rings.
 *
 * The one header users include.  Every function returns a negative errno
 * value on failure (ringcast_strerror() explains it); pointers are owned by
 * the library unless a comment says otherwise.  A struct ringcast is not
 * thread-safe: use one per thread, or serialize calls on it.
 */
#ifndef RINGCAST_H
#define RINGCAST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What libringcast.so exports (it is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define RINGCAST_API __attribute__((visibility("default")))
#else
#define RINGCAST_API
#endif

#define RINGCAST_TOPIC_MAX 255 /* bytes, no NUL */
#define RINGCAST_DEFAULT_SOCKET "/run/ringcast/ringcastd.sock"

struct ringcast;

/*
 * One delivered message.  Every pointer is valid until the handler returns,
 * within the topic's tether timeout: a handler that takes longer gets its
 * subscriber untethered, and publishers may then write over data.  Such a
 * message is counted as lost once the handler returns (lost of the next
 * one, and the subscriber's count in ringcast_stat()).  Copy what you keep.
 */
struct ringcast_msg {
	const char *topic;   /* not NUL-terminated */
	size_t topic_len;
	const void *data;    /* in place in the ring (a private copy when untethered) */
	size_t len;
	uint64_t seq;        /* strictly increasing per topic and origin node, in delivery order */
	uint64_t publish_ns; /* CLOCK_MONOTONIC on the origin node */
	const char *origin;  /* origin node name, NUL-terminated */
	uint64_t lost;       /* messages skipped just before this one; 0 normally */
};

/* Return non-zero to stop ringcast_poll() early. */
typedef int (*ringcast_handler)(const struct ringcast_msg *msg, void *ctx);

/* A zero-copy publish in progress.  Fill data[0..len), then commit or abort. */
struct ringcast_claim {
	void *data;
	size_t len;
	/* private: */
	void *_topic;
	uint64_t _pos;
	uint32_t _flags;
};

/*
 * Connect to ringcastd.  socket_path NULL: $RINGCAST_SOCKET, then
 * RINGCAST_DEFAULT_SOCKET.  On success *out is yours; free it with
 * ringcast_close().  Errors: -ENOENT/-ECONNREFUSED (no daemon), -EPROTO
 * (daemon speaks another protocol version), -ENOMEM.
 */
RINGCAST_API int ringcast_open(struct ringcast **out, const char *socket_path);
/* Release every subscription, claim and mapping; NULL is allowed. */
RINGCAST_API void ringcast_close(struct ringcast *rc);
/* The daemon's node name; owned by rc. */
RINGCAST_API const char *ringcast_node_name(struct ringcast *rc);
/* This client's id on its node (the publishing client id in records). */
RINGCAST_API uint32_t ringcast_client_id(struct ringcast *rc);
/*
 * CLOCK_MONOTONIC in ns, read the way publish_ns is stamped: from the TSC
 * through the line ringcastd fits to CLOCK_MONOTONIC and shares with every
 * process of the node (within a few ns of clock_gettime, for a third of
 * its cost), or clock_gettime() itself where there is no such line (no
 * invariant TSC, no daemon, rc NULL).  Compare it with publish_ns to time
 * a delivery.  Thread-safe; it only reads shared memory.
 */
RINGCAST_API uint64_t ringcast_now_ns(struct ringcast *rc);

/*
 * Start receiving topic's messages published from now on.  -EINVAL: empty
 * topic; -ENAMETOOLONG: over RINGCAST_TOPIC_MAX bytes; -EACCES: the
 * daemon's ACL denies it; -ENOSPC: no room for the ring or no free
 * subscriber slot; -EALREADY: already subscribed.
 */
RINGCAST_API int ringcast_subscribe(struct ringcast *rc, const char *topic);
/* Stop receiving topic.  -ENOENT: not subscribed. */
RINGCAST_API int ringcast_unsubscribe(struct ringcast *rc, const char *topic);

/*
 * Publish.  0 on success.  -EAGAIN: the ring is full of messages a
 * tethered subscriber has not read yet and the send timeout passed;
 * -EMSGSIZE: len is over the topic's maximum (ringcast_max_msg());
 * -EACCES: not allowed to publish; -EINVAL / -ENAMETOOLONG: bad topic.
 */
RINGCAST_API int ringcast_broadcast(struct ringcast *rc, const char *topic, const void *data, size_t len);
/*
 * Publish n messages, msgs[i].iov_base[0..iov_len) each, to topic, in
 * order: what n calls of ringcast_broadcast() would do, with less work a
 * message.  Where this client is the topic's only publisher, as many as
 * fit go under one claim of the ring, share one publish_ns, and cost one
 * look for sleeping subscribers; elsewhere they go one by one.  Returns
 * how many were published: n, or fewer when one failed after others went
 * (call again from msgs + the count to learn why); a negative errno, as
 * ringcast_broadcast(), when the first failed.
 */
RINGCAST_API int ringcast_broadcast_many(struct ringcast *rc, const char *topic, const struct iovec *msgs,
					 unsigned n);
/* As broadcast, but rc itself does not receive it. */
RINGCAST_API int ringcast_broadcast_from(struct ringcast *rc, const char *topic, const void *data, size_t len);
/* As broadcast, but never leaves this node. */
RINGCAST_API int ringcast_local_broadcast(struct ringcast *rc, const char *topic, const void *data, size_t len);
RINGCAST_API int ringcast_local_broadcast_from(struct ringcast *rc, const char *topic, const void *data, size_t len);
/*
 * Deliver to the subscribers of topic on node only.  Naming this node is a
 * local broadcast.  -EHOSTUNREACH: no such node is known.
 */
RINGCAST_API int ringcast_direct_broadcast(struct ringcast *rc, const char *node, const char *topic,
			      const void *data, size_t len);

/*
 * Zero-copy publish: reserve len bytes of topic's ring and return them in
 * claim->data.  Exactly one of ringcast_commit() or ringcast_abort() must
 * follow; until then subscribers of the topic wait at this message, so
 * keep the window short.  Errors as ringcast_broadcast().
 */
RINGCAST_API int ringcast_claim(struct ringcast *rc, const char *topic, size_t len, struct ringcast_claim *claim);
/*
 * Publish a claimed message.  -ESTALE: the daemon expired the claim.  It
 * does when it takes the topic's publisher slot back: a restarted daemon
 * whose reap grace (ringcastd --reap-grace) passed before this client
 * came back for the slot (a claim holds on to it: a reconnect leaves the
 * topic alone while a claim is open).  Nothing is published then, the
 * daemon gave the space back to subscribers, the claim is over (do not
 * abort it), and the next publish to the topic opens it again.
 * -EINVAL: no open claim (never claimed, or committed or aborted already).
 */
RINGCAST_API int ringcast_commit(struct ringcast_claim *claim);
/* Give the claimed space back; subscribers skip it.  -ESTALE, -EINVAL as ringcast_commit(). */
RINGCAST_API int ringcast_abort(struct ringcast_claim *claim);

/*
 * Deliver up to max waiting messages (0: no limit) to handler, in order per
 * topic.  Returns the number handled (>= 0), or a negative errno:
 * -EBADMSG: a ring is corrupt.  That topic is dropped (unsubscribed, as by
 * ringcast_unsubscribe()) and the other topics go on: this call delivers
 * theirs too.  Reported once: by this call, or when it handled messages
 * (it returns their count), by the next one, which then delivers nothing.
 * -ENOMEM: no memory to copy a message out of the ring (it stays unread).
 */
RINGCAST_API int ringcast_poll(struct ringcast *rc, ringcast_handler handler, void *ctx, unsigned max);
/*
 * Sleep until ringcast_poll() has work: 0, or -ETIMEDOUT; timeout_ms < 0
 * waits forever.  Inside, it sleeps at most 100 ms at a time and looks at
 * its rings again, so a waker that dies cannot strand it.
 */
RINGCAST_API int ringcast_wait(struct ringcast *rc, int timeout_ms);
/*
 * A file descriptor that is readable whenever ringcast_poll() has work, for
 * epoll/poll/io_uring loops.  Owned by rc.  Call ringcast_poll() when it
 * is readable; the readiness is re-armed by each ringcast_poll().  It may
 * also become readable about once a second with nothing to do (the poll
 * then returns 0): its wait is bounded, so that a publisher that died
 * while waking it cannot leave it asleep for good.
 */
RINGCAST_API int ringcast_fd(struct ringcast *rc);

/* How long publish waits on a full ring before -EAGAIN (default 0). */
RINGCAST_API int ringcast_set_send_timeout(struct ringcast *rc, int timeout_ms);
/* Largest payload topic accepts, or a negative errno. */
RINGCAST_API long ringcast_max_msg(struct ringcast *rc, const char *topic);

/* ---- inspection (ringcast stat) ---- */

enum ringcast_sub_state { RINGCAST_TETHERED = 1, RINGCAST_UNTETHERED = 2 };

struct ringcast_sub_stat {
	uint32_t client_id;
	uint32_t pid;
	uint32_t uid;
	int state;          /* enum ringcast_sub_state */
	uint64_t lag_bytes; /* ring bytes published but not yet read */
	uint64_t delivered; /* messages handled */
	uint64_t lost;      /* messages missed (lapped while untethered) */
};

struct ringcast_topic_stat {
	char topic[RINGCAST_TOPIC_MAX + 1]; /* NUL-terminated copy */
	size_t topic_len;
	uint64_t capacity;   /* ring bytes */
	uint32_t publishers;
	uint64_t messages;   /* messages ever published to the ring */
	uint64_t bytes;      /* ring bytes ever written (records, headers, padding) */
	uint64_t lost;       /* sum of the subscribers' lost counts */
	size_t n_subs;
	struct ringcast_sub_stat *subs;
};

/*
 * Ask the daemon about every topic you may subscribe to (topic NULL; root
 * and the daemon's user see all) or one: a topic you may not subscribe to
 * gives -ENOENT, as an unknown one does.  On success *out is an array of
 * *n entries, yours to release with ringcast_stat_free().
 */
RINGCAST_API int ringcast_stat(struct ringcast *rc, const char *topic, struct ringcast_topic_stat **out, size_t *n);
RINGCAST_API void ringcast_stat_free(struct ringcast_topic_stat *stats, size_t n);

/*
 * Set the node's trace sampling rate (docs/tracing.md): 1 in n messages
 * reaches the message probes, in every process of the node, running or
 * not yet started (0 or 1: every message).  *old (if not NULL) gets the
 * rate in force before, to put back.  Node-wide, so the daemon sets it:
 * only root and the daemon's own user may (-EACCES for anyone else).
 * 0, -EINVAL (rc NULL), or an error of the request.
 */
RINGCAST_API int ringcast_trace_sample(struct ringcast *rc, uint32_t n, uint32_t *old);

/* A static description of a (negative or positive) errno value. */
RINGCAST_API const char *ringcast_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* RINGCAST_H */
