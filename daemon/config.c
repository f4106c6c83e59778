/* SPDX-License-Identifier: MIT */
/*
 * ringcastd's configuration: the defaults, the INI-style file, and the
 * per-topic rules (capacity, tether timeout, ACLs) the server looks up.
 *
 * Each key's value is checked and applied by config_settings.c, so this
 * file knows the file's syntax (sections, "key = value", comments) and
 * nothing about what any one key means.  Nothing here keeps state outside
 * the struct rcd_config the caller owns.
 */
#include "config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring_format.h"

#define RCD_FILE_MAX (1u << 20)  /* a config file larger than this is a mistake */
#define RCD_RULES_MAX 1024       /* [topic] sections; each ACL check walks them */

/* ---- defaults ---- */

static int default_node(struct rcd_config *cfg)
{
	char host[HOST_NAME_MAX + 1];
	struct rcd_why w;

	/* POSIX leaves a truncated name unterminated */
	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (rcd_check_node(host, &w))
		strcpy(host, "localhost");
	return rcd_set_str(&cfg->node, host);
}

int rcd_config_defaults(struct rcd_config *cfg)
{
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	/* Owner and group: a user outside the group cannot even connect. */
	cfg->socket_mode = 0660;
	cfg->capacity = RC_CAPACITY_DEFAULT;
	cfg->tether_timeout_ms = 5000;
	cfg->reap_grace_ms = 5000;
	cfg->topic_idle_ms = 3600000;
	cfg->max_topics = 4096;
	cfg->log_level = 1;
	ret = rcd_set_str(&cfg->socket_path, RINGCAST_DEFAULT_SOCKET);
	if (!ret)
		ret = rcd_set_str(&cfg->runtime_dir, RCD_DEFAULT_RUNTIME_DIR);
	if (!ret)
		ret = default_node(cfg);
	if (!ret)
		ret = rcd_default_acl(cfg, &cfg->publish);
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
	uint32_t seen;               /* rcd_settings[] given in this section, by index */
	char *err;
	size_t errlen;
};

_Static_assert(RCD_N_SETTINGS <= 32, "struct parser's seen is a 32-bit mask");

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
	const struct rcd_setting *set;
	char *eq = strchr(s, '=');
	char *key, *val;
	struct rcd_why w;
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
	set = rcd_find_setting(key);
	if (!set)
		return perr(p, -EINVAL, "unknown key '%s'", key);
	if (p->rule && !set->in_topic)
		return perr(p, -EINVAL, "'%s' belongs in [ringcastd], not in a [topic] section",
			    key);
	bit = 1u << (set - rcd_settings);
	/* two "publish" lines could mean a union or a replacement: refuse both */
	if (p->seen & bit)
		return perr(p, -EINVAL, "'%s' given twice in this section", key);
	p->seen |= bit;
	ret = set->apply(&(struct rcd_target){ p->cfg, p->rule }, val, &w);
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

int rcd_read_all(int fd, char **out, size_t *outlen)
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
int rcd_config_load(struct rcd_config *cfg, const char *path, bool must_exist)
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
	ret = rcd_read_all(fd, &buf, &len);
	close(fd);
	if (ret) {
		fprintf(stderr, "ringcastd: %s: %s\n", path,
			ret == -EFBIG ? "larger than 1 MiB" : strerror(-ret));
		return ret;
	}
	ret = rcd_set_str(&cfg->config_file, path);
	if (!ret)
		ret = rcd_config_parse(cfg, buf, len, path, err, sizeof(err));
	free(buf);
	if (ret)
		fprintf(stderr, "ringcastd: %s\n", ret == -ENOMEM ? "out of memory" : err);
	return ret;
}

/* ---- lookups for the server ---- */

/* Topics are 1..RINGCAST_TOPIC_MAX bytes without NUL; fnmatch needs a C string. */
bool rcd_topic_cstr(const char *topic, size_t len, char out[RINGCAST_TOPIC_MAX + 1])
{
	if (!topic || len == 0 || len > RINGCAST_TOPIC_MAX || memchr(topic, '\0', len))
		return false;
	memcpy(out, topic, len);
	out[len] = '\0';
	return true;
}

const struct rcd_topic_rule *rcd_find_rule(const struct rcd_config *cfg, const char *topic)
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

	if (rcd_topic_cstr(topic, len, name))
		rule = rcd_find_rule(cfg, name);
	*capacity = rule && rule->capacity ? rule->capacity : cfg->capacity;
	*tether_timeout_ms = rule && rule->tether_timeout_ms ? rule->tether_timeout_ms
							      : cfg->tether_timeout_ms;
}
