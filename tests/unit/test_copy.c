/* SPDX-License-Identifier: MIT */
/*
 * rc_copy_short (lib/copy.h): every length up to RC_COPY_SHORT_MAX, at
 * every alignment of source and destination, copies exactly its bytes and
 * writes nothing before or after them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "copy.h"

#define GUARD 32

static void test_every_length_and_alignment(void **state)
{
	unsigned char src[RC_COPY_SHORT_MAX + 16], dst[GUARD + RC_COPY_SHORT_MAX + 16 + GUARD];

	(void)state;
	for (size_t len = 0; len <= RC_COPY_SHORT_MAX; len++) {
		for (size_t sa = 0; sa < 16; sa++) {
			for (size_t da = 0; da < 16; da++) {
				unsigned char *d = dst + GUARD + da;

				for (size_t i = 0; i < sizeof(src); i++)
					src[i] = (unsigned char)(i * 13 + len + 1);
				memset(dst, 0xa5, sizeof(dst));
				rc_copy_short(d, src + sa, len);
				if (memcmp(d, src + sa, len))
					fail_msg("len %zu, src +%zu, dst +%zu: bytes differ", len, sa, da);
				for (unsigned char *p = dst; p < dst + sizeof(dst); p++)
					if ((p < d || p >= d + len) && *p != 0xa5)
						fail_msg("len %zu, src +%zu, dst +%zu: wrote byte %td outside",
							 len, sa, da, p - d);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_length_and_alignment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
