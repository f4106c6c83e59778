/* SPDX-License-Identifier: MIT */
/*
 * Every setting of ringcastd, checked and applied in one place.
 *
 * A setting goes through the table rcd_settings[] whether it comes from
 * the file (config.c) or from a flag (config_args.c), so a value the file
 * rejects the flag rejects too, with the same reason.  Each apply_*()
 * checks the whole value before it changes anything.
 */
#include "config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proto.h"
#include "ring_format.h"

#define RCD_MS_MAX 86400000u /* one day: longer timeouts are typos */

int rcd_refuse(struct rcd_why *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- numbers ---- */

/*
 * Digits only: strtoul() would accept leading blanks, a sign and "0x", and
 * silently wrap "-1" to ULONG_MAX, none of which belongs in a config.
 */
int rcd_parse_uint(const char *s, unsigned base, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*s < '0' || d >= base)
			return -EINVAL;
		if (d > max || v > (max - d) / base)
			return -EINVAL;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

int rcd_parse_size(const char *s, uint64_t *out)
{
	char digits[32];
	size_t n = strlen(s);
	unsigned shift = 0;
	uint64_t v;

	if (n > 0) {
		switch (s[n - 1]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		}
	}
	if (shift)
		n--;
	if (n == 0 || n >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (rcd_parse_uint(digits, 10, UINT64_MAX >> shift, &v))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int parse_ms(const char *val, uint32_t min, uint32_t *out, struct rcd_why *w)
{
	uint64_t v;

	if (rcd_parse_uint(val, 10, RCD_MS_MAX, &v) || v < min)
		return rcd_refuse(w, "'%s' is not a number of milliseconds in %u..%u", val, min,
				  RCD_MS_MAX);
	*out = (uint32_t)v;
	return 0;
}

static int parse_capacity(const char *val, uint64_t *out, struct rcd_why *w)
{
	uint64_t v;

	if (rcd_parse_size(val, &v))
		return rcd_refuse(w, "'%s' is not a size (digits, then optionally k, M or G)", val);
	if (v < RC_CAPACITY_MIN || v > RC_CAPACITY_MAX || (v & (v - 1)))
		return rcd_refuse(w, "%s is not a power of two from 64k to 2G", val);
	*out = v;
	return 0;
}

/* ---- the other values ---- */

int rcd_set_str(char **dst, const char *val)
{
	char *s = strdup(val);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* The path must fit sockaddr_un, or bind() fails far from the config. */
static int check_socket(const char *val, struct rcd_why *w)
{
	if (!*val)
		return rcd_refuse(w, "empty path");
	if (strlen(val) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return rcd_refuse(w, "path longer than %zu bytes",
				  sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return 0;
}

/*
 * Node names travel in heartbeats and replies and are shown by every
 * client: printable ASCII, no blanks (docs/operations.md).  Bytes from
 * 0x80 up are refused too: they need not be valid UTF-8, and a name that
 * is only printable in some encoding is not one clients can show as it is.
 */
int rcd_check_node(const char *val, struct rcd_why *w)
{
	size_t n = strlen(val);

	if (n == 0 || n > RC_PROTO_NODE_MAX)
		return rcd_refuse(w, "a node name has 1 to %d bytes", RC_PROTO_NODE_MAX);
	for (; *val; val++) {
		unsigned char c = (unsigned char)*val;

		if (c <= ' ' || c == 0x7f)
			return rcd_refuse(w, "blank or control character in the node name");
		if (c > 0x7f)
			return rcd_refuse(w, "byte 0x%02x in the node name: it is printable ASCII only", c);
	}
	return 0;
}

static bool multicast_group(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	char buf[INET6_ADDRSTRLEN];
	size_t n = strlen(host);

	if (n > 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1 && a6.s6_addr[0] == 0xff;
	}
	return inet_pton(AF_INET, host, &a4) == 1 && IN_MULTICAST(ntohl(a4.s_addr));
}

/* Checked now, though the link is not built yet, so a typo never waits. */
static int check_cluster(const char *val, struct rcd_why *w)
{
	const char *colon = strrchr(val, ':');
	char host[INET6_ADDRSTRLEN + 2];
	uint64_t port;

	if (!colon || colon == val || (size_t)(colon - val) >= sizeof(host))
		return rcd_refuse(w, "'%s' is not GROUP:PORT", val);
	if (rcd_parse_uint(colon + 1, 10, 65535, &port) || port == 0)
		return rcd_refuse(w, "'%s' is not a port in 1..65535", colon + 1);
	memcpy(host, val, (size_t)(colon - val));
	host[colon - val] = '\0';
	if (!multicast_group(host))
		return rcd_refuse(w, "'%s' is not a multicast group (224.0.0.0/4 or [ff00::/8])",
				  host);
	return 0;
}

/* ---- the settings table ---- */

static int apply_socket(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	return check_socket(val, w) ?: rcd_set_str(&t->cfg->socket_path, val);
}

static int apply_runtime_dir(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	if (!*val)
		return rcd_refuse(w, "empty path");
	return rcd_set_str(&t->cfg->runtime_dir, val);
}

static int apply_node(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	return rcd_check_node(val, w) ?: rcd_set_str(&t->cfg->node, val);
}

static int apply_socket_mode(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	uint64_t v;

	if (rcd_parse_uint(val, 8, 0777, &v))
		return rcd_refuse(w, "'%s' is not an octal mode in 0..0777", val);
	t->cfg->socket_mode = (uint32_t)v;
	return 0;
}

static int apply_capacity(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	return parse_capacity(val, t->rule ? &t->rule->capacity : &t->cfg->capacity, w);
}

/* 0 means "inherit" in a rule, and never untethering is not offered. */
static int apply_tether(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	uint32_t *dst = t->rule ? &t->rule->tether_timeout_ms : &t->cfg->tether_timeout_ms;

	return parse_ms(val, 1, dst, w);
}

static int apply_reap_grace(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	return parse_ms(val, 0, &t->cfg->reap_grace_ms, w);
}

static int apply_max_topics(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	uint64_t v;

	if (rcd_parse_uint(val, 10, 1000000, &v) || v == 0)
		return rcd_refuse(w, "'%s' is not a number of topics in 1..1000000", val);
	t->cfg->max_topics = (uint32_t)v;
	return 0;
}

static int apply_topic_idle(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	return parse_ms(val, 0, &t->cfg->topic_idle_ms, w);
}

static int apply_max_topics_per_uid(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	uint64_t v;

	if (rcd_parse_uint(val, 10, 1000000, &v))
		return rcd_refuse(w, "'%s' is not a number of topics in 0..1000000 (0: a quarter "
				  "of max-topics)", val);
	t->cfg->max_topics_per_uid = (uint32_t)v;
	return 0;
}

static int apply_max_bytes_per_uid(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	uint64_t v;

	if (rcd_parse_size(val, &v))
		return rcd_refuse(w, "'%s' is not a size (digits, then optionally k, M or G; 0: a "
				  "quarter of the runtime directory's file system)", val);
	t->cfg->max_bytes_per_uid = v;
	return 0;
}

static int apply_log_level(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	uint64_t v;

	if (rcd_parse_uint(val, 10, 2, &v))
		return rcd_refuse(w, "'%s' is not 0 (quiet), 1 (normal) or 2 (debug)", val);
	t->cfg->log_level = (int)v;
	return 0;
}

static int apply_publish(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	return rcd_parse_acl(val, t->rule ? &t->rule->publish : &t->cfg->publish, w);
}

static int apply_subscribe(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	return rcd_parse_acl(val, t->rule ? &t->rule->subscribe : &t->cfg->subscribe, w);
}

static int apply_cluster(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	return check_cluster(val, w) ?: rcd_set_str(&t->cfg->cluster, val);
}

static int apply_iface(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	if (!*val || strlen(val) >= IFNAMSIZ)
		return rcd_refuse(w, "an interface name has 1 to %d bytes", IFNAMSIZ - 1);
	return rcd_set_str(&t->cfg->iface, val);
}

static int apply_secret_file(struct rcd_target *t, const char *val, struct rcd_why *w)
{
	if (!*val)
		return rcd_refuse(w, "empty path");
	return rcd_set_str(&t->cfg->secret_file, val);
}

/* An entry's index is its bit in the parser's seen mask and part of its getopt code. */
const struct rcd_setting rcd_settings[] = {
	{ "socket", "socket", false, apply_socket },
	{ "runtime-dir", "runtime-dir", false, apply_runtime_dir },
	{ "node", "node", false, apply_node },
	{ "socket-mode", "socket-mode", false, apply_socket_mode },
	{ "capacity", "capacity", true, apply_capacity },
	{ "tether-timeout-ms", "tether-timeout", true, apply_tether },
	{ "reap-grace-ms", "reap-grace", false, apply_reap_grace },
	{ "log-level", "log-level", false, apply_log_level },
	{ "publish", "publish", true, apply_publish },
	{ "subscribe", "subscribe", true, apply_subscribe },
	{ "cluster", "cluster", false, apply_cluster },
	{ "iface", "iface", false, apply_iface },
	{ "secret-file", "secret-file", false, apply_secret_file },
	{ "max-topics", "max-topics", false, apply_max_topics },
	{ "max-topics-per-uid", "max-topics-per-uid", false, apply_max_topics_per_uid },
	{ "max-bytes-per-uid", "max-bytes-per-uid", false, apply_max_bytes_per_uid },
	{ "topic-idle-ms", "topic-idle", false, apply_topic_idle },
};

_Static_assert(sizeof(rcd_settings) / sizeof(rcd_settings[0]) == RCD_N_SETTINGS,
	       "RCD_N_SETTINGS counts rcd_settings[]");

const struct rcd_setting *rcd_find_setting(const char *key)
{
	for (size_t i = 0; i < RCD_N_SETTINGS; i++)
		if (!strcmp(rcd_settings[i].key, key))
			return &rcd_settings[i];
	return NULL;
}
