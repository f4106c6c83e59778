/* SPDX-License-Identifier: MIT */
/*
 * The loader of ringcast_trace.bpf.c (API in tracer.h).
 *
 * Life cycle, as in bcc's libbpf-tools: open the skeleton, set rodata
 * (the topic filter), load, attach, pin; rct_close() undoes it in
 * reverse.  Every failure in rct_open() goes through rct_close(), so a
 * failed open leaves nothing loaded, attached or pinned.
 *
 * Which processes are traced.  A USDT probe is attached to a file (an
 * inode), not to a process: attaching to libringcast.so traces every
 * process that maps it, now or later; attaching to a program linked
 * with libringcast.a (ringcast, ringcastd, an application) traces every
 * process running it.  So the loader attaches to each distinct file
 * that carries "ringcast" probes among: the files it is given, this
 * program, the libringcast.so beside it, and, with discover, every file
 * mapped by a running process.  A program started later from a file no
 * running process had mapped is not covered: give it with --binary.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ringcast_trace.h"
#include "ringcast_trace.skel.h"
#include "trace_helpers.h"
#include "tracer.h"

#define PROVIDER "ringcast"
#define NPROBES 2
#define NMAPS 4

static const char *const probe_names[NPROBES] = { "publish", "deliver" };

struct rct_file {
	char *path;
	dev_t dev;
	ino_t ino;
	bool probes;             /* carries ringcast probes (only those are kept) */
};

struct rct {
	struct ringcast_trace_bpf *skel;
	struct bpf_link **links;
	size_t nlinks, links_cap;
	/* every file looked at, with or without probes, so each is read once */
	struct rct_file *files;
	size_t nfiles, files_cap;
	char pin_dir[PATH_MAX];  /* "" when not pinned */
	bool dir_created;
	bool pinned[NMAPS];
	int pid;
	FILE *warn;
};

static void warnf(struct rct *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warnf(struct rct *t, const char *fmt, ...)
{
	va_list ap;

	if (!t->warn)
		return;
	va_start(ap, fmt);
	vfprintf(t->warn, fmt, ap);
	va_end(ap);
	fputc('\n', t->warn);
}

static struct bpf_map *map_at(struct rct *t, int i)
{
	struct bpf_map *maps[NMAPS] = { t->skel->maps.latency, t->skel->maps.deliveries,
					t->skel->maps.publishes, t->skel->maps.lag };

	return maps[i];
}

/* ---- finding the files ---- */

/*
 * Remember path as a file to attach to if it carries ringcast probes.
 * Returns 1 if it is (now or already) one, 0 if not, negative errno if
 * it cannot be looked at.
 */
static int add_file(struct rct *t, const char *path)
{
	struct rct_file *f;
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	for (size_t i = 0; i < t->nfiles; i++)
		if (t->files[i].dev == st.st_dev && t->files[i].ino == st.st_ino)
			return t->files[i].probes;
	if (t->nfiles == t->files_cap) {
		size_t cap = t->files_cap ? t->files_cap * 2 : 32;
		struct rct_file *n = realloc(t->files, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->files = n;
		t->files_cap = cap;
	}
	f = &t->files[t->nfiles];
	f->path = strdup(path);
	if (!f->path)
		return -ENOMEM;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->probes = rct_has_usdt(path, PROVIDER, NULL);
	t->nfiles++;
	return f->probes;
}

/* Every file pid has mapped (its program, its libraries). */
static void add_process_files(struct rct *t, const char *pid)
{
	char maps[64], line[PATH_MAX + 128];
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%s/maps", pid);
	f = fopen(maps, "re");
	if (!f)
		return; /* gone, or a kernel thread */
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/'), *nl;
		unsigned long ino = 0;
		char alt[PATH_MAX + 64];
		struct stat st;

		if (!path || sscanf(line, "%*s %*s %*s %*s %lu", &ino) != 1 || !ino)
			continue;
		nl = strchr(path, '\n');
		if (nl)
			*nl = '\0';
		if (strstr(path, " (deleted)"))
			continue;
		/*
		 * In another mount namespace (a container) the path names
		 * another file, or none, here; its /proc/PID/root does not.
		 */
		if (stat(path, &st) < 0 || st.st_ino != ino) {
			snprintf(alt, sizeof(alt), "/proc/%s/root%s", pid, path);
			path = alt;
		}
		add_file(t, path);
	}
	fclose(f);
}

static void add_running(struct rct *t)
{
	struct dirent *de;
	DIR *d;

	if (t->pid) {
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", t->pid);
		add_process_files(t, pid);
		return;
	}
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			add_process_files(t, de->d_name);
	closedir(d);
}

/* This program, and the shared library beside it or installed beside it. */
static void add_own(struct rct *t)
{
	static const char *const libs[] = { "libringcast.so", "../lib/libringcast.so.0",
					    "../lib/libringcast.so" };
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return;
	exe[n] = '\0';
	add_file(t, exe);
	slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0';
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", exe, libs[i]);
		if (access(path, R_OK) == 0)
			add_file(t, path);
	}
}

/* ---- attaching ---- */

struct probe_set {
	bool has[NPROBES];
};

static int note_fn(const struct rct_usdt_note *n, void *ctx)
{
	struct probe_set *ps = ctx;

	if (strcmp(n->provider, PROVIDER))
		return 0;
	for (int i = 0; i < NPROBES; i++)
		if (!strcmp(n->name, probe_names[i]))
			ps->has[i] = true;
	return 0;
}

static int push_link(struct rct *t, struct bpf_link *l)
{
	if (t->nlinks == t->links_cap) {
		size_t cap = t->links_cap ? t->links_cap * 2 : 16;
		struct bpf_link **n = realloc(t->links, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->links = n;
		t->links_cap = cap;
	}
	t->links[t->nlinks++] = l;
	return 0;
}

/* Attach both programs to file f's probes.  The number of links made, or negative errno. */
static int attach_file(struct rct *t, struct rct_file *f)
{
	struct bpf_program *progs[NPROBES] = { t->skel->progs.ringcast_publish,
					       t->skel->progs.ringcast_deliver };
	struct probe_set ps = { 0 };
	int made = 0, err = 0;

	rct_usdt_notes(f->path, note_fn, &ps);
	for (int i = 0; i < NPROBES; i++) {
		struct bpf_link *l;

		/* A program that only subscribes has no publish probe: fine. */
		if (!ps.has[i])
			continue;
		l = bpf_program__attach_usdt(progs[i], t->pid ? t->pid : -1, f->path, PROVIDER,
					     probe_names[i], NULL);
		if (!l) {
			err = -errno;
			warnf(t, "cannot attach to %s:%s:%s: %s", f->path, PROVIDER, probe_names[i],
			      strerror(-err));
			continue;
		}
		if (push_link(t, l) < 0) {
			bpf_link__destroy(l);
			return -ENOMEM;
		}
		made++;
	}
	return made ? made : err;
}

/* ---- pinning ---- */

static void pin_path(const struct rct *t, int i, char *buf, size_t len)
{
	static const char *const names[NMAPS] = { RC_TRACE_MAP_LATENCY, RC_TRACE_MAP_DELIVERIES,
						  RC_TRACE_MAP_PUBLISHES, RC_TRACE_MAP_LAG };

	snprintf(buf, len, "%s/%s", t->pin_dir, names[i]);
}

static int pin_maps(struct rct *t, char *why, size_t len)
{
	char path[PATH_MAX + 32];
	int ret;

	for (int i = 0; i < NMAPS; i++) {
		pin_path(t, i, path, sizeof(path));
		if (access(path, F_OK) == 0) {
			/* Left by `ringcast trace --keep`, or another trace's: ours is the live one now. */
			warnf(t, "replacing %s (left by --keep or pinned by another trace)", path);
			if (unlink(path) < 0) {
				ret = -errno;
				rct_say(why, len, "cannot remove the old pin %s: %s", path, strerror(-ret));
				return ret;
			}
		}
		ret = bpf_map__pin(map_at(t, i), path);
		if (ret < 0) {
			rct_say(why, len, "cannot pin the %s map at %s: %s", bpf_map__name(map_at(t, i)),
			    path, strerror(-ret));
			return ret;
		}
		t->pinned[i] = true;
	}
	return 0;
}

static uint32_t map_id(int fd)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

/* Remove our pins, but not one another tracer has put in their place since. */
static void unpin_maps(struct rct *t)
{
	char path[PATH_MAX + 32];

	for (int i = 0; i < NMAPS; i++) {
		int fd;

		if (!t->pinned[i])
			continue;
		pin_path(t, i, path, sizeof(path));
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			if (map_id(fd) == map_id(bpf_map__fd(map_at(t, i))))
				unlink(path);
			close(fd);
		}
		t->pinned[i] = false;
	}
	if (t->dir_created)
		rmdir(t->pin_dir); /* fails, rightly, if someone else's pins are in it */
}

/* ---- open and close ---- */

int rct_open(struct rct **out, const struct rct_opts *o, char *why, size_t len)
{
	struct rct *t;
	size_t topic_len = 0, nattached = 0;
	int ret;

	*out = NULL;
	if (!o || o->sz < sizeof(struct rct_opts)) {
		rct_say(why, len, "rct_open: options of an unknown size");
		return -EINVAL;
	}
	if (o->topic) {
		topic_len = strlen(o->topic);
		if (topic_len == 0 || topic_len >= RC_TRACE_TOPIC_LEN) {
			rct_say(why, len, "a topic is 1 to 255 bytes");
			return -EINVAL;
		}
	}
	ret = rct_check_support(why, len);
	if (ret < 0)
		return ret;
	t = calloc(1, sizeof(*t));
	if (!t) {
		rct_say(why, len, "out of memory");
		return -ENOMEM;
	}
	t->pid = o->pid;
	t->warn = o->warn;

	t->skel = ringcast_trace_bpf__open();
	if (!t->skel) {
		ret = -errno;
		rct_say(why, len, "cannot open the BPF object: %s", strerror(-ret));
		goto fail;
	}
	if (o->topic) {
		t->skel->rodata->targ_topic_set = true;
		memcpy(t->skel->rodata->targ_topic.topic, o->topic, topic_len);
	}
	ret = ringcast_trace_bpf__load(t->skel);
	if (ret < 0) {
		rct_say(why, len, "cannot load the BPF program: %s (run with --verbose for the "
		    "verifier's log)", strerror(-ret));
		goto fail;
	}

	for (size_t i = 0; i < o->npaths; i++) {
		ret = add_file(t, o->paths[i]);
		if (ret <= 0) {
			rct_say(why, len, "%s: %s", o->paths[i],
			    ret ? strerror(-ret) : "no ringcast USDT probes in it (not built with libringcast?)");
			ret = ret ? ret : -ENOENT;
			goto fail;
		}
	}
	if (o->discover) {
		/* With a pid, only what that process maps: our own files may be none of its. */
		if (!t->pid)
			add_own(t);
		add_running(t);
	}
	for (size_t i = 0; i < t->nfiles; i++) {
		if (!t->files[i].probes)
			continue;
		ret = attach_file(t, &t->files[i]);
		if (ret == -ENOMEM) {
			rct_say(why, len, "out of memory");
			goto fail;
		}
		if (ret > 0)
			nattached++;
		else
			t->files[i].probes = false; /* not listed as traced */
	}
	if (!nattached) {
		ret = -ENOENT;
		if (t->pid)
			rct_say(why, len, "process %d maps no file with ringcast probes that could be "
			    "attached (is it a libringcast client?)", t->pid);
		else
			rct_say(why, len, "found no file with ringcast probes to attach to; name one "
			    "with --binary PATH");
		goto fail;
	}

	if (!o->no_pin) {
		snprintf(t->pin_dir, sizeof(t->pin_dir), "%s", o->pin_dir ? o->pin_dir : RCT_PIN_DIR_DEFAULT);
		ret = rct_prepare_pin_dir(t->pin_dir, &t->dir_created, why, len);
		if (ret == 0)
			ret = pin_maps(t, why, len);
		if (ret < 0)
			goto fail;
	}
	*out = t;
	return 0;
fail:
	rct_close(t, false);
	return ret;
}

size_t rct_nfiles(const struct rct *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nfiles; i++)
		n += t->files[i].probes;
	return n;
}

const char *rct_file(const struct rct *t, size_t k)
{
	for (size_t i = 0; i < t->nfiles; i++)
		if (t->files[i].probes && k-- == 0)
			return t->files[i].path;
	return NULL;
}

const char *rct_pin_dir(const struct rct *t)
{
	return t->pin_dir;
}

void rct_detach(struct rct *t)
{
	for (size_t i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);
	t->nlinks = 0;
}

void rct_close(struct rct *t, bool keep_pins)
{
	if (!t)
		return;
	/* Detach first: no event lands in a map we are about to let go. */
	rct_detach(t);
	free(t->links);
	if (t->skel && !keep_pins)
		unpin_maps(t);
	/* Pinned maps outlive their last fd: that is what --keep is for. */
	ringcast_trace_bpf__destroy(t->skel);
	for (size_t i = 0; i < t->nfiles; i++)
		free(t->files[i].path);
	free(t->files);
	free(t);
}

/* ---- reading ---- */

static struct rct_topic_stat *topic_slot(struct rct_snapshot *s, size_t *cap, const char *topic)
{
	struct rct_topic_stat *ts;

	for (size_t i = 0; i < s->ntopics; i++)
		if (!strncmp(s->topics[i].topic, topic, RC_TRACE_TOPIC_LEN))
			return &s->topics[i];
	if (s->ntopics == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		ts = realloc(s->topics, ncap * sizeof(*ts));
		if (!ts)
			return NULL;
		s->topics = ts;
		*cap = ncap;
	}
	ts = &s->topics[s->ntopics++];
	memset(ts, 0, sizeof(*ts));
	memcpy(ts->topic, topic, RC_TRACE_TOPIC_LEN - 1);
	return ts;
}

static int cmp_topic(const void *a, const void *b)
{
	return strcmp(((const struct rct_topic_stat *)a)->topic,
		      ((const struct rct_topic_stat *)b)->topic);
}

static int cmp_sub(const void *a, const void *b)
{
	const struct rct_sub_stat *x = a, *y = b;
	int c = strcmp(x->key.topic, y->key.topic);

	if (c)
		return c;
	if (x->key.client_id != y->key.client_id)
		return x->key.client_id < y->key.client_id ? -1 : 1;
	return x->key.pid < y->key.pid ? -1 : x->key.pid > y->key.pid;
}

/*
 * Walk a topic-keyed map, handing each (key, value) to fn.  Keys are
 * never deleted while we trace, so get_next_key cannot lose its place.
 */
static int walk_topics(struct bpf_map *map, void *value, size_t vsize,
		       int (*fn)(struct rct_snapshot *s, size_t *cap, const char *topic,
				 const void *value),
		       struct rct_snapshot *s, size_t *cap)
{
	struct rc_trace_topic key, next;
	const void *prev = NULL;

	while (bpf_map__get_next_key(map, prev, &next, sizeof(next)) == 0) {
		int ret;

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(map, &key, sizeof(key), value, vsize, 0) < 0)
			continue; /* cannot happen without deletes; skip rather than fail */
		key.topic[RC_TRACE_TOPIC_LEN - 1] = '\0';
		ret = fn(s, cap, key.topic, value);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int take_hist(struct rct_snapshot *s, size_t *cap, const char *topic, const void *v)
{
	struct rct_topic_stat *ts = topic_slot(s, cap, topic);

	if (!ts)
		return -ENOMEM;
	memcpy(ts->slots, ((const struct rc_trace_hist *)v)->slots, sizeof(ts->slots));
	return 0;
}

static int take_count(struct rct_snapshot *s, size_t *cap, const char *topic, const void *v)
{
	struct rct_topic_stat *ts = topic_slot(s, cap, topic);

	if (!ts)
		return -ENOMEM;
	ts->deliveries = *(const __u64 *)v;
	return 0;
}

static int take_pub(struct rct_snapshot *s, size_t *cap, const char *topic, const void *v)
{
	struct rct_topic_stat *ts = topic_slot(s, cap, topic);

	if (!ts)
		return -ENOMEM;
	ts->pub = *(const struct rc_trace_pub *)v;
	ts->topic_id = ts->pub.topic_id;
	return 0;
}

static int read_subs(struct rct *t, struct rct_snapshot *s)
{
	struct bpf_map *map = t->skel->maps.lag;
	struct rc_trace_sub_key key, next;
	const void *prev = NULL;
	size_t cap = 0;

	while (bpf_map__get_next_key(map, prev, &next, sizeof(next)) == 0) {
		struct rct_sub_stat *ss;

		key = next;
		prev = &key;
		if (s->nsubs == cap) {
			size_t ncap = cap ? cap * 2 : 16;

			ss = realloc(s->subs, ncap * sizeof(*ss));
			if (!ss)
				return -ENOMEM;
			s->subs = ss;
			cap = ncap;
		}
		ss = &s->subs[s->nsubs];
		if (bpf_map__lookup_elem(map, &key, sizeof(key), &ss->lag, sizeof(ss->lag), 0) < 0)
			continue;
		ss->key = key;
		ss->key.topic[RC_TRACE_TOPIC_LEN - 1] = '\0';
		s->nsubs++;
	}
	return 0;
}

int rct_read(struct rct *t, struct rct_snapshot *s)
{
	union {
		struct rc_trace_hist h;
		struct rc_trace_pub p;
		__u64 n;
	} v;
	size_t cap = 0;
	int ret;

	memset(s, 0, sizeof(*s));
	ret = walk_topics(t->skel->maps.latency, &v.h, sizeof(v.h), take_hist, s, &cap);
	if (!ret)
		ret = walk_topics(t->skel->maps.deliveries, &v.n, sizeof(v.n), take_count, s, &cap);
	if (!ret)
		ret = walk_topics(t->skel->maps.publishes, &v.p, sizeof(v.p), take_pub, s, &cap);
	if (!ret)
		ret = read_subs(t, s);
	if (ret < 0) {
		rct_snapshot_free(s);
		return ret;
	}
	s->dropped = t->skel->bss->dropped;
	/* No traced publisher: a subscriber's entry knows the id too. */
	for (size_t i = 0; i < s->nsubs; i++)
		for (size_t j = 0; j < s->ntopics; j++)
			if (!s->topics[j].topic_id && !strcmp(s->topics[j].topic, s->subs[i].key.topic))
				s->topics[j].topic_id = s->subs[i].lag.topic_id;
	if (s->ntopics)
		qsort(s->topics, s->ntopics, sizeof(*s->topics), cmp_topic);
	if (s->nsubs)
		qsort(s->subs, s->nsubs, sizeof(*s->subs), cmp_sub);
	return 0;
}

void rct_snapshot_free(struct rct_snapshot *s)
{
	free(s->topics);
	free(s->subs);
	memset(s, 0, sizeof(*s));
}

const struct rct_topic_stat *rct_snapshot_topic(const struct rct_snapshot *s, const char *topic)
{
	for (size_t i = 0; i < s->ntopics; i++)
		if (!strcmp(s->topics[i].topic, topic))
			return &s->topics[i];
	return NULL;
}
