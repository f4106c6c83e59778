/* SPDX-License-Identifier: MIT */
/*
 * The test's own ringcastd: spawn it on the test directory's socket and
 * runtime dir, wait until it answers, stop or kill it, and say how it
 * ended.  The daemon is a child like any other (harness_proc.c), so
 * teardown kills it if a test fails with it running.
 *
 * $RINGCAST_IT_DAEMON_WRAP, when set, is a command put in front of
 * ringcastd (split at blanks, no quoting), so that the suite can run a
 * daemon that is not root and holds no capability, as its systemd unit
 * does (make test-unprivileged).  $RINGCAST_IT_DAEMON_USER names the user
 * the wrapper runs it as: it_setup() gives that user the test directory
 * and the runtime directory, which the harness creates as the test's user.
 */
#include "harness_internal.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#define WRAP_MAX 32 /* words of $RINGCAST_IT_DAEMON_WRAP */

/* Split $RINGCAST_IT_DAEMON_WRAP into argv[0..]; the number of words. */
static int wrap_words(char **argv, char *buf, size_t len)
{
	const char *env = getenv("RINGCAST_IT_DAEMON_WRAP");
	int n = 0;

	if (!env || !*env)
		return 0;
	if (strlen(env) >= len)
		IT_FAIL("RINGCAST_IT_DAEMON_WRAP is longer than %zu bytes", len - 1);
	snprintf(buf, len, "%s", env);
	for (char *save, *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n >= WRAP_MAX)
			IT_FAIL("RINGCAST_IT_DAEMON_WRAP has more than %d words", WRAP_MAX);
		argv[n++] = w;
	}
	return n;
}

/* 1 and the user's ids when the daemon runs as $RINGCAST_IT_DAEMON_USER, 0 when not, -ENOENT. */
int harness_daemon_user(uid_t *uid, gid_t *gid)
{
	const char *name = getenv("RINGCAST_IT_DAEMON_USER");
	struct passwd *pw;

	if (!name || !*name)
		return 0;
	/* getpwnam() is fine here: the test process asks before it starts threads. */
	pw = getpwnam(name);
	if (!pw)
		return -ENOENT;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 1;
}

bool it_daemon_user(uid_t *uid, gid_t *gid)
{
	int ret = harness_daemon_user(uid, gid);

	if (ret < 0)
		IT_FAIL("RINGCAST_IT_DAEMON_USER=%s: no such user", getenv("RINGCAST_IT_DAEMON_USER"));
	return ret > 0;
}

const char *it_tmpfs_opts(const char *opts, char *buf, size_t len)
{
	uid_t uid;
	gid_t gid;

	if (!it_daemon_user(&uid, &gid))
		return opts;
	snprintf(buf, len, "%s,uid=%u,gid=%u", opts, (unsigned)uid, (unsigned)gid);
	return buf;
}

void it_require_root_daemon(const char *reason)
{
	uid_t uid;
	gid_t gid;

	if (!it_daemon_user(&uid, &gid) || uid == 0)
		return;
	/*
	 * Not it_skip(): RINGCAST_REQUIRE_ROOT_TESTS=1 would make that a
	 * failure, and the suite's root run covers this test.  The SKIP line
	 * says what this run leaves out.
	 */
	printf("SKIP: needs a root daemon (this one runs as %s): %s\n",
	       getenv("RINGCAST_IT_DAEMON_USER"), reason);
	skip();
}

pid_t it_daemon_spawn(struct it_daemon *d)
{
	char path[300], wrap[512];
	char *argv[WRAP_MAX + IT_DAEMON_ARGS_MAX + 12];
	const char *verbose = getenv("IT_VERBOSE");
	int n = 0;

	/* RINGCAST_IT_DAEMON_BIN: a copy another user can reach (run-unprivileged.sh). */
	if (getenv("RINGCAST_IT_DAEMON_BIN"))
		snprintf(path, sizeof(path), "%s", getenv("RINGCAST_IT_DAEMON_BIN"));
	else
		snprintf(path, sizeof(path), "%s/ringcastd", d->build);
	if (access(path, X_OK) < 0)
		IT_FAIL("%s: %s (build it first: make)", path, strerror(errno));
	n = wrap_words(argv, wrap, sizeof(wrap));
	argv[n++] = path;
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	argv[n++] = "--runtime-dir";
	argv[n++] = d->rundir;
	argv[n++] = "--node";
	argv[n++] = IT_NODE;
	for (int i = 0; i < d->nargs; i++)
		argv[n++] = (char *)d->args[i];
	if (verbose && *verbose == '1')
		argv[n++] = "-v";
	argv[n] = NULL;
	d->pid = it_spawn(argv, NULL, NULL, NULL);
	d->starts++;
	return d->pid;
}

bool it_daemon_alive(struct it_daemon *d)
{
	int st;

	if (d->pid <= 0)
		return false;
	if (waitpid(d->pid, &st, WNOHANG) == d->pid && (WIFEXITED(st) || WIFSIGNALED(st))) {
		harness_untrack(d->pid);
		d->pid = 0;
		d->last_status = st;
		return false;
	}
	return true;
}

void it_assert_daemon_alive(struct it_daemon *d)
{
	char why[64];

	if (!it_daemon_alive(d))
		IT_FAIL("ringcastd is not running: %s",
			 it_status_str(d->last_status, why, sizeof(why)));
}

bool it_daemon_wait_ready(struct it_daemon *d, int timeout_ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	/*
	 * Ready means a HELLO was answered, not just that connect() worked:
	 * the kernel queues connections on a listening socket before the
	 * daemon accepts any, and a daemon can bind and still fail its
	 * start-up afterwards (e.g. no room for its files).
	 */
	do {
		struct ringcast *rc = NULL;

		if (!it_daemon_alive(d))
			return false;
		if (ringcast_open(&rc, d->sock) == 0) {
			ringcast_close(rc);
			return true;
		}
		it_sleep_ms(5);
	} while (it_now_ns() < deadline);
	return false;
}

static void start_and_wait(struct it_daemon *d)
{
	char why[64];

	it_daemon_spawn(d);
	if (it_daemon_wait_ready(d, IT_START_TIMEOUT_MS))
		return;
	if (d->pid == 0)
		IT_FAIL("ringcastd exited during start-up: %s (its messages are above)",
			 it_status_str(d->last_status, why, sizeof(why)));
	it_daemon_kill(d);
	IT_FAIL("ringcastd's socket %s did not accept within %d ms", d->sock, IT_START_TIMEOUT_MS);
}

void it_daemon_start(struct it_daemon *d, ...)
{
	const char *a;
	va_list ap;

	d->nargs = 0;
	va_start(ap, d);
	while ((a = va_arg(ap, const char *))) {
		if (d->nargs >= IT_DAEMON_ARGS_MAX) {
			va_end(ap);
			IT_FAIL("harness: too many daemon flags");
		}
		d->args[d->nargs++] = a;
	}
	va_end(ap);
	start_and_wait(d);
}

void it_daemon_restart(struct it_daemon *d)
{
	if (d->pid > 0)
		IT_FAIL("harness: restart of a running daemon (pid %d)", (int)d->pid);
	start_and_wait(d);
}

int it_daemon_stop(struct it_daemon *d)
{
	int st;

	if (d->pid <= 0)
		return d->last_status;
	kill(d->pid, SIGTERM);
	if (it_wait(d->pid, IT_STOP_TIMEOUT_MS, &st) == -ETIMEDOUT) {
		it_kill(d->pid);
		d->pid = 0;
		return -1;
	}
	d->pid = 0;
	d->last_status = st;
	return st;
}

void it_daemon_kill(struct it_daemon *d)
{
	if (d->pid <= 0)
		return;
	it_kill(d->pid);
	d->pid = 0;
	d->last_status = SIGKILL; /* as a wait status: killed by SIGKILL */
}

void it_mount_rundir(struct it_daemon *d, const char *opts)
{
	char buf[128];
	const char *o = it_tmpfs_opts(opts, buf, sizeof(buf));

	it_require_root("mounting a tmpfs");
	if (mount("tmpfs", d->rundir, "tmpfs", MS_NOSUID | MS_NODEV, o) < 0) {
		if (errno == EPERM)
			it_skip("mount -t tmpfs: %s (no CAP_SYS_ADMIN here)", strerror(errno));
		IT_FAIL("mount -t tmpfs -o %s %s: %s", o, d->rundir, strerror(errno));
	}
	it_track_mount(d->rundir);
}
