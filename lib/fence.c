/* SPDX-License-Identifier: MIT */
/*
 * The asymmetric half of the wake-up handshake.  A publisher must not miss
 * a subscriber that goes to sleep, which classically costs the publisher a
 * full barrier (StoreLoad) on every commit: on these machines that stalls
 * it on the store of every record line a busy subscriber holds, and halves
 * throughput.  Instead, every libringcast process registers for
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED, publishers skip the fence on rings where
 * no subscriber sleeps, and a subscriber that starts sleeping on a ring
 * raises the ring's flag and pays once with a membarrier() that makes every
 * registered thread execute a full barrier.  See rc_commit_light() in
 * ring_pub.h and docs/ring-format.md, pairs #6 and #6a.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ring.h"

bool rc_fence_register(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
}

int rc_fence_heavy(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : -errno;
}
