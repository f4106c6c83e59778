/* SPDX-License-Identifier: MIT */
/*
 * What the files that build a struct rcd_config share, and nothing the
 * rest of the daemon may use (it includes config.h only):
 *
 *  - config_settings.c checks and applies one setting's value, for the
 *    file and for flags alike, through the table rcd_settings[];
 *  - acl.c turns a list of principals into a struct rcd_acl and answers
 *    rcd_acl_allows();
 *  - config.c holds the defaults, the INI parser and the per-topic rule
 *    lookup;
 *  - config_args.c reads argv, prints --help and --version.
 */
#ifndef RINGCASTD_CONFIG_INTERNAL_H
#define RINGCASTD_CONFIG_INTERNAL_H

#include "config.h"

#include "ringcast.h"

/* Why a value was refused; the caller adds "FILE:LINE: key: " or the flag. */
struct rcd_why {
	char msg[320];
};

/* Format the reason into w; always returns -EINVAL. */
int rcd_refuse(struct rcd_why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Digits in base only, up to max: 0 and *out, or -EINVAL. */
int rcd_parse_uint(const char *s, unsigned base, uint64_t max, uint64_t *out);

/* Replace the owned string *dst by a copy of val: 0 or -ENOMEM (*dst kept). */
int rcd_set_str(char **dst, const char *val);

/* Is val a node name (1..RC_PROTO_NODE_MAX printable bytes, no blanks)? */
int rcd_check_node(const char *val, struct rcd_why *w);

/* ---- the settings table (config_settings.c) ---- */

/* What a value lands in: rule is NULL in [ringcastd] and for flags. */
struct rcd_target {
	struct rcd_config *cfg;
	struct rcd_topic_rule *rule;
};

/* 0, -EINVAL with the reason in w, or -ENOMEM; on error nothing changed. */
typedef int (*apply_fn)(struct rcd_target *t, const char *val, struct rcd_why *w);

struct rcd_setting {
	const char *key;  /* in the file */
	const char *flag; /* long option, NULL: file only */
	bool in_topic;    /* also allowed in [topic "PATTERN"] */
	apply_fn apply;
};

/* The definition must have exactly this many entries (the compiler checks). */
#define RCD_N_SETTINGS 17

extern const struct rcd_setting rcd_settings[RCD_N_SETTINGS];

/* The setting named key in the file, or NULL. */
const struct rcd_setting *rcd_find_setting(const char *key);

/* ---- ACL lists (acl.c) ---- */

/*
 * A user's uid or a group's gid; -ENOENT when there is no such name.
 * Also the unit tests' way to ask whether the group "ringcast" exists.
 */
int rcd_lookup_id(const char *name, bool user, uint32_t *id);

/*
 * Parse a list of principals into *out, resolving names now.  *out is
 * written only when every principal resolved.  0, -EINVAL (reason in w)
 * or -ENOMEM.
 */
int rcd_parse_acl(const char *val, struct rcd_acl *out, struct rcd_why *w);

/*
 * The default ACL into *acl (set = false), and the gid of RCD_DEFAULT_GROUP
 * into cfg->group (cfg->have_group says whether it exists): 0 or -ENOMEM.
 */
int rcd_default_acl(struct rcd_config *cfg, struct rcd_acl *acl);

/* ---- topic rules (config.c) ---- */

/* Copy a topic into out as a C string; false if it is no valid topic. */
bool rcd_topic_cstr(const char *topic, size_t len, char out[RINGCAST_TOPIC_MAX + 1]);

/* The first rule whose pattern matches topic, or NULL. */
const struct rcd_topic_rule *rcd_find_rule(const struct rcd_config *cfg, const char *topic);

/* Bytes in one config line, newline excluded (the unit tests go past it). */
#define RCD_LINE_MAX 4096

/*
 * All of fd into a new buffer *out (free() it), *outlen bytes: 0,
 * -EFBIG past a sane config file's size, or a negative errno.  The unit
 * tests read the example config with it.
 */
int rcd_read_all(int fd, char **out, size_t *outlen);

/*
 * Read and parse the file at path into cfg, saying why on stderr if not.
 * A missing file is 0 unless must_exist.  0 or a negative errno.
 */
int rcd_config_load(struct rcd_config *cfg, const char *path, bool must_exist);

#endif /* RINGCASTD_CONFIG_INTERNAL_H */
