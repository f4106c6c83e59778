/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: whole reads and writes on the pipes between the
 * coordinator (bench_run.c) and its children (bench_pub.c, bench_sub.c).
 * Both sides use them, so they live apart from either: a child's report
 * does not go through the coordinator's code.
 */
#ifndef RINGCAST_BENCH_PIPE_IO_H
#define RINGCAST_BENCH_PIPE_IO_H

#include <stdbool.h>
#include <stddef.h>

/* All of len through a pipe, resuming after signals; false on error or EOF. */
bool bench_read_full(int fd, void *buf, size_t len);
bool bench_write_all(int fd, const void *buf, size_t len);

#endif /* RINGCAST_BENCH_PIPE_IO_H */
