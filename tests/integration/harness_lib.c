/* SPDX-License-Identifier: MIT */
/*
 * The tests' one door into libringcast's internals (lib/client.h and the
 * headers it pulls in): a client's own mappings of the shared files, its
 * identity on the wire, the node clock, the probes' semaphores.  Tests
 * see include/ and the two format headers only (docs/testing.md); what a
 * test needs of a client's private state is here, so that a change of
 * struct ringcast breaks this file and not twenty tests.
 */
#include "harness_internal.h"

#include <string.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "trace.h"

/* ---- a client's mappings of the shared files ---- */

struct rc_ring_hdr *it_pub_ring(struct ringcast *rc, struct rc_ctl_hdr **ctl, int *slot)
{
	struct rc_topic *t = rc->last;

	if (ctl)
		*ctl = t ? t->pub.ctl : NULL;
	if (slot)
		*slot = t ? t->pub.pub_slot : -1;
	return t ? t->pub.hdr : NULL;
}

struct rc_ctl_hdr *it_sub_ctl(struct ringcast *rc, const char *topic, int *slot)
{
	struct rc_topic *t = rc_topic_get(rc, topic, strlen(topic), false);

	if (slot)
		*slot = t ? t->sub.sub_slot : -1;
	return t ? t->sub.ctl : NULL;
}

const struct rc_node_hdr *it_node_hdr(struct ringcast *rc)
{
	return rc->node_hdr;
}

unsigned it_pub_sleepers(struct ringcast *rc)
{
	struct rc_topic *t = rc->last;

	if (!t || !t->publishing)
		IT_FAIL("it_pub_sleepers: the client has not published yet");
	return rc_load_acquire(&t->pub.ctl->sleepers);
}

bool it_bell_armed(struct ringcast *rc)
{
	return rc_load_acquire(&rc->bells->bells[rc->bell].word) == RC_BELL_ARMED;
}

/* ---- identity ---- */

int it_resume_as(struct ringcast *rc, uint32_t client_id, uint32_t bell)
{
	rc->client_id = client_id;
	rc->bell = bell;
	return rc_client_reconnect(rc);
}

/* ---- the node clock ---- */

bool it_wait_node_clock(struct ringcast *rc)
{
	struct rc_clock_fit f;
	uint64_t ns, until = it_now_ns() + 2000000000ull;

	/* The daemon's own test: without an invariant TSC it never publishes a line. */
	rc_clock_fit_init(&f);
	if (!f.usable)
		return false;
	while (!rc_clock_line_ns(rc->node_hdr, &ns)) {
		if (it_now_ns() > until)
			IT_FAIL("the daemon published no node clock line within 2 s");
		usleep(1000);
	}
	return true;
}

/* ---- files and probes as the library makes them ---- */

int it_ring_create(const char *name, const char *topic, uint64_t capacity, uint64_t topic_id,
		   uint32_t tether_timeout_ms, int *ring_fd, int *ctl_fd)
{
	return rc_ring_create(name, topic, strlen(topic), capacity, topic_id, tether_timeout_ms,
			      ring_fd, ctl_fd);
}

void it_probe_semaphores(volatile unsigned short **publish, volatile unsigned short **deliver)
{
	*publish = &ringcast_publish_semaphore;
	*deliver = &ringcast_deliver_semaphore;
}
