/* SPDX-License-Identifier: MIT */
/*
 * The topic registry (see registry.h).  A small chained hash table keyed
 * by the keyed hash of the topic name, plus a list in registration order
 * for the things that visit every topic (stat, the tick).
 *
 * The runtime directory is locked for the daemon's lifetime (rundir.c):
 * two daemons adopting the same rings would hand out the same slots twice.
 * The lock dies with the process, so a crash never leaves it stale.  The
 * files themselves are sealed memfds that the keeper (keeper.h) holds
 * across restarts; nothing is adopted from the directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "barrier.h"
#include "config.h"
#include "log.h"
#include "registry.h"
#include "keeper.h"
#include "lives.h"
#include "rundir.h"

#define ID_PROBES 64 /* ids tried past the hash before giving up */

int rcd_mkdirs(const char *path, unsigned mode)
{
	char *p = strdup(path), *s;
	struct stat st;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char saved = *s;

		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			ret = -errno;
			break;
		}
		*s = saved;
		if (!saved)
			break;
	}
	if (!ret && stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
		ret = -ENOTDIR;
	free(p);
	return ret;
}

static struct rcd_topic **bucket(struct rcd_registry *reg, uint64_t hash)
{
	return &reg->buckets[hash & (reg->nbuckets - 1)];
}

struct rcd_topic *rcd_registry_find(struct rcd_registry *reg, const char *name, size_t len)
{
	uint64_t h = rcd_topic_hash(&reg->key, name, len);
	struct rcd_topic *t;

	for (t = *bucket(reg, h); t; t = t->hnext)
		if (t->hash == h && t->len == len && !memcmp(t->name, name, len))
			return t;
	return NULL;
}

static bool id_in_use(struct rcd_registry *reg, uint64_t id)
{
	struct rcd_topic *t;

	/* Linear, but only on the rare path that creates a topic. */
	for (t = reg->first; t; t = t->next)
		if (t->id == id)
			return true;
	return false;
}

/* Double the table when it gets as full as it is wide.  -ENOMEM. */
static int grow(struct rcd_registry *reg)
{
	size_t n = reg->nbuckets * 2, i;
	struct rcd_topic **b = calloc(n, sizeof(*b));
	struct rcd_topic *t;

	if (!b)
		return -ENOMEM;
	free(reg->buckets);
	reg->buckets = b;
	reg->nbuckets = n;
	for (i = 0; i < n; i++)
		b[i] = NULL;
	for (t = reg->first; t; t = t->next) {
		struct rcd_topic **head = bucket(reg, t->hash);

		t->hnext = *head;
		*head = t;
	}
	return 0;
}

static int insert(struct rcd_registry *reg, struct rcd_topic *t)
{
	struct rcd_topic **head;

	if (reg->ntopics + 1 > reg->nbuckets && grow(reg) < 0)
		return -ENOMEM;
	t->hash = rcd_topic_hash(&reg->key, t->name, t->len);
	head = bucket(reg, t->hash);
	t->hnext = *head;
	*head = t;
	t->next = NULL;
	if (reg->last)
		reg->last->next = t;
	else
		reg->first = t;
	reg->last = t;
	reg->ntopics++;
	return 0;
}

static void topic_free(struct rcd_topic *t)
{
	if (t->ring.hdr)
		rc_ring_unmap(&t->ring);
	if (t->ring_fd >= 0)
		close(t->ring_fd);
	if (t->ctl_fd >= 0)
		close(t->ctl_fd);
	free(t);
}

static struct rcd_topic *topic_alloc(uint64_t id)
{
	struct rcd_topic *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ring_fd = t->ctl_fd = -1;
	t->owner = (uid_t)-1;
	t->id = id;
	snprintf(t->file, sizeof(t->file), "%016" PRIx64, id);
	return t;
}

/* Have the keeper forget a topic's files: no later daemon adopts them. */
static void forget_files(struct rcd_registry *reg, const char *file)
{
	char name[RCD_KEEPER_NAME_MAX];

	snprintf(name, sizeof(name), "%s.ring", file);
	rcd_keeper_drop(&reg->keeper, name);
	snprintf(name, sizeof(name), "%s.ctl", file);
	rcd_keeper_drop(&reg->keeper, name);
}

/*
 * Hand a topic's files to the keeper, the ring last: a ring is a topic,
 * a ctl file without one is dropped at the next start.  Logged on error:
 * the topic works, but a restarted daemon would not find it.
 */
static void keep_files(struct rcd_registry *reg, const struct rcd_topic *t)
{
	char name[RCD_KEEPER_NAME_MAX];
	int ret;

	snprintf(name, sizeof(name), "%s.ctl", t->file);
	ret = rcd_keeper_put(&reg->keeper, name, t->ctl_fd);
	snprintf(name, sizeof(name), "%s.ring", t->file);
	if (ret == 0)
		ret = rcd_keeper_put(&reg->keeper, name, t->ring_fd);
	if (ret < 0)
		rcd_warn(reg->log, "the keeper did not take the files of %s: %s", t->file,
			 strerror(-ret));
}

void rcd_registry_remove(struct rcd_registry *reg, struct rcd_topic *t)
{
	struct rcd_topic **pp, *prev = NULL, *e;

	for (pp = bucket(reg, t->hash); *pp; pp = &(*pp)->hnext)
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	for (e = reg->first; e && e != t; e = e->next)
		prev = e;
	if (!e)
		return;
	if (prev)
		prev->next = t->next;
	else
		reg->first = t->next;
	if (reg->last == t)
		reg->last = prev;
	reg->ntopics--;
	forget_files(reg, t->file);
	topic_free(t);
}

/* What a topic of capacity cap costs the runtime directory. */
static uint64_t topic_bytes(uint64_t cap)
{
	return RC_RING_HDR_SIZE + cap + RC_CTL_SIZE;
}

/* What every topic costs: a walk, only when one is made. */
static uint64_t total_bytes(const struct rcd_registry *reg)
{
	const struct rcd_topic *t;
	uint64_t n = 0;

	for (t = reg->first; t; t = t->next)
		n += topic_bytes(t->ring.cap);
	return n;
}

int rcd_registry_uid_room(const struct rcd_registry *reg, uid_t uid, const char *name,
			  size_t len, uint32_t *topics, uint64_t *bytes, uint32_t *max_topics,
			  uint64_t *max_bytes)
{
	const struct rcd_topic *t;
	uint64_t cap;
	uint32_t tether_ms;

	*topics = 0;
	*bytes = 0;
	*max_topics = reg->cfg->max_topics_per_uid ? reg->cfg->max_topics_per_uid
						   : reg->cfg->max_topics / 4;
	*max_bytes = reg->cfg->max_bytes_per_uid ? reg->cfg->max_bytes_per_uid
						 : reg->fs_bytes / 4;
	if (uid == 0 || uid == geteuid())
		return 0;
	/* A walk of every topic: only when one is made, which is rare. */
	for (t = reg->first; t; t = t->next) {
		if (t->owner != uid)
			continue;
		(*topics)++;
		*bytes += topic_bytes(t->ring.cap);
	}
	rcd_config_topic(reg->cfg, name, len, &cap, &tether_ms);
	if (*topics + 1 > *max_topics || (*max_bytes && *bytes + topic_bytes(cap) > *max_bytes))
		return -EDQUOT;
	return 0;
}

void rcd_registry_charge(struct rcd_topic *t, uid_t uid)
{
	if (uid != 0 && uid != geteuid())
		t->owner = uid;
}

int rcd_registry_get(struct rcd_registry *reg, const char *name, size_t len,
		     struct rcd_topic **out)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	struct rcd_topic *t = rcd_registry_find(reg, name, len);
	uint64_t h, capacity;
	uint32_t tether_ms;
	unsigned i;
	int ret = -EEXIST;

	if (t) {
		*out = t;
		return 0;
	}
	/* The codec checked already; checked again here, where it matters. */
	if (len == 0 || len > RINGCAST_TOPIC_MAX || memchr(name, '\0', len))
		return -EINVAL;
	/* Every topic costs the daemon two fds and the runtime dir a ring, for good. */
	if (reg->ntopics >= reg->cfg->max_topics)
		return -EDQUOT;
	rcd_escape(name, len, esc, sizeof(esc));
	rcd_config_topic(reg->cfg, name, len, &capacity, &tether_ms);
	/*
	 * The rings are memfds, not files in the runtime directory, but its
	 * file system's size still bounds them all, as it did when they were
	 * files there: an admin sizes one tmpfs for the node's topics.
	 */
	if (reg->fs_bytes && total_bytes(reg) + topic_bytes(capacity) > reg->fs_bytes) {
		rcd_warn(reg->log, "no room for topic '%s': its ring would take the node's topics "
			 "past %" PRIu64 " bytes, the size of %s", esc, reg->fs_bytes,
			 reg->cfg->runtime_dir);
		return -ENOSPC;
	}
	h = rcd_topic_hash(&reg->key, name, len);
	for (i = 0; i < ID_PROBES; i++) {
		/* An id of a registered topic: another topic's, probe the next id. */
		if (id_in_use(reg, h + i))
			continue;
		t = topic_alloc(h + i);
		if (!t)
			return -ENOMEM;
		ret = rc_ring_create(t->file, name, len, capacity, t->id, tether_ms,
				     &t->ring_fd, &t->ctl_fd);
		if (ret < 0) {
			topic_free(t);
			rcd_warn(reg->log, "cannot create the ring of '%s': %s", esc, strerror(-ret));
			return ret;
		}
		break;
	}
	if (!t) {
		rcd_err(reg->log, "no free topic id for '%s' after %u probes", esc, ID_PROBES);
		return -EEXIST;
	}
	ret = rc_ring_map(&t->ring, t->ring_fd, t->ctl_fd, true);
	if (ret < 0) {
		rcd_err(reg->log, "cannot map the new ring of '%s': %s", esc, strerror(-ret));
		goto fail;
	}
	memcpy(t->name, name, len);
	t->len = len;
	ret = insert(reg, t);
	if (ret < 0)
		goto fail;
	/* Before any client gets them: a client must never map a ring the next daemon cannot find. */
	keep_files(reg, t);
	rcd_info(reg->log, "created topic '%s' (%s, capacity %" PRIu64 ")", esc, t->file,
		 t->ring.cap);
	*out = t;
	return 0;
fail:
	topic_free(t);
	return ret;
}

/* Parse "<16 hex digits>.ring".  true and *id if it is a ring file name. */
static bool ring_file_id(const char *name, uint64_t *id)
{
	uint64_t v = 0;
	int i;

	if (strlen(name) != 21 || strcmp(name + 16, ".ring"))
		return false;
	for (i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	*id = v;
	return true;
}

/*
 * Map and register one ring a previous daemon left with the keeper (the
 * fds are t's from here on).  Skips bad ones, and has the keeper forget
 * them.
 */
static void adopt_one(struct rcd_registry *reg, uint64_t id, int ring_fd, int ctl_fd)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	struct rcd_topic *t = topic_alloc(id), *other;
	const struct rc_ring_meta *meta;
	int ret;

	if (!t) {
		reg->skipped++;
		rcd_err(reg->log, "out of memory adopting %016" PRIx64, id);
		close(ring_fd);
		if (ctl_fd >= 0)
			close(ctl_fd);
		return;
	}
	t->ring_fd = ring_fd;
	t->ctl_fd = ctl_fd;
	if (t->ctl_fd < 0) {
		rcd_warn(reg->log, "not adopting %s: the keeper has no .ctl file for it", t->file);
		goto skip;
	}
	/*
	 * The keeper holds only what a daemon of ours gave it, and talks to
	 * our uid alone; the map checks the seals and every header field all
	 * the same.
	 */
	ret = rc_ring_map(&t->ring, t->ring_fd, t->ctl_fd, true);
	if (ret < 0) {
		rcd_warn(reg->log, "not adopting %s: %s", t->file, strerror(-ret));
		goto skip;
	}
	/* The header was written by a daemon before any client mapped it;
	 * plain reads, but checked as if hostile. */
	meta = &t->ring.hdr->meta;
	if (meta->topic_id != id || t->ring.ctl->topic_id != id) {
		rcd_warn(reg->log, "not adopting %s: its header names topic id %016" PRIx64,
			 t->file, meta->topic_id);
		goto skip;
	}
	if (meta->topic_len == 0 || meta->topic_len > RINGCAST_TOPIC_MAX ||
	    memchr(meta->topic, '\0', meta->topic_len)) {
		rcd_warn(reg->log, "not adopting %s: bad topic name", t->file);
		goto skip;
	}
	t->len = meta->topic_len;
	memcpy(t->name, meta->topic, t->len);
	rcd_escape(t->name, t->len, esc, sizeof(esc));
	/*
	 * Publishers hold the ring writable, header and all: the name there
	 * may be one a publisher wrote to take another topic over at this
	 * restart.  The file's id was chosen by a daemon from the real name
	 * (rcd_registry_get: the hash, probed ID_PROBES on), so a name whose ids
	 * do not include it is not this ring's.  The hash is keyed, so no
	 * client can search for a name of its own whose ids include a
	 * victim's.  A ring made under another key fails here too.
	 */
	if (id - rcd_topic_hash(&reg->key, t->name, t->len) >= ID_PROBES) {
		if (reg->key.created)
			rcd_warn(reg->log, "not adopting %s (topic '%s'): it was made under another "
				 "topic key, and %s was created at this start", t->file, esc,
				 RCD_TOPIC_KEY_FILE);
		else
			rcd_warn(reg->log, "not adopting %s: its header names topic '%s', whose ids "
				 "do not include %016" PRIx64 " (rewritten by a client, or made under "
				 "another topic key?)", t->file, esc, id);
		goto skip;
	}
	other = rcd_registry_find(reg, t->name, t->len);
	if (other) {
		rcd_warn(reg->log, "not adopting %s: topic '%s' is already adopted from %s",
			 t->file, esc, other->file);
		goto skip;
	}
	if (insert(reg, t) < 0) {
		rcd_err(reg->log, "out of memory adopting %s", t->file);
		goto skip;
	}
	rc_ring_adopt_slots(&t->ring);
	rcd_info(reg->log, "adopted topic '%s' (%s, capacity %" PRIu64 ")", esc, t->file,
		 t->ring.cap);
	return;
skip:
	reg->skipped++;
	forget_files(reg, t->file);
	topic_free(t);
}

/* Adopt every ring the keeper holds; forget what is no ring's. */
static void scan(struct rcd_registry *reg)
{
	struct rcd_keeper *k = &reg->keeper;
	size_t i;

	for (i = 0; i < k->nkept; i++) {
		char ctl[RCD_KEEPER_NAME_MAX];
		uint64_t id;
		int fd = k->kept[i].fd;

		if (fd < 0 || !ring_file_id(k->kept[i].name, &id))
			continue;
		k->kept[i].fd = -1;
		snprintf(ctl, sizeof(ctl), "%016" PRIx64 ".ctl", id);
		adopt_one(reg, id, fd, rcd_keeper_take(k, ctl));
	}
	for (i = 0; i < k->nkept; i++) {
		if (k->kept[i].fd < 0 || !strcmp(k->kept[i].name, "node") ||
		    !strcmp(k->kept[i].name, "bells"))
			continue;
		rcd_warn(reg->log, "the keeper held '%s', which is no topic's: forgetting it",
			 k->kept[i].name);
		rcd_keeper_drop(k, k->kept[i].name);
		close(k->kept[i].fd);
		k->kept[i].fd = -1;
	}
}

/*
 * Files of the format before sealed memfds (rings, ctl, bells and node
 * files in the directory): no daemon maps them any more, and they hold
 * memory.  Only names of ours, in a directory that is ours alone.
 */
static void remove_old_files(struct rcd_registry *reg)
{
	int fd = fcntl(reg->dirfd, F_DUPFD_CLOEXEC, 0);
	struct dirent *de;
	unsigned n = 0;
	DIR *dir;

	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		char ring[32];
		uint64_t id;
		size_t len = strlen(de->d_name);

		/* "<16 hex digits>.ctl" is a ring's name with another ending. */
		if (len == 20 && !strcmp(de->d_name + 16, ".ctl"))
			snprintf(ring, sizeof(ring), "%.16s.ring", de->d_name);
		else
			snprintf(ring, sizeof(ring), "%.31s", de->d_name);
		if (de->d_type == DT_REG &&
		    (!strcmp(de->d_name, "bells") || !strcmp(de->d_name, "node") ||
		     ring_file_id(ring, &id)) &&
		    unlinkat(reg->dirfd, de->d_name, 0) == 0)
			n++;
	}
	closedir(dir);
	if (n)
		rcd_info(reg->log, "removed %u files of the former file-based format from %s", n,
			 reg->cfg->runtime_dir);
}

/*
 * Adopt one of the node's files (bells, node) from the keeper, or create
 * it; a corrupt one is replaced.  map: checks it (and maps it for us).
 */
static int open_node_file(struct rcd_registry *reg, const char *name, int (*create)(int *fd),
			  int (*map)(struct rcd_registry *reg, int fd), int *fd)
{
	int ret;

	*fd = rcd_keeper_take(&reg->keeper, name);
	if (*fd >= 0) {
		ret = map(reg, *fd);
		if (ret == 0)
			return 0;
		reg->skipped++;
		rcd_warn(reg->log, "the kept %s file is %s; replacing it", name,
			 ret == -EPROTO ? "of another format version" : "corrupt");
		close(*fd);
	}
	ret = create(fd);
	if (ret == 0 && (ret = map(reg, *fd)) < 0)
		close(*fd);
	if (ret < 0) {
		rcd_err(reg->log, "cannot create the %s file: %s", name, strerror(-ret));
		*fd = -1;
		return ret;
	}
	ret = rcd_keeper_put(&reg->keeper, name, *fd);
	if (ret < 0)
		rcd_warn(reg->log, "the keeper did not take the %s file: %s", name, strerror(-ret));
	return 0;
}

static int map_bells(struct rcd_registry *reg, int fd)
{
	return rc_bells_map(fd, &reg->bells);
}

static int map_node(struct rcd_registry *reg, int fd)
{
	return rc_node_map(fd, true, &reg->node);
}

static int open_bells(struct rcd_registry *reg)
{
	return open_node_file(reg, "bells", rc_bells_create, map_bells, &reg->bells_fd);
}

static int open_node(struct rcd_registry *reg)
{
	int ret = open_node_file(reg, "node", rc_node_create, map_node, &reg->node_fd);

	if (ret < 0)
		return ret;
	/*
	 * The daemon is the node file's only writer (clients map it
	 * read-only): relaxed loads of our predecessor's values are enough.
	 * The new generation is stored by rcd_registry_announce().
	 */
	reg->gen = rc_load_relaxed(&reg->node->daemon_gen) + 1;
	reg->next_id = rc_load_relaxed(&reg->node->next_client_id);
	return 0;
}

/*
 * The bells header is the daemon's to write.  If a client zeroed it
 * (every client can write the file, and punch holes in it), write it
 * again, so that clients can map the file.
 */
void rcd_registry_bells_heal(struct rcd_registry *reg)
{
	struct rc_bells_hdr *b = reg->bells;

	if (b->magic == RC_BELLS_MAGIC && b->version == RC_FORMAT_VERSION && b->nbells == RC_BELLS)
		return;
	rcd_err(reg->log, "the header of the bells file was destroyed by a client; rewriting it");
	b->version = RC_FORMAT_VERSION;
	b->nbells = RC_BELLS;
	/* Plain stores, no pair: these are the fields a client checks when
	 * it maps the file, which it does only after receiving the fd in
	 * our HELLO_OK, a send that follows these stores. */
	b->magic = RC_BELLS_MAGIC;
}

void rcd_registry_announce(struct rcd_registry *reg)
{
	/*
	 * Clients watch daemon_gen to learn that a new daemon adopted the
	 * rings and they must resume their slots before the reap grace ends.
	 * The release store pairs with their acquire load of daemon_gen
	 * (rc_client_check_daemon()): one that sees the new generation also
	 * sees every slot write the adoption made before it.
	 */
	rc_store_release(&reg->node->daemon_gen, reg->gen);
	reg->announced = true;
}

uint32_t rcd_registry_trace_sample(struct rcd_registry *reg, uint32_t n)
{
	/*
	 * Relaxed, and read relaxed by every probe site (rc_trace_sampled):
	 * the rate orders nothing else, and a site may apply the old rate to
	 * the few messages it is handling while the new one lands.
	 */
	return atomic_exchange_explicit(&reg->node->trace_sample, n, memory_order_relaxed);
}

int rcd_registry_open(struct rcd_registry *reg, const struct rcd_config *cfg,
		      struct rcd_log *log)
{
	const char *dir = cfg->runtime_dir;
	int ret;

	memset(reg, 0, sizeof(*reg));
	reg->cfg = cfg;
	reg->log = log;
	reg->keeper.sock = -1;
	reg->dirfd = reg->lock_fd = reg->bells_fd = reg->node_fd = reg->lives_fd = -1;
	reg->nbuckets = 64;
	reg->buckets = calloc(reg->nbuckets, sizeof(*reg->buckets));
	if (!reg->buckets)
		return -ENOMEM;

	reg->dirfd = rcd_rundir_open(dir, log, &reg->lock_fd);
	if (reg->dirfd < 0) {
		ret = reg->dirfd; /* logged */
		goto fail;
	}
	ret = rcd_keeper_open(&reg->keeper, reg->dirfd, dir, log);
	if (ret < 0)
		goto fail; /* logged */
	remove_old_files(reg);
	ret = open_node(reg);
	if (ret < 0)
		goto fail;
	reg->lives_fd = rcd_lives_open(reg->dirfd);
	if (reg->lives_fd < 0) {
		ret = reg->lives_fd;
		rcd_err(log, "cannot open %s/clients: %s%s", dir, strerror(-ret),
			ret == -EPERM ? " (it must be a directory of ours, closed to others)" : "");
		goto fail;
	}
	ret = open_bells(reg);
	if (ret < 0)
		goto fail;
	{
		struct statvfs vfs;

		/* For the default share of one uid (rcd_registry_uid_room). */
		if (fstatvfs(reg->dirfd, &vfs) == 0)
			reg->fs_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	}
	ret = rcd_topic_key_load(reg->dirfd, dir, log, &reg->key);
	if (ret < 0)
		goto fail;
	scan(reg);
	if (reg->key.created && reg->skipped)
		rcd_warn(log, "%s/%s is new, so the %u rings not adopted above may be a previous "
			 "key's: their clients' messages no longer reach new clients of those topics",
			 dir, RCD_TOPIC_KEY_FILE, reg->skipped);
	return 0;
fail:
	rcd_registry_close(reg);
	return ret;
}

void rcd_registry_close(struct rcd_registry *reg)
{
	struct rcd_topic *t, *next;

	for (t = reg->first; t; t = next) {
		next = t->next;
		topic_free(t);
	}
	reg->first = reg->last = NULL;
	reg->ntopics = 0;
	free(reg->buckets);
	reg->buckets = NULL;
	if (reg->bells)
		rc_bells_unmap(reg->bells);
	reg->bells = NULL;
	if (reg->bells_fd >= 0)
		close(reg->bells_fd);
	reg->bells_fd = -1;
	rc_node_unmap(reg->node);
	reg->node = NULL;
	if (reg->node_fd >= 0)
		close(reg->node_fd);
	reg->node_fd = -1;
	if (reg->lives_fd >= 0)
		close(reg->lives_fd);
	reg->lives_fd = -1;
	rcd_keeper_close(&reg->keeper);
	if (reg->lock_fd >= 0)
		close(reg->lock_fd); /* drops the lock */
	reg->lock_fd = -1;
	if (reg->dirfd >= 0)
		close(reg->dirfd);
	reg->dirfd = -1;
}

/* A new read-only open file description of the file we hold at fd. */
static int reopen_ro(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int rcd_topic_ring_fd(struct rcd_registry *reg, const struct rcd_topic *t, bool writable)
{
	int fd;

	if (writable) {
		fd = fcntl(t->ring_fd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	/* A new open file description that cannot be upgraded: whoever
	 * holds it can map the ring PROT_READ only (and the file is 0600
	 * and ours, so it cannot be opened again writable through /proc). */
	return reopen_ro(t->ring_fd);
}

int rcd_topic_ctl_fd(const struct rcd_topic *t)
{
	int fd = fcntl(t->ctl_fd, F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

int rcd_registry_bells_fd(struct rcd_registry *reg)
{
	int fd;

	rcd_registry_bells_heal(reg);
	fd = fcntl(reg->bells_fd, F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

int rcd_registry_node_fd(struct rcd_registry *reg)
{
	/* Read-only: a client can then not map it writable. */
	return reopen_ro(reg->node_fd);
}

uint32_t rcd_registry_next_client_id(struct rcd_registry *reg)
{
	uint32_t id = reg->next_id ? reg->next_id : 1;

	reg->next_id = id + 1 ? id + 1 : 1;
	/* next_client_id is written by the daemon only and read by no
	 * client: relaxed, no pair.  It lives in the node file so ids stay
	 * unique across daemon restarts. */
	rc_store_relaxed(&reg->node->next_client_id, reg->next_id);
	return id;
}

void rcd_registry_check_keeper(struct rcd_registry *reg)
{
	struct rcd_topic *t;

	if (!rcd_keeper_lost(&reg->keeper))
		return;
	/* A new keeper holds nothing yet: give it every file we hold. */
	if (rcd_keeper_put(&reg->keeper, "node", reg->node_fd) < 0 ||
	    rcd_keeper_put(&reg->keeper, "bells", reg->bells_fd) < 0)
		return; /* the next check starts yet another */
	for (t = reg->first; t; t = t->next)
		keep_files(reg, t);
	rcd_info(reg->log, "the new keeper holds the node's files and %zu topics", reg->ntopics);
}
