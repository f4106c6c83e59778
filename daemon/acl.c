/* SPDX-License-Identifier: MIT */
/*
 * Access control: the lists of principals in "publish =" and
 * "subscribe =", the default list, and the checks the server makes before
 * a client may connect at all (HELLO) and before it may publish or
 * subscribe.
 *
 * Names in ACLs are resolved here, once, at parse time: the io_uring loop
 * then checks a request against plain numbers and never blocks on NSS
 * (LDAP, sssd) while clients wait.
 */
#include "config_internal.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RCD_NAME_MAX 255 /* user and group names in ACLs */

/* ---- names ---- */

/* A user or group lookup buffer: start small, grow on ERANGE (big groups). */
#define LOOKUP_BUF_START 1024
#define LOOKUP_BUF_MAX (1u << 20)

/* A user's uid or a group's gid; -ENOENT when there is no such name. */
int rcd_lookup_id(const char *name, bool user, uint32_t *id)
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

static int acl_add(struct rcd_acl *acl, int kind, uint32_t id, struct rcd_why *w)
{
	if (acl->n >= RCD_ACL_MAX)
		return rcd_refuse(w, "more than %d principals in one list", RCD_ACL_MAX);
	acl->p[acl->n].kind = kind;
	acl->p[acl->n].id = id;
	acl->n++;
	return 0;
}

/* name lookups: an unknown name is a config error, not an empty match */
static int principal_by_name(struct rcd_acl *acl, const char *tok, bool user, struct rcd_why *w)
{
	const char *name = tok + (user ? sizeof("user:") : sizeof("group:")) - 1;
	uint32_t id = 0;
	int ret;

	if (!*name)
		return rcd_refuse(w, "'%s' names nobody", tok);
	ret = rcd_lookup_id(name, user, &id);
	if (ret == -ENOMEM)
		return ret;
	if (ret == -ENOENT)
		return rcd_refuse(w, "no %s named '%s'", user ? "user" : "group", name);
	if (ret)
		return rcd_refuse(w, "looking up %s '%s': %s", user ? "user" : "group", name,
				  strerror(-ret));
	return acl_add(acl, user ? RCD_P_UID : RCD_P_GID, id, w);
}

static int add_principal(struct rcd_acl *acl, const char *tok, struct rcd_why *w)
{
	uint64_t id;

	if (!strcmp(tok, "*"))
		return acl_add(acl, RCD_P_ANY, 0, w);
	if (!strncmp(tok, "user:", 5))
		return principal_by_name(acl, tok, true, w);
	if (!strncmp(tok, "group:", 6))
		return principal_by_name(acl, tok, false, w);
	/* (uid_t)-1 means "no id" to chown(2) and friends: never a principal */
	if (!strncmp(tok, "uid:", 4) && !rcd_parse_uint(tok + 4, 10, UINT32_MAX - 1, &id))
		return acl_add(acl, RCD_P_UID, (uint32_t)id, w);
	if (!strncmp(tok, "gid:", 4) && !rcd_parse_uint(tok + 4, 10, UINT32_MAX - 1, &id))
		return acl_add(acl, RCD_P_GID, (uint32_t)id, w);
	return rcd_refuse(w, "'%s' is not uid:N, gid:N, user:NAME, group:NAME or *", tok);
}

#define ACL_SEP ", \t"

/*
 * Build the whole list first and copy it in only when every principal
 * resolved: a half-applied list would grant or deny something nobody wrote.
 * An empty list is allowed and means nobody.
 */
int rcd_parse_acl(const char *val, struct rcd_acl *out, struct rcd_why *w)
{
	struct rcd_acl acl = { .set = true };
	char tok[RCD_NAME_MAX + 8];

	for (val += strspn(val, ACL_SEP); *val; val += strspn(val, ACL_SEP)) {
		size_t n = strcspn(val, ACL_SEP);
		int ret;

		if (n >= sizeof(tok))
			return rcd_refuse(w, "principal '%.40s...' is too long", val);
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

/* ---- defaults ---- */

/*
 * The daemon's own uid, root, and the group "ringcast" when it exists.
 * Resolved once here so rcd_acl_allows() never does a group lookup; a group
 * created later counts after a restart.  Kept in cfg->publish/subscribe with
 * set = false, which rcd_acl_allows() reads as "the default".  The same gid
 * is the socket's group (server.c).
 */
int rcd_default_acl(struct rcd_config *cfg, struct rcd_acl *acl)
{
	struct rcd_why w;
	uid_t me = geteuid();
	uint32_t gid;
	int ret;

	memset(acl, 0, sizeof(*acl));
	acl_add(acl, RCD_P_UID, me, &w);
	if (me != 0)
		acl_add(acl, RCD_P_UID, 0, &w);
	ret = rcd_lookup_id(RCD_DEFAULT_GROUP, false, &gid);
	if (ret == -ENOMEM)
		return ret;
	/* no such group, or NSS down: fewer people allowed, never more */
	cfg->have_group = ret == 0;
	if (ret == 0) {
		cfg->group = gid;
		acl_add(acl, RCD_P_GID, gid, &w);
	}
	return 0;
}

/* ---- the check ---- */

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

static bool acl_matches(const struct rcd_acl *acl, uid_t uid, gid_t gid, const gid_t *groups,
			size_t ngroups)
{
	for (unsigned i = 0; i < acl->n && i < RCD_ACL_MAX; i++)
		if (principal_matches(&acl->p[i], uid, gid, groups, ngroups))
			return true;
	return false;
}

bool rcd_acl_allows(const struct rcd_config *cfg, const char *topic, size_t len,
		    enum rcd_acl_op op, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	const struct rcd_topic_rule *rule;
	const struct rcd_acl *acl;
	char name[RINGCAST_TOPIC_MAX + 1];

	/* a topic the protocol could not carry is nobody's */
	if (!rcd_topic_cstr(topic, len, name))
		return false;
	rule = rcd_find_rule(cfg, name);
	acl = op == RCD_ACL_PUBLISH ? &cfg->publish : &cfg->subscribe;
	if (rule && op == RCD_ACL_PUBLISH && rule->publish.set)
		acl = &rule->publish;
	if (rule && op == RCD_ACL_SUBSCRIBE && rule->subscribe.set)
		acl = &rule->subscribe;
	/* set or not, cfg's lists hold the default ACL until the file sets them */
	return acl_matches(acl, uid, gid, groups, ngroups);
}

/*
 * Every list counts, even one no topic can reach (a rule shadowed by an
 * earlier pattern, the defaults under a "*" rule): telling whether a list
 * is reachable would mean reasoning about fnmatch patterns, and counting
 * them all can only let in a peer too many, never turn away one that may
 * use some topic.  An empty list ("publish =") names nobody.  Root and
 * the daemon's own user are always let in: they may set the trace rate
 * (TRACE_SAMPLE) whatever the lists say.
 */
bool rcd_acl_admits(const struct rcd_config *cfg, uid_t uid, gid_t gid, const gid_t *groups,
		    size_t ngroups)
{
	if (uid == 0 || uid == geteuid())
		return true;
	if (acl_matches(&cfg->publish, uid, gid, groups, ngroups) ||
	    acl_matches(&cfg->subscribe, uid, gid, groups, ngroups))
		return true;
	for (unsigned i = 0; i < cfg->n_rules; i++) {
		const struct rcd_topic_rule *r = &cfg->rules[i];

		if ((r->publish.set && acl_matches(&r->publish, uid, gid, groups, ngroups)) ||
		    (r->subscribe.set && acl_matches(&r->subscribe, uid, gid, groups, ngroups)))
			return true;
	}
	return false;
}
