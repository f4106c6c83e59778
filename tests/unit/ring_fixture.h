/* SPDX-License-Identifier: MIT */
/* A topic ring (two sealed memfds), for the ring's unit tests. */
#ifndef RINGCAST_TEST_RING_FIXTURE_H
#define RINGCAST_TEST_RING_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring_pub.h"
#include "ring_sub.h"
#include "../../daemon/ring_daemon.h" /* the fixture plays the daemon too */

struct fixture {
	int ring_fd, ctl_fd;
};

static inline int fixture_make(struct fixture *f, uint64_t cap, uint32_t tether_ms)
{
	return rc_ring_create("t", "unit.topic", 10, cap, 42, tether_ms, &f->ring_fd, &f->ctl_fd);
}

/* A read-only open of the ring, as the daemon gives subscribers. */
static inline int fixture_ro_fd(struct fixture *f)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->ring_fd);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static inline void fixture_free(struct fixture *f)
{
	close(f->ring_fd);
	close(f->ctl_fd);
}

/* A publisher: its own mapping and pub slot. */
static inline int fixture_pub(struct fixture *f, struct rc_ring *r, uint32_t client_id)
{
	int ret = rc_ring_map(r, f->ring_fd, f->ctl_fd, true);

	if (ret < 0)
		return ret;
	/* Each mapping here plays the daemon: learn the slots others gave out. */
	rc_ring_adopt_slots(r);
	ret = rc_ring_pub_attach(r, client_id, (uint32_t)getpid());
	if (ret < 0)
		return ret;
	r->pub_slot = ret;
	return 0;
}

/* A subscriber: a read-only mapping and a tethered sub slot at the tail. */
static inline int fixture_sub(struct fixture *f, struct rc_ring *daemon, struct rc_ring *r,
			      uint32_t client_id)
{
	int fd = fixture_ro_fd(f), ret;

	if (fd < 0)
		return -errno;
	ret = rc_ring_map(r, fd, f->ctl_fd, false);
	close(fd);
	if (ret < 0)
		return ret;
	rc_ring_adopt_slots(daemon);
	ret = rc_ring_sub_attach(daemon, client_id, (uint32_t)getpid(), 0, 0, 0, NULL, NULL);
	if (ret < 0)
		return ret;
	r->sub_slot = ret;
	return 0;
}

static inline int publish(struct rc_ring *r, const void *data, size_t len)
{
	uint64_t pos;
	int ret = rc_ring_claim(r, len, &pos);

	if (ret < 0)
		return ret;
	memcpy(rc_ring_rec(r, pos) + 1, data, len);
	rc_ring_commit(r, pos, len, 7, 0, 123, NULL);
	return 0;
}

/* Read one record at the subscriber's position and consume it. */
static inline int consume(struct rc_ring *r, uint64_t *pos, void *out, size_t *len, uint64_t *seq)
{
	struct rc_view v;
	int ret = rc_ring_peek(r, pos, &v, false);

	if (ret <= 0)
		return ret;
	if (out)
		memcpy(out, v.data, v.len);
	if (len)
		*len = v.len;
	if (seq)
		*seq = v.rec->seq;
	*pos = v.next;
	atomic_store_explicit(&r->ctl->subs[r->sub_slot].pos, *pos, memory_order_release);
	return 1;
}

#endif
