/* SPDX-License-Identifier: MIT */
/*
 * Small utilities for tests and helpers alike: the monotonic clock,
 * sleeping, memory shared with children, and reading and writing fds.
 */
#include "harness_internal.h"
#include "proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <poll.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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
		if (harness_in_child)
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

void it_write_conf(const struct it_daemon *d, const char *name, const char *text, char *path,
		   size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", d->dir, name);
	f = fopen(path, "w");
	IT_ASSERT(f != NULL, "fopen %s: %s", path, strerror(errno));
	fputs(text, f);
	IT_ASSERT(fclose(f) == 0, "writing %s: %s", path, strerror(errno));
}

int it_raw_connect(const char *sock, int *fd_out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	*fd_out = fd;
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

/* Is /proc/<pid> the keeper of rundir?  Its argv: ringcastd --be-keeper INO DIR. */
static bool is_keeper_of(const char *pid, const char *rundir)
{
	char path[300], argv[4200];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, argv, sizeof(argv) - 1);
	close(fd);
	if (n <= 0)
		return false;
	argv[n] = '\0';
	/* The arguments after argv[0], NUL-separated. */
	{
		const char *a1 = argv + strlen(argv) + 1, *a2, *a3;

		if (a1 >= argv + n || strcmp(a1, "--be-keeper"))
			return false;
		a2 = a1 + strlen(a1) + 1;
		a3 = a2 < argv + n ? a2 + strlen(a2) + 1 : argv + n;
		return a3 < argv + n && !strcmp(a3, rundir);
	}
}

pid_t it_keeper_pid(const struct it_daemon *d)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;
	pid_t pid = -1;

	if (!proc)
		return -1;
	while (pid < 0 && (p = readdir(proc)))
		if (p->d_name[0] >= '1' && p->d_name[0] <= '9' && is_keeper_of(p->d_name, d->rundir))
			pid = (pid_t)atoi(p->d_name);
	closedir(proc);
	return pid;
}

int it_kept_rings(const struct it_daemon *d)
{
	pid_t pid = it_keeper_pid(d);
	struct dirent *f;
	char path[64];
	DIR *fds;
	int n = 0;

	if (pid < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	fds = opendir(path);
	if (!fds)
		return -1;
	while ((f = readdir(fds))) {
		char link[600], target[256];
		ssize_t len;

		snprintf(link, sizeof(link), "%s/%s", path, f->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		n += strstr(target, "memfd:ringcast:") && strstr(target, ".ring");
	}
	closedir(fds);
	return n;
}

void it_forget_keeper(struct it_daemon *d)
{
	char path[300];
	uint64_t until = it_now_ns() + 5000000000ull;

	snprintf(path, sizeof(path), "%s/keeper.sock", d->rundir);
	IT_ASSERT(unlink(path) == 0 || errno == ENOENT, "unlink %s: %s", path, strerror(errno));
	while (it_kept_rings(d) >= 0) {
		IT_ASSERT(it_now_ns() < until, "the keeper of %s did not exit within 5 s of losing "
			  "its socket", d->rundir);
		it_sleep_ms(20);
	}
}

int it_raw_request(int sock, const struct rc_msg *m, int *err, int *fds, int max, int *nfds)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} cbuf;
	uint8_t b[RC_PROTO_MAX_MSG];
	struct iovec iov = { b, sizeof(b) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct rc_msg r;
	int n = rc_proto_encode(m, b, sizeof(b));
	ssize_t got;

	*nfds = 0;
	if (err)
		*err = 0;
	if (n < 0 || send(sock, b, (size_t)n, MSG_NOSIGNAL) != n)
		return n < 0 ? n : -errno;
	got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (got <= 0)
		return got < 0 ? -errno : -ECONNRESET;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (*nfds < max)
					fds[(*nfds)++] = f;
				else
					close(f);
			}
	n = rc_proto_decode(b, (size_t)got, &r);
	if (n < 0)
		return n;
	if (r.type == RC_MSG_ERROR && err)
		*err = (int)r.error.err;
	return r.type;
}

void it_cli_lib_path(const char *build_dir)
{
	setenv("LD_LIBRARY_PATH", build_dir, 1);
}
