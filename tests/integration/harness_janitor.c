/* SPDX-License-Identifier: MIT */
/*
 * The janitor: a process that outlives the test binary to remove the
 * directories and mounts the test announced, when the test dies without
 * running any of its own cleanup.
 */
#include "harness_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write end of the pipe to the janitor (see janitor()), or -1. */
static int janitor_fd = -1;

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

void harness_rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	rmdir(dir);
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
	char dirs[8][128], mnts[HARNESS_MAX_MOUNTS][128], buf[512];
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
			int cap = list == dirs ? 8 : HARNESS_MAX_MOUNTS;

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
	while (ndirs > 0)
		harness_rm_tree(dirs[--ndirs]);
	_exit(0);
}

void harness_janitor_start(void)
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

void harness_janitor_say(char op, const char *path)
{
	char line[160];
	int n;

	if (janitor_fd < 0 || harness_in_child)
		return;
	n = snprintf(line, sizeof(line), "%c %s\n", op, path);
	/* One short write: atomic on a pipe, so the janitor never sees half a line. */
	if (n > 0 && (size_t)n < sizeof(line) && write(janitor_fd, line, (size_t)n) < 0)
		return;
}

void harness_janitor_detach(void)
{
	/* Only the test holds the janitor's pipe: its EOF means the test is gone. */
	if (janitor_fd >= 0)
		close(janitor_fd);
	janitor_fd = -1;
}
