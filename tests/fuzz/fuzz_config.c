/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: arbitrary bytes as a ringcastd config file.
 *
 * The Makefile's fuzz rule builds it with the lib/ sources and, for this
 * target, the files that implement daemon/config.h (FUZZ_CONFIG_SRCS).
 *
 * Whatever the input, rcd_config_parse() must return 0 or a negative errno,
 * leave a NUL-terminated message in err, leak nothing, and leave a config
 * that the lookups can walk safely.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "../../daemon/config.h"
#include "ring_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = { "sensors.temp", "a", "cam.a", "video.4k.raw" };

static void exercise(const struct rcd_config *cfg)
{
	gid_t groups[] = { 27, 1000 };
	uint64_t cap;
	uint32_t tether;

	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		size_t len = strlen(topics[i]);

		rcd_config_topic(cfg, topics[i], len, &cap, &tether);
		if (cap < RC_CAPACITY_MIN || cap > RC_CAPACITY_MAX || (cap & (cap - 1)))
			__builtin_trap();
		if (tether == 0)
			__builtin_trap();
		rcd_acl_allows(cfg, topics[i], len, RCD_ACL_PUBLISH, 1000, 1000, groups, 2);
		rcd_acl_allows(cfg, topics[i], len, RCD_ACL_SUBSCRIBE, 0, 0, NULL, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rcd_config cfg;
	char err[256];
	int ret;

	if (rcd_config_defaults(&cfg))
		return 0;
	memset(err, 'x', sizeof(err));
	ret = rcd_config_parse(&cfg, (const char *)data, size, "fuzz.conf", err, sizeof(err));
	if (ret > 0 || (ret < 0 && !memchr(err, '\0', sizeof(err))))
		__builtin_trap();
	if (ret == 0)
		exercise(&cfg);
	rcd_config_free(&cfg);
	return 0;
}
