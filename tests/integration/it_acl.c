// SPDX-License-Identifier: MIT
/*
 * it_acl: the daemon's access control, seen from a client of another uid.
 * SO_PEERCRED tells the daemon who connects, so the only honest test is a
 * real process running as that uid: a helper forked by root drops to
 * uid/gid 12345 (root only; the test skips with a reason otherwise).
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "harness.h"

#define OTHER_ID 12345

static const char acl_conf[] =
	"# it_acl: secret.* is root's alone, open.* is anyone's.\n"
	"[topic \"secret.*\"]\n"
	"publish = uid:0\n"
	"subscribe = uid:0\n"
	"\n"
	"[topic \"open.*\"]\n"
	"publish = *\n"
	"subscribe = *\n";

struct acl_cfg {
	const char *sock;
};

static int acl_other_uid(void *p)
{
	struct acl_cfg *c = p;
	struct ringcast_claim claim;
	struct it_inbox box = { 0 };
	struct ringcast *rc;

	IT_CHECK(setgroups(0, NULL) == 0, "setgroups: %s", strerror(errno));
	IT_CHECK(setresgid(OTHER_ID, OTHER_ID, OTHER_ID) == 0, "setresgid: %s", strerror(errno));
	IT_CHECK(setresuid(OTHER_ID, OTHER_ID, OTHER_ID) == 0, "setresuid: %s", strerror(errno));
	/* A credential change clears the parent-death signal: set it again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	IT_CHECK(geteuid() == OTHER_ID && getegid() == OTHER_ID, "still uid %d gid %d",
		 (int)geteuid(), (int)getegid());

	rc = it_child_open(c->sock);
	IT_CHECK_ERR(ringcast_subscribe(rc, "secret.x"), -EACCES);
	IT_CHECK_ERR(ringcast_broadcast(rc, "secret.x", "leak", 4), -EACCES);
	IT_CHECK_ERR(ringcast_claim(rc, "secret.x", 4, &claim), -EACCES);
	/* No rule covers other.x: the default ACL (daemon's uid, root) applies. */
	IT_CHECK_ERR(ringcast_subscribe(rc, "other.x"), -EACCES);
	IT_CHECK_ERR(ringcast_broadcast(rc, "other.x", "x", 1), -EACCES);

	IT_CHECK_OK(ringcast_subscribe(rc, "open.x"));
	IT_CHECK_OK(ringcast_broadcast(rc, "open.x", "hello", 5));
	IT_CHECK(it_inbox_fill(rc, &box, 1, 2000) == 1, "own message on open.x: %d", box.n);
	IT_CHECK(box.m[0].len == 5 && !memcmp(box.m[0].data, "hello", 5), "got '%.*s'",
		 (int)box.m[0].len, box.m[0].data);
	/* A denial does not cost the connection: it still works. */
	IT_CHECK_ERR(ringcast_subscribe(rc, "secret.y"), -EACCES);
	IT_CHECK_OK(ringcast_broadcast(rc, "open.x", "again", 5));
	box.n = 0;
	IT_CHECK(it_inbox_fill(rc, &box, 1, 2000) == 1, "second message on open.x: %d", box.n);
	ringcast_close(rc);
	return 0;
}

static void test_acl_by_uid(void **state)
{
	struct it_daemon *d = *state;
	struct acl_cfg cfg = { d->sock };
	struct it_inbox box = { 0 };
	struct ringcast *root, *pub;
	char conf[160];
	FILE *f;

	it_require_root("switching a client to uid 12345");
	snprintf(conf, sizeof(conf), "%s/acl.conf", d->dir);
	f = fopen(conf, "w");
	IT_ASSERT(f != NULL, "fopen %s: %s", conf, strerror(errno));
	fputs(acl_conf, f);
	fclose(f);
	/* 0666: uid 12345 must reach the daemon for its ACL to be what is tested. */
	it_daemon_start(d, "--config", conf, "--socket-mode", "0666", NULL);

	/* The allowed side first: root may use secret.*, so denials below are the ACL's. */
	root = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(root, "secret.x"));
	IT_ASSERT_OK(ringcast_subscribe(root, "open.x"));

	it_expect_exit(it_fork(acl_other_uid, &cfg), 10000, 0, "client running as uid 12345");
	it_assert_daemon_alive(d);

	/* Nothing of the denied client reached secret.x; its open.x messages did. */
	IT_ASSERT(it_inbox_fill(root, &box, 2, 2000) == 2, "root got %d messages, expected the two "
		  "open.x ones", box.n);
	for (int i = 0; i < box.n; i++)
		IT_ASSERT(box.m[i].topic_len == 6 && !memcmp(box.m[i].topic, "open.x", 6),
			  "root got a message on '%.*s'", (int)box.m[i].topic_len, box.m[i].topic);

	/* The daemon keeps serving. */
	pub = it_open(d);
	IT_ASSERT_OK(ringcast_broadcast(pub, "secret.x", "fine", 4));
	box.n = 0;
	IT_ASSERT(it_inbox_fill(root, &box, 1, 2000) == 1 && !memcmp(box.m[0].data, "fine", 4),
		  "root's own secret.x message did not arrive");
	it_close(pub);
	it_close(root);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acl_by_uid, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_acl", tests, NULL, NULL);
}
