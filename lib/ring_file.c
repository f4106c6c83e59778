/* SPDX-License-Identifier: MIT */
/*
 * Ring, ctl, bells and node files: creating them as sealed memfds
 * (daemon) and mapping them after validating every header field and the
 * seals (everyone).  A mapper copies the geometry
 * it validated into struct rc_ring and never reads it from shared memory
 * again, so a process that scribbles on the header later cannot move our
 * bounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "ring.h"
#include "ringcast.h"

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Create a file of exactly size bytes, initialized by init(), as a sealed
 * memfd (ring.h, "Sealed files").  It is complete before anyone else can
 * hold it, its pages are reserved with fallocate() (no memory: -ENOSPC
 * here, never SIGBUS later), and once sealed nobody, the daemon included,
 * can shrink or grow it.  Mode 0600: a client holding a read-only
 * descriptor cannot open it again writable through /proc/<pid>/fd.
 */
static int create_file(const char *name, size_t size, void (*init)(void *map, void *arg),
		       void *arg, int *out_fd)
{
	char label[64];
	void *map;
	int fd, ret;

	snprintf(label, sizeof(label), "ringcast:%s", name);
	fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) < 0 || fallocate(fd, 0, 0, (off_t)size) < 0) {
		ret = -errno;
		goto fail;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	init(map, arg);
	munmap(map, size);
	if (fcntl(fd, F_ADD_SEALS, RC_SEALS) < 0) {
		ret = -errno;
		goto fail;
	}
	*out_fd = fd;
	return 0;
fail:
	close(fd);
	return ret;
}

int rc_file_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0)
		return errno == EINVAL ? -EPERM : -errno; /* not a memfd at all */
	return (seals & RC_SEALS) == RC_SEALS ? 0 : -EPERM;
}

struct ring_init {
	const char *topic;
	size_t topic_len;
	uint64_t capacity, topic_id;
	uint32_t tether_timeout_ms;
};

static void init_ring(void *map, void *arg)
{
	struct ring_init *ri = arg;
	struct rc_ring_hdr *h = map;
	uint32_t salt;

	if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != sizeof(salt))
		salt = (uint32_t)realtime_ns() * 2654435761u;
	h->meta.magic = RC_RING_MAGIC;
	h->meta.version = RC_FORMAT_VERSION;
	h->meta.hdr_size = RC_RING_HDR_SIZE;
	h->meta.capacity = ri->capacity;
	h->meta.rec_hdr_size = sizeof(struct rc_rec);
	h->meta.pub_slots = RC_PUB_SLOTS;
	h->meta.salt = salt;
	h->meta.topic_len = (uint32_t)ri->topic_len;
	h->meta.topic_id = ri->topic_id;
	h->meta.created_ns = realtime_ns();
	h->meta.max_payload = ri->capacity / 2 - sizeof(struct rc_rec);
	h->meta.tether_timeout_ms = ri->tether_timeout_ms;
	memcpy(h->meta.topic, ri->topic, ri->topic_len);
	/*
	 * Sequences start at 1 so 0 can mean "none yet".  The data area is
	 * zero, and a zero commit word reads as "not committed" whatever the
	 * stamp, because a committed record is never shorter than 8 bytes.
	 */
	atomic_init(&h->tail.pos, 0);
	atomic_init(&h->tail.seq, 1);
}

struct ctl_init {
	uint64_t topic_id;
};

static void init_ctl(void *map, void *arg)
{
	struct rc_ctl_hdr *c = map;

	c->magic = RC_CTL_MAGIC;
	c->version = RC_FORMAT_VERSION;
	c->sub_slots = RC_SUB_SLOTS;
	c->topic_id = ((struct ctl_init *)arg)->topic_id;
}

static bool valid_capacity(uint64_t cap)
{
	return cap >= RC_CAPACITY_MIN && cap <= RC_CAPACITY_MAX && (cap & (cap - 1)) == 0;
}

int rc_ring_create(const char *name, const char *topic, size_t topic_len,
		   uint64_t capacity, uint64_t topic_id, uint32_t tether_timeout_ms,
		   int *ring_fd, int *ctl_fd)
{
	struct ring_init ri = { topic, topic_len, capacity, topic_id, tether_timeout_ms };
	struct ctl_init ci = { topic_id };
	char ring_name[48], ctl_name[48];
	int rfd, cfd, ret;

	if (!valid_capacity(capacity) || topic_len < 1 || topic_len > RINGCAST_TOPIC_MAX ||
	    memchr(topic, 0, topic_len))
		return -EINVAL;
	if (snprintf(ring_name, sizeof(ring_name), "%s.ring", name) >= (int)sizeof(ring_name) ||
	    snprintf(ctl_name, sizeof(ctl_name), "%s.ctl", name) >= (int)sizeof(ctl_name))
		return -ENAMETOOLONG;
	ret = create_file(ctl_name, RC_CTL_SIZE, init_ctl, &ci, &cfd);
	if (ret < 0)
		return ret;
	ret = create_file(ring_name, RC_RING_HDR_SIZE + capacity, init_ring, &ri, &rfd);
	if (ret < 0) {
		close(cfd);
		return ret;
	}
	*ring_fd = rfd;
	*ctl_fd = cfd;
	return 0;
}

static int map_fd(int fd, size_t *len, int prot, void **out)
{
	struct stat st;
	void *map;

	if (fstat(fd, &st) < 0)
		return -errno;
	/* Unsealed, it could shrink under us: SIGBUS at the next access. */
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || rc_file_sealed(fd) < 0)
		return -EBADMSG;
	map = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	*len = (size_t)st.st_size;
	*out = map;
	return 0;
}

static int check_ring_meta(const struct rc_ring_meta *m, size_t file_len)
{
	if (m->magic != RC_RING_MAGIC)
		return -EBADMSG;
	if (m->version != RC_FORMAT_VERSION)
		return -EPROTO;
	if (m->hdr_size != RC_RING_HDR_SIZE || m->rec_hdr_size != sizeof(struct rc_rec) ||
	    m->pub_slots != RC_PUB_SLOTS || !valid_capacity(m->capacity) ||
	    file_len != RC_RING_HDR_SIZE + m->capacity ||
	    m->max_payload != m->capacity / 2 - sizeof(struct rc_rec) ||
	    m->topic_len < 1 || m->topic_len > RINGCAST_TOPIC_MAX ||
	    memchr(m->topic, 0, m->topic_len))
		return -EBADMSG;
	return 0;
}

/*
 * Copy n bytes that another process may be writing into private memory,
 * once.  The compiler barrier keeps it from reading the shared bytes again
 * in place of the copy (it must assume they changed), so what was checked
 * is what is used: a publisher flipping the capacity between our check and
 * our use once crashed new subscribers.
 */
static void copy_once(void *dst, const void *shared, size_t n)
{
	memcpy(dst, shared, n);
	__asm__ __volatile__("" ::: "memory");
}

int rc_ring_map(struct rc_ring *r, int ring_fd, int ctl_fd, bool writable)
{
	struct rc_ring_meta meta;
	struct rc_ctl_hdr ctl_meta;
	size_t ring_len, ctl_len;
	void *ring, *ctl;
	int ret;

	memset(r, 0, sizeof(*r));
	r->pub_slot = r->sub_slot = -1;
	ret = map_fd(ring_fd, &ring_len, PROT_READ | (writable ? PROT_WRITE : 0), &ring);
	if (ret < 0)
		return ret;
	if (ring_len < RC_RING_HDR_SIZE + RC_CAPACITY_MIN) {
		ret = -EBADMSG;
		goto fail_ring;
	}
	/* Everything below reads the copy: publishers can write the header. */
	copy_once(&meta, ring, sizeof(meta));
	ret = check_ring_meta(&meta, ring_len);
	if (ret < 0)
		goto fail_ring;
	ret = map_fd(ctl_fd, &ctl_len, PROT_READ | PROT_WRITE, &ctl);
	if (ret < 0)
		goto fail_ring;
	if (ctl_len != RC_CTL_SIZE) {
		ret = -EBADMSG;
		goto fail_ctl;
	}
	copy_once(&ctl_meta, ctl, offsetof(struct rc_ctl_hdr, sleepers));
	if (ctl_meta.magic != RC_CTL_MAGIC || ctl_meta.sub_slots != RC_SUB_SLOTS ||
	    ctl_meta.topic_id != meta.topic_id) {
		ret = ctl_meta.version != RC_FORMAT_VERSION ? -EPROTO : -EBADMSG;
		goto fail_ctl;
	}
	r->hdr = ring;
	r->ctl = ctl;
	r->ring_len = ring_len;
	r->data = (uint8_t *)ring + RC_RING_HDR_SIZE;
	r->cap = meta.capacity;
	r->mask = r->cap - 1;
	r->max_payload = meta.max_payload;
	r->salt = meta.salt;
	r->topic_id = meta.topic_id;
	r->tether_timeout_ms = meta.tether_timeout_ms;
	r->writable = writable;
	return 0;
fail_ctl:
	munmap(ctl, ctl_len);
fail_ring:
	munmap(ring, ring_len);
	memset(r, 0, sizeof(*r));
	r->pub_slot = r->sub_slot = -1;
	return ret;
}

void rc_ring_unmap(struct rc_ring *r)
{
	if (r->hdr)
		munmap(r->hdr, r->ring_len);
	if (r->ctl)
		munmap(r->ctl, RC_CTL_SIZE);
	free(r->seen);
	memset(r, 0, sizeof(*r));
	r->pub_slot = r->sub_slot = -1;
}

static void init_bells(void *map, void *arg)
{
	struct rc_bells_hdr *b = map;

	b->magic = RC_BELLS_MAGIC;
	b->version = RC_FORMAT_VERSION;
	b->nbells = RC_BELLS;
}

static void init_node(void *map, void *arg)
{
	struct rc_node_hdr *n = map;

	n->magic = RC_NODE_MAGIC;
	n->version = RC_FORMAT_VERSION;
	atomic_init(&n->next_client_id, 1);
}

/* Map fd whole and check it is a file of size bytes whose header says magic. */
static int map_checked(int fd, size_t size, uint64_t magic, int prot, void **out)
{
	struct { uint64_t magic; uint32_t version; } h;
	size_t len = 0;
	void *map = NULL;
	int ret;

	ret = map_fd(fd, &len, prot, &map);
	if (ret < 0)
		return ret;
	copy_once(&h, map, sizeof(h));
	if (len != size || h.magic != magic)
		ret = -EBADMSG;
	else if (h.version != RC_FORMAT_VERSION)
		ret = -EPROTO;
	if (ret < 0) {
		munmap(map, len);
		return ret;
	}
	*out = map;
	return 0;
}

int rc_bells_create(int *fd)
{
	return create_file("bells", RC_BELLS_SIZE, init_bells, NULL, fd);
}

int rc_bells_map(int fd, struct rc_bells_hdr **out)
{
	int ret = map_checked(fd, RC_BELLS_SIZE, RC_BELLS_MAGIC, PROT_READ | PROT_WRITE,
			      (void **)out);
	struct rc_bells_hdr *b;

	if (ret < 0)
		return ret;
	b = *out;
	if (b->nbells != RC_BELLS) {
		rc_bells_unmap(b);
		return -EBADMSG;
	}
	return 0;
}

void rc_bells_unmap(struct rc_bells_hdr *b)
{
	if (b)
		munmap(b, RC_BELLS_SIZE);
}

int rc_node_create(int *fd)
{
	return create_file("node", RC_NODE_SIZE, init_node, NULL, fd);
}

int rc_node_map(int fd, bool writable, struct rc_node_hdr **out)
{
	return map_checked(fd, RC_NODE_SIZE, RC_NODE_MAGIC,
			   PROT_READ | (writable ? PROT_WRITE : 0), (void **)out);
}

void rc_node_unmap(const struct rc_node_hdr *n)
{
	if (n)
		munmap((void *)n, RC_NODE_SIZE);
}
