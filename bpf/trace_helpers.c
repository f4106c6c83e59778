/* SPDX-License-Identifier: MIT */
/*
 * Helpers every ringcast BPF tool shares (trace_helpers.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "trace_helpers.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#define NT_STAPSDT 3
#define CAP_SYS_ADMIN_BIT 21
#define CAP_PERFMON_BIT 38
#define CAP_BPF_BIT 39

/* ---- libbpf's messages ---- */

static bool libbpf_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void rct_libbpf_log(bool verbose)
{
	libbpf_verbose = verbose;
	libbpf_set_print(libbpf_print);
}

/* ---- what is missing ---- */

void rct_say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* The effective capability set, from /proc/self/status (no libcap needed). */
static uint64_t effective_caps(void)
{
	char line[256];
	uint64_t caps = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "CapEff:", 7)) {
			caps = strtoull(line + 7, NULL, 16);
			break;
		}
	fclose(f);
	return caps;
}

int rct_check_support(char *why, size_t len)
{
	uint64_t caps = effective_caps();
	bool admin = caps & (1ull << CAP_SYS_ADMIN_BIT);
	bool bpf = caps & (1ull << CAP_BPF_BIT), perfmon = caps & (1ull << CAP_PERFMON_BIT);
	int ret;

	/* Loading tracing programs needs CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN before 5.8). */
	if (!admin && !(bpf && perfmon)) {
		rct_say(why, len, "needs root, or CAP_BPF and CAP_PERFMON (running as uid %d without %s%s%s)",
		    (int)geteuid(), bpf ? "" : "CAP_BPF", !bpf && !perfmon ? " and " : "",
		    perfmon ? "" : "CAP_PERFMON");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		rct_say(why, len, "the kernel has no BTF: /sys/kernel/btf/vmlinux is missing "
		    "(build it with CONFIG_DEBUG_INFO_BTF=y); the CO-RE program needs it");
		return -EOPNOTSUPP;
	}
	if (access("/sys/bus/event_source/devices/uprobe/type", R_OK) < 0) {
		rct_say(why, len, "the kernel has no uprobes: /sys/bus/event_source/devices/uprobe "
		    "is missing (CONFIG_UPROBE_EVENTS=y is needed for USDT probes)");
		return -EOPNOTSUPP;
	}
	if (access("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset", R_OK) < 0) {
		rct_say(why, len, "the kernel's uprobes cannot raise USDT semaphores (no "
		    "uprobe ref_ctr_offset: Linux 4.20 or later is needed)");
		return -EOPNOTSUPP;
	}
	ret = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, NULL);
	if (ret <= 0) {
		if (ret == -EPERM || ret == -EACCES)
			rct_say(why, len, "the bpf() system call is not permitted here (%s): a seccomp "
			    "filter, a container or an LSM forbids it", strerror(-ret));
		else
			rct_say(why, len, "the kernel cannot load kprobe/uprobe BPF programs (%s): "
			    "CONFIG_BPF_SYSCALL and CONFIG_BPF_EVENTS are needed",
			    ret ? strerror(-ret) : "not supported");
		return ret ? ret : -EOPNOTSUPP;
	}
	return 0;
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && (uint64_t)st.f_type == BPF_FS_MAGIC;
}

int rct_prepare_pin_dir(const char *dir, bool *created, char *why, size_t len)
{
	*created = false;
	if (strlen(dir) >= PATH_MAX - 32) { /* room for "/deliveries" */
		rct_say(why, len, "pin directory name too long");
		return -ENAMETOOLONG;
	}
	/* The default lives under /sys/fs/bpf, which may not be mounted yet. */
	if (!strncmp(dir, "/sys/fs/bpf/", 12) && !on_bpffs("/sys/fs/bpf") &&
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0) {
		int err = -errno;

		rct_say(why, len, "no BPF filesystem on /sys/fs/bpf and cannot mount one: %s",
		    strerror(-err));
		return err;
	}
	if (mkdir(dir, 0700) == 0) {
		*created = true;
	} else if (errno != EEXIST) {
		int err = -errno;

		rct_say(why, len, "cannot create the pin directory %s: %s", dir, strerror(-err));
		return err;
	}
	if (!on_bpffs(dir)) {
		if (*created)
			rmdir(dir);
		*created = false;
		rct_say(why, len, "%s is not on a BPF filesystem: pick a --pin-dir under /sys/fs/bpf "
		    "(or mount one there first: mount -t bpf bpf %s)", dir, dir);
		return -EINVAL;
	}
	return 0;
}

/* ---- USDT notes ---- */

/* The note's descriptor: three addresses, then provider, name and args, NUL-terminated. */
static int parse_note(const char *desc, size_t len, struct rct_usdt_note *n)
{
	const char *p = desc + 24, *end = desc + len;
	const char *fields[3];

	if (len < 24 + 3)
		return -EBADMSG;
	memcpy(&n->pc, desc, 8);
	memcpy(&n->base, desc + 8, 8);
	memcpy(&n->semaphore, desc + 16, 8);
	for (int i = 0; i < 3; i++) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));

		if (!nul)
			return -EBADMSG;
		fields[i] = p;
		p = nul + 1;
	}
	n->provider = fields[0];
	n->name = fields[1];
	n->args = fields[2];
	return 0;
}

int rct_usdt_notes(const char *path, int (*fn)(const struct rct_usdt_note *n, void *ctx),
		   void *ctx)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int fd, ret = 0, count = 0;
	Elf *elf;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || gelf_getclass(elf) != ELFCLASS64 ||
	    elf_getshdrstrndx(elf, &shstrndx)) {
		ret = -ENOEXEC;
		goto out;
	}
	while (!ret && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		const char *sname;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		sname = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!sname || strcmp(sname, ".note.stapsdt"))
			continue;
		data = elf_getdata(scn, NULL);
		while (data && !ret && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off))) {
			struct rct_usdt_note n;

			if (nh.n_type != NT_STAPSDT || nh.n_namesz != 8 ||
			    memcmp((char *)data->d_buf + name_off, "stapsdt", 8))
				continue;
			if (parse_note((char *)data->d_buf + desc_off, nh.n_descsz, &n))
				continue;
			count++;
			if (fn)
				ret = fn(&n, ctx);
		}
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return ret ? ret : count;
}

struct has_ctx {
	const char *provider, *name;
	bool found;
};

static int has_fn(const struct rct_usdt_note *n, void *ctx)
{
	struct has_ctx *c = ctx;

	c->found = !strcmp(n->provider, c->provider) && (!c->name || !strcmp(n->name, c->name));
	return c->found;
}

bool rct_has_usdt(const char *path, const char *provider, const char *name)
{
	struct has_ctx c = { provider, name, false };

	rct_usdt_notes(path, has_fn, &c);
	return c.found;
}

/* ---- log2 histograms ---- */

unsigned rct_slot_of(uint64_t v)
{
	return v > 1 ? 63u - (unsigned)__builtin_clzll(v) : 0;
}

uint64_t rct_hist_total(const uint64_t *slots, unsigned nslots)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < nslots; i++)
		total += slots[i];
	return total;
}

int rct_hist_quantile_slot(const uint64_t *slots, unsigned nslots, double q)
{
	uint64_t total = rct_hist_total(slots, nslots), rank, seen = 0;

	if (!total)
		return -1;
	rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < nslots; i++) {
		seen += slots[i];
		if (seen >= rank)
			return (int)i;
	}
	return (int)nslots - 1;
}

static int digits(uint64_t v)
{
	int n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

void rct_print_log2_hist(FILE *f, const uint64_t *slots, unsigned nslots, const char *unit)
{
	unsigned first = nslots, last = 0;
	uint64_t max = 0;
	int w, stars;

	for (unsigned i = 0; i < nslots; i++)
		if (slots[i]) {
			if (first == nslots)
				first = i;
			last = i;
			if (slots[i] > max)
				max = slots[i];
		}
	if (first == nslots) {
		fprintf(f, "     (no samples)\n");
		return;
	}
	/*
	 * Like bcc: the value columns are as wide as the largest bound (at
	 * least 10), the bar 40 stars, fewer if that would pass 79 columns:
	 * "%*lu -> %-*lu : %-8lu |%s|" is 2w + 4 + 3 + 8 + 2 + stars + 1.
	 */
	w = digits(rct_slot_hi(last));
	if (w < 10)
		w = 10;
	stars = 79 - (2 * w + 18);
	if (stars > 40)
		stars = 40;
	if (stars < 10)
		stars = 10;
	fprintf(f, "%5s%-*s : count    distribution\n", "", 2 * w - 1, unit);
	for (unsigned i = first; i <= last; i++) {
		int n = (int)((double)slots[i] * stars / (double)max + 0.5);
		char bar[64];

		if (slots[i] && n == 0)
			n = 1; /* a non-empty row is never blank */
		memset(bar, '*', (size_t)n);
		memset(bar + n, ' ', (size_t)(stars - n));
		bar[stars] = '\0';
		fprintf(f, "%*" PRIu64 " -> %-*" PRIu64 " : %-8" PRIu64 " |%s|\n", w, rct_slot_lo(i),
			w, rct_slot_hi(i), slots[i], bar);
	}
}
