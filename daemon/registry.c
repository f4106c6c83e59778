/* SPDX-License-Identifier: MIT */
/*
 * The topic registry (see registry.h).  A small chained hash table keyed
 * by the keyed hash of the topic name, plus a list in registration order
 * for the things that visit every topic (stat, the tick).
 *
 * The runtime directory is locked for the daemon's lifetime (rundir.c):
 * two daemons adopting the same rings would hand out the same slots twice.
 * The lock dies with the process, so a crash never leaves it stale.  Only
 * files rundir.c says are the daemon's own are adopted.
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
#include "lives.h"
#include "rundir.h"
#include "sigbus.h"

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

void rcd_registry_unlink_files(struct rcd_registry *reg, const char *file)
{
	char name[32];

	snprintf(name, sizeof(name), "%s.ring", file);
	unlinkat(reg->dirfd, name, 0);
	snprintf(name, sizeof(name), "%s.ctl", file);
	unlinkat(reg->dirfd, name, 0);
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
	rcd_registry_unlink_files(reg, t->file);
	topic_free(t);
}

/* What a topic of capacity cap costs the runtime directory. */
static uint64_t topic_bytes(uint64_t cap)
{
	return RC_RING_HDR_SIZE + cap + RC_CTL_SIZE;
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
	if (len == 0 || len > 255 || memchr(name, '\0', len))
		return -EINVAL; /* the codec checks already; never trust twice removed */
	/* Every topic costs the daemon two fds and the runtime dir a ring, for good. */
	if (reg->ntopics >= reg->cfg->max_topics)
		return -EDQUOT;
	rcd_escape(name, len, esc, sizeof(esc));
	rcd_config_topic(reg->cfg, name, len, &capacity, &tether_ms);
	h = rcd_topic_hash(&reg->key, name, len);
	for (i = 0; i < ID_PROBES; i++) {
		/* An id of a registered topic, or files we did not adopt
		 * (-EEXIST): another topic's, probe the next id. */
		if (id_in_use(reg, h + i))
			continue;
		t = topic_alloc(h + i);
		if (!t)
			return -ENOMEM;
		ret = rc_ring_create(reg->dirfd, t->file, name, len, capacity, t->id, tether_ms,
				     &t->ring_fd, &t->ctl_fd);
		if (ret == 0)
			break;
		if (ret != -EEXIST)
			rcd_registry_unlink_files(reg, t->file); /* nothing else can own this name */
		topic_free(t);
		t = NULL;
		if (ret != -EEXIST) {
			rcd_warn(reg->log, "cannot create the ring of '%s': %s", esc, strerror(-ret));
			return ret;
		}
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
	rcd_info(reg->log, "created topic '%s' (%s, capacity %" PRIu64 ")", esc, t->file,
		 t->ring.cap);
	*out = t;
	return 0;
fail:
	rcd_registry_unlink_files(reg, t->file);
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

/* Is fd, the file's .ext, ours to adopt (rundir.h)?  Logs why not. */
static bool adoptable(struct rcd_registry *reg, const char *file, int fd, const char *ext)
{
	char why[96];

	if (rcd_file_ours(fd, why, sizeof(why)) == 0)
		return true;
	rcd_warn(reg->log, "not adopting %s: %s.%s is %s", file, file, ext, why);
	return false;
}

/* Map and register one ring a previous daemon left.  Skips bad ones. */
static void adopt_one(struct rcd_registry *reg, uint64_t id)
{
	char esc[RCD_ESCAPED_TOPIC_MAX], path[32];
	struct rcd_topic *t = topic_alloc(id), *other;
	const struct rc_ring_meta *meta;
	int ret;

	if (!t) {
		reg->skipped++;
		rcd_err(reg->log, "out of memory adopting %016" PRIx64, id);
		return;
	}
	reg->start_lost = 0;
	snprintf(path, sizeof(path), "%s.ring", t->file);
	t->ring_fd = openat(reg->dirfd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	snprintf(path, sizeof(path), "%s.ctl", t->file);
	t->ctl_fd = openat(reg->dirfd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (t->ring_fd < 0 || t->ctl_fd < 0) {
		rcd_warn(reg->log, "not adopting %s: cannot open %s: %m", t->file,
			 t->ring_fd < 0 ? "the .ring file" : "the .ctl file");
		goto skip;
	}
	/* Before a byte of them is read: files we did not make are no ring of ours. */
	if (!adoptable(reg, t->file, t->ring_fd, "ring") ||
	    !adoptable(reg, t->file, t->ctl_fd, "ctl"))
		goto skip;
	ret = rc_ring_map(&t->ring, t->ring_fd, t->ctl_fd, true);
	if (ret < 0 && reg->start_lost) { /* the header checked was a stand-in's zeros */
		rcd_err(reg->log, "not adopting %s: a page of its files is gone and %s has no room "
			"to restore it", t->file, reg->cfg->runtime_dir);
		goto skip;
	}
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
	if (meta->topic_len == 0 || meta->topic_len > 255 ||
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
	/*
	 * A page that faulted above and could not be restored has a private
	 * stand-in (on_sigbus()): what we checked was partly ours, not the
	 * file's, and clients would fault there too.
	 */
	if (reg->start_lost) {
		rcd_err(reg->log, "not adopting %s (topic '%s'): a page of its files is gone and "
			"%s has no room to restore it", t->file, esc, reg->cfg->runtime_dir);
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
	rcd_info(reg->log, "adopted topic '%s' (%s, capacity %" PRIu64 ")", esc, t->file,
		 t->ring.cap);
	return;
skip:
	reg->skipped++;
	topic_free(t);
}

static int scan(struct rcd_registry *reg)
{
	int fd = fcntl(reg->dirfd, F_DUPFD_CLOEXEC, 0);
	struct dirent *de;
	DIR *dir;

	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(dir))) {
		uint64_t id;

		if (ring_file_id(de->d_name, &id))
			adopt_one(reg, id);
	}
	closedir(dir);
	return 0;
}

/*
 * Create or adopt one of the node's files (bells, node); a corrupt one is
 * replaced.  create: rc_bells_create or rc_node_create.
 */
static int open_node_file(struct rcd_registry *reg, const char *name,
			  int (*create)(int dirfd, const char *name, bool adopt, int *fd), int *fd)
{
	const char *dir = reg->cfg->runtime_dir;
	char why[96];
	int ret;

	/*
	 * Checked by name before the library opens and reads it: the
	 * directory is ours alone (rundir.c), so the name cannot change in
	 * between.  A file that is not ours is replaced, never read.
	 */
	ret = rcd_name_ours(reg->dirfd, name, why, sizeof(why));
	if (ret == -EPERM) {
		reg->skipped++;
		rcd_warn(reg->log, "%s/%s is %s; replacing it", dir, name, why);
		if (unlinkat(reg->dirfd, name, 0) < 0) {
			ret = -errno;
			rcd_err(reg->log, "cannot remove %s/%s: %s", dir, name, strerror(-ret));
			*fd = -1;
			return ret;
		}
	} else if (ret < 0 && ret != -ENOENT) {
		rcd_err(reg->log, "cannot open %s/%s: %s", dir, name, why);
		*fd = -1;
		return ret;
	}
	ret = create(reg->dirfd, name, true, fd);
	if (ret == -EBADMSG || ret == -EPROTO) {
		rcd_warn(reg->log, "%s/%s is %s; replacing it", dir, name,
			 ret == -EPROTO ? "of another format version" : "corrupt");
		unlinkat(reg->dirfd, name, 0);
		ret = create(reg->dirfd, name, false, fd);
	}
	if (ret < 0) {
		rcd_err(reg->log, "cannot create %s/%s: %s", dir, name, strerror(-ret));
		*fd = -1;
	}
	return ret;
}

static int open_bells(struct rcd_registry *reg)
{
	int ret = open_node_file(reg, "bells", rc_bells_create, &reg->bells_fd);

	if (ret == 0 && (ret = rc_bells_map(reg->bells_fd, &reg->bells)) < 0) {
		rcd_err(reg->log, "cannot map %s/bells: %s", reg->cfg->runtime_dir, strerror(-ret));
		reg->bells = NULL;
	}
	return ret;
}

static int open_node(struct rcd_registry *reg)
{
	int ret = open_node_file(reg, "node", rc_node_create, &reg->node_fd);

	if (ret == 0 && (ret = rc_node_map(reg->node_fd, true, &reg->node)) < 0) {
		rcd_err(reg->log, "cannot map %s/node: %s", reg->cfg->runtime_dir, strerror(-ret));
		reg->node = NULL;
	}
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
 * The bells header is the daemon's to write.  If a client zeroed it (by
 * truncating the file, see on_sigbus()), write it again, so that clients
 * can map the file.  The plain reads may fault once, which restores the
 * file's size.
 */
void rcd_registry_bells_heal(struct rcd_registry *reg)
{
	struct rc_bells_hdr *b = reg->bells;

	if (b->magic == RC_BELLS_MAGIC && b->version == RC_FORMAT_VERSION && b->nbells == RC_BELLS)
		return;
	rcd_err(reg->log, "the header of %s/bells was destroyed by a client; rewriting it",
		reg->cfg->runtime_dir);
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
	reg->starting = 1;
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
	ret = rcd_sigbus_install(reg);
	if (ret < 0) {
		rcd_err(log, "cannot install the SIGBUS handler: %s", strerror(-ret));
		goto fail;
	}
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
	ret = scan(reg);
	if (ret < 0) {
		rcd_err(log, "cannot list runtime dir %s: %s", dir, strerror(-ret));
		goto fail;
	}
	if (reg->key.created && reg->skipped)
		rcd_warn(log, "%s/%s is new, so the %u rings not adopted above may be a previous "
			 "key's: their clients' messages no longer reach new clients of those topics",
			 dir, RCD_TOPIC_KEY_FILE, reg->skipped);
	reg->starting = 0; /* every mapping from now on is one the handler knows */
	return 0;
fail:
	rcd_registry_close(reg);
	return ret;
}

void rcd_registry_close(struct rcd_registry *reg)
{
	struct rcd_topic *t, *next;

	rcd_sigbus_uninstall(reg);

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
	if (reg->lock_fd >= 0)
		close(reg->lock_fd); /* drops the lock */
	reg->lock_fd = -1;
	if (reg->dirfd >= 0)
		close(reg->dirfd);
	reg->dirfd = -1;
}

int rcd_topic_ring_fd(struct rcd_registry *reg, const struct rcd_topic *t, bool writable)
{
	char name[32];
	int fd;

	if (writable) {
		fd = fcntl(t->ring_fd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	/* A new open file description that cannot be upgraded: whoever
	 * holds it can map the ring PROT_READ only. */
	snprintf(name, sizeof(name), "%s.ring", t->file);
	fd = openat(reg->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
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
	/* rcd_registry_bells_heal() read the header: a lost first page is flagged by now. */
	if (reg->bells_lost[0] || reg->bells_hdr_lost)
		return -EIO;
	fd = fcntl(reg->bells_fd, F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

int rcd_registry_node_fd(struct rcd_registry *reg)
{
	char path[64];
	int fd;

	/*
	 * A new open file description, read-only: a client can then neither
	 * map it writable nor truncate it.  Through /proc, so it is the very
	 * file we hold, whatever the directory holds now.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", reg->node_fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
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

bool rcd_bell_live(const struct rcd_registry *reg, uint32_t bell)
{
	return bell < RC_BELLS && (reg->bell_live[bell / 8] & (1u << (bell % 8)));
}

static bool bell_dead(const struct rcd_registry *reg, uint32_t bell)
{
	return reg->bell_dead[bell / 8] & (1u << (bell % 8));
}

int rcd_bell_take(struct rcd_registry *reg, uint32_t bell)
{
	if (bell >= RC_BELLS)
		return -EINVAL;
	if (rcd_bell_live(reg, bell) || bell_dead(reg, bell))
		return -EBUSY;
	reg->bell_live[bell / 8] |= (uint8_t)(1u << (bell % 8));
	return 0;
}

int rcd_bell_get(struct rcd_registry *reg)
{
	unsigned i;

	/* Round-robin from the last one handed out: a just-freed bell may
	 * still get a late ring from a publisher that looked it up before
	 * the slot was released, so do not reuse it first. */
	for (i = 0; i < RC_BELLS; i++) {
		uint32_t b = (reg->bell_cursor + i) % RC_BELLS;

		if (!rcd_bell_live(reg, b) && !reg->bell_orphan_refs[b] && !bell_dead(reg, b)) {
			rcd_bell_take(reg, b);
			reg->bell_cursor = b + 1;
			return (int)b;
		}
	}
	return -ENOSPC;
}

void rcd_bell_put(struct rcd_registry *reg, uint32_t bell)
{
	if (bell < RC_BELLS)
		reg->bell_live[bell / 8] &= (uint8_t)~(1u << (bell % 8));
}

void rcd_bell_orphan_ref(struct rcd_registry *reg, uint32_t bell, int delta)
{
	if (bell >= RC_BELLS)
		return;
	if (delta < 0 && reg->bell_orphan_refs[bell])
		reg->bell_orphan_refs[bell]--;
	else if (delta > 0 && reg->bell_orphan_refs[bell] < UINT16_MAX)
		reg->bell_orphan_refs[bell]++;
}
