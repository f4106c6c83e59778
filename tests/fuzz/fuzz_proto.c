/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the control-protocol decoder.
 *
 * Beyond "no crash, no out-of-bounds read" (ASan), it checks that the
 * protocol has one encoding per message: whatever decodes must re-encode
 * to exactly the input bytes.  A field the decoder accepts but does not
 * keep, or keeps but the encoder writes differently, fails here.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *why, int ret, size_t size)
{
	fprintf(stderr, "fuzz_proto: %s (ret %d: %s, input %zu bytes)\n",
		why, ret, ret < 0 ? strerror(-ret) : "ok", size);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rc_stat_sub *subs = NULL;
	uint8_t *again;
	struct rc_msg m;
	int ret;

	ret = rc_proto_decode(data, size, &m);
	if (ret == -EBADMSG || ret == -EPROTO)
		return 0;
	if (ret)
		die("decode returned an undocumented error", ret, size);

	(void)rc_proto_type_name(m.type);
	if (m.type == RC_MSG_STAT_TOPIC) {
		uint32_t i;

		if (m.stat_topic.n_subs > RC_PROTO_STAT_SUBS_MAX)
			die("decoded n_subs over the limit", 0, size);
		subs = calloc(m.stat_topic.n_subs + 1, sizeof(*subs));
		if (!subs)
			die("out of memory", -ENOMEM, size);
		/* Every entry, and one past the end, which must read nothing. */
		for (i = 0; i <= m.stat_topic.n_subs; i++)
			rc_proto_stat_sub(&m, i, &subs[i]);
		if (subs[m.stat_topic.n_subs].client_id || subs[m.stat_topic.n_subs].pos)
			die("stat_sub past n_subs returned data", 0, size);
		m.stat_topic.subs = subs;
	}

	/* Exactly size bytes, so an encoder overrun shows up under ASan. */
	again = malloc(size);
	if (!again)
		die("out of memory", -ENOMEM, size);
	ret = rc_proto_encode(&m, again, size);
	if (ret < 0)
		die("a decoded message does not re-encode", ret, size);
	if ((size_t)ret != size || memcmp(again, data, size))
		die("re-encoding differs from the input", ret, size);

	free(again);
	free(subs);
	return 0;
}
