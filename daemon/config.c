/* SPDX-License-Identifier: MIT */
/*
 * ringcastd's configuration: defaults, an INI-style file, flags, and the
 * per-topic rules (capacity, tether timeout, who may publish and subscribe).
 *
 * Every setting goes through one table (settings[]) whether it comes from
 * the file or from a flag, so a value the file rejects the flag rejects too,
 * with the same reason.  Names in ACLs are resolved here, once, at parse
 * time: the io_uring loop then checks a request against plain numbers and
 * never blocks on NSS (LDAP, sssd) while clients wait.
 *
 * Nothing here keeps state outside the struct rcd_config the caller owns.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"
#include "ring_format.h"
#include "ringcast.h"

#ifndef RINGCAST_VERSION
#define RINGCAST_VERSION "0.1.0"
#endif

#define RCD_LINE_MAX 4096        /* bytes in one config line, newline excluded */
#define RCD_FILE_MAX (1u << 20)  /* a config file larger than this is a mistake */
#define RCD_RULES_MAX 1024       /* [topic] sections; each ACL check walks them */
#define RCD_MS_MAX 86400000u     /* one day: longer timeouts are typos */
#define RCD_NAME_MAX 255         /* user and group names in ACLs */
#define RCD_DEFAULT_GROUP "ringcast"

/* Why a value was refused; the caller adds "FILE:LINE: key: " or the flag. */
struct why {
	char msg[320];
};

static int refuse(struct why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int refuse(struct why *w, const char *fmt, ...)
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
static int parse_uint(const char *s, unsigned base, uint64_t max, uint64_t *out)
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
	if (parse_uint(digits, 10, UINT64_MAX >> shift, &v))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int parse_ms(const char *val, uint32_t min, uint32_t *out, struct why *w)
{
	uint64_t v;

	if (parse_uint(val, 10, RCD_MS_MAX, &v) || v < min)
		return refuse(w, "'%s' is not a number of milliseconds in %u..%u", val, min,
			      RCD_MS_MAX);
	*out = (uint32_t)v;
	return 0;
}

static int parse_capacity(const char *val, uint64_t *out, struct why *w)
{
	uint64_t v;

	if (rcd_parse_size(val, &v))
		return refuse(w, "'%s' is not a size (digits, then optionally k, M or G)", val);
	if (v < RC_CAPACITY_MIN || v > RC_CAPACITY_MAX || (v & (v - 1)))
		return refuse(w, "%s is not a power of two from 64k to 2G", val);
	*out = v;
	return 0;
}

/* ---- names ---- */

/* A user or group lookup buffer: start small, grow on ERANGE (big groups). */
#define LOOKUP_BUF_START 1024
#define LOOKUP_BUF_MAX (1u << 20)

/* A user's uid or a group's gid; -ENOENT when there is no such name. */
static int lookup_id(const char *name, bool user, uint32_t *id)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	size_t sz = LOOKUP_BUF_START;
	int rc;

	for (;;) {
		char *buf = malloc(sz);

		if (!buf)
			return -ENOMEM;
		if (user)
			rc = getpwnam_r(name, &pw, buf, sz, &pwr);
		else
			rc = getgrnam_r(name, &gr, buf, sz, &grr);
		free(buf);
		if (rc != ERANGE || sz >= LOOKUP_BUF_MAX)
			break;
		sz *= 2;
	}
	/* POSIX lets "no such name" come back as these as well as 0 */
	if (rc == ENOENT || rc == ESRCH || (!rc && !pwr && !grr))
		return -ENOENT;
	if (rc)
		return -rc;
	*id = user ? pw.pw_uid : gr.gr_gid;
	return 0;
}

/* ---- ACL lists ---- */

static int acl_add(struct rcd_acl *acl, int kind, uint32_t id, struct why *w)
{
	if (acl->n >= RCD_ACL_MAX)
		return refuse(w, "more than %d principals in one list", RCD_ACL_MAX);
	acl->p[acl->n].kind = kind;
	acl->p[acl->n].id = id;
	acl->n++;
	return 0;
}

/* name lookups: an unknown name is a config error, not an empty match */
static int principal_by_name(struct rcd_acl *acl, const char *tok, bool user, struct why *w)
{
	const char *name = tok + (user ? sizeof("user:") : sizeof("group:")) - 1;
	uint32_t id = 0;
	int ret;

	if (!*name)
		return refuse(w, "'%s' names nobody", tok);
	ret = lookup_id(name, user, &id);
	if (ret == -ENOMEM)
		return ret;
	if (ret == -ENOENT)
		return refuse(w, "no %s named '%s'", user ? "user" : "group", name);
	if (ret)
		return refuse(w, "looking up %s '%s': %s", user ? "user" : "group", name,
			      strerror(-ret));
	return acl_add(acl, user ? RCD_P_UID : RCD_P_GID, id, w);
}

static int add_principal(struct rcd_acl *acl, const char *tok, struct why *w)
{
	uint64_t id;

	if (!strcmp(tok, "*"))
		return acl_add(acl, RCD_P_ANY, 0, w);
	if (!strncmp(tok, "user:", 5))
		return principal_by_name(acl, tok, true, w);
	if (!strncmp(tok, "group:", 6))
		return principal_by_name(acl, tok, false, w);
	/* (uid_t)-1 means "no id" to chown(2) and friends: never a principal */
	if (!strncmp(tok, "uid:", 4) && !parse_uint(tok + 4, 10, UINT32_MAX - 1, &id))
		return acl_add(acl, RCD_P_UID, (uint32_t)id, w);
	if (!strncmp(tok, "gid:", 4) && !parse_uint(tok + 4, 10, UINT32_MAX - 1, &id))
		return acl_add(acl, RCD_P_GID, (uint32_t)id, w);
	return refuse(w, "'%s' is not uid:N, gid:N, user:NAME, group:NAME or *", tok);
}

#define ACL_SEP ", \t"

/*
 * Build the whole list first and copy it in only when every principal
 * resolved: a half-applied list would grant or deny something nobody wrote.
 * An empty list is allowed and means nobody.
 */
static int parse_acl(const char *val, struct rcd_acl *out, struct why *w)
{
	struct rcd_acl acl = { .set = true };
	char tok[RCD_NAME_MAX + 8];

	for (val += strspn(val, ACL_SEP); *val; val += strspn(val, ACL_SEP)) {
		size_t n = strcspn(val, ACL_SEP);
		int ret;

		if (n >= sizeof(tok))
			return refuse(w, "principal '%.40s...' is too long", val);
		memcpy(tok, val, n);
		tok[n] = '\0';
		ret = add_principal(&acl, tok, w);
		if (ret)
			return ret;
		val += n;
	}
	*out = acl;
	return 0;
}

/* ---- the other values ---- */

static int set_str(char **dst, const char *val)
{
	char *s = strdup(val);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* The path must fit sockaddr_un, or bind() fails far from the config. */
static int check_socket(const char *val, struct why *w)
{
	if (!*val)
		return refuse(w, "empty path");
	if (strlen(val) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return refuse(w, "path longer than %zu bytes",
			      sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return 0;
}

/* Node names travel in heartbeats and replies: printable, no blanks. */
static int check_node(const char *val, struct why *w)
{
	size_t n = strlen(val);

	if (n == 0 || n > RC_PROTO_NODE_MAX)
		return refuse(w, "a node name has 1 to %d bytes", RC_PROTO_NODE_MAX);
	for (; *val; val++)
		if ((unsigned char)*val <= ' ' || *val == 0x7f)
			return refuse(w, "blank or control character in the node name");
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
static int check_cluster(const char *val, struct why *w)
{
	const char *colon = strrchr(val, ':');
	char host[INET6_ADDRSTRLEN + 2];
	uint64_t port;

	if (!colon || colon == val || (size_t)(colon - val) >= sizeof(host))
		return refuse(w, "'%s' is not GROUP:PORT", val);
	if (parse_uint(colon + 1, 10, 65535, &port) || port == 0)
		return refuse(w, "'%s' is not a port in 1..65535", colon + 1);
	memcpy(host, val, (size_t)(colon - val));
	host[colon - val] = '\0';
	if (!multicast_group(host))
		return refuse(w, "'%s' is not a multicast group (224.0.0.0/4 or [ff00::/8])",
			      host);
	return 0;
}

/* ---- the settings table ---- */

/* What a value lands in: rule is NULL in [ringcastd] and for flags. */
struct target {
	struct rcd_config *cfg;
	struct rcd_topic_rule *rule;
};

typedef int (*apply_fn)(struct target *t, const char *val, struct why *w);

static int apply_socket(struct target *t, const char *val, struct why *w)
{
	return check_socket(val, w) ?: set_str(&t->cfg->socket_path, val);
}

static int apply_runtime_dir(struct target *t, const char *val, struct why *w)
{
	if (!*val)
		return refuse(w, "empty path");
	return set_str(&t->cfg->runtime_dir, val);
}

static int apply_node(struct target *t, const char *val, struct why *w)
{
	return check_node(val, w) ?: set_str(&t->cfg->node, val);
}

static int apply_socket_mode(struct target *t, const char *val, struct why *w)
{
	uint64_t v;

	if (parse_uint(val, 8, 0777, &v))
		return refuse(w, "'%s' is not an octal mode in 0..0777", val);
	t->cfg->socket_mode = (uint32_t)v;
	return 0;
}

static int apply_capacity(struct target *t, const char *val, struct why *w)
{
	return parse_capacity(val, t->rule ? &t->rule->capacity : &t->cfg->capacity, w);
}

/* 0 means "inherit" in a rule, and never untethering is not offered. */
static int apply_tether(struct target *t, const char *val, struct why *w)
{
	uint32_t *dst = t->rule ? &t->rule->tether_timeout_ms : &t->cfg->tether_timeout_ms;

	return parse_ms(val, 1, dst, w);
}

static int apply_reap_grace(struct target *t, const char *val, struct why *w)
{
	return parse_ms(val, 0, &t->cfg->reap_grace_ms, w);
}

static int apply_log_level(struct target *t, const char *val, struct why *w)
{
	uint64_t v;

	if (parse_uint(val, 10, 2, &v))
		return refuse(w, "'%s' is not 0 (quiet), 1 (normal) or 2 (debug)", val);
	t->cfg->log_level = (int)v;
	return 0;
}

static int apply_publish(struct target *t, const char *val, struct why *w)
{
	return parse_acl(val, t->rule ? &t->rule->publish : &t->cfg->publish, w);
}

static int apply_subscribe(struct target *t, const char *val, struct why *w)
{
	return parse_acl(val, t->rule ? &t->rule->subscribe : &t->cfg->subscribe, w);
}

static int apply_cluster(struct target *t, const char *val, struct why *w)
{
	return check_cluster(val, w) ?: set_str(&t->cfg->cluster, val);
}

static int apply_iface(struct target *t, const char *val, struct why *w)
{
	if (!*val || strlen(val) >= IFNAMSIZ)
		return refuse(w, "an interface name has 1 to %d bytes", IFNAMSIZ - 1);
	return set_str(&t->cfg->iface, val);
}

static int apply_secret_file(struct target *t, const char *val, struct why *w)
{
	if (!*val)
		return refuse(w, "empty path");
	return set_str(&t->cfg->secret_file, val);
}

struct setting {
	const char *key;  /* in the file */
	const char *flag; /* long option, NULL: file only */
	bool in_topic;    /* also allowed in [topic "PATTERN"] */
	apply_fn apply;
};

static const struct setting settings[] = {
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
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))
_Static_assert(N_SETTINGS <= 32, "struct parser's seen is a 32-bit mask");

static const struct setting *find_setting(const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (!strcmp(settings[i].key, key))
			return &settings[i];
	return NULL;
}

/* ---- defaults ---- */

/*
 * The daemon's own uid, root, and the group "ringcast" when it exists.
 * Resolved once here so rcd_acl_allows() never does a group lookup; a group
 * created later counts after a restart.  Kept in cfg->publish/subscribe with
 * set = false, which rcd_acl_allows() reads as "the default".
 */
static int default_acl(struct rcd_acl *acl)
{
	struct why w;
	uid_t me = geteuid();
	uint32_t gid;
	int ret;

	memset(acl, 0, sizeof(*acl));
	acl_add(acl, RCD_P_UID, me, &w);
	if (me != 0)
		acl_add(acl, RCD_P_UID, 0, &w);
	ret = lookup_id(RCD_DEFAULT_GROUP, false, &gid);
	if (ret == -ENOMEM)
		return ret;
	/* no such group, or NSS down: fewer people allowed, never more */
	if (ret == 0)
		acl_add(acl, RCD_P_GID, gid, &w);
	return 0;
}

static int default_node(struct rcd_config *cfg)
{
	char host[HOST_NAME_MAX + 1];
	struct why w;

	/* POSIX leaves a truncated name unterminated */
	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (check_node(host, &w))
		strcpy(host, "localhost");
	return set_str(&cfg->node, host);
}

int rcd_config_defaults(struct rcd_config *cfg)
{
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->socket_mode = 0666;
	cfg->capacity = RC_CAPACITY_DEFAULT;
	cfg->tether_timeout_ms = 5000;
	cfg->reap_grace_ms = 5000;
	cfg->log_level = 1;
	ret = set_str(&cfg->socket_path, RINGCAST_DEFAULT_SOCKET);
	if (!ret)
		ret = set_str(&cfg->runtime_dir, RCD_DEFAULT_RUNTIME_DIR);
	if (!ret)
		ret = default_node(cfg);
	if (!ret)
		ret = default_acl(&cfg->publish);
	if (ret) {
		rcd_config_free(cfg);
		return ret;
	}
	cfg->subscribe = cfg->publish;
	return 0;
}

void rcd_config_free(struct rcd_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->socket_path);
	free(cfg->runtime_dir);
	free(cfg->node);
	free(cfg->config_file);
	free(cfg->cluster);
	free(cfg->iface);
	free(cfg->secret_file);
	for (unsigned i = 0; i < cfg->n_rules; i++)
		free(cfg->rules[i].pattern);
	free(cfg->rules);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- the file ---- */

struct parser {
	struct rcd_config *cfg;
	const char *name;
	unsigned line;
	bool in_section;
	struct rcd_topic_rule *rule; /* NULL in [ringcastd] */
	uint32_t seen;               /* settings[] given in this section, by index */
	char *err;
	size_t errlen;
};

static int perr(struct parser *p, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int perr(struct parser *p, int ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!p->err || !p->errlen)
		return ret;
	n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static char *trim(char *s)
{
	char *end;

	while (blank(*s))
		s++;
	end = s + strlen(s);
	while (end > s && blank(end[-1]))
		*--end = '\0';
	return s;
}

/* '#' or ';' after a blank starts a comment; "a#b" stays a value. */
static void strip_comment(char *s)
{
	for (char *c = s; *c; c++) {
		if ((*c == '#' || *c == ';') && (c == s || blank(c[-1]))) {
			*c = '\0';
			return;
		}
	}
}

static int add_rule(struct parser *p, const char *pattern)
{
	struct rcd_config *cfg = p->cfg;
	struct rcd_topic_rule *rules;

	for (unsigned i = 0; i < cfg->n_rules; i++)
		if (!strcmp(cfg->rules[i].pattern, pattern))
			return perr(p, -EINVAL, "[topic \"%s\"] appears twice", pattern);
	if (cfg->n_rules >= RCD_RULES_MAX)
		return perr(p, -EINVAL, "more than %d [topic] sections", RCD_RULES_MAX);
	rules = realloc(cfg->rules, (cfg->n_rules + 1) * sizeof(*rules));
	if (!rules)
		return perr(p, -ENOMEM, "out of memory");
	cfg->rules = rules;
	memset(&rules[cfg->n_rules], 0, sizeof(*rules));
	rules[cfg->n_rules].pattern = strdup(pattern);
	if (!rules[cfg->n_rules].pattern)
		return perr(p, -ENOMEM, "out of memory");
	p->rule = &rules[cfg->n_rules++];
	return 0;
}

/* After the closing ']' only blanks or a comment may follow. */
static int section_end(struct parser *p, char *s)
{
	s = trim(s);
	if (*s != ']')
		return perr(p, -EINVAL, "expected [ringcastd] or [topic \"PATTERN\"]");
	s = trim(s + 1);
	if (*s && *s != '#' && *s != ';')
		return perr(p, -EINVAL, "text after the section header");
	return 0;
}

/*
 * s is what follows "topic".  The pattern ends at the next '"', so it may
 * hold ']' (fnmatch brackets) but not '"'.
 */
static int parse_topic_header(struct parser *p, char *s)
{
	char *pattern, *close;
	int ret;

	s = trim(s);
	if (*s != '"')
		return perr(p, -EINVAL, "expected [topic \"PATTERN\"]");
	pattern = s + 1;
	close = strchr(pattern, '"');
	if (!close)
		return perr(p, -EINVAL, "topic pattern without a closing '\"'");
	*close = '\0';
	ret = section_end(p, close + 1);
	if (ret)
		return ret;
	if (!*pattern || close - pattern > RINGCAST_TOPIC_MAX)
		return perr(p, -EINVAL, "a topic pattern has 1 to %d bytes", RINGCAST_TOPIC_MAX);
	return add_rule(p, pattern);
}

/* s starts with '['. */
static int parse_section(struct parser *p, char *s)
{
	int ret;

	s = trim(s + 1);
	if (!strncmp(s, "ringcastd", 9) && (!s[9] || s[9] == ']' || blank(s[9]))) {
		ret = section_end(p, s + 9);
		if (!ret)
			p->rule = NULL;
	} else if (!strncmp(s, "topic", 5) && (s[5] == '"' || blank(s[5]))) {
		ret = parse_topic_header(p, s + 5);
	} else {
		ret = perr(p, -EINVAL, "unknown section (want [ringcastd] or [topic \"PATTERN\"])");
	}
	if (ret)
		return ret;
	p->in_section = true;
	p->seen = 0;
	return 0;
}

static int parse_keyval(struct parser *p, char *s)
{
	const struct setting *set;
	char *eq = strchr(s, '=');
	char *key, *val;
	struct why w;
	uint32_t bit;
	int ret;

	if (!eq)
		return perr(p, -EINVAL, "expected 'key = value' or a [section]");
	*eq = '\0';
	key = trim(s);
	strip_comment(eq + 1);
	val = trim(eq + 1);
	if (!*key)
		return perr(p, -EINVAL, "a line starts with '='");
	if (!p->in_section)
		return perr(p, -EINVAL, "'%s' before any [ringcastd] or [topic] section", key);
	set = find_setting(key);
	if (!set)
		return perr(p, -EINVAL, "unknown key '%s'", key);
	if (p->rule && !set->in_topic)
		return perr(p, -EINVAL, "'%s' belongs in [ringcastd], not in a [topic] section",
			    key);
	bit = 1u << (set - settings);
	/* two "publish" lines could mean a union or a replacement: refuse both */
	if (p->seen & bit)
		return perr(p, -EINVAL, "'%s' given twice in this section", key);
	p->seen |= bit;
	ret = set->apply(&(struct target){ p->cfg, p->rule }, val, &w);
	if (ret == -EINVAL)
		return perr(p, ret, "%s: %s", key, w.msg);
	if (ret)
		return perr(p, ret, "%s: %s", key, strerror(-ret));
	return 0;
}

static int parse_line(struct parser *p, char *line)
{
	char *s = trim(line);

	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return parse_section(p, s);
	return parse_keyval(p, s);
}

int rcd_config_parse(struct rcd_config *cfg, const char *buf, size_t len, const char *name,
		     char *err, size_t errlen)
{
	struct parser p = {
		.cfg = cfg, .name = name ? name : "<config>", .err = err, .errlen = errlen,
	};
	char line[RCD_LINE_MAX];
	size_t pos = 0;

	if (err && errlen)
		err[0] = '\0';
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		int ret;

		p.line++;
		if (n >= sizeof(line))
			return perr(&p, -EINVAL, "line longer than %d bytes", RCD_LINE_MAX - 1);
		if (memchr(buf + pos, '\0', n))
			return perr(&p, -EINVAL, "NUL byte in the line");
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		ret = parse_line(&p, line);
		if (ret)
			return ret;
		pos += n + 1;
	}
	return 0;
}

/* ---- reading the file ---- */

static int read_all(int fd, char **out, size_t *outlen)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int ret = -errno;

			free(buf);
			return ret;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > RCD_FILE_MAX) {
			free(buf);
			return -EFBIG;
		}
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/*
 * Read and parse path.  must_exist is false for the default file, which
 * may be absent: ringcastd runs with no file at all.
 */
static int load_file(struct rcd_config *cfg, const char *path, bool must_exist)
{
	char err[512];
	size_t len = 0;
	char *buf = NULL;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && !must_exist)
		return 0;
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "ringcastd: %s: %s\n", path, strerror(-ret));
		return ret;
	}
	ret = read_all(fd, &buf, &len);
	close(fd);
	if (ret) {
		fprintf(stderr, "ringcastd: %s: %s\n", path,
			ret == -EFBIG ? "larger than 1 MiB" : strerror(-ret));
		return ret;
	}
	ret = set_str(&cfg->config_file, path);
	if (!ret)
		ret = rcd_config_parse(cfg, buf, len, path, err, sizeof(err));
	free(buf);
	if (ret)
		fprintf(stderr, "ringcastd: %s\n", ret == -ENOMEM ? "out of memory" : err);
	return ret;
}

/* ---- flags ---- */

enum {
	OPT_CONFIG = 0x100,
	OPT_VERSION,
	OPT_SETTING, /* + index in settings[] */
};

#define N_OPTS (N_SETTINGS + 6)

/* From settings[], so a key and its flag cannot drift apart. */
static void build_opts(struct option opts[N_OPTS])
{
	static const struct option fixed[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
	};
	size_t n = 0;

	for (size_t i = 0; i < N_SETTINGS; i++)
		if (settings[i].flag)
			opts[n++] = (struct option){ settings[i].flag, required_argument, NULL,
						     OPT_SETTING + (int)i };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		opts[n++] = fixed[i];
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ringcastd [OPTION]...\n"
		"Run the ringcast daemon in the foreground (systemd style): it creates and\n"
		"owns the topic rings in the runtime directory and serves clients on a\n"
		"Unix socket.  SIGTERM shuts it down cleanly.\n"
		"\n"
		"Settings are read from the defaults, then the config file, then these\n"
		"flags (a flag wins over the file):\n"
		"      --config FILE        config file (default %s,\n"
		"                           read only if it exists)\n"
		"      --socket PATH        control socket (default %s)\n"
		"      --socket-mode OCTAL  mode of the socket file (default 0666: the ACL,\n"
		"                           not the file mode, decides who may do what)\n"
		"      --runtime-dir DIR    where the topic rings live, on tmpfs\n"
		"                           (default %s)\n"
		"      --node NAME          node name (default: the host name)\n"
		"      --capacity SIZE      ring size of a new topic, a power of two from 64k\n"
		"                           to 2G, e.g. 65536, 256k, 1M (default 1M)\n"
		"      --tether-timeout MS  untether a subscriber that has not moved for MS\n"
		"                           milliseconds (default 5000)\n"
		"      --reap-grace MS      after a restart, keep the cursors of the previous\n"
		"                           daemon's clients for MS milliseconds (default 5000)\n"
		"      --publish LIST       who may publish on topics no [topic] rule covers\n"
		"      --subscribe LIST     who may subscribe likewise; LIST is principals\n"
		"                           separated by commas or blanks: uid:N, gid:N,\n"
		"                           user:NAME, group:NAME, * (anyone).  Default: the\n"
		"                           daemon's own uid, root and the group \"ringcast\"\n"
		"      --log-level N        0 quiet, 1 normal, 2 debug (default 1)\n"
		"  -v, --verbose            one log level more\n"
		"  -q, --quiet              log level 0\n"
		"      --cluster GROUP:PORT multicast group and port of the cluster link\n"
		"      --iface IF           network interface of the cluster link\n"
		"      --secret-file FILE   cluster secret that authenticates datagrams\n"
		"                           The cluster flags are checked and accepted, but\n"
		"                           the cluster link is not implemented yet: the\n"
		"                           daemon serves this node only.\n"
		"  -h, --help               print this help and exit\n"
		"      --version            print the version and exit\n"
		"\n"
		"Per-topic capacity, tether timeout and ACLs are set in [topic \"PATTERN\"]\n"
		"sections of the config file; see docs/operations.md.\n",
		RCD_DEFAULT_CONFIG, RINGCAST_DEFAULT_SOCKET, RCD_DEFAULT_RUNTIME_DIR);
}

/*
 * First pass: only --config, --help and --version, and reject bad syntax,
 * so the file is read before any flag is applied and flags win.
 * optind = 0 makes glibc restart its scan: callers (tests) parse twice.
 */
static int scan_args(int argc, char **argv, const struct option *opts, const char **config)
{
	int c;

	optind = 0;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("ringcastd %s\n", RINGCAST_VERSION);
			return 1;
		case OPT_CONFIG:
			*config = optarg;
			break;
		case '?':
			fprintf(stderr, "Try 'ringcastd --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringcastd: unexpected argument '%s'\nTry 'ringcastd --help'.\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int apply_flag(struct rcd_config *cfg, int c, const char *arg)
{
	const struct setting *set;
	struct why w;
	int ret;

	switch (c) {
	case 'v':
		if (cfg->log_level < 2)
			cfg->log_level++;
		return 0;
	case 'q':
		cfg->log_level = 0;
		return 0;
	}
	if (c < OPT_SETTING || c >= OPT_SETTING + (int)N_SETTINGS)
		return 0;
	set = &settings[c - OPT_SETTING];
	ret = set->apply(&(struct target){ cfg, NULL }, arg, &w);
	if (ret == -EINVAL)
		fprintf(stderr, "ringcastd: --%s: %s\n", set->flag, w.msg);
	else if (ret)
		fprintf(stderr, "ringcastd: --%s: %s\n", set->flag, strerror(-ret));
	return ret;
}

static int apply_args(struct rcd_config *cfg, int argc, char **argv, const struct option *opts)
{
	int c, ret;

	optind = 0;
	opterr = 0; /* scan_args() already reported any syntax error */
	while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		ret = apply_flag(cfg, c, optarg);
		if (ret)
			return ret;
	}
	return 0;
}

int rcd_config_from_args(struct rcd_config *cfg, int argc, char **argv)
{
	struct option opts[N_OPTS];
	const char *config = NULL;
	int ret;

	build_opts(opts);
	/* a zeroed cfg gets the defaults, so main() needs only this call */
	if (!cfg->runtime_dir) {
		ret = rcd_config_defaults(cfg);
		if (ret)
			return ret;
	}
	ret = scan_args(argc, argv, opts, &config);
	if (ret)
		return ret;
	ret = load_file(cfg, config ? config : RCD_DEFAULT_CONFIG, config != NULL);
	if (ret)
		return ret;
	return apply_args(cfg, argc, argv, opts);
}

/* ---- lookups for the server ---- */

/* Topics are 1..RINGCAST_TOPIC_MAX bytes without NUL; fnmatch needs a C string. */
static bool topic_cstr(const char *topic, size_t len, char out[RINGCAST_TOPIC_MAX + 1])
{
	if (!topic || len == 0 || len > RINGCAST_TOPIC_MAX || memchr(topic, '\0', len))
		return false;
	memcpy(out, topic, len);
	out[len] = '\0';
	return true;
}

static const struct rcd_topic_rule *find_rule(const struct rcd_config *cfg, const char *topic)
{
	for (unsigned i = 0; i < cfg->n_rules; i++)
		if (fnmatch(cfg->rules[i].pattern, topic, 0) == 0)
			return &cfg->rules[i];
	return NULL;
}

void rcd_config_topic(const struct rcd_config *cfg, const char *topic, size_t len,
		      uint64_t *capacity, uint32_t *tether_timeout_ms)
{
	const struct rcd_topic_rule *rule = NULL;
	char name[RINGCAST_TOPIC_MAX + 1];

	if (topic_cstr(topic, len, name))
		rule = find_rule(cfg, name);
	*capacity = rule && rule->capacity ? rule->capacity : cfg->capacity;
	*tether_timeout_ms = rule && rule->tether_timeout_ms ? rule->tether_timeout_ms
							      : cfg->tether_timeout_ms;
}

static bool principal_matches(const struct rcd_principal *p, uid_t uid, gid_t gid,
			      const gid_t *groups, size_t ngroups)
{
	switch (p->kind) {
	case RCD_P_ANY:
		return true;
	case RCD_P_UID:
		return p->id == uid;
	case RCD_P_GID:
		if (p->id == gid)
			return true;
		for (size_t i = 0; i < ngroups; i++)
			if (groups[i] == p->id)
				return true;
		return false;
	}
	return false;
}

bool rcd_acl_allows(const struct rcd_config *cfg, const char *topic, size_t len,
		    enum rcd_acl_op op, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	const struct rcd_topic_rule *rule;
	const struct rcd_acl *acl;
	char name[RINGCAST_TOPIC_MAX + 1];

	/* a topic the protocol could not carry is nobody's */
	if (!topic_cstr(topic, len, name))
		return false;
	rule = find_rule(cfg, name);
	acl = op == RCD_ACL_PUBLISH ? &cfg->publish : &cfg->subscribe;
	if (rule && op == RCD_ACL_PUBLISH && rule->publish.set)
		acl = &rule->publish;
	if (rule && op == RCD_ACL_SUBSCRIBE && rule->subscribe.set)
		acl = &rule->subscribe;
	/* set or not, cfg's lists hold the default ACL until the file sets them */
	for (unsigned i = 0; i < acl->n && i < RCD_ACL_MAX; i++)
		if (principal_matches(&acl->p[i], uid, gid, groups, ngroups))
			return true;
	return false;
}
