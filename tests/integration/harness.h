/* SPDX-License-Identifier: MIT */
/*
 * The integration test harness: a private ringcastd per test, helper
 * processes, bounded waits, and assertions that explain themselves.
 *
 * Every test gets a fresh directory from mktemp -d /dev/shm/rc-it-XXXXXX
 * holding the daemon's socket (DIR/ringcastd.sock) and runtime directory
 * (DIR/run).  it_setup() / it_teardown() are the cmocka fixtures that
 * create and remove it; teardown also kills every process the test started
 * (helpers, programs, daemons) and unmounts what it mounted, on every path
 * a test can leave by, so a failing test never leaks into the next one.
 * A SIGTERM/SIGINT to the test binary (run.sh's timeout) does the same,
 * and a janitor process removes directories and mounts even when the
 * test dies without running any of its code (SIGKILL, a sanitizer halt).
 *
 * Two worlds, two sets of checks:
 *  - the test process uses cmocka (IT_ASSERT_OK and friends);
 *  - helper processes (it_fork) must never use cmocka, whose failure path
 *    would longjmp into the child's copy of the test runner.  They use
 *    IT_CHECK / IT_CHECK_OK, which print why and _exit(IT_CHILD_FAILED);
 *    the parent checks the exit status with it_expect_exit().
 */
#ifndef RINGCAST_IT_HARNESS_H
#define RINGCAST_IT_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include <cmocka.h>

#include "ringcast.h"

#define IT_DAEMON_ARGS_MAX 24
#define IT_START_TIMEOUT_MS 5000 /* the socket must answer a HELLO within this */
#define IT_STOP_TIMEOUT_MS 5000  /* SIGTERM must end the daemon within this */
#define IT_CHILD_FAILED 3        /* exit status of a helper whose check failed */
#define IT_NODE "it-node@test"   /* --node of every harness daemon */

struct it_daemon {
	char dir[64];      /* the test's private directory */
	char sock[128];    /* DIR/ringcastd.sock */
	char rundir[128];  /* DIR/run: --runtime-dir (tests may mount a tmpfs on it) */
	char build[256];   /* $RINGCAST_BUILD, default "build" */
	const char *args[IT_DAEMON_ARGS_MAX]; /* extra flags, kept for restarts */
	int nargs;
	pid_t pid;         /* 0 when not running */
	int last_status;   /* wait status of the last daemon that ended */
	int starts;
};

/* ---- fixtures and process-wide setup ---- */

/*
 * Call first in main(): line-buffered output, emergency cleanup on
 * SIGTERM/SIGINT/SIGHUP, the janitor.  Never fails (without a janitor,
 * cleanup relies on teardown and the signal handler alone).
 */
void it_init(void);
/* cmocka setup: a fresh directory; *state is the struct it_daemon (not started). */
int it_setup(void **state);
/* cmocka teardown: kill what is left, unmount, remove the directory, free. */
int it_teardown(void **state);

/* ---- the daemon ---- */

/*
 * Start ringcastd on d's socket and runtime dir with the extra flags given
 * (a NULL-terminated list of strings that must outlive d), then wait until
 * it answers a HELLO.  Fails the test (with the daemon's exit status) if
 * it does not within IT_START_TIMEOUT_MS.
 */
void it_daemon_start(struct it_daemon *d, ...) __attribute__((sentinel));
/* Start again with the flags of the last it_daemon_start() (same dir). */
void it_daemon_restart(struct it_daemon *d);
/*
 * Fork+exec ringcastd with d's flags and return at once (no wait); pid or
 * fails the test.  With $RINGCAST_IT_DAEMON_WRAP set, the words of that
 * command come first (e.g. setpriv dropping to another user: see
 * docs/testing.md); the pid is then the wrapper's, which must exec the
 * daemon in its place, keep its parent-death signal (setpriv
 * --pdeathsig=keep: a change of uid clears it, and a daemon that outlives
 * a killed test is left behind) and pass signals on.
 */
pid_t it_daemon_spawn(struct it_daemon *d);
/*
 * Wait until ringcast_open() on d's socket succeeds (a HELLO answered, not
 * merely a connect: the kernel queues connections before the daemon
 * accepts, and a daemon may bind and then fail its start-up).  false after
 * timeout_ms or if the daemon died (d->last_status says how).
 */
bool it_daemon_wait_ready(struct it_daemon *d, int timeout_ms);
/* SIGTERM, wait up to IT_STOP_TIMEOUT_MS; returns the wait status (-1: did not exit, killed). */
int it_daemon_stop(struct it_daemon *d);
/* SIGKILL and reap. */
void it_daemon_kill(struct it_daemon *d);
/* Is the daemon still running (not exited, not a zombie)? */
bool it_daemon_alive(struct it_daemon *d);
/*
 * Does the daemon run as another user ($RINGCAST_IT_DAEMON_USER, through
 * the wrapper)?  true and that user's uid and primary gid; fails the test
 * if there is no such user.  it_setup() gives that user the test
 * directory and the runtime directory.
 */
bool it_daemon_user(uid_t *uid, gid_t *gid);
/*
 * Mount options for a tmpfs the daemon is to use as its runtime dir: opts,
 * plus uid= and gid= of it_daemon_user() when the daemon runs as another
 * user (it refuses a runtime dir not its own).  opts, or buf filled.
 */
const char *it_tmpfs_opts(const char *opts, char *buf, size_t len);
/*
 * Mount a tmpfs with opts (it_tmpfs_opts) on d->rundir, unmounted at the
 * test's end; skips when mounting is not allowed here (root only).
 */
void it_mount_rundir(struct it_daemon *d, const char *opts);
/*
 * A test that needs the daemon to be root: returns when it is, else prints
 * "SKIP: needs a root daemon ...: reason" and skips, even with
 * RINGCAST_REQUIRE_ROOT_TESTS=1 (the suite's root run covers the test).
 */
void it_require_root_daemon(const char *reason);
/* Assert the daemon is running; say how it ended if not. */
void it_assert_daemon_alive(struct it_daemon *d);
/* ringcast_open() on d's socket, failing the test with the reason if it fails. */
struct ringcast *it_open(struct it_daemon *d);
/* ringcast_close() a client from it_open() (teardown closes any left open). */
void it_close(struct ringcast *rc);
/* As it_open(), for helper processes: IT_CHECK semantics. */
struct ringcast *it_child_open(const char *sock);

/*
 * ---- inside a client: the one door (harness_lib.c) ----
 *
 * Tests see include/ and, where they play a client that writes the
 * shared files or speaks the protocol itself, the two format headers
 * (lib/ring_format.h, lib/proto.h), included by path as an attacker
 * reads them from docs/ring-format.md and docs/protocol.md.  Only the
 * harness files are built with -Ilib: what a test needs of struct
 * ringcast and the rest of lib/'s internals it gets through these.  The
 * structs are the files' layouts (ring_format.h); a test that looks
 * inside them includes that header.
 */
struct rc_ring_hdr;
struct rc_ctl_hdr;
struct rc_node_hdr;

/*
 * The ring rc last published to, as its publisher maps it (read-write):
 * the ring header, and if asked the ctl mapping and rc's publisher slot
 * (-1 without).  NULL when rc has published nothing.
 */
struct rc_ring_hdr *it_pub_ring(struct ringcast *rc, struct rc_ctl_hdr **ctl, int *slot);
/* Subscriber rc's ctl mapping of topic (read-write), and if asked its slot; NULL if none. */
struct rc_ctl_hdr *it_sub_ctl(struct ringcast *rc, const char *topic, int *slot);
/* rc's mapping of the node file (read-only: the daemon's alone). */
const struct rc_node_hdr *it_node_hdr(struct ringcast *rc);
/* Subscribers asleep (or arming to sleep) on the topic rc last published to. */
unsigned it_pub_sleepers(struct ringcast *rc);
/* Is rc's doorbell armed: rc asleep in ringcast_wait or about to be, and not rung since? */
bool it_bell_armed(struct ringcast *rc);
/*
 * Say HELLO again with RESUME as client_id on bell, as rc does after a
 * daemon restart, whoever they belong to; what the reconnect returned.
 * ringcast_client_id() then tells who the daemon let rc be.
 */
int it_resume_as(struct ringcast *rc, uint32_t client_id, uint32_t bell);
/*
 * Wait until the daemon publishes the node clock's line (its first takes
 * 10 ms of samples): only then can a publish take the publisher's fast
 * path (lib/client_pub.c).  False where the TSC cannot carry that clock.
 */
bool it_wait_node_clock(struct ringcast *rc);
/*
 * A topic's ring and ctl files (sealed memfds labelled name.ring and
 * name.ctl) made as the daemon makes them: 0 and the fds, or -errno.
 */
int it_ring_create(const char *name, const char *topic, uint64_t capacity, uint64_t topic_id,
		   uint32_t tether_timeout_ms, int *ring_fd, int *ctl_fd);
/* The semaphores the kernel raises while libringcast's publish and deliver probes are traced. */
void it_probe_semaphores(volatile unsigned short **publish, volatile unsigned short **deliver);

/*
 * In a helper process (fails with IT_CHECK): become uid and gid, with
 * exactly groups[0..ngroups) as supplementary groups, keeping the
 * parent-death signal the credential change clears.
 */
void it_become(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups);

/*
 * A thread that calls ringcast_wait(rc, timeout_ms) once: run it with
 * pthread_create(..., it_waiter_main, w); w->tid says which thread it is
 * (for /proc: tests/in_futex.h), w->ret what the wait returned.
 */
struct it_waiter {
	struct ringcast *rc;
	int timeout_ms;
	_Atomic pid_t tid;
	int ret;
};
void *it_waiter_main(void *arg);

/* ---- processes ---- */

/*
 * Run fn(arg) in a child process, whose exit status is fn's return value.
 * The child dies with the test process (PR_SET_PDEATHSIG), has default
 * handlers for crash signals (cmocka's would catch them), and is killed
 * at teardown if still running.
 */
pid_t it_fork(int (*fn)(void *arg), void *arg);
/*
 * Fork+exec argv[0] (a path, or a name looked up in $PATH) with
 * stdin/stdout/stderr connected to new pipes when the matching pointer is
 * non-NULL (the parent's ends are returned, O_CLOEXEC), else inherited.
 * Tracked like it_fork().
 */
pid_t it_spawn(char *const argv[], int *in_fd, int *out_fd, int *err_fd);
/*
 * Wait for pid up to timeout_ms (< 0: forever).  0 and *status, or
 * -ETIMEDOUT (the child is left running).  flags may hold WUNTRACED.
 */
int it_wait(pid_t pid, int timeout_ms, int *status);
int it_wait_flags(pid_t pid, int timeout_ms, int *status, int flags);
/* SIGKILL pid (if tracked and alive) and reap it. */
void it_kill(pid_t pid);
/* Describe a wait status ("exited 0", "killed by SIGSEGV", ...) into buf. */
const char *it_status_str(int status, char *buf, size_t len);
/* Wait up to timeout_ms for pid and assert it exited with code; kills it on timeout. */
void it_expect_exit(pid_t pid, int timeout_ms, int code, const char *what);

/* ---- time, shared memory, reading ---- */

uint64_t it_now_ns(void);
void it_sleep_ms(unsigned ms);
/* Zeroed MAP_SHARED anonymous memory that children inherit; never freed (tiny). */
void *it_shared(size_t size);
/*
 * Write text to DIR/name, the test's private directory, and put that path
 * in path[0..len): a config file for --config (path must outlive the
 * daemon's restarts: the harness keeps the arguments).  Fails the test
 * when it cannot.
 */
void it_write_conf(const struct it_daemon *d, const char *name, const char *text, char *path,
		   size_t len);
/* Read fd until EOF or timeout_ms; returns a NUL-terminated malloc'd buffer (caller frees). */
char *it_read_all(int fd, int timeout_ms, size_t *len);
/* Write all of buf; false on error. */
bool it_write_all(int fd, const void *buf, size_t len);

/*
 * Poll ringcast_stat() of topic through a fresh client until pred(its
 * stat, arg) holds.  Returns true when seen within timeout_ms.
 */
bool it_wait_stat(struct it_daemon *d, const char *topic,
		  bool (*pred)(const struct ringcast_topic_stat *st, const void *arg), const void *arg,
		  int timeout_ms);
/* it_wait_stat() until topic has at least min_subs subscribers (and, when pid != 0, pid's). */
/* Does the daemon know topic name, per a fresh client's STAT of every topic? */
bool it_has_topic(struct it_daemon *d, const char *name);
bool it_wait_subscribers(struct it_daemon *d, const char *topic, size_t min_subs, pid_t pid,
			 int timeout_ms);

/*
 * Root-only tests: returns when root.  Otherwise prints "SKIP: reason" and
 * skips the test, or fails it when RINGCAST_REQUIRE_ROOT_TESTS=1.
 */
#include <signal.h>
#if defined(__x86_64__)
#define IT_AUDIT_ARCH 0xc000003eu /* AUDIT_ARCH_X86_64 */
#elif defined(__aarch64__)
#define IT_AUDIT_ARCH 0xc00000b7u /* AUDIT_ARCH_AARCH64 */
#endif
/*
 * From here on the process may only exit: any other system call raises
 * SIGSYS (on_sigsys runs).  0, or a negative errno (-EOPNOTSUPP when
 * IT_AUDIT_ARCH is not defined for this architecture).
 */
int it_seccomp_exit_only(void (*on_sigsys)(int, siginfo_t *, void *));

void it_require_root(const char *reason);
/* As it_require_root(), for a missing capability or feature found at run time. */
void it_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Remember a mount point so teardown unmounts it on every path. */
void it_track_mount(const char *path);
void it_untrack_mount(const char *path);

/* ---- collecting messages (in the test process or a helper) ---- */

#define IT_INBOX_MAX 64
#define IT_INBOX_DATA 256 /* bytes of each payload kept; len is the real length */

struct it_inbox_msg {
	char topic[RINGCAST_TOPIC_MAX + 1];
	size_t topic_len;
	char data[IT_INBOX_DATA];
	size_t len;
	uint64_t seq, publish_ns, lost;
	char origin[256];
};

struct it_inbox {
	int n;        /* messages kept */
	int overflow; /* messages beyond IT_INBOX_MAX (counted, not kept) */
	struct it_inbox_msg m[IT_INBOX_MAX];
};

/*
 * How many rings the keeper of d's runtime directory (daemon/keeper.h)
 * holds, from its /proc/PID/fd; -1 if no keeper of d's is running.
 */
int it_kept_rings(const struct it_daemon *d);
/*
 * In a child about to exec the CLI (build_dir/ringcast) as another uid:
 * let it find libringcast.so.0 through build_dir as given (relative to
 * the working directory), not only through its rpath, $ORIGIN, which is
 * absolute: under a checkout in a 0700 home the other uid may not search
 * that path, and the CLI would not start.
 */
void it_cli_lib_path(const char *build_dir);

/* The pid of the keeper of d's runtime directory, or -1 if none runs. */
pid_t it_keeper_pid(const struct it_daemon *d);

/*
 * Make d's keeper let go (remove its socket, as an admin would) and wait
 * until it has exited: the next daemon of d starts afresh, and clients of
 * the old files learn it (the keeper retires the old node file).
 */
void it_forget_keeper(struct it_daemon *d);

struct rc_msg;
/*
 * Send m on a raw connection (it_raw_connect) and read the reply: its
 * type, or a negative errno.  *err (if not NULL) gets an ERROR's errno
 * (0 otherwise); up to max of the fds that came with it go to fds
 * (*nfds of them), the rest are closed.
 */
int it_raw_request(int sock, const struct rc_msg *m, int *err, int *fds, int max, int *nfds);

/*
 * A bare SOCK_SEQPACKET connection to the daemon's socket, as a client
 * that speaks the protocol itself would make (5 s receive timeout).
 * 0 or -errno; *fd_out is the socket either way (or -1).
 */
int it_raw_connect(const char *sock, int *fd_out);

/* A ringcast_handler that appends copies of messages to the struct it_inbox ctx. */
int it_inbox_handler(const struct ringcast_msg *msg, void *ctx);
/*
 * ringcast_poll() into box, sleeping in ringcast_wait() between, until it
 * holds at least want messages or timeout_ms passed.  Returns box->n +
 * overflow, or a negative errno from poll/wait.
 */
int it_inbox_fill(struct ringcast *rc, struct it_inbox *box, int want, int timeout_ms);

/* ---- assertions ---- */

/*
 * For the test process (cmocka).  cmocka's fail_msg() longjmps out of the
 * test but is not declared noreturn; the abort() after it is never
 * reached and tells the compiler so (GCC's -Wformat-overflow under
 * UBSan otherwise sees paths that continue past a failed assertion).
 */
#define IT_FAIL(...)                                                                       \
	do {                                                                               \
		fail_msg(__VA_ARGS__);                                                     \
		abort();                                                                   \
	} while (0)

#define IT_ASSERT_OK(expr)                                                                 \
	do {                                                                               \
		long it_ret_ = (long)(expr);                                               \
		if (it_ret_ < 0)                                                           \
			IT_FAIL("%s = %ld (%s)", #expr, it_ret_, ringcast_strerror((int)it_ret_)); \
	} while (0)

#define IT_ASSERT_ERR(expr, err)                                                          \
	do {                                                                               \
		long it_ret_ = (long)(expr);                                               \
		if (it_ret_ != (long)(err))                                                \
			IT_FAIL("%s = %ld (%s), expected %s = %d (%s)", #expr, it_ret_,    \
				ringcast_strerror((int)it_ret_), #err, (int)(err),         \
				ringcast_strerror((int)(err)));                            \
	} while (0)

#define IT_ASSERT(cond, ...)                                                               \
	do {                                                                               \
		if (!(cond)) {                                                             \
			print_error("%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
			IT_FAIL(__VA_ARGS__);                                              \
		}                                                                          \
	} while (0)

/* For helper processes: never cmocka; print and _exit(IT_CHILD_FAILED). */
void it_child_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

#define IT_CHECK(cond, ...)                                                                \
	do {                                                                               \
		if (!(cond))                                                               \
			it_child_fail(__FILE__, __LINE__, __VA_ARGS__);                    \
	} while (0)

#define IT_CHECK_OK(expr)                                                                  \
	do {                                                                               \
		long it_ret_ = (long)(expr);                                               \
		if (it_ret_ < 0)                                                           \
			it_child_fail(__FILE__, __LINE__, "%s = %ld (%s)", #expr, it_ret_, \
				      ringcast_strerror((int)it_ret_));                    \
	} while (0)

#define IT_CHECK_ERR(expr, err)                                                           \
	do {                                                                               \
		long it_ret_ = (long)(expr);                                               \
		if (it_ret_ != (long)(err))                                                \
			it_child_fail(__FILE__, __LINE__, "%s = %ld (%s), expected %s",    \
				      #expr, it_ret_, ringcast_strerror((int)it_ret_), #err); \
	} while (0)

/* A spin-wait hint that is not a system call. */
static inline void it_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#endif /* RINGCAST_IT_HARNESS_H */
