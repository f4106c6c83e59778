// SPDX-License-Identifier: MIT
/*
 * Small utilities for tests and helpers alike: the monotonic clock,
 * sleeping, memory shared with children, and reading and writing fds.
 */
#include "harness_internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
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
