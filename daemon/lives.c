/* SPDX-License-Identifier: MIT */
/*
 * Client records and life locks (lives.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lives.h"
#include "rundir.h"

#define LIFE_MAGIC 0x3146494c43435221ull /* "!RCCLIF1" */

struct life_file {
	uint64_t magic;
	struct rcd_life l;
};

static void name_of(uint32_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%08x", id);
}

int rcd_lives_open(int dirfd)
{
	struct stat st;
	int fd;

	if (mkdirat(dirfd, "clients", 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, "clients", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Records decide who may resume: only a directory of ours, closed to others. */
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int rcd_lives_record(int lives_fd, const struct rcd_life *l)
{
	struct life_file f = { LIFE_MAGIC, *l };
	struct flock lk = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	char name[16];
	int wfd, fd, ret;

	name_of(l->client_id, name, sizeof(name));
	wfd = openat(lives_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (wfd < 0)
		return -errno;
	ret = pwrite(wfd, &f, sizeof(f), 0) == (ssize_t)sizeof(f) ? 0 : -EIO;
	close(wfd);
	if (ret < 0)
		return ret;
	/*
	 * A fresh open file description: its lock is the client's alone, and
	 * (an OFD lock) it goes when the last descriptor of it closes, that
	 * is when the client dies, not when we close our copy.
	 */
	fd = openat(lives_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_OFD_SETLK, &lk) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

void rcd_lives_forget(int lives_fd, uint32_t client_id)
{
	char name[16];

	name_of(client_id, name, sizeof(name));
	unlinkat(lives_fd, name, 0);
}

int rcd_lives_read(int lives_fd, uint32_t client_id, struct rcd_life *out)
{
	struct life_file f;
	char name[16], why[96];
	ssize_t n;
	int fd;

	name_of(client_id, name, sizeof(name));
	fd = openat(lives_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	n = pread(fd, &f, sizeof(f), 0);
	/* Ours: written by this daemon's user, readable by no one else, one link. */
	if (rcd_file_ours(fd, why, sizeof(why)) < 0 || n != (ssize_t)sizeof(f) ||
	    f.magic != LIFE_MAGIC || f.l.client_id != client_id) {
		close(fd);
		return -EBADMSG;
	}
	close(fd);
	*out = f.l;
	return 0;
}

bool rcd_lives_alive(int lives_fd, uint32_t client_id)
{
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	char name[16];
	int fd, ret;

	name_of(client_id, name, sizeof(name));
	fd = openat(lives_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	/* Would a write lock conflict?  Only with a live client's read lock. */
	ret = fcntl(fd, F_OFD_GETLK, &lk);
	close(fd);
	return ret == 0 && lk.l_type != F_UNLCK;
}
