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

#if defined(__x86_64__) || defined(__i386__)
#define rc_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define rc_cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define rc_cpu_relax() ((void)0)
#endif

#endif /* RINGCAST_BARRIER_H */
