/* SPDX-License-Identifier: MIT */
/*
 * The runtime directory and the files the daemon trusts in it (rundir.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "registry.h"
#include "rundir.h"

int rcd_file_ours(int fd, char *why, size_t len)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int ret = -errno;

		snprintf(why, len, "fstat: %s", strerror(-ret));
		return ret;
	}
	if (!S_ISREG(st.st_mode))
		snprintf(why, len, "not a regular file");
	else if (st.st_uid != geteuid())
		snprintf(why, len, "owned by uid %u, not the daemon's %u", (unsigned)st.st_uid,
			 (unsigned)geteuid());
	else if (st.st_mode & 077)
		snprintf(why, len, "mode %04o, open to others", (unsigned)(st.st_mode & 07777));
	else if (st.st_nlink != 1)
		/* a second name, maybe where others can reach it */
		snprintf(why, len, "linked %lu times", (unsigned long)st.st_nlink);
	else
		return 0;
	return -EPERM;
}

int rcd_name_ours(int dirfd, const char *name, char *why, size_t len)
{
	/* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), ret;

	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP) {
			snprintf(why, len, "a symbolic link");
			return -EPERM;
		}
		snprintf(why, len, "%s", strerror(-ret));
		return ret;
	}
	ret = rcd_file_ours(fd, why, len);
	close(fd);
	return ret;
}

/* Is the directory open at fd the daemon's alone?  0 or -EPERM, logged. */
static int dir_ours(int fd, const char *path, struct rcd_log *log)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int ret = -errno;

		rcd_err(log, "cannot stat runtime dir %s: %s", path, strerror(-ret));
		return ret;
	}
	if (st.st_uid != geteuid()) {
		rcd_err(log, "runtime dir %s is owned by uid %u, not by the daemon's uid %u: "
			"refusing to adopt files others could have put there", path,
			(unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & 022) {
		rcd_err(log, "runtime dir %s is mode %04o: others may write to it; make it 0755 "
			"or stricter", path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Open and lock DIR/RCD_LOCK_FILE: the lock's fd or negative errno, logged. */
static int lock_dir(int dirfd, const char *path, struct rcd_log *log)
{
	char why[96];
	int fd, ret;

	/* Created 0600 (less the umask), so only the daemon's user can open it. */
	fd = openat(dirfd, RCD_LOCK_FILE, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		ret = -errno;
		rcd_err(log, "cannot open %s/%s: %s", path, RCD_LOCK_FILE,
			ret == -ELOOP ? "it is a symbolic link" : strerror(-ret));
		return ret;
	}
	ret = rcd_file_ours(fd, why, sizeof(why));
	if (ret < 0) {
		/*
		 * A lock file others may open is one they may lock first.  Not
		 * replaced: two daemons starting at once could each replace it
		 * and each lock a file of its own.
		 */
		rcd_err(log, "%s/%s is %s: another user could hold the daemon's lock; remove it",
			path, RCD_LOCK_FILE, why);
		close(fd);
		return ret;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (ret == -EBUSY)
			rcd_err(log, "runtime dir %s is in use by another ringcastd", path);
		else
			rcd_err(log, "cannot lock %s/%s: %s", path, RCD_LOCK_FILE, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

int rcd_rundir_open(const char *path, struct rcd_log *log, int *lock_fd)
{
	struct stat st;
	int fd, ret;

	*lock_fd = -1;
	ret = rcd_mkdirs(path, 0755);
	if (ret < 0) {
		rcd_err(log, "cannot create runtime dir %s: %s", path, strerror(-ret));
		return ret;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
			rcd_err(log, "runtime dir %s is a symbolic link: give the directory itself",
				path);
			return -EPERM;
		}
		rcd_err(log, "cannot open runtime dir %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = dir_ours(fd, path, log);
	if (ret == 0)
		ret = lock_dir(fd, path, log);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	*lock_fd = ret;
	return fd;
}
