/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: whole reads and writes on the report and go pipes; see
 * pipe_io.h.
 */
#include <errno.h>
#include <unistd.h>

#include "pipe_io.h"

/* All of len, resuming after signals and short transfers; false on an error or EOF. */
static bool io_full(int fd, void *buf, size_t len, bool wr)
{
	char *p = buf;

	while (len) {
		ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

bool bench_read_full(int fd, void *buf, size_t len)
{
	return io_full(fd, buf, len, false);
}

bool bench_write_all(int fd, const void *buf, size_t len)
{
	return io_full(fd, (void *)buf, len, true);
}
