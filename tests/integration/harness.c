/* SPDX-License-Identifier: MIT */
/*
 * The integration test harness (see harness.h for the contract): the
 * records of what a test started or created, the fixtures, and the
 * cleanup that undoes it all.  harness_internal.h says which file does
 * the rest.
 *
 * Everything a test starts or creates is recorded here (processes, the
 * test directory, mounts, clients), because a cmocka failure longjmps out
 * of the test function and only the teardown runs: it must find every
 * leftover without the test's help.
 */
#include "harness_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TRACKED 64
#define MAX_CLIENTS 32

/*
 * What teardown (or the emergency handler) must undo.  Plain arrays and
 * sig_atomic_t counts: the signal handler reads them.
 */
static pid_t tracked[MAX_TRACKED];
static volatile sig_atomic_t ntracked;
static char mounts[HARNESS_MAX_MOUNTS][128];
static volatile sig_atomic_t nmounts;
static char test_dir[64];
static volatile sig_atomic_t have_dir;
static struct ringcast *clients[MAX_CLIENTS];
bool harness_in_child;

/* ---- tracking ---- */

void harness_track(pid_t pid)
{
	if (ntracked >= MAX_TRACKED) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		IT_FAIL("harness: more than %d live processes", MAX_TRACKED);
	}
	tracked[ntracked] = pid;
	ntracked = ntracked + 1;
}

void harness_untrack(pid_t pid)
{
	for (int i = 0; i < ntracked; i++)
		if (tracked[i] == pid) {
			tracked[i] = tracked[ntracked - 1];
			ntracked = ntracked - 1;
			return;
		}
}

bool harness_tracks(pid_t pid)
{
	for (int i = 0; i < ntracked; i++)
		if (tracked[i] == pid)
			return true;
	return false;
}

void it_track_mount(const char *path)
{
	if (nmounts >= HARNESS_MAX_MOUNTS)
		IT_FAIL("harness: too many mounts");
	snprintf(mounts[nmounts], sizeof(mounts[0]), "%s", path);
	nmounts = nmounts + 1;
	harness_janitor_say('M', path);
}

void it_untrack_mount(const char *path)
{
	for (int i = 0; i < nmounts; i++)
		if (!strcmp(mounts[i], path)) {
			memcpy(mounts[i], mounts[nmounts - 1], sizeof(mounts[0]));
			nmounts = nmounts - 1;
			harness_janitor_say('m', path);
			return;
		}
}

/* SIGKILL and reap every recorded child (async-signal-safe). */
static void kill_tracked(void)
{
	while (ntracked > 0) {
		pid_t p = tracked[ntracked - 1];

		ntracked = ntracked - 1;
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
}

/*
 * Undo everything, using only async-signal-safe calls: this runs from the
 * emergency handler too.  rm -rf runs as a child for the same reason.
 */
static void cleanup_all(void)
{
	pid_t rm;

	kill_tracked();
	while (nmounts > 0) {
		nmounts = nmounts - 1;
		umount2(mounts[nmounts], MNT_DETACH);
	}
	if (have_dir) {
		have_dir = 0;
		rm = fork();
		if (rm == 0) {
			execl("/bin/rm", "rm", "-rf", test_dir, (char *)NULL);
			_exit(127);
		}
		if (rm > 0)
			waitpid(rm, NULL, 0);
	}
}

static void emergency(int sig)
{
	/* run.sh's timeout or a ^C: leave no daemon, mount or directory behind. */
	if (!harness_in_child)
		cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

void it_init(void)
{
	struct sigaction sa = { .sa_handler = emergency };

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A helper that dies must not kill the test writing to its pipe. */
	signal(SIGPIPE, SIG_IGN);
	harness_janitor_start();
}

/* In a fresh child: forget the parent's cleanup duties and cmocka's handlers. */
void harness_child_reset(pid_t parent)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT,
				    SIGTERM, SIGINT, SIGHUP, SIGPIPE };
	sigset_t all;

	harness_in_child = true;
	harness_janitor_detach();
	ntracked = 0;
	nmounts = 0;
	have_dir = 0;
	memset(clients, 0, sizeof(clients));
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Die with the test, even when it is killed with SIGKILL. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
}

/* ---- skipping ---- */

void it_skip(const char *fmt, ...)
{
	const char *req = getenv("RINGCAST_REQUIRE_ROOT_TESTS");
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (req && !strcmp(req, "1"))
		IT_FAIL("cannot run, and RINGCAST_REQUIRE_ROOT_TESTS=1 forbids skipping: %s", msg);
	printf("SKIP: %s\n", msg);
	skip();
}

void it_require_root(const char *reason)
{
	if (geteuid() == 0)
		return;
	it_skip("%s: needs root (euid %d)", reason, (int)geteuid());
}

/* ---- fixtures ---- */

/*
 * A daemon running as another user (it_daemon_user) must create its
 * socket in the test directory and its files in the runtime directory,
 * which the harness made as the test's user.  -1 after saying why.
 */
static int give_to_daemon_user(struct it_daemon *d)
{
	uid_t uid;
	gid_t gid;
	int ret = harness_daemon_user(&uid, &gid);

	if (ret == 0)
		return 0;
	if (ret < 0) {
		print_error("RINGCAST_IT_DAEMON_USER=%s: no such user\n",
			    getenv("RINGCAST_IT_DAEMON_USER"));
		return -1;
	}
	if (chown(d->dir, uid, gid) < 0 || chown(d->rundir, uid, gid) < 0) {
		print_error("chown %s and %s to %u:%u for the daemon: %s\n", d->dir, d->rundir,
			    (unsigned)uid, (unsigned)gid, strerror(errno));
		return -1;
	}
	return 0;
}

int it_setup(void **state)
{
	struct it_daemon *d = calloc(1, sizeof(*d));
	const char *build = getenv("RINGCAST_BUILD");

	if (!d)
		return -1;
	snprintf(d->dir, sizeof(d->dir), "/dev/shm/rc-it-XXXXXX");
	if (!mkdtemp(d->dir)) {
		print_error("mkdtemp %s: %s\n", d->dir, strerror(errno));
		free(d);
		return -1;
	}
	snprintf(test_dir, sizeof(test_dir), "%s", d->dir);
	have_dir = 1;
	harness_janitor_say('D', d->dir);
	/* 0755: tests that drop to another uid must reach the socket inside. */
	chmod(d->dir, 0755);
	snprintf(d->sock, sizeof(d->sock), "%s/ringcastd.sock", d->dir);
	snprintf(d->rundir, sizeof(d->rundir), "%s/run", d->dir);
	mkdir(d->rundir, 0755);
	snprintf(d->build, sizeof(d->build), "%s", build && *build ? build : "build");
	if (give_to_daemon_user(d) < 0) {
		/* cmocka runs no teardown after a failed setup */
		harness_rm_tree(test_dir);
		have_dir = 0;
		harness_janitor_say('d', test_dir);
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

int it_teardown(void **state)
{
	struct it_daemon *d = *state;

	/* A helper that reached cmocka by mistake must not run the parent's teardown. */
	if (harness_in_child)
		_exit(IT_CHILD_FAILED);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i]) {
			ringcast_close(clients[i]);
			clients[i] = NULL;
		}
	kill_tracked();
	while (nmounts > 0) {
		nmounts = nmounts - 1;
		if (umount2(mounts[nmounts], 0) < 0)
			umount2(mounts[nmounts], MNT_DETACH);
		harness_janitor_say('m', mounts[nmounts]);
	}
	if (have_dir) {
		harness_rm_tree(test_dir);
		have_dir = 0;
		harness_janitor_say('d', test_dir);
	}
	free(d);
	*state = NULL;
	return 0;
}

/* ---- clients ---- */

void harness_keep_client(struct ringcast *rc)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (!clients[i]) {
			clients[i] = rc;
			return;
		}
	ringcast_close(rc);
	IT_FAIL("harness: more than %d clients open", MAX_CLIENTS);
}

void harness_forget_client(struct ringcast *rc)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] == rc)
			clients[i] = NULL;
}
