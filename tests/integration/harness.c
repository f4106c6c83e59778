// SPDX-License-Identifier: MIT
/*
 * The integration test harness (see harness.h for the contract).
 *
 * Everything a test starts or creates is recorded here (processes, the
 * test directory, mounts, clients), because a cmocka failure longjmps out
 * of the test function and only the teardown runs: it must find every
 * leftover without the test's help.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED 64
#define MAX_CLIENTS 32
#define MAX_MOUNTS 4

/*
 * What teardown (or the emergency handler) must undo.  Plain arrays and
 * sig_atomic_t counts: the signal handler reads them.
 */
static pid_t tracked[MAX_TRACKED];
static volatile sig_atomic_t ntracked;
static char mounts[MAX_MOUNTS][128];
static volatile sig_atomic_t nmounts;
static char test_dir[64];
static volatile sig_atomic_t have_dir;
static struct ringcast *clients[MAX_CLIENTS];
/* Set in every helper process: the cleanup lists above belong to the parent. */
static bool in_child;
/* Write end of the pipe to the janitor (see janitor()), or -1. */
static int janitor_fd = -1;

/* ---- small utilities ---- */

uint64_t it_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void it_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void *it_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		if (in_child)
			it_child_fail(__FILE__, __LINE__, "mmap %zu shared bytes: %s", size,
				      strerror(errno));
		IT_FAIL("mmap %zu shared bytes: %s", size, strerror(errno));
	}
	return p;
}

bool it_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

char *it_read_all(int fd, int timeout_ms, size_t *lenp)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		IT_FAIL("out of memory");
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		uint64_t now = it_now_ns();
		ssize_t n;

		if (now >= deadline)
			break;
		n = poll(&pfd, 1, (int)((deadline - now) / 1000000ull) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len + 1 >= cap) {
			char *b = realloc(buf, cap * 2);

			if (!b) {
				free(buf);
				IT_FAIL("out of memory");
			}
			buf = b;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

const char *it_status_str(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by SIG%s%s", sigabbrev_np(WTERMSIG(status)) ?: "?",
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else if (WIFSTOPPED(status))
		snprintf(buf, len, "stopped by SIG%s", sigabbrev_np(WSTOPSIG(status)) ?: "?");
	else
		snprintf(buf, len, "wait status 0x%x", (unsigned)status);
	return buf;
}

void it_child_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[helper pid %d] %s:%d: ", (int)getpid(), file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(NULL);
	_exit(IT_CHILD_FAILED);
}

/* ---- the janitor ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/*
 * A process that outlives the test binary to clean up after it.  Teardown
 * and the SIGTERM handler cover the ordinary ways out, but not the ones
 * that skip all of our code: a sanitizer halting on an error, SIGKILL
 * (timeout -k), a crash.  Helpers and daemons die with the test on their
 * own (PR_SET_PDEATHSIG); directories and mounts need this.  The test
 * announces them on a pipe ("D path" / "d path", "M path" / "m path");
 * when the pipe reaches EOF the test is gone, and whatever is still
 * announced is removed.
 */
static void janitor(int rfd)
{
	char dirs[8][128], mnts[MAX_MOUNTS][128], buf[512];
	int ndirs = 0, nmnts = 0;
	size_t have = 0;

	for (;;) {
		ssize_t n = read(rfd, buf + have, sizeof(buf) - have);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		while ((nl = memchr(buf, '\n', have))) {
			char (*list)[128] = buf[0] == 'D' || buf[0] == 'd' ? dirs : mnts;
			int *cnt = list == dirs ? &ndirs : &nmnts;
			int cap = list == dirs ? 8 : MAX_MOUNTS;

			*nl = '\0';
			if (nl - buf > 2 && nl - buf < 128 + 2 && (buf[0] == 'D' || buf[0] == 'M') &&
			    *cnt < cap) {
				memcpy(list[*cnt], buf + 2, (size_t)(nl - buf - 2) + 1);
				++*cnt;
			}
			if (nl - buf > 2 && (buf[0] == 'd' || buf[0] == 'm'))
				for (int i = 0; i < *cnt; i++)
					if (!strcmp(list[i], buf + 2)) {
						memcpy(list[i], list[--*cnt], 128);
						break;
					}
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf))
			have = 0; /* not a line of ours */
	}
	if (nmnts || ndirs)
		it_sleep_ms(100); /* helpers and daemons are dying of PDEATHSIG: let them */
	while (nmnts > 0)
		umount2(mnts[--nmnts], MNT_DETACH);
	while (ndirs > 0) {
		const char *dir = dirs[--ndirs];

		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
		rmdir(dir);
	}
	_exit(0);
}

static void janitor_start(void)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return; /* cleanup then relies on teardown alone */
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		/* Not the pipe's writer, and not killed along with the test's group. */
		close(p[1]);
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		setsid();
		janitor(p[0]);
	}
	close(p[0]);
	janitor_fd = p[1];
}

static void janitor_say(char op, const char *path)
{
	char line[160];
	int n;

	if (janitor_fd < 0 || in_child)
		return;
	n = snprintf(line, sizeof(line), "%c %s\n", op, path);
	/* One short write: atomic on a pipe, so the janitor never sees half a line. */
	if (n > 0 && (size_t)n < sizeof(line) && write(janitor_fd, line, (size_t)n) < 0)
		return;
}

/* ---- tracking ---- */

static void track(pid_t pid)
{
	if (ntracked >= MAX_TRACKED) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		IT_FAIL("harness: more than %d live processes", MAX_TRACKED);
	}
	tracked[ntracked] = pid;
	ntracked = ntracked + 1;
}

static void untrack(pid_t pid)
{
	for (int i = 0; i < ntracked; i++)
		if (tracked[i] == pid) {
			tracked[i] = tracked[ntracked - 1];
			ntracked = ntracked - 1;
			return;
		}
}

void it_track_mount(const char *path)
{
	if (nmounts >= MAX_MOUNTS)
		IT_FAIL("harness: too many mounts");
	snprintf(mounts[nmounts], sizeof(mounts[0]), "%s", path);
	nmounts = nmounts + 1;
	janitor_say('M', path);
}

void it_untrack_mount(const char *path)
{
	for (int i = 0; i < nmounts; i++)
		if (!strcmp(mounts[i], path)) {
			memcpy(mounts[i], mounts[nmounts - 1], sizeof(mounts[0]));
			nmounts = nmounts - 1;
			janitor_say('m', path);
			return;
		}
}

/*
 * Undo everything, using only async-signal-safe calls: this runs from the
 * emergency handler too.  rm -rf runs as a child for the same reason.
 */
static void cleanup_all(void)
{
	pid_t rm;

	while (ntracked > 0) {
		pid_t p = tracked[ntracked - 1];

		ntracked = ntracked - 1;
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
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
	if (!in_child)
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
	janitor_start();
}

/* In a fresh child: forget the parent's cleanup duties and cmocka's handlers. */
static void child_reset(pid_t parent)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT,
				    SIGTERM, SIGINT, SIGHUP, SIGPIPE };
	sigset_t all;

	in_child = true;
	/* Only the test holds the janitor's pipe: its EOF means the test is gone. */
	if (janitor_fd >= 0)
		close(janitor_fd);
	janitor_fd = -1;
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

/* ---- processes ---- */

pid_t it_fork(int (*fn)(void *arg), void *arg)
{
	pid_t parent = getpid(), pid;

	fflush(NULL); /* or the child repeats our buffered output */
	pid = fork();
	if (pid < 0)
		IT_FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		int ret;

		child_reset(parent);
		ret = fn(arg);
		fflush(NULL);
		_exit(ret & 0xff);
	}
	track(pid);
	return pid;
}

pid_t it_spawn(char *const argv[], int *in_fd, int *out_fd, int *err_fd)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	pid_t parent = getpid(), pid;

	if ((in_fd && pipe2(pin, O_CLOEXEC)) || (out_fd && pipe2(pout, O_CLOEXEC)) ||
	    (err_fd && pipe2(perr, O_CLOEXEC)))
		IT_FAIL("pipe2: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		IT_FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		child_reset(parent);
		/* dup2 clears O_CLOEXEC on the copies the program keeps. */
		if ((in_fd && dup2(pin[0], 0) < 0) || (out_fd && dup2(pout[1], 1) < 0) ||
		    (err_fd && dup2(perr[1], 2) < 0))
			_exit(127);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	track(pid);
	if (in_fd) {
		close(pin[0]);
		*in_fd = pin[1];
	}
	if (out_fd) {
		close(pout[1]);
		*out_fd = pout[0];
	}
	if (err_fd) {
		close(perr[1]);
		*err_fd = perr[0];
	}
	return pid;
}

int it_wait_flags(pid_t pid, int timeout_ms, int *status, int flags)
{
	uint64_t deadline = it_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
	int pidfd = -1, st = 0;

	/*
	 * A pidfd becomes readable the moment the child exits, so the time we
	 * take here is the child's, not a polling interval (it_kill's timing
	 * test measures from this).  Stops are not reported on it: poll then.
	 */
	if (!(flags & WUNTRACED))
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG | flags);
		uint64_t now;

		if (r == pid) {
			if (WIFEXITED(st) || WIFSIGNALED(st))
				untrack(pid);
			break;
		}
		if (r < 0 && errno != EINTR) {
			if (pidfd >= 0)
				close(pidfd);
			untrack(pid);
			return -errno;
		}
		now = it_now_ns();
		if (timeout_ms >= 0 && now >= deadline) {
			if (pidfd >= 0)
				close(pidfd);
			return -ETIMEDOUT;
		}
		if (pidfd >= 0) {
			struct pollfd pfd = { pidfd, POLLIN, 0 };
			int ms = timeout_ms < 0 ? -1 : (int)((deadline - now) / 1000000ull) + 1;

			poll(&pfd, 1, ms);
		} else {
			it_sleep_ms(1);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	if (status)
		*status = st;
	return 0;
}

int it_wait(pid_t pid, int timeout_ms, int *status)
{
	return it_wait_flags(pid, timeout_ms, status, 0);
}

void it_kill(pid_t pid)
{
	bool ours = false;

	for (int i = 0; i < ntracked; i++)
		ours |= tracked[i] == pid;
	if (!ours || pid <= 0)
		return; /* never signal a pid we do not own: it may be reused */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	untrack(pid);
}

void it_expect_exit(pid_t pid, int timeout_ms, int code, const char *what)
{
	char why[64];
	int st;

	if (it_wait(pid, timeout_ms, &st) == -ETIMEDOUT) {
		it_kill(pid);
		IT_FAIL("%s (pid %d) did not finish within %d ms; killed it", what, (int)pid,
			 timeout_ms);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
		IT_FAIL("%s (pid %d) %s, expected exit %d%s", what, (int)pid,
			 it_status_str(st, why, sizeof(why)), code,
			 WIFEXITED(st) && WEXITSTATUS(st) == IT_CHILD_FAILED ?
			 " (a check failed: see its message above)" : "");
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
	janitor_say('D', d->dir);
	/* 0755: tests that drop to another uid must reach the socket inside. */
	chmod(d->dir, 0755);
	snprintf(d->sock, sizeof(d->sock), "%s/ringcastd.sock", d->dir);
	snprintf(d->rundir, sizeof(d->rundir), "%s/run", d->dir);
	mkdir(d->rundir, 0755);
	snprintf(d->build, sizeof(d->build), "%s", build && *build ? build : "build");
	*state = d;
	return 0;
}

int it_teardown(void **state)
{
	struct it_daemon *d = *state;

	/* A helper that reached cmocka by mistake must not run the parent's teardown. */
	if (in_child)
		_exit(IT_CHILD_FAILED);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i]) {
			ringcast_close(clients[i]);
			clients[i] = NULL;
		}
	while (ntracked > 0) {
		pid_t p = tracked[ntracked - 1];

		ntracked = ntracked - 1;
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
	while (nmounts > 0) {
		nmounts = nmounts - 1;
		if (umount2(mounts[nmounts], 0) < 0)
			umount2(mounts[nmounts], MNT_DETACH);
		janitor_say('m', mounts[nmounts]);
	}
	if (have_dir) {
		nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
		rmdir(test_dir);
		have_dir = 0;
		janitor_say('d', test_dir);
	}
	free(d);
	*state = NULL;
	return 0;
}

/* ---- the daemon ---- */

pid_t it_daemon_spawn(struct it_daemon *d)
{
	char path[300];
	char *argv[IT_DAEMON_ARGS_MAX + 12];
	const char *verbose = getenv("IT_VERBOSE");
	int n = 0;

	snprintf(path, sizeof(path), "%s/ringcastd", d->build);
	if (access(path, X_OK) < 0)
		IT_FAIL("%s: %s (build it first: make)", path, strerror(errno));
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
		untrack(d->pid);
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

/* ---- clients ---- */

struct ringcast *it_open(struct it_daemon *d)
{
	struct ringcast *rc = NULL;
	int ret = ringcast_open(&rc, d->sock);

	if (ret < 0)
		IT_FAIL("ringcast_open(%s) = %d (%s)", d->sock, ret, ringcast_strerror(ret));
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (!clients[i]) {
			clients[i] = rc;
			return rc;
		}
	ringcast_close(rc);
	IT_FAIL("harness: more than %d clients open", MAX_CLIENTS);
	return NULL; /* not reached: cmocka's fail longjmps */
}

void it_close(struct ringcast *rc)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] == rc)
			clients[i] = NULL;
	ringcast_close(rc);
}

struct ringcast *it_child_open(const char *sock)
{
	struct ringcast *rc = NULL;
	int ret = ringcast_open(&rc, sock);

	if (ret < 0)
		it_child_fail(__FILE__, __LINE__, "ringcast_open(%s) = %d (%s)", sock, ret,
			      ringcast_strerror(ret));
	return rc;
}

bool it_wait_subscribers(struct it_daemon *d, const char *topic, size_t min_subs, pid_t pid,
			 int timeout_ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct ringcast *rc = NULL;
	bool seen = false;

	do {
		struct ringcast_topic_stat *st = NULL;
		size_t n = 0;

		if (!rc && ringcast_open(&rc, d->sock) < 0)
			rc = NULL;
		if (rc && ringcast_stat(rc, topic, &st, &n) == 0) {
			for (size_t i = 0; i < n && !seen; i++) {
				bool has_pid = pid == 0;

				if (strcmp(st[i].topic, topic))
					continue;
				for (size_t j = 0; j < st[i].n_subs; j++)
					has_pid |= st[i].subs[j].pid == (uint32_t)pid;
				seen = st[i].n_subs >= min_subs && has_pid;
			}
			ringcast_stat_free(st, n);
		}
		if (!seen)
			it_sleep_ms(10);
	} while (!seen && it_now_ns() < deadline);
	ringcast_close(rc);
	return seen;
}

/* ---- inbox ---- */

int it_inbox_handler(const struct ringcast_msg *msg, void *ctx)
{
	struct it_inbox *box = ctx;
	struct it_inbox_msg *m;

	if (box->n >= IT_INBOX_MAX) {
		box->overflow++;
		return 0;
	}
	m = &box->m[box->n++];
	m->topic_len = msg->topic_len;
	memcpy(m->topic, msg->topic, msg->topic_len <= RINGCAST_TOPIC_MAX ? msg->topic_len :
	       RINGCAST_TOPIC_MAX);
	m->len = msg->len;
	memcpy(m->data, msg->data, msg->len < IT_INBOX_DATA ? msg->len : IT_INBOX_DATA);
	m->seq = msg->seq;
	m->publish_ns = msg->publish_ns;
	m->lost = msg->lost;
	snprintf(m->origin, sizeof(m->origin), "%s", msg->origin ? msg->origin : "(null)");
	return 0;
}

int it_inbox_fill(struct ringcast *rc, struct it_inbox *box, int want, int timeout_ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		int ret = ringcast_poll(rc, it_inbox_handler, box, 0);
		uint64_t now;

		if (ret < 0)
			return ret;
		if (box->n + box->overflow >= want)
			break;
		now = it_now_ns();
		if (now >= deadline)
			break;
		ret = ringcast_wait(rc, (int)((deadline - now) / 1000000ull) + 1);
		if (ret < 0 && ret != -ETIMEDOUT)
			return ret;
	}
	return box->n + box->overflow;
}
