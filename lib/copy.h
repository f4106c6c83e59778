/* SPDX-License-Identifier: MIT */
/*
 * Short copies, inline.  A message's length is known only at run time, so
 * memcpy is a call into libc and its size dispatch.  On the publisher's
 * fast path (client_pub.c) that call also costs a stack frame: its pushes
 * are stores, and they queue in the store buffer behind the record's
 * (docs/benchmarks.md, Findings 2).  Up to RC_COPY_SHORT_MAX bytes, a few
 * overlapping fixed-size copies do it without a call.
 */
#ifndef RINGCAST_COPY_H
#define RINGCAST_COPY_H

#include <stddef.h>
#include <string.h>

#define RC_COPY_SHORT_MAX 64u

/*
 * Copy len <= RC_COPY_SHORT_MAX bytes: every byte of dst[0, len) written,
 * none outside it.  Always inline: with more than one caller in a file,
 * the compiler would otherwise make it a call, and the call a frame.
 */
static inline __attribute__((always_inline)) void rc_copy_short(void *dst, const void *src, size_t len)
{
	char *d = dst;
	const char *s = src;

	/* Fixed sizes, so the compiler expands each copy to a load and a store. */
	if (len >= 16) {
		__builtin_memcpy(d, s, 16);
		if (len > 32)
			__builtin_memcpy(d + 16, s + 16, 16);
		if (len > 48)
			__builtin_memcpy(d + 32, s + 32, 16);
		/* The last 16 bytes, overlapping what came before. */
		__builtin_memcpy(d + len - 16, s + len - 16, 16);
	} else if (len >= 8) {
		__builtin_memcpy(d, s, 8);
		__builtin_memcpy(d + len - 8, s + len - 8, 8);
	} else if (len >= 4) {
		__builtin_memcpy(d, s, 4);
		__builtin_memcpy(d + len - 4, s + len - 4, 4);
	} else if (len) {
		d[0] = s[0];
		if (len > 1)
			__builtin_memcpy(d + len - 2, s + len - 2, 2);
	}
}

#endif /* RINGCAST_COPY_H */
