/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the keeper's message decoder (daemon/keeper.h).
 * The first input byte says how many descriptors came with the message
 * (0..3) and whether the kernel cut it; the rest is the message.
 *
 * Beyond "no crash, no out-of-bounds read" (ASan), what decodes must be
 * one of the messages the daemon and the keeper send, in their one
 * encoding: a known op, a NUL-terminated name with zeros after it, a
 * name and a descriptor exactly where the op has them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/keeper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *why, size_t size)
{
	fprintf(stderr, "fuzz_keeper: %s (input %zu bytes)\n", why, size);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rcd_keeper_msg m;
	unsigned nfds;
	bool truncated;
	size_t len;
	int ret;

	if (size < 1)
		return 0;
	nfds = data[0] & 3;
	truncated = data[0] & 4;
	ret = rcd_keeper_decode(data + 1, size - 1, nfds, truncated, &m);
	if (ret == -EBADMSG)
		return 0;
	if (ret)
		die("decode returned an undocumented error", size);
	if (truncated || size - 1 != sizeof(m) || m.reserved ||
	    m.op < RCD_KEEPER_PUT || m.op > RCD_KEEPER_END)
		die("accepted a message of the wrong shape", size);
	len = strnlen(m.name, sizeof(m.name));
	if (len == sizeof(m.name))
		die("accepted a name with no NUL", size);
	for (size_t i = len; i < sizeof(m.name); i++)
		if (m.name[i])
			die("accepted bytes after the name's NUL", size);
	if ((m.op == RCD_KEEPER_PUT || m.op == RCD_KEEPER_ENTRY) != (nfds == 1) ||
	    (nfds > 1))
		die("accepted the wrong number of descriptors", size);
	if ((m.op == RCD_KEEPER_LIST || m.op == RCD_KEEPER_END) != (len == 0))
		die("accepted a name where none belongs, or none where one does", size);
	if (memcmp(&m, data + 1, sizeof(m)))
		die("the decoded message is not the bytes received", size);
	return 0;
}
