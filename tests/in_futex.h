/* SPDX-License-Identifier: MIT */
/*
 * Is thread tid of process pid blocked in futex(2)?  The first field of
 * /proc/PID/task/TID/syscall is the number of the system call a blocked
 * task is in ("running" while it runs).  Header-only: the unit and the
 * integration tests both use it.
 */
#ifndef RINGCAST_TEST_IN_FUTEX_H
#define RINGCAST_TEST_IN_FUTEX_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/types.h>

static inline bool test_in_futex(pid_t pid, pid_t tid)
{
	char path[64], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return atoi(buf) == SYS_futex && buf[0] != 'r';
}

#endif /* RINGCAST_TEST_IN_FUTEX_H */
