/* SPDX-License-Identifier: MIT */
/*
 * The one place ringcast spells memory ordering.  Shared-memory fields are
 * _Atomic; every call site of these helpers names the store or load it
 * pairs with.
 */
#ifndef RINGCAST_BARRIER_H
#define RINGCAST_BARRIER_H

#include <stdatomic.h>

#define rc_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define rc_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define rc_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define rc_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define rc_load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define rc_store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#if defined(__SANITIZE_THREAD__)
/* GCC's TSan rejects fences; x86 keeps loads in order, so the compiler is the one to stop. */
#define rc_smp_rmb() atomic_signal_fence(memory_order_acquire)
#else
#define rc_smp_rmb() atomic_thread_fence(memory_order_acquire)
#endif

/*
 * A full barrier: orders this thread's earlier stores before its later
 * loads (StoreLoad), the one order x86 does not keep for free, and one
 * that seq_cst loads and stores alone do not give against a plain store
 * (the tail owner's, ring_pub.h).  For Dekker-shaped pairs, where each
 * side stores one field and then loads the other's: both sides fence
 * (C11 7.17.4: of two seq_cst fences, the later one's side sees the
 * other's store).  Never on a per-message path: mfence waits for the
 * store buffer to drain.
 */
#if defined(__SANITIZE_THREAD__)
/*
 * GCC's TSan rejects fences, and cannot see reordering anyway; a locked
 * RMW is a full barrier on x86.  On a local: a shared dummy would give
 * TSan happens-before edges that hide real races.
 */
static inline void rc_smp_mb(void)
{
	_Atomic int dummy = 0;

	atomic_fetch_add_explicit(&dummy, 0, memory_order_seq_cst);
}
#else
#define rc_smp_mb() atomic_thread_fence(memory_order_seq_cst)
#endif

#if defined(__x86_64__) || defined(__i386__)
#define rc_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define rc_cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define rc_cpu_relax() ((void)0)
#endif

#endif /* RINGCAST_BARRIER_H */
