/* SPDX-License-Identifier: MIT */
/*
 * it_acl: the daemon's access control, seen from a client of another uid.
 * SO_PEERCRED tells the daemon who connects, so the only honest test is a
 * real process running as that uid: a helper forked by root drops to
 * uid/gid 12345 (root only; the test skips with a reason otherwise).
 *
 * Also who the daemon itself is: under make test-unprivileged it runs as
 * user ringcast with no capability (docs/testing.md), and its default ACL,
 * which names its own uid, root and group ringcast, must still let the
 * test's root clients in and keep others out.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
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

static void become_other_user(void)
{
	it_become(OTHER_ID, OTHER_ID, NULL, 0);
}


static int acl_other_uid(void *p)
{
	struct acl_cfg *c = p;
	struct ringcast_claim claim;
	struct it_inbox box = { 0 };
	struct ringcast *rc;

	become_other_user();
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

	it_require_root("switching a client to uid 12345");
	it_write_conf(d, "acl.conf", acl_conf, conf, sizeof(conf));
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

/*
 * What uid 12345 may learn from STAT: a STAT_TOPIC carries the topic's
 * name, its message count, and each subscriber's pid and uid.  Before
 * issue 17 a user denied every topic saw all of them.
 */
static int stat_other_uid(void *p)
{
	struct acl_cfg *c = p;
	struct ringcast_topic_stat *st = NULL;
	bool seen_open = false;
	struct ringcast *rc;
	size_t n = 0;

	become_other_user();
	rc = it_child_open(c->sock);
	IT_CHECK_OK(ringcast_subscribe(rc, "open.x"));
	IT_CHECK_OK(ringcast_stat(rc, NULL, &st, &n));
	for (size_t i = 0; i < n; i++) {
		IT_CHECK(!strncmp(st[i].topic, "open.", 5), "uid %d sees topic '%s' (%llu messages, "
			 "%zu subscribers) that it may not subscribe to", OTHER_ID, st[i].topic,
			 (unsigned long long)st[i].messages, st[i].n_subs);
		seen_open |= !strcmp(st[i].topic, "open.x");
		for (size_t j = 0; j < st[i].n_subs; j++)
			IT_CHECK(st[i].subs[j].uid == OTHER_ID, "'%s' shows a subscriber of uid %u, "
				 "pid %u", st[i].topic, st[i].subs[j].uid, st[i].subs[j].pid);
	}
	ringcast_stat_free(st, n);
	IT_CHECK(seen_open, "uid %d does not see open.x, which it subscribes to", OTHER_ID);
	/* Named: a hidden topic answers as one that does not exist. */
	IT_CHECK_ERR(ringcast_stat(rc, "secret.none", &st, &n), -ENOENT);
	IT_CHECK_ERR(ringcast_stat(rc, "secret.x", &st, &n), -ENOENT);
	IT_CHECK_ERR(ringcast_stat(rc, "other.x", &st, &n), -ENOENT);
	IT_CHECK_OK(ringcast_stat(rc, "open.x", &st, &n));
	IT_CHECK(n == 1 && st[0].n_subs == 1 && st[0].subs[0].uid == OTHER_ID,
		 "stat of open.x: %zu topics", n);
	ringcast_stat_free(st, n);
	ringcast_close(rc);
	return 0;
}

struct cli_run {
	char *const *argv;
	int out, err; /* the child's ends */
	const char *build;
};

/* exec argv as uid 12345, stdout and stderr to the pipes. */
static int cli_other_uid(void *p)
{
	struct cli_run *r = p;

	become_other_user();
	it_cli_lib_path(r->build);
	IT_CHECK(dup2(r->out, 1) == 1 && dup2(r->err, 2) == 2, "dup2: %s", strerror(errno));
	execv(r->argv[0], r->argv);
	it_child_fail(__FILE__, __LINE__, "exec %s: %s", r->argv[0], strerror(errno));
}

/* `ringcast stat [topic]` as uid 12345: its exit code, stdout and stderr (freed by the caller). */
static int stat_cli_other(struct it_daemon *d, const char *topic, char **out, char **err)
{
	char cli[320];
	char *argv[] = { cli, "stat", "--socket", d->sock, (char *)topic, NULL };
	int po[2], pe[2], st;
	struct cli_run r;
	pid_t pid;

	snprintf(cli, sizeof(cli), "%s/ringcast", d->build);
	IT_ASSERT(pipe2(po, O_CLOEXEC) == 0 && pipe2(pe, O_CLOEXEC) == 0, "pipe: %s",
		  strerror(errno));
	r = (struct cli_run){ argv, po[1], pe[1], d->build };
	pid = it_fork(cli_other_uid, &r);
	close(po[1]);
	close(pe[1]);
	*out = it_read_all(po[0], 10000, NULL);
	*err = it_read_all(pe[0], 1000, NULL);
	close(po[0]);
	close(pe[0]);
	IT_ASSERT(it_wait(pid, 10000, &st) == 0, "ringcast stat as uid %d did not end", OTHER_ID);
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) != IT_CHILD_FAILED,
		  "ringcast stat as uid %d: %s", OTHER_ID, *err);
	return WEXITSTATUS(st);
}

static void test_stat_shows_allowed_topics_only(void **state)
{
	struct it_daemon *d = *state;
	struct acl_cfg cfg = { d->sock };
	char conf[160], *out, *err, *err_none;
	struct ringcast *root;
	int code, code_none;

	it_require_root("switching a client to uid 12345");
	it_write_conf(d, "acl.conf", acl_conf, conf, sizeof(conf));
	it_daemon_start(d, "--config", conf, "--socket-mode", "0666", NULL);
	/* Root's topics, with a root subscriber and messages: all a user denied them must not see. */
	root = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(root, "secret.x"));
	IT_ASSERT_OK(ringcast_broadcast(root, "secret.x", "s1", 2));
	IT_ASSERT_OK(ringcast_broadcast(root, "other.x", "o1", 2)); /* the default ACL: root's */

	it_expect_exit(it_fork(stat_other_uid, &cfg), 10000, 0, "stat as uid 12345");

	/* The command line tool shows what the daemon sends: nothing of root's topics. */
	code = stat_cli_other(d, NULL, &out, &err);
	printf("  ringcast stat as uid %d:\n%s", OTHER_ID, out);
	IT_ASSERT(code == 0, "ringcast stat as uid %d exited %d: %s", OTHER_ID, code, err);
	IT_ASSERT(!strstr(out, "secret.x") && !strstr(out, "other.x"),
		  "ringcast stat as uid %d shows root's topics:\n%s", OTHER_ID, out);
	free(out);
	free(err);
	/* stat TOPIC: a hidden topic and a missing one look the same, name aside. */
	code = stat_cli_other(d, "secret.x", &out, &err);
	free(out);
	code_none = stat_cli_other(d, "secret.y", &out, &err_none);
	free(out);
	printf("  ringcast stat secret.x: exit %d, %s  ringcast stat secret.y: exit %d, %s", code,
	       err, code_none, err_none);
	IT_ASSERT(code == code_none && code == 1, "exit %d for a hidden topic, %d for a missing one",
		  code, code_none);
	IT_ASSERT(strstr(err, "no topic 'secret.x'") && strstr(err_none, "no topic 'secret.y'") &&
		  strlen(err) == strlen(err_none), "'%s' and '%s' differ", err, err_none);
	free(err);
	free(err_none);

	/* Root still sees everything. */
	{
		struct ringcast_topic_stat *st = NULL;
		size_t n = 0;

		IT_ASSERT_OK(ringcast_stat(root, NULL, &st, &n));
		IT_ASSERT(n == 3, "root sees %zu topics, expected secret.x, other.x and open.x", n);
		ringcast_stat_free(st, n);
	}
	it_close(root);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

/* A client of the default-ACL test: who it becomes and what it must get. */
struct who {
	const char *sock;
	uid_t uid;
	gid_t gid;
	gid_t group; /* its one supplementary group, or (gid_t)-1 for none */
	int want;    /* 0, or what its HELLO must fail with */
};

/* In a helper: become c's uid and gid, with c->group as the only supplementary group. */
static void become(const struct who *c)
{
	it_become(c->uid, c->gid, &c->group, c->group == (gid_t)-1 ? 0 : 1);
}

/* The line "Name:\tv1\tv2..." of /proc/PID/status: its first value, parsed in base. */
static bool status_field(pid_t pid, const char *name, int base, uint64_t *val)
{
	char path[64], line[256];
	size_t n = strlen(name);
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	IT_ASSERT(f != NULL, "%s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':') {
			*val = strtoull(line + n + 1, NULL, base);
			found = true;
		}
	fclose(f);
	return found;
}

/*
 * Who the daemon runs as, printed for the log; when the suite runs it as
 * another user (it_daemon_user), that user with no capability at all:
 * the wrapped run must not pass with a daemon that is still root.
 */
static void test_daemon_identity(void **state)
{
	struct it_daemon *d = *state;
	uint64_t uid = 0, gid = 0, prm = 0, eff = 0, amb = 0, bnd = 0, nnp = 0;
	uid_t want_uid;
	gid_t want_gid;

	it_daemon_start(d, NULL);
	IT_ASSERT(status_field(d->pid, "Uid", 10, &uid) && status_field(d->pid, "Gid", 10, &gid) &&
		  status_field(d->pid, "CapPrm", 16, &prm) &&
		  status_field(d->pid, "CapEff", 16, &eff) &&
		  status_field(d->pid, "CapBnd", 16, &bnd) &&
		  status_field(d->pid, "CapAmb", 16, &amb) &&
		  status_field(d->pid, "NoNewPrivs", 10, &nnp),
		  "/proc/%d/status lacks a Uid, Gid, Cap* or NoNewPrivs line", (int)d->pid);
	printf("  ringcastd runs as uid %" PRIu64 " gid %" PRIu64 ", capabilities permitted %#" PRIx64
	       " effective %#" PRIx64 " ambient %#" PRIx64 " bounding %#" PRIx64
	       ", no_new_privs %" PRIu64 "\n", uid, gid, prm, eff, amb, bnd, nnp);
	if (it_daemon_user(&want_uid, &want_gid)) {
		IT_ASSERT(uid == want_uid && gid == want_gid, "the daemon runs as %" PRIu64 ":%" PRIu64
			  ", not as $RINGCAST_IT_DAEMON_USER (%u:%u)", uid, gid,
			  (unsigned)want_uid, (unsigned)want_gid);
		IT_ASSERT(prm == 0 && eff == 0 && amb == 0,
			  "the daemon as uid %" PRIu64 " still holds capabilities", uid);
	}
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

static int acl_default_client(void *p)
{
	struct who *c = p;
	struct ringcast *rc = NULL;

	become(c);
	if (c->want) {
		/* No list names it: refused at HELLO. */
		IT_CHECK_ERR(ringcast_open(&rc, c->sock), c->want);
		return 0;
	}
	rc = it_child_open(c->sock);
	IT_CHECK_OK(ringcast_subscribe(rc, "default.x"));
	IT_CHECK_OK(ringcast_broadcast(rc, "default.x", "x", 1));
	ringcast_close(rc);
	return 0;
}

/*
 * The default ACL (no list set anywhere) of the daemon as it runs here:
 * its own uid, root and members of group ringcast may publish and
 * subscribe, uid 12345 may not even say HELLO.  A daemon that is not root still lets
 * root in: the suite's clients are root, and need no "publish = *".
 */
static void test_default_acl(void **state)
{
	struct it_daemon *d = *state;
	struct who cfg = { d->sock, OTHER_ID, OTHER_ID, (gid_t)-1, -EACCES };
	struct ringcast *root;
	uint64_t daemon_uid = 0;
	struct group *gr;

	it_require_root("switching clients to other uids");
	/* 0666: uid 12345 must reach the daemon for its ACL to be what is tested. */
	it_daemon_start(d, "--socket-mode", "0666", NULL);
	IT_ASSERT(status_field(d->pid, "Uid", 10, &daemon_uid), "no Uid line for the daemon");

	root = it_open(d);
	IT_ASSERT_OK(ringcast_subscribe(root, "default.x"));
	IT_ASSERT_OK(ringcast_broadcast(root, "default.x", "root", 4));
	it_close(root);

	it_expect_exit(it_fork(acl_default_client, &cfg), 10000, 0, "uid 12345, no group");

	cfg.uid = (uid_t)daemon_uid;
	cfg.gid = (gid_t)daemon_uid == 0 ? 0 : OTHER_ID;
	cfg.want = 0;
	it_expect_exit(it_fork(acl_default_client, &cfg), 10000, 0, "the daemon's own uid");

	gr = getgrnam("ringcast");
	if (gr) {
		cfg.uid = OTHER_ID;
		cfg.gid = OTHER_ID;
		cfg.group = gr->gr_gid;
		it_expect_exit(it_fork(acl_default_client, &cfg), 10000, 0,
			       "uid 12345 in group ringcast");
	} else {
		printf("  no group ringcast on this host: its members' access not tried\n");
	}
	it_assert_daemon_alive(d);
	IT_ASSERT(it_daemon_stop(d) == 0, "ringcastd did not exit 0 on SIGTERM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acl_by_uid, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_stat_shows_allowed_topics_only, it_setup,
						it_teardown),
		cmocka_unit_test_setup_teardown(test_daemon_identity, it_setup, it_teardown),
		cmocka_unit_test_setup_teardown(test_default_acl, it_setup, it_teardown),
	};

	it_init();
	return cmocka_run_group_tests_name("it_acl", tests, NULL, NULL);
}
