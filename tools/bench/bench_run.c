/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: one run.  The calling process only coordinates: it
 * forks N subscriber processes, then P publisher processes, waits until
 * every one of them is ready (subscribers subscribed, publishers sure that
 * every subscriber is attached), says go, and collects their reports.
 *
 * Every exit from bench_run() after the first fork goes through reap(),
 * which kills and reaps whatever children are left; the children also die
 * with this process (PR_SET_PDEATHSIG), so a run never leaves processes
 * behind.  The transport's teardown() and the run's private directory go
 * the same way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "hist.h"
#include "pipe_io.h"

/* Opening and attaching: this long, plus a little per process (64 subscribers fork and connect). */
#define READY_TIMEOUT_NS (10ull * 1000000000)
#define READY_PER_PROC_NS (100ull * 1000000)
/*
 * Give up when no counter has moved and no report came for this long
 * (plus, paced, the time between two messages of a publisher).
 * $RINGCAST_BENCH_STALL_MS sets it for tests (docs/testing.md), which
 * cannot wait 15 s to see that a slow run is not judged stalled.
 */
#define STALL_TIMEOUT_NS (15ull * 1000000000)
#define STALL_ENV "RINGCAST_BENCH_STALL_MS"
#define PROGRESS_NS 250000000ull

struct child {
	pid_t pid;           /* 0 once reaped */
	int fd;              /* read end of its report pipe; -1 once closed */
	int go_fd;           /* publishers: write end of the go pipe; -1 once closed */
	bool pub, ready, reported;
	unsigned idx;        /* subscriber or publisher number */
};

struct run {
	const struct bench_cfg *cfg;
	struct bench_result *res;
	struct bench_env env;
	struct bench_live *live;
	struct child *c;     /* subscribers [0, subs), then publishers */
	unsigned n;          /* children forked so far */
	bool progress;       /* live line on stderr */
	uint64_t stall_ns;   /* fail the run when nothing moved for this long */
	bool have_dir, set_up;
	volatile int *stop;
};

static int fail(struct run *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct run *r, int err, const char *fmt, ...)
{
	va_list ap;

	if (r->res->err)
		return r->res->err; /* the first failure is the story */
	va_start(ap, fmt);
	vsnprintf(r->res->what, sizeof(r->res->what), fmt, ap);
	va_end(ap);
	r->res->err = err ? err : BENCH_ERR_OTHER;
	return r->res->err;
}

static const char *child_name(const struct child *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s %u (pid %d)", c->pub ? "publisher" : "subscriber", c->idx, (int)c->pid);
	return buf;
}

/* ---- processes ---- */

/* Pin process number k (publishers first) as --cpus says. */
static void pin(const struct bench_opts *o, unsigned k)
{
	cpu_set_t set;

	if (!o->n_cpus)
		return;
	CPU_ZERO(&set);
	CPU_SET(o->cpus[k % o->n_cpus], &set);
	/* A CPU we may not use is not worth failing the run for: say so and run unpinned. */
	if (sched_setaffinity(0, sizeof(set), &set))
		cli_warn("bench", "cannot pin to CPU %d: %s", o->cpus[k % o->n_cpus], strerror(errno));
}

static int spawn(struct run *r, bool pub, unsigned idx)
{
	const struct bench_cfg *cfg = r->cfg;
	struct child *c = &r->c[r->n];
	pid_t parent = getpid(), pid;
	int p[2], g[2] = { -1, -1 };

	if (pipe2(p, O_CLOEXEC))
		return fail(r, -errno, "pipe");
	if (pub && pipe2(g, O_CLOEXEC)) {
		int err = -errno;

		close(p[0]);
		close(p[1]);
		return fail(r, err, "pipe");
	}
	/* Buffered output would otherwise be written once per process. */
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(p[0]);
		close(p[1]);
		if (pub) {
			close(g[0]);
			close(g[1]);
		}
		return fail(r, err, "fork");
	}
	if (pid == 0) {
		/* Die with the coordinator, whatever kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		/* Ctrl-C goes to the whole group; the coordinator decides what it means. */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_DFL);
		/* A peer that went away is an error return, not a death. */
		signal(SIGPIPE, SIG_IGN);
		/* Siblings' pipe ends: a publisher must see EOF when the coordinator closes its go pipe. */
		for (unsigned j = 0; j < r->n; j++) {
			close(r->c[j].fd);
			if (r->c[j].go_fd >= 0)
				close(r->c[j].go_fd);
		}
		close(p[0]);
		pin(cfg->o, pub ? idx : cfg->pubs + idx);
		if (pub) {
			close(g[1]);
			bench_pub_main(cfg, &r->env, idx, p[1], g[0], r->live);
		}
		bench_sub_main(cfg, &r->env, idx, p[1], r->live);
	}
	close(p[1]);
	if (pub)
		close(g[0]);
	*c = (struct child){ .pid = pid, .fd = p[0], .go_fd = g[1], .pub = pub, .idx = idx };
	r->n++;
	return 0;
}

/* Kill what is left and reap every child.  Safe to call more than once. */
static void reap(struct run *r, bool kill_all)
{
	for (unsigned i = 0; i < r->n; i++) {
		struct child *c = &r->c[i];
		int status;

		if (c->fd >= 0)
			close(c->fd);
		if (c->go_fd >= 0)
			close(c->go_fd);
		c->fd = c->go_fd = -1;
		if (!c->pid)
			continue;
		if (kill_all || !c->reported)
			kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
		c->pid = 0;
	}
}

/* ---- reports ---- */

static int read_report(struct run *r, struct child *c)
{
	struct bench_result *res = r->res;
	char name[64];

	child_name(c, name, sizeof(name));
	if (c->pub) {
		struct bench_pub_report *rep = &res->pub[c->idx];

		if (!bench_read_full(c->fd, rep, sizeof(*rep)))
			return fail(r, 0, "%s exited without a report", name);
		rep->what[sizeof(rep->what) - 1] = '\0';
		if (rep->err)
			return fail(r, rep->err, "%s: %s", name, rep->what);
	} else {
		struct bench_sub_report *rep = &res->sub[c->idx];
		void *buf;
		int err;

		if (!bench_read_full(c->fd, rep, sizeof(*rep)))
			return fail(r, 0, "%s exited without a report", name);
		rep->what[sizeof(rep->what) - 1] = '\0';
		if (rep->hist_len > sizeof(struct hist) * 2)
			return fail(r, -EBADMSG, "%s sent a histogram of %u bytes", name, rep->hist_len);
		if (rep->hist_len) {
			buf = malloc(rep->hist_len);
			if (!buf)
				return fail(r, -ENOMEM, "reading %s's report", name);
			err = bench_read_full(c->fd, buf, rep->hist_len) ? 0 : -EIO;
			if (!err)
				err = hist_deserialize(res->hist[c->idx], buf, rep->hist_len);
			free(buf);
			if (err)
				return fail(r, err, "%s's histogram", name);
		}
		if (rep->err)
			return fail(r, rep->err, "%s: %s", name, rep->what);
	}
	c->reported = true;
	close(c->fd);
	c->fd = -1;
	return 0;
}

/* Wait for every child's readiness byte. */
static int wait_ready(struct run *r)
{
	struct pollfd *pf = calloc(r->n, sizeof(*pf));
	unsigned ready = 0;
	int ret = 0;

	if (!pf)
		return fail(r, -ENOMEM, "waiting for readiness");
	while (ready < r->n && !ret) {
		uint64_t now = now_ns();
		int n;

		if (*r->stop) {
			ret = fail(r, -EINTR, "interrupted while starting");
			break;
		}
		if (now >= r->env.deadline_ns) {
			unsigned subs = 0;

			for (unsigned i = 0; i < r->n; i++)
				subs += !r->c[i].pub && r->c[i].ready;
			ret = fail(r, -ETIMEDOUT, "only %u of %u subscribers and %u of %u publishers were ready in time",
				   subs, r->cfg->subs, ready - subs, r->cfg->pubs);
			break;
		}
		for (unsigned i = 0; i < r->n; i++)
			pf[i] = (struct pollfd){ .fd = r->c[i].ready ? -1 : r->c[i].fd, .events = POLLIN };
		n = poll(pf, r->n, (int)((r->env.deadline_ns - now) / 1000000) + 1);
		if (n < 0 && errno != EINTR) {
			ret = fail(r, -errno, "poll");
			break;
		}
		for (unsigned i = 0; i < r->n && n > 0 && !ret; i++) {
			struct child *c = &r->c[i];
			char byte = 0, name[64];

			if (!pf[i].revents)
				continue;
			if (!bench_read_full(c->fd, &byte, 1)) {
				ret = fail(r, 0, "%s died while starting", child_name(c, name, sizeof(name)));
			} else if (byte != BENCH_READY) {
				/* It failed and says why in its report. */
				ret = read_report(r, c);
				if (!ret)
					ret = fail(r, 0, "%s failed to start", child_name(c, name, sizeof(name)));
			} else {
				c->ready = true;
				ready++;
			}
		}
	}
	free(pf);
	return ret;
}

static void progress(struct run *r, uint64_t now, uint64_t t0, bool final)
{
	const struct bench_cfg *cfg = r->cfg;
	uint64_t sent = 0, least = UINT64_MAX;
	double el = (double)(now - t0) / 1e9;

	if (!r->progress)
		return;
	if (final) {
		fputs("\r\033[K", stderr);
		return;
	}
	for (unsigned i = 0; i < cfg->pubs; i++)
		sent += bench_live_get(&r->live->sent[i]);
	for (unsigned i = 0; i < cfg->subs; i++) {
		uint64_t v = bench_live_get(&r->live->received[i]);

		least = v < least ? v : least;
	}
	fprintf(stderr, "\r\033[Kbench %s: sent %llu", cfg->tr->name, (unsigned long long)sent);
	if (cfg->count)
		fprintf(stderr, "/%llu", (unsigned long long)cfg->count);
	else
		fprintf(stderr, " in %.1f/%.1f s", el, (double)cfg->duration_ns / 1e9);
	fprintf(stderr, "  %.0f msg/s  slowest subscriber has %llu", el > 0 ? (double)sent / el : 0.0,
		(unsigned long long)least);
	fflush(stderr);
}

/* A number that grows while anything happens: sent, received, reports. */
static uint64_t activity(struct run *r)
{
	uint64_t a = 0;

	for (unsigned i = 0; i < r->cfg->pubs; i++)
		a += bench_live_get(&r->live->sent[i]);
	for (unsigned i = 0; i < r->cfg->subs; i++)
		a += bench_live_get(&r->live->received[i]);
	for (unsigned i = 0; i < r->n; i++)
		a += r->c[i].reported;
	return a;
}

/*
 * Say go, then collect: the subscribers' reports come when they have seen
 * every end message; then closing the go pipes tells the publishers to
 * stop re-sending ends and report.
 */
static int collect(struct run *r)
{
	const struct bench_cfg *cfg = r->cfg;
	struct pollfd *pf = calloc(r->n, sizeof(*pf));
	uint64_t t0 = now_ns(), next_progress = t0 + PROGRESS_NS, last_move = t0, last_act = 0;
	unsigned subs_left = cfg->subs, left = r->n;
	int ret = 0;

	if (!pf)
		return fail(r, -ENOMEM, "collecting reports");
	for (unsigned i = 0; i < r->n; i++) {
		char go = BENCH_GO;

		if (r->c[i].pub && write(r->c[i].go_fd, &go, 1) != 1) {
			ret = fail(r, -errno, "starting publisher %u", r->c[i].idx);
			goto out;
		}
	}
	while (left && !ret) {
		uint64_t now, act;
		int n;

		if (*r->stop >= 2) {
			ret = fail(r, -EINTR, "interrupted");
			break;
		}
		if (*r->stop && !__atomic_load_n(&r->live->stop, __ATOMIC_RELAXED)) {
			r->res->interrupted = true;
			__atomic_store_n(&r->live->stop, 1, __ATOMIC_RELAXED);
		}
		if (!subs_left) {
			for (unsigned i = 0; i < r->n; i++) {
				if (r->c[i].go_fd >= 0) {
					close(r->c[i].go_fd);
					r->c[i].go_fd = -1;
				}
			}
		}
		for (unsigned i = 0; i < r->n; i++)
			pf[i] = (struct pollfd){ .fd = r->c[i].reported ? -1 : r->c[i].fd, .events = POLLIN };
		n = poll(pf, r->n, 100);
		if (n < 0 && errno != EINTR) {
			ret = fail(r, -errno, "poll");
			break;
		}
		for (unsigned i = 0; i < r->n && n > 0 && !ret; i++) {
			if (!pf[i].revents)
				continue;
			ret = read_report(r, &r->c[i]);
			left--;
			subs_left -= !r->c[i].pub;
		}
		now = now_ns();
		act = activity(r);
		if (act != last_act) {
			last_act = act;
			last_move = now;
		} else if (now - last_move > r->stall_ns && !ret) {
			ret = fail(r, -ETIMEDOUT, "nothing moved for %g s: %u subscriber%s not done",
				   (double)r->stall_ns / 1e9, subs_left, subs_left == 1 ? "" : "s");
		}
		if (now >= next_progress) {
			progress(r, now, t0, false);
			next_progress = now + PROGRESS_NS;
		}
	}
out:
	progress(r, now_ns(), t0, true);
	free(pf);
	return ret;
}

/*
 * How long a run may show no progress.  Paced, a publisher sends once
 * every pubs/rate seconds, and with --pubs they send at the same moments:
 * a gap that long is the pace, not a stall, so it comes on top.
 */
static uint64_t stall_timeout(const struct bench_cfg *cfg)
{
	const char *env = getenv(STALL_ENV);
	uint64_t ns = STALL_TIMEOUT_NS, ms;

	if (env && *env && !cli_parse_u64(env, &ms) && ms >= 1 && ms <= 3600000)
		ns = ms * 1000000;
	if (cfg->rate)
		ns += (uint64_t)cfg->pubs * 1000000000ull / cfg->rate;
	return ns;
}

/* ---- the private directory ---- */

static int make_dir(struct run *r)
{
	static unsigned runs;
	const char *tmp = getenv("TMPDIR");

	snprintf(r->env.run_id, sizeof(r->env.run_id), "%d.%u", (int)getpid(), runs++);
	/* Short: ipc:// paths must fit sun_path (108 bytes). */
	if (!tmp || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(r->env.dir, sizeof(r->env.dir), "%s/rcbench-XXXXXX", tmp);
	if (!mkdtemp(r->env.dir))
		return fail(r, -errno, "creating a directory in %s", tmp);
	r->have_dir = true;
	return 0;
}

static void remove_dir(struct run *r)
{
	DIR *d;
	struct dirent *e;

	if (!r->have_dir)
		return;
	d = opendir(r->env.dir);
	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(r->env.dir);
	r->have_dir = false;
}

/* ---- the run ---- */

static int alloc_result(const struct bench_cfg *cfg, struct bench_result *res)
{
	memset(res, 0, sizeof(*res));
	res->cfg = cfg;
	res->sub = calloc(cfg->subs, sizeof(*res->sub));
	res->hist = calloc(cfg->subs, sizeof(*res->hist));
	res->pub = calloc(cfg->pubs, sizeof(*res->pub));
	res->all = malloc(sizeof(*res->all));
	if (!res->sub || !res->hist || !res->pub || !res->all)
		return -ENOMEM;
	hist_reset(res->all);
	for (unsigned i = 0; i < cfg->subs; i++) {
		res->hist[i] = malloc(sizeof(struct hist));
		if (!res->hist[i])
			return -ENOMEM;
		hist_reset(res->hist[i]);
	}
	return 0;
}

void bench_result_free(struct bench_result *res)
{
	if (res->hist)
		for (unsigned i = 0; i < res->cfg->subs; i++)
			free(res->hist[i]);
	free(res->hist);
	free(res->sub);
	free(res->pub);
	free(res->all);
	res->hist = NULL;
	res->sub = NULL;
	res->pub = NULL;
	res->all = NULL;
}

int bench_run(const struct bench_cfg *cfg, struct bench_result *res, volatile int *stop)
{
	struct run r = { .cfg = cfg, .res = res, .stop = stop };
	uint64_t broker0 = 0;
	int ret;

	if (alloc_result(cfg, res)) {
		snprintf(res->what, sizeof(res->what), "allocating the results");
		return res->err = -ENOMEM;
	}
	r.progress = isatty(STDERR_FILENO);
	r.stall_ns = stall_timeout(cfg);
	r.c = calloc(cfg->subs + cfg->pubs, sizeof(*r.c));
	r.live = mmap(NULL, sizeof(*r.live), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!r.c || r.live == MAP_FAILED) {
		r.live = NULL;
		ret = fail(&r, -ENOMEM, "allocating");
		goto out;
	}
	r.env.socket = cfg->o->socket;
	r.env.topic = cfg->topic;
	r.env.size = cfg->size;
	r.env.subs = cfg->subs;
	r.env.pubs = cfg->pubs;
	r.env.spin = cfg->spin;
	r.env.zero_copy = cfg->o->zero_copy;
	ret = make_dir(&r);
	if (ret)
		goto out;
	if (cfg->tr->setup) {
		r.env.deadline_ns = now_ns() + READY_TIMEOUT_NS;
		ret = cfg->tr->setup(&r.env);
		if (ret) {
			ret = fail(&r, ret, "%s: %s", cfg->tr->name, r.env.err);
			goto out;
		}
	}
	r.set_up = true;
	r.env.deadline_ns = now_ns() + READY_TIMEOUT_NS + (cfg->subs + cfg->pubs) * READY_PER_PROC_NS;
	for (unsigned i = 0; i < cfg->subs && !ret; i++)
		ret = spawn(&r, false, i);
	for (unsigned i = 0; i < cfg->pubs && !ret; i++)
		ret = spawn(&r, true, i);
	if (!ret)
		ret = wait_ready(&r);
	if (!ret && cfg->tr->broker_cpu_ns)
		broker0 = cfg->tr->broker_cpu_ns(&r.env);
	if (!ret)
		ret = collect(&r);
	if (!ret && cfg->tr->broker_cpu_ns)
		res->broker_cpu_ns = cfg->tr->broker_cpu_ns(&r.env) - broker0;
	reap(&r, ret != 0);
out:
	reap(&r, true);
	if (r.set_up && cfg->tr->teardown)
		cfg->tr->teardown(&r.env);
	remove_dir(&r);
	if (r.live)
		munmap(r.live, sizeof(*r.live));
	free(r.c);
	if (!ret)
		bench_summarize(res);
	return ret;
}
