/* SPDX-License-Identifier: MIT */
/* ringcast_strerror(): what an error means for a ringcast call. */
#include <errno.h>
#include <string.h>

#include "ringcast.h"

/* A number macro's value as a string literal. */
#define RC_STR(x) #x
#define RC_XSTR(x) RC_STR(x)

const char *ringcast_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0: return "success";
	case EAGAIN: return "ring full: a tethered subscriber has not read the space yet";
	case EMSGSIZE: return "message larger than the topic's maximum";
	case EACCES: return "permission denied by ringcastd's access list";
	case ENOTCONN: return "not connected to ringcastd";
	case ENOENT: return "no such daemon socket, topic or subscription";
	case ECONNREFUSED: return "ringcastd is not running at that socket";
	case EINVAL: return "invalid argument (empty topic?)";
	case ENAMETOOLONG: return "topic longer than " RC_XSTR(RINGCAST_TOPIC_MAX) " bytes";
	case EBADMSG: return "corrupt ring or malformed message";
	case EPROTO: return "protocol or format version mismatch with ringcastd";
	case ESTALE: return "claim expired";
	case EHOSTUNREACH: return "no such node";
	case EALREADY: return "already subscribed";
	case EBUSY: return "a claim on this topic is still open";
	case ENOSPC: return "no space: ring files or slots exhausted";
	case EDQUOT: return "the daemon has as many topics as its max-topics allows";
	case EUSERS: return "ringcastd has as many connections as it takes from this user";
	case ETIMEDOUT: return "timed out";
	case EOPNOTSUPP: return "not supported by this kernel";
	default: {
		const char *s = strerrordesc_np(err);
		return s ? s : "unknown error";
	}
	}
}
