/* SPDX-License-Identifier: MIT */
/*
 * ringcastd's settings: defaults, then the config file, then flags (flags
 * win).  Per-topic settings and the ACL come from [topic "PATTERN"]
 * sections, matched with fnmatch(3) in file order, the first match
 * winning.  docs/operations.md is the reference for every key.
 */
#ifndef RINGCASTD_CONFIG_H
#define RINGCASTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RCD_DEFAULT_CONFIG "/etc/ringcast/ringcastd.conf"
#define RCD_DEFAULT_RUNTIME_DIR "/run/ringcast"
/* The group of the node's users: in the default ACL, and the socket's group. */
#define RCD_DEFAULT_GROUP "ringcast"
#define RCD_ACL_MAX 32

enum rcd_acl_op { RCD_ACL_PUBLISH, RCD_ACL_SUBSCRIBE };

/* One principal allowed by an ACL list. */
struct rcd_principal {
	enum { RCD_P_ANY, RCD_P_UID, RCD_P_GID } kind;
	uint32_t id;
};

struct rcd_acl {
	bool set;       /* false: inherit the daemon default */
	unsigned n;
	struct rcd_principal p[RCD_ACL_MAX];
};

struct rcd_topic_rule {
	char *pattern;            /* fnmatch pattern, owned */
	uint64_t capacity;        /* 0: inherit */
	uint32_t tether_timeout_ms; /* 0: inherit */
	struct rcd_acl publish, subscribe;
};

struct rcd_config {
	char *socket_path;   /* owned; default RINGCAST_DEFAULT_SOCKET */
	char *runtime_dir;   /* owned; default RCD_DEFAULT_RUNTIME_DIR */
	char *node;          /* owned; default: hostname */
	char *config_file;   /* owned; NULL: none given */
	char *cluster;       /* owned; "GROUP:PORT" or NULL (cluster link: later) */
	char *iface;         /* owned or NULL */
	char *secret_file;   /* owned or NULL */
	uint32_t socket_mode;      /* default 0660: who may connect at all */
	bool have_group;           /* RCD_DEFAULT_GROUP existed when the defaults were set */
	gid_t group;               /* its gid, if so: the socket's group */
	uint64_t capacity;         /* default RC_CAPACITY_DEFAULT */
	uint32_t tether_timeout_ms; /* default 5000 */
	uint32_t reap_grace_ms;    /* cursors of clients gone with the old daemon; default 5000 */
	uint32_t max_topics;       /* no topic is made past this many (adopted ones count); 4096 */
	/*
	 * What one uid (not root, not the daemon's) may make: topics, and
	 * bytes of ring and ctl files.  0: a quarter of max_topics, and a
	 * quarter of the runtime directory's file system.
	 */
	uint32_t max_topics_per_uid;
	/* A topic nobody has had open this long is removed; 0: never.  3600000 */
	uint32_t topic_idle_ms;
	uint64_t max_bytes_per_uid;
	int log_level;             /* 0 quiet .. 2 debug; default 1 */
	struct rcd_acl publish, subscribe; /* defaults for every topic */
	struct rcd_topic_rule *rules;      /* owned */
	unsigned n_rules;
};

/* Fill cfg with defaults.  cfg is the caller's; rcd_config_free() it. */
int rcd_config_defaults(struct rcd_config *cfg);

/*
 * Parse the INI text buf[0..len) into cfg (on top of what is there).
 * -EINVAL on the first bad line, with "FILE:LINE: why" in err[0..errlen).
 */
int rcd_config_parse(struct rcd_config *cfg, const char *buf, size_t len, const char *name,
		     char *err, size_t errlen);

/*
 * Parse argv (flags override the file given with --config, which is read
 * first).  Returns 0, 1 when --help or --version was printed (exit 0), or
 * -EINVAL with a message on stderr.
 */
int rcd_config_from_args(struct rcd_config *cfg, int argc, char **argv);

void rcd_config_free(struct rcd_config *cfg);

/* Per-topic capacity and tether timeout after the rules are applied. */
void rcd_config_topic(const struct rcd_config *cfg, const char *topic, size_t len,
		      uint64_t *capacity, uint32_t *tether_timeout_ms);

/*
 * May (uid, gid, groups) do op on topic?  true/false.  The default ACL
 * (no publish/subscribe key anywhere) allows the daemon's own uid, root
 * and the group "ringcast" if it exists.
 */
bool rcd_acl_allows(const struct rcd_config *cfg, const char *topic, size_t len,
		    enum rcd_acl_op op, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups);

/*
 * May (uid, gid, groups) connect at all?  true for root, the daemon's own
 * uid, and whoever matches a principal of any publish or subscribe list
 * (of any [topic] rule, of [ringcastd], or the default ACL); false for a
 * peer no list names, who could not publish or subscribe to any topic.
 */
bool rcd_acl_admits(const struct rcd_config *cfg, uid_t uid, gid_t gid, const gid_t *groups,
		    size_t ngroups);

/* Parse a size like "1M", "65536", "4k": bytes or -EINVAL. */
int rcd_parse_size(const char *s, uint64_t *out);

#endif /* RINGCASTD_CONFIG_H */
