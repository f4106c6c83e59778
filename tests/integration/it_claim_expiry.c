/* SPDX-License-Identifier: MIT */
/*
 * it_claim_expiry: a zero-copy claim across a daemon restart.  A claim
 * keeps its topic's publisher slot, so a reconnect leaves that topic
 * alone while the claim is open, and the new daemon counts the slot an
 * orphan.  If the claim outlasts the reap grace, the daemon expires it
 * (pads the space, frees the slot): commit and abort must then say
 * -ESTALE (include/ringcast.h) and publish nothing, and the next publish
 * must open the topic again.  If the claim ends first, the commit
 * publishes and the topic is opened again all the same, so the client
 * never goes on publishing through a slot the daemon has freed.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"

#define TOPIC "claim.expiry"

static bool publishers_are(const struct ringcast_topic_stat *st, const void *arg)
{
	return st->publishers == *(const uint32_t *)arg;
}

/* Kill the daemon and start a new one, which adopts the ring and orphans pub's slot. */
static void restart(struct it_daemon *d)
{
	it_daemon_kill(d);
	it_daemon_restart(d);
}

/* After restart(): wait for the reap grace to pass and the daemon to free pub's slot. */
static void wait_reaped(struct it_daemon *d)
{
	uint32_t none = 0;

	IT_ASSERT(it_wait_stat(d, TOPIC, publishers_are, &none, 5000),
		  "the restarted daemon did not reap the orphaned publisher slot of %s", TOPIC);
}

/*
 * sub reconnects (its slot may have been reaped too: it then takes one at
 * the tail), pub publishes text, and it is what sub gets next.
 */
static void publish_arrives(struct it_daemon *d, struct ringcast *pub, struct ringcast *sub,
			    const char *text)
{
	struct it_inbox box = { 0 };
	uint32_t one = 1;

	IT_ASSERT_ERR(ringcast_poll(sub, it_inbox_handler, &box, 0), 0);
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, text, strlen(text)));
	IT_ASSERT(it_wait_stat(d, TOPIC, publishers_are, &one, 2000),
		  "the publisher did not open %s again after its claim ended", TOPIC);
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 2000) == 1, "'%s' did not arrive (%d messages)", text,
		  box.n);
	IT_ASSERT(box.m[0].len == strlen(text) && !memcmp(box.m[0].data, text, strlen(text)),
		  "the subscriber got '%.*s', expected '%s'", (int)box.m[0].len, box.m[0].data, text);
}

static void test_expired_claim_is_stale(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct ringcast_claim c;

	it_daemon_start(d, "--reap-grace", "100", NULL);
	pub = it_open(d);
	sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, TOPIC));

	IT_ASSERT_OK(ringcast_claim(pub, TOPIC, 8, &c));
	memcpy(c.data, "expired!", 8);
	restart(d);
	wait_reaped(d);
	IT_ASSERT_ERR(ringcast_commit(&c), -ESTALE);
	/* The claim is over: nothing left to commit or abort. */
	IT_ASSERT_ERR(ringcast_commit(&c), -EINVAL);
	IT_ASSERT_ERR(ringcast_abort(&c), -EINVAL);
	/* Never delivered: the subscriber's next message is the next publish. */
	publish_arrives(d, pub, sub, "after commit");

	/* The same for an abort. */
	IT_ASSERT_OK(ringcast_claim(pub, TOPIC, 8, &c));
	memcpy(c.data, "aborted!", 8);
	restart(d);
	wait_reaped(d);
	IT_ASSERT_ERR(ringcast_abort(&c), -ESTALE);
	IT_ASSERT_ERR(ringcast_abort(&c), -EINVAL);
	publish_arrives(d, pub, sub, "after abort");
	it_close(sub);
	it_close(pub);
}

/*
 * A reconnect in the middle of the claim (here: a poll of the same
 * client), a commit before the grace ends: published, and afterwards the
 * client publishes through a slot of the new daemon, not the orphan the
 * daemon frees when the grace ends.
 */
static void test_claim_across_reconnect(void **state)
{
	struct it_daemon *d = *state;
	struct ringcast *pub, *sub;
	struct ringcast_claim c;
	struct it_inbox box = { 0 };
	uint32_t one = 1;

	/* Long enough for the few calls between the restart and the commit. */
	it_daemon_start(d, "--reap-grace", "1000", NULL);
	pub = it_open(d);
	sub = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(sub, TOPIC));

	IT_ASSERT_OK(ringcast_claim(pub, TOPIC, 8, &c));
	memcpy(c.data, "claimed!", 8);
	restart(d);
	IT_ASSERT_ERR(ringcast_poll(pub, it_inbox_handler, &box, 0), 0); /* pub reconnects */
	IT_ASSERT_ERR(ringcast_poll(sub, it_inbox_handler, &box, 0), 0); /* sub resumes its slot */
	IT_ASSERT_OK(ringcast_commit(&c));
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 2000) == 1 && !memcmp(box.m[0].data, "claimed!", 8),
		  "the claim committed after the reconnect did not arrive (%d messages)", box.n);
	memset(&box, 0, sizeof(box));
	IT_ASSERT_OK(ringcast_broadcast(pub, TOPIC, "next", 4));

	/* Past the grace the orphan is gone; pub's slot must not have been it. */
	it_sleep_ms(1500);
	IT_ASSERT(it_wait_stat(d, TOPIC, publishers_are, &one, 2000),
		  "after the reap grace %s has no publisher slot: the client publishes through the one "
		  "the daemon freed", TOPIC);
	IT_ASSERT(it_inbox_fill(sub, &box, 1, 2000) == 1 && !memcmp(box.m[0].data, "next", 4),
		  "the publish after the claim did not arrive (%d messages)", box.n);
	it_close(sub);
	it_close(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expired_claim_is_stale, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_claim_across_reconnect, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_claim_expiry", tests, NULL, NULL);
}
