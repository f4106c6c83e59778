/* SPDX-License-Identifier: MIT */
/*
 * it_trace: the USDT probes, the BPF tracer and `ringcast trace`
 * (docs/tracing.md).
 *
 *  - the probes are in the built files (readelf -n; bpftrace -l if it is
 *    installed), each with a semaphore;
 *  - an untraced publisher and busy-polling subscriber make no system
 *    call (seccomp traps any), see their semaphores at 0 and a nop at
 *    every probe site: nothing there can enter the kernel.  Traced, the
 *    same processes see the semaphores raised and int3 at the sites, and
 *    the maps count exactly the sampled deliveries: each one trapped;
 *  - with sampling N, the maps count exactly floor(K / N) of K messages
 *    per subscriber, the histogram's total equals the count, and a topic
 *    filter keeps other topics out;
 *  - the histogram's median is within one log2 bucket of `ringcast
 *    bench`'s own p50 for the same run;
 *  - `bpftool -j map dump pinned` parses and names the topic;
 *  - `ringcast trace` sets the node's sampling rate, pins, reports, and
 *    on SIGINT restores the rate and unpins;
 *  - without privileges it says what is missing.
 *
 * Everything BPF needs root: those tests skip with the reason otherwise
 * (and fail under RINGCAST_REQUIRE_ROOT_TESTS=1).  The processes traced
 * are this binary's children (the tracer attaches to /proc/self/exe, a
 * program linked with libringcast.a) or `ringcast bench`'s.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
/* The file format (docs/ring-format.md): the node file's trace rate. */
#include "../../lib/ring_format.h"
#include "trace_helpers.h"
#include "tracer.h"

#define TOPIC "it.trace.topic"
#define OTHER "it.trace.other"
#define NSUBS 2
#define NPROCS (NSUBS + 1) /* the subscribers, then the publisher */
#define MAX_SITES 8
#define EXIT_TRAPPED 42
#define EXIT_TIMEOUT 43
#define EXIT_BROKEN 44

#if defined(__x86_64__)
#define SITE_NOP 0x90   /* sys/sdt.h's _SDT_NOP */
#define SITE_TRAP 0xcc  /* int3: what the kernel writes for a uprobe */
#endif

/* ---- where this binary's probes are (found once, inherited by children) ---- */

static struct {
	uintptr_t pc[MAX_SITES];
	int n;
	uintptr_t sem_publish, sem_deliver;
} sites;

static uintptr_t load_bias;

static int bias_fn(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	(void)ctx;
	load_bias = info->dlpi_addr; /* the first object is the program itself */
	return 1;
}

static int site_fn(const struct rct_usdt_note *n, void *ctx)
{
	(void)ctx;
	if (strcmp(n->provider, "ringcast"))
		return 0;
	if (sites.n < MAX_SITES)
		sites.pc[sites.n++] = load_bias + n->pc;
	if (!strcmp(n->name, "publish"))
		sites.sem_publish = load_bias + n->semaphore;
	else if (!strcmp(n->name, "deliver"))
		sites.sem_deliver = load_bias + n->semaphore;
	return 0;
}

static void find_sites(void)
{
	volatile unsigned short *sem_publish, *sem_deliver;
	int ret;

	if (sites.n)
		return;
	dl_iterate_phdr(bias_fn, NULL);
	ret = rct_usdt_notes("/proc/self/exe", site_fn, NULL);
	IT_ASSERT(ret >= 0, "reading our own USDT notes: %s", strerror(-ret));
	IT_ASSERT(sites.n >= 3, "%d ringcast probe sites in this binary, expected 2 publish + 1 deliver",
		  sites.n);
	/* The notes must name the very variables the probe sites test. */
	it_probe_semaphores(&sem_publish, &sem_deliver);
	IT_ASSERT(sites.sem_publish == (uintptr_t)sem_publish &&
		  sites.sem_deliver == (uintptr_t)sem_deliver,
		  "the notes' semaphores (%#lx, %#lx) are not ringcast_*_semaphore (%p, %p)",
		  (unsigned long)sites.sem_publish, (unsigned long)sites.sem_deliver,
		  (void *)sem_publish, (void *)sem_deliver);
}

/* ---- helper processes ---- */

struct tr_shared {
	_Atomic int ready;
	_Atomic int trapped_nr;    /* the system call a filtered helper tried, or -1 */
	_Atomic uint64_t received[NSUBS];
	_Atomic int error;         /* a negative errno a filtered helper got */
	/* what each process saw of its own probes after its run */
	unsigned short sem_publish[NPROCS], sem_deliver[NPROCS];
	uint8_t site[NPROCS][MAX_SITES];
};

struct tr_cfg {
	const char *sock;
	struct tr_shared *sh;
	int index;      /* 0..NSUBS-1: subscriber, NSUBS: publisher */
	uint64_t k;     /* messages */
	bool seccomp;   /* run under a filter that traps every system call */
};

static struct tr_shared *trap_sh;

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	atomic_store(&trap_sh->trapped_nr, si->si_syscall);
	syscall(SYS_exit_group, EXIT_TRAPPED);
}

/* From here on the process may only exit: every other system call traps. */
static void no_more_syscalls(struct tr_shared *sh)
{
	int ret;

	trap_sh = sh;
	ret = it_seccomp_exit_only(on_sigsys);
	IT_CHECK(ret == 0 || ret == -EOPNOTSUPP, "seccomp filter: %s", strerror(-ret));
}

/* A call and plain loads: no system call, so fine under the filter. */
static void record_probes(struct tr_shared *sh, int idx)
{
	volatile unsigned short *sem_publish, *sem_deliver;

	it_probe_semaphores(&sem_publish, &sem_deliver);
	sh->sem_publish[idx] = *sem_publish;
	sh->sem_deliver[idx] = *sem_deliver;
	for (int i = 0; i < sites.n; i++)
		sh->site[idx][i] = *(volatile const uint8_t *)sites.pc[i];
}

/* End a helper: under the filter only exit_group is allowed (no stdio flush, no close). */
static int helper_exit(const struct tr_cfg *c, struct ringcast *rc, int code)
{
	if (c->seccomp)
		syscall(SYS_exit_group, code);
	ringcast_close(rc);
	return code;
}

struct tr_count {
	uint64_t n, foreign;
};

static int tr_handler(const struct ringcast_msg *m, void *ctx)
{
	struct tr_count *c = ctx;

	if (m->topic_len == strlen(TOPIC) && !memcmp(m->topic, TOPIC, m->topic_len))
		c->n++;
	else
		c->foreign++;
	return 0;
}

/* Busy-polls only (a sleep would be a system call). */
static int tr_subscriber(void *p)
{
	struct tr_cfg *c = p;
	struct tr_shared *sh = c->sh;
	struct ringcast *rc = it_child_open(c->sock);
	uint64_t deadline = it_now_ns() + 60000000000ull;
	struct tr_count cnt = { 0 };

	IT_CHECK_OK(ringcast_subscribe(rc, TOPIC));
	if (c->seccomp)
		no_more_syscalls(sh);
	atomic_fetch_add(&sh->ready, 1);
	while (cnt.n < c->k) {
		int ret = ringcast_poll(rc, tr_handler, &cnt, 0);

		if (ret < 0) {
			atomic_store(&sh->error, ret);
			return helper_exit(c, rc, EXIT_BROKEN);
		}
		atomic_store(&sh->received[c->index], cnt.n);
		if (ret == 0) {
			it_cpu_relax();
			if (it_now_ns() > deadline) /* vDSO: no system call */
				return helper_exit(c, rc, EXIT_TIMEOUT);
		}
	}
	record_probes(sh, c->index);
	return helper_exit(c, rc, cnt.foreign ? EXIT_BROKEN : 0);
}

/*
 * Publish v (and v + 1 when it goes by broadcast_many): how many went, or
 * an error.  Spin on a full ring: under the filter, waiting would be a
 * system call.
 */
static int publish_some(struct ringcast *rc, uint64_t v, uint64_t last)
{
	struct ringcast_claim cl;
	int ret;

	/* Two in six through broadcast_many, whose batch fires the probe once a message. */
	if (v % 6 == 1 && v < last) {
		uint64_t two[2] = { v, v + 1 };
		struct iovec iov[2] = { { &two[0], sizeof(v) }, { &two[1], sizeof(v) } };

		for (int done = 0; done < 2; done += ret)
			while ((ret = ringcast_broadcast_many(rc, TOPIC, iov + done, 2 - (unsigned)done)) <= 0)
				if (ret != -EAGAIN)
					return ret < 0 ? ret : -EIO;
				else
					it_cpu_relax();
		return 2;
	}
	/* Odd ones through broadcast, even ones zero-copy: those publish sites fire too. */
	if (v % 2) {
		while ((ret = ringcast_broadcast(rc, TOPIC, &v, sizeof(v))) == -EAGAIN)
			it_cpu_relax();
		return ret < 0 ? ret : 1;
	}
	while ((ret = ringcast_claim(rc, TOPIC, sizeof(v), &cl)) == -EAGAIN)
		it_cpu_relax();
	if (ret < 0)
		return ret;
	memcpy(cl.data, &v, sizeof(v));
	ret = ringcast_commit(&cl);
	return ret < 0 ? ret : 1;
}

static int tr_publisher(void *p)
{
	struct tr_cfg *c = p;
	struct tr_shared *sh = c->sh;
	struct ringcast *rc = it_child_open(c->sock);
	int ret;

	/* Open both topics for publishing (a daemon round trip) without sending anything. */
	IT_CHECK_OK(ringcast_max_msg(rc, TOPIC));
	IT_CHECK_OK(ringcast_max_msg(rc, OTHER));
	if (c->seccomp)
		no_more_syscalls(sh);
	for (uint64_t v = 1; v <= c->k; v += (uint64_t)ret) {
		ret = publish_some(rc, v, c->k);
		/* OTHER has no subscriber: never full.  The topic filter must keep it out. */
		if (ret > 0 && v % 10 == 0) {
			int err = ringcast_broadcast(rc, OTHER, &v, sizeof(v));

			ret = err < 0 ? err : ret;
		}
		if (ret < 0) {
			atomic_store(&sh->error, ret);
			return helper_exit(c, rc, EXIT_BROKEN);
		}
	}
	record_probes(sh, NSUBS);
	return helper_exit(c, rc, 0);
}

static void expect_helper(pid_t pid, struct tr_shared *sh, const char *what)
{
	char why[64];
	int st;

	if (it_wait(pid, 90000, &st) == -ETIMEDOUT) {
		it_kill(pid);
		IT_FAIL("%s did not finish in 90 s", what);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_TRAPPED)
		IT_FAIL("%s made system call %d (see 'ausyscall %d') while publishing or polling; "
			"it must make none", what, atomic_load(&sh->trapped_nr),
			atomic_load(&sh->trapped_nr));
	if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_BROKEN)
		IT_FAIL("%s failed: %s (or a message of another topic arrived)", what,
			ringcast_strerror(atomic_load(&sh->error)));
	if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_TIMEOUT)
		IT_FAIL("%s timed out after %llu messages", what,
			(unsigned long long)atomic_load(&sh->received[0]));
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s", what,
		  it_status_str(st, why, sizeof(why)));
}

/* NSUBS subscribers, then one publisher of k messages on TOPIC (seqs 1..k); wait for all. */
static void run_round(struct it_daemon *d, struct tr_shared *sh, uint64_t k, bool seccomp)
{
	struct tr_cfg cfg[NPROCS];
	pid_t pids[NPROCS];
	uint64_t deadline;

	memset(sh, 0, sizeof(*sh));
	atomic_store(&sh->trapped_nr, -1);
	for (int i = 0; i < NPROCS; i++)
		cfg[i] = (struct tr_cfg){ d->sock, sh, i, k, seccomp };
	for (int i = 0; i < NSUBS; i++)
		pids[i] = it_fork(tr_subscriber, &cfg[i]);
	deadline = it_now_ns() + 10000000000ull;
	while (atomic_load(&sh->ready) < NSUBS && it_now_ns() < deadline)
		it_sleep_ms(1);
	IT_ASSERT(atomic_load(&sh->ready) == NSUBS, "subscribers not ready in 10 s");
	pids[NSUBS] = it_fork(tr_publisher, &cfg[NSUBS]);
	expect_helper(pids[NSUBS], sh, "the publisher");
	for (int i = 0; i < NSUBS; i++)
		expect_helper(pids[i], sh, "a busy-polling subscriber");
}

/* ---- the tracer, closed at teardown whatever happens ---- */

static struct rct *tracer;
static char pin_dir[64];

static int tr_teardown(void **state)
{
	rct_close(tracer, false);
	tracer = NULL;
	return it_teardown(state);
}

/* Attach to path's probes (only TOPIC unless topic is NULL); pin under pin_dir if pin. */
static void tracer_open(const char *path, const char *topic, bool pin)
{
	const char *paths[] = { path };
	char why[512];
	int ret;

	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/ringcast-it-%d", (int)getpid());
	{
		RCT_OPTS(o, .paths = paths, .npaths = 1, .topic = topic, .pin_dir = pin_dir,
			 .no_pin = !pin, .warn = stderr);

		ret = rct_open(&tracer, &o, why, sizeof(why));
	}
	if (ret == -EPERM || ret == -EOPNOTSUPP)
		it_skip("cannot trace here: %s", why);
	IT_ASSERT(ret == 0, "rct_open: %s (%s)", why, strerror(-ret));
}

static void set_sample(struct it_daemon *d, uint32_t n)
{
	struct ringcast *rc = it_open(d);

	IT_ASSERT_OK(ringcast_trace_sample(rc, n, NULL));
	it_close(rc);
}

static uint32_t read_sample(struct it_daemon *d)
{
	/* A client's read-only mapping of the node file. */
	struct ringcast *rc = it_open(d);
	uint32_t v = atomic_load(&it_node_hdr(rc)->trace_sample);

	it_close(rc);
	return v;
}

/* Check the maps hold exactly `expect` deliveries per subscriber of TOPIC and nothing of OTHER. */
static void expect_counts(uint64_t per_sub, bool publishes_traced)
{
	struct rct_snapshot s;
	const struct rct_topic_stat *t;
	uint64_t total;
	size_t subs = 0;

	IT_ASSERT_OK(rct_read(tracer, &s));
	t = rct_snapshot_topic(&s, TOPIC);
	IT_ASSERT(s.dropped == 0, "%llu events lost to full maps", (unsigned long long)s.dropped);
	IT_ASSERT(t, "no entry for %s in the maps (%zu topics)", TOPIC, s.ntopics);
	IT_ASSERT(!rct_snapshot_topic(&s, OTHER), "%s is in the maps despite the topic filter", OTHER);
	IT_ASSERT(t->deliveries == NSUBS * per_sub,
		  "deliveries map: %llu, expected %d subscribers x %llu sampled messages",
		  (unsigned long long)t->deliveries, NSUBS, (unsigned long long)per_sub);
	total = rct_hist_total(t->slots, RC_TRACE_SLOTS);
	IT_ASSERT(total == t->deliveries, "latency histogram holds %llu, deliveries %llu",
		  (unsigned long long)total, (unsigned long long)t->deliveries);
	if (publishes_traced)
		IT_ASSERT(t->pub.count == per_sub, "publishes map: %llu, expected %llu",
			  (unsigned long long)t->pub.count, (unsigned long long)per_sub);
	for (size_t i = 0; i < s.nsubs; i++) {
		if (strcmp(s.subs[i].key.topic, TOPIC))
			continue;
		subs++;
		IT_ASSERT(s.subs[i].lag.deliveries == per_sub,
			  "lag map: client %u has %llu deliveries, expected %llu",
			  s.subs[i].key.client_id, (unsigned long long)s.subs[i].lag.deliveries,
			  (unsigned long long)per_sub);
	}
	IT_ASSERT(subs == (per_sub ? NSUBS : 0), "lag map: %zu subscribers of %s, expected %d", subs,
		  TOPIC, NSUBS);
	rct_snapshot_free(&s);
}

/* This binary's path: the tracer attaches to the file, so its children are traced. */
static const char *self_exe(void)
{
	static char path[PATH_MAX];

	if (!path[0])
		IT_ASSERT(realpath("/proc/self/exe", path), "realpath /proc/self/exe: %s",
			  strerror(errno));
	return path;
}

/* ---- the tests ---- */

/* Run prog with args, return its stdout (caller frees); fails the test unless it exits 0. */
static char *run_capture(char *const argv[], int timeout_ms)
{
	int out;
	pid_t pid = it_spawn(argv, NULL, &out, NULL);
	char *text = it_read_all(out, timeout_ms, NULL);

	close(out);
	it_expect_exit(pid, timeout_ms, 0, argv[0]);
	return text;
}

static void expect_notes(const char *readelf, const char *path, const char *provider,
			 const char *const *names)
{
	/* readelf -n prints each note as "Provider: P", "Name: N", then "Location: ..., Semaphore: 0x..." */
	for (const char *const *n = names; *n; n++) {
		char want[128], *at;

		snprintf(want, sizeof(want), "Provider: %s\n    Name: %s\n", provider, *n);
		at = strstr(readelf, want);
		IT_ASSERT(at, "readelf -n %s: no probe %s:%s", path, provider, *n);
		at = strstr(at, "Semaphore: ");
		IT_ASSERT(at && strncmp(at, "Semaphore: 0x0000000000000000", 29),
			  "readelf -n %s: probe %s:%s has no semaphore", path, provider, *n);
	}
}

static void test_probes_in_binaries(void **state)
{
	struct it_daemon *d = *state;
	static const char *const lib_probes[] = { "publish", "deliver", NULL };
	static const char *const daemon_probes[] = { "client_connect", "client_drop", "untether",
						     "publisher_repair", NULL };
	char so[300], cli[300], daemon[300];
	char *text;

	snprintf(so, sizeof(so), "%s/libringcast.so", d->build);
	snprintf(cli, sizeof(cli), "%s/ringcast", d->build);
	snprintf(daemon, sizeof(daemon), "%s/ringcastd", d->build);
	text = run_capture((char *[]){ "/usr/bin/readelf", "-n", so, NULL }, 10000);
	expect_notes(text, so, "ringcast", lib_probes);
	free(text);
	/* The CLI is a program like any user's: its probes are the shared library's. */
	text = run_capture((char *[]){ "/usr/bin/readelf", "-d", cli, NULL }, 10000);
	IT_ASSERT(strstr(text, "Shared library: [libringcast.so.0]"),
		  "%s is not linked against libringcast.so.0:\n%s", cli, text);
	free(text);
	text = run_capture((char *[]){ "/usr/bin/readelf", "-n", cli, NULL }, 10000);
	IT_ASSERT(!strstr(text, "Provider: ringcast\n"), "%s carries a copy of the library's "
		  "probes: it was linked with libringcast.a", cli);
	free(text);
	text = run_capture((char *[]){ "/usr/bin/readelf", "-n", daemon, NULL }, 10000);
	expect_notes(text, daemon, "ringcastd", daemon_probes);
	free(text);

	/* bpftrace is optional (Debian 12 has it, not installed by default); it needs root. */
	if (access("/usr/bin/bpftrace", X_OK) == 0 && geteuid() == 0) {
		char spec[320];

		snprintf(spec, sizeof(spec), "usdt:%s:*", so);
		text = run_capture((char *[]){ "/usr/bin/bpftrace", "-l", spec, NULL }, 30000);
		IT_ASSERT(strstr(text, ":ringcast:publish") && strstr(text, ":ringcast:deliver"),
			  "bpftrace -l '%s' does not list both probes:\n%s", spec, text);
		free(text);
	} else {
		printf("NOTE: bpftrace not run (%s); readelf -n checked the notes\n",
		       geteuid() ? "not root" : "not installed");
	}
}

static void test_untraced_never_enters_kernel(void **state)
{
	struct it_daemon *d = *state;
	struct tr_shared *sh = it_shared(sizeof(*sh));
	const uint64_t k = 20000, n = 100;

#if !defined(IT_AUDIT_ARCH) || !defined(SITE_NOP)
	it_skip("no seccomp audit arch (and probe nop) known for this CPU");
#else
	find_sites();
	it_daemon_start(d, NULL);

	/* Untraced: no system call (the filter would trap it), semaphores 0, nops. */
	run_round(d, sh, k, true);
	for (int p = 0; p < NPROCS; p++) {
		IT_ASSERT(sh->sem_publish[p] == 0 && sh->sem_deliver[p] == 0,
			  "untraced process %d sees semaphores %u/%u", p, sh->sem_publish[p],
			  sh->sem_deliver[p]);
		for (int i = 0; i < sites.n; i++)
			IT_ASSERT(sh->site[p][i] == SITE_NOP,
				  "untraced process %d: probe site %d holds %#x, not a nop", p, i,
				  sh->site[p][i]);
	}

	/*
	 * Traced (root): the same run, still without a system call, now with
	 * the semaphores up and int3 at the sites; the maps' exact count
	 * says each sampled delivery trapped into the BPF program.
	 */
	it_require_root("attaching the BPF tracer");
	set_sample(d, (uint32_t)n);
	tracer_open(self_exe(), TOPIC, false);
	run_round(d, sh, k, true);
	for (int p = 0; p < NPROCS; p++) {
		IT_ASSERT(sh->sem_publish[p] > 0 && sh->sem_deliver[p] > 0,
			  "traced process %d sees semaphores %u/%u", p, sh->sem_publish[p],
			  sh->sem_deliver[p]);
		for (int i = 0; i < sites.n; i++)
			IT_ASSERT(sh->site[p][i] == SITE_TRAP,
				  "traced process %d: probe site %d holds %#x, not int3", p, i,
				  sh->site[p][i]);
	}
	expect_counts(k / n, true);
#endif
}

static void test_sampled_counts_exact(void **state)
{
	struct it_daemon *d = *state;
	struct tr_shared *sh = it_shared(sizeof(*sh));
	static const uint32_t rates[] = { 1, 7, 64 };
	const uint64_t k = 10000;

	it_require_root("attaching the BPF tracer");
	find_sites();
	it_daemon_start(d, NULL);
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		/* A fresh daemon per rate would be cleaner; a fresh tracer is enough: seqs go on. */
		uint64_t before, per_sub;
		struct rct_snapshot s;

		set_sample(d, rates[i]);
		tracer_open(self_exe(), TOPIC, false);
		IT_ASSERT_OK(rct_read(tracer, &s));
		IT_ASSERT(s.ntopics == 0, "a fresh tracer's maps are not empty");
		rct_snapshot_free(&s);
		/* This round's seqs are i*k+1 .. (i+1)*k: count the multiples of the rate. */
		before = i * k;
		run_round(d, sh, k, false);
		per_sub = (before + k) / rates[i] - before / rates[i];
		printf("sample 1 in %u: %llu messages, expecting %llu per subscriber\n", rates[i],
		       (unsigned long long)k, (unsigned long long)per_sub);
		expect_counts(per_sub, true);
		rct_close(tracer, false);
		tracer = NULL;
	}
}

/* The value of "key": in a flat JSON text (bench's one line), or -1. */
static long long json_number(const char *json, const char *key)
{
	char want[64];
	const char *at;

	snprintf(want, sizeof(want), "\"%s\":", key);
	at = strstr(json, want);
	return at ? strtoll(at + strlen(want), NULL, 10) : -1;
}

static void test_agrees_with_bench(void **state)
{
	struct it_daemon *d = *state;
	char cli[300], so[300], topic[64], *out;
	const struct rct_topic_stat *t;
	struct rct_snapshot s;
	long long p50, count = 20000;
	int bpf_slot, bench_slot;

	it_require_root("attaching the BPF tracer");
	it_daemon_start(d, NULL);
	snprintf(cli, sizeof(cli), "%s/ringcast", d->build);
	/* Our own topic: other benches on the machine may trace through the same binary. */
	snprintf(topic, sizeof(topic), "it.trace.bench.%d", (int)getpid());
	set_sample(d, 1);
	/* The bench's processes run the CLI, whose probes are in the library it maps. */
	snprintf(so, sizeof(so), "%s/libringcast.so", d->build);
	tracer_open(so, topic, false);
	out = run_capture((char *[]){ cli, "bench", "--socket", d->sock, "--subs", "1", "--count",
				      "20000", "--rate", "20000", "--topic", topic, "--json", NULL },
			  90000);
	p50 = json_number(out, "p50");
	IT_ASSERT(p50 > 0, "no latency_ns.p50 in bench's report: %s", out);
	IT_ASSERT_OK(rct_read(tracer, &s));
	t = rct_snapshot_topic(&s, topic);
	IT_ASSERT(t, "bench's topic %s is not in the maps", topic);
	/* Every data message, and the end message that closes the run. */
	IT_ASSERT(t->deliveries >= (uint64_t)count && t->deliveries <= (uint64_t)count + 1,
		  "traced %llu deliveries of a %lld-message bench", (unsigned long long)t->deliveries,
		  count);
	bpf_slot = rct_hist_quantile_slot(t->slots, RC_TRACE_SLOTS, 0.5);
	bench_slot = (int)rct_slot_of((uint64_t)p50);
	printf("bench p50 %lld ns (log2 bucket %d: %llu..%llu); BPF median bucket %d: %llu..%llu\n",
	       p50, bench_slot, (unsigned long long)rct_slot_lo((unsigned)bench_slot),
	       (unsigned long long)rct_slot_hi((unsigned)bench_slot), bpf_slot,
	       (unsigned long long)rct_slot_lo((unsigned)bpf_slot),
	       (unsigned long long)rct_slot_hi((unsigned)bpf_slot));
	IT_ASSERT(abs(bpf_slot - bench_slot) <= 1,
		  "BPF median bucket %d and bench's p50 bucket %d are more than one apart", bpf_slot,
		  bench_slot);
	rct_snapshot_free(&s);
	free(out);
}

static void test_bpftool_reads_pinned_maps(void **state)
{
	/* For each map: parse the JSON dump, find TOPIC's entry, check its value. */
	static const char check[] =
		"import json, sys\n"
		"name, topic, want = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
		"entries = json.load(sys.stdin)\n"
		"mine = [e for e in entries if e['formatted']['key']['topic'] == topic]\n"
		"assert len(mine) == (2 if name == 'lag' else 1), (name, 'entries', mine)\n"
		"v = mine[0]['formatted']['value']\n"
		"got = {'deliveries': lambda: v, 'latency': lambda: sum(v['slots']),\n"
		"       'publishes': lambda: v['count'], 'lag': lambda: v['deliveries']}[name]()\n"
		"assert got == want, (name, got, want)\n"
		"print(name, 'names', topic, 'with', got)\n";
	struct it_daemon *d = *state;
	struct tr_shared *sh = it_shared(sizeof(*sh));
	static const struct {
		const char *map;
		unsigned mult;
	} maps[] = { { "latency", NSUBS }, { "deliveries", NSUBS }, { "publishes", 1 }, { "lag", 1 } };
	const uint64_t k = 500;

	it_require_root("attaching the BPF tracer");
	if (access("/usr/sbin/bpftool", X_OK) < 0 || access("/usr/bin/python3", X_OK) < 0)
		it_skip("bpftool or python3 is not installed (tools/install-deps.sh installs both)");
	find_sites();
	it_daemon_start(d, NULL);
	set_sample(d, 1);
	tracer_open(self_exe(), TOPIC, true);
	run_round(d, sh, k, false);
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		char cmd[1024], want[32], *out;

		snprintf(cmd, sizeof(cmd), "/usr/sbin/bpftool -j map dump pinned %s/%s | "
			 "/usr/bin/python3 -c \"$0\" %s %s %s", pin_dir, maps[i].map, maps[i].map,
			 TOPIC, "$1");
		snprintf(want, sizeof(want), "%llu", (unsigned long long)(k * maps[i].mult));
		out = run_capture((char *[]){ "/bin/sh", "-c", cmd, (char *)check, want, NULL }, 30000);
		printf("%s", out);
		free(out);
	}
	/* Closing unpins (and removes the directory it made). */
	rct_close(tracer, false);
	tracer = NULL;
	IT_ASSERT(access(pin_dir, F_OK) < 0 && errno == ENOENT, "%s is still there after closing",
		  pin_dir);
}

/* Read fd until text contains needle; the text so far (caller frees). */
static char *read_until(int fd, const char *needle, int timeout_ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t len = 0, cap = 4096;
	char *buf = calloc(1, cap);

	IT_ASSERT(buf, "out of memory");
	while (!strstr(buf, needle) && it_now_ns() < deadline) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (len + 512 >= cap) {
			char *b = realloc(buf, cap * 2);

			IT_ASSERT(b, "out of memory");
			buf = b;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return buf;
}

static void test_cli_trace(void **state)
{
	struct it_daemon *d = *state;
	struct tr_shared *sh = it_shared(sizeof(*sh));
	char cli[300], dir[64], latency[128], *err, *out, want[96];
	const uint64_t k = 1000, n = 5;
	int out_fd, err_fd;
	pid_t pid;

	it_require_root("attaching the BPF tracer");
	find_sites();
	it_daemon_start(d, NULL);
	snprintf(cli, sizeof(cli), "%s/ringcast", d->build);
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/ringcast-it-cli-%d", (int)getpid());
	snprintf(latency, sizeof(latency), "%s/latency", dir);
	IT_ASSERT(read_sample(d) == 0, "a fresh node samples 1 in %u", read_sample(d));
	pid = it_spawn((char *[]){ cli, "trace", "--socket", d->sock, "--sample", "5", "--topic",
				   TOPIC, "--interval", "60", "--json", "--pin-dir", dir, NULL },
		       NULL, &out_fd, &err_fd);
	err = read_until(err_fd, "Ctrl-C to end", 30000);
	IT_ASSERT(strstr(err, "Ctrl-C to end"), "ringcast trace did not start:\n%s", err);
	/* It finds this test binary among the running processes' files. */
	IT_ASSERT(strstr(err, "it_trace"), "ringcast trace does not attach to this test:\n%s", err);
	free(err);
	IT_ASSERT(read_sample(d) == n, "while tracing the node samples 1 in %u, not %llu",
		  read_sample(d), (unsigned long long)n);
	IT_ASSERT(access(latency, F_OK) == 0, "%s is not pinned: %s", latency, strerror(errno));
	run_round(d, sh, k, false);
	kill(pid, SIGINT);
	out = it_read_all(out_fd, 30000, NULL);
	it_expect_exit(pid, 30000, 0, "ringcast trace after SIGINT");
	close(out_fd);
	close(err_fd);
	snprintf(want, sizeof(want), "{\"topic\":\"%s\",", TOPIC);
	IT_ASSERT(strstr(out, want), "no %s in the report:\n%s", TOPIC, out);
	snprintf(want, sizeof(want), "\"deliveries\":%llu,\"publishes\":%llu",
		  (unsigned long long)(NSUBS * (k / n)), (unsigned long long)(k / n));
	IT_ASSERT(strstr(out, want), "expected %s in the report:\n%s", want, out);
	free(out);
	IT_ASSERT(read_sample(d) == 0, "after tracing the node samples 1 in %u, not as before (0)",
		  read_sample(d));
	IT_ASSERT(access(dir, F_OK) < 0 && errno == ENOENT, "%s is still there after SIGINT", dir);
}

/* Without privileges: the library's check and the command both say what is missing. */
struct unpriv_cfg {
	const char *cli, *log, *build;
};

static int unprivileged(void *p)
{
	struct unpriv_cfg *c = p;
	char why[512];
	int fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	/*
	 * Opened while still root: the build directory may sit under one
	 * that uid 12345 cannot search (a checkout in a mktemp -d, 0700).
	 */
	int cli = open(c->cli, O_RDONLY | O_CLOEXEC);
	char *const argv[] = { (char *)c->cli, "trace", "--socket", "/nonexistent/sock", NULL };

	IT_CHECK(fd >= 0, "open %s: %s", c->log, strerror(errno));
	IT_CHECK(cli >= 0, "open %s: %s", c->cli, strerror(errno));
	IT_CHECK(setgroups(0, NULL) == 0 && setresgid(12345, 12345, 12345) == 0 &&
		 setresuid(12345, 12345, 12345) == 0, "dropping to uid 12345: %s", strerror(errno));
	IT_CHECK(rct_check_support(why, sizeof(why)) == -EPERM, "rct_check_support() allowed uid 12345");
	IT_CHECK(strstr(why, "needs root, or CAP_BPF and CAP_PERFMON"), "the reason: %s", why);
	dup2(fd, 1);
	dup2(fd, 2);
	it_cli_lib_path(c->build);
	fexecve(cli, argv, environ);
	fprintf(stderr, "exec %s as uid 12345: %s\n", c->cli, strerror(errno));
	return 127;
}

static void test_unprivileged_says_why(void **state)
{
	struct it_daemon *d = *state;
	char cli[300], log[200], *text;
	struct unpriv_cfg cfg = { cli, log, d->build };
	int fd, st;
	pid_t pid;

	it_require_root("switching to another uid");
	snprintf(cli, sizeof(cli), "%s/ringcast", d->build);
	snprintf(log, sizeof(log), "%s/trace.out", d->dir);
	pid = it_fork(unprivileged, &cfg);
	IT_ASSERT(it_wait(pid, 10000, &st) == 0, "the unprivileged trace did not end");
	fd = open(log, O_RDONLY | O_CLOEXEC);
	IT_ASSERT(fd >= 0, "open %s: %s", log, strerror(errno));
	text = it_read_all(fd, 1000, NULL);
	close(fd);
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1, "unprivileged ringcast trace: status %#x:\n%s",
		  (unsigned)st, text);
	IT_ASSERT(strstr(text, "cannot trace: needs root, or CAP_BPF and CAP_PERFMON"),
		  "unprivileged ringcast trace does not say what is missing:\n%s", text);
	printf("unprivileged: %s", text);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_probes_in_binaries, it_setup, tr_teardown),
		cmocka_unit_test_setup_teardown(test_untraced_never_enters_kernel, it_setup, tr_teardown),
		cmocka_unit_test_setup_teardown(test_sampled_counts_exact, it_setup, tr_teardown),
		cmocka_unit_test_setup_teardown(test_agrees_with_bench, it_setup, tr_teardown),
		cmocka_unit_test_setup_teardown(test_bpftool_reads_pinned_maps, it_setup, tr_teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace, it_setup, tr_teardown),
		cmocka_unit_test_setup_teardown(test_unprivileged_says_why, it_setup, tr_teardown),
	};

	it_init();
	rct_libbpf_log(false);
	return cmocka_run_group_tests_name("it_trace", tests, NULL, NULL);
}
