/* SPDX-License-Identifier: MIT */
/*
 * Helper processes: fork a function, spawn a program, wait with a
 * deadline, kill, and say how a child ended.  Every child is recorded
 * (harness.c) so teardown kills what a failed test left running.
 */
#include "harness_internal.h"

#include <errno.h>
#include <sys/prctl.h>
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

		harness_child_reset(parent);
		ret = fn(arg);
		fflush(NULL);
		_exit(ret & 0xff);
	}
	harness_track(pid);
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
		harness_child_reset(parent);
		/* dup2 clears O_CLOEXEC on the copies the program keeps. */
		if ((in_fd && dup2(pin[0], 0) < 0) || (out_fd && dup2(pout[1], 1) < 0) ||
		    (err_fd && dup2(perr[1], 2) < 0))
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	harness_track(pid);
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
				harness_untrack(pid);
			break;
		}
		if (r < 0 && errno != EINTR) {
			if (pidfd >= 0)
				close(pidfd);
			harness_untrack(pid);
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
	if (!harness_tracks(pid) || pid <= 0)
		return; /* never signal a pid we do not own: it may be reused */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	harness_untrack(pid);
}

void it_expect_exit(pid_t pid, int timeout_ms, int code, const char *what)
{
	char why[64];
	int st = 0;

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

void it_become(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	IT_CHECK(setgroups(ngroups, groups) == 0, "setgroups: %s", strerror(errno));
	IT_CHECK(setresgid(gid, gid, gid) == 0, "setresgid: %s", strerror(errno));
	IT_CHECK(setresuid(uid, uid, uid) == 0, "setresuid: %s", strerror(errno));
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	IT_CHECK(geteuid() == uid && getegid() == gid, "still uid %d gid %d", (int)geteuid(),
		 (int)getegid());
}
