/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench peer: Redis PUBLISH/SUBSCRIBE through hiredis.
 *
 * Each run starts its own redis-server on 127.0.0.1 and a free port, in
 * the run's private directory, with persistence off (--save '',
 * --appendonly no) and no output-buffer limit for pub/sub clients
 * (client-output-buffer-limit pubsub 0 0 0), so a slow subscriber is
 * buffered instead of disconnected: Redis loses nothing and is measured as
 * a reliable transport (the memory it buffers is its way of keeping up).
 * The server is stopped after the run.  Its CPU time is the broker's part
 * of the cost per message (broker_cpu_ns).
 *
 * The publisher pipelines: flat out it keeps up to WINDOW PUBLISH
 * commands in flight; paced, each goes out at once.  Replies are read
 * without blocking (poll first), so a paced publisher never waits a round
 * trip inside its send call.  A subscriber reads whatever has arrived and
 * parses it with hiredis's reader.
 *
 * Built only by `make bench-peers`; loaded by ringcast bench.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "bench_transport.h"

#define WINDOW 256         /* PUBLISH commands in flight, flat out */
#define FLUSH_BYTES 65536  /* ... or this much queued, whichever first */
#define BATCH 1024         /* messages one sub_recv() hands over at most */

struct rserver {
	pid_t pid;
	int port;
};

struct rconn {
	struct bench_env *env;
	redisContext *c;
	char channel[64];
	unsigned pending;  /* publisher: replies not read yet */
	unsigned queued;   /* publisher: commands appended and not written */
};

/* ---- the server ---- */

static int free_port(struct bench_env *env)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -errno;

	/* The kernel's choice; the small race until redis binds it is what every test harness lives with. */
	if (fd >= 0) {
		if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) && !getsockname(fd, (struct sockaddr *)&sa, &len))
			port = ntohs(sa.sin_port);
		else
			port = -errno;
		close(fd);
	}
	if (port < 0)
		bench_env_err(env, "finding a free port on 127.0.0.1");
	return port;
}

static redisContext *connect_to(struct bench_env *env)
{
	const struct rserver *srv = env->priv;
	redisContext *c = redisConnectWithTimeout("127.0.0.1", srv->port, (struct timeval){ 5, 0 });

	if (!c || c->err) {
		bench_env_err(env, "connecting to redis-server on 127.0.0.1:%d: %s", srv->port,
			      c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	return c;
}

static void rteardown(struct bench_env *env)
{
	struct rserver *srv = env->priv;
	int status;

	if (!srv)
		return;
	if (srv->pid > 0) {
		kill(srv->pid, SIGTERM);
		/* No persistence, so it stops at once; if not, it is not worth waiting for. */
		for (int i = 0; i < 200 && waitpid(srv->pid, &status, WNOHANG) == 0; i++)
			nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
		if (kill(srv->pid, SIGKILL) == 0)
			waitpid(srv->pid, &status, 0);
	}
	free(srv);
	env->priv = NULL;
}

static int rsetup(struct bench_env *env)
{
	struct rserver *srv = calloc(1, sizeof(*srv));
	char port[16], log[160];
	redisContext *c = NULL;
	pid_t parent = getpid();

	if (!srv) {
		bench_env_err(env, "allocating");
		return -ENOMEM;
	}
	env->priv = srv;
	srv->port = free_port(env);
	if (srv->port < 0)
		goto fail;
	snprintf(port, sizeof(port), "%d", srv->port);
	snprintf(log, sizeof(log), "%s/redis.log", env->dir);
	srv->pid = fork();
	if (srv->pid < 0) {
		bench_env_err(env, "fork");
		goto fail;
	}
	if (srv->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port, "--dir", env->dir,
		       "--save", "", "--appendonly", "no", "--client-output-buffer-limit", "pubsub 0 0 0",
		       "--daemonize", "no", "--loglevel", "warning", (char *)NULL);
		_exit(127);
	}
	/* Up when it answers PING. */
	while (bench_now_ns() < env->deadline_ns) {
		int status;

		if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
			srv->pid = 0;
			bench_env_err(env, "redis-server exited at start (status %d; is it installed? make bench-peers "
				      "installs it; see %s)", status, log);
			goto fail;
		}
		c = redisConnectWithTimeout("127.0.0.1", srv->port, (struct timeval){ 1, 0 });
		if (c && !c->err) {
			redisReply *r = redisCommand(c, "PING");
			bool up = r && r->type == REDIS_REPLY_STATUS;

			freeReplyObject(r);
			redisFree(c);
			if (up)
				return 0;
		} else {
			redisFree(c);
		}
		nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
	}
	bench_env_err(env, "redis-server on 127.0.0.1:%d did not answer in time", srv->port);
fail:
	rteardown(env);
	return -EIO;
}

static uint64_t rbroker_cpu_ns(struct bench_env *env)
{
	const struct rserver *srv = env->priv;
	struct timespec ts;
	clockid_t id;

	if (!srv || srv->pid <= 0 || clock_getcpuclockid(srv->pid, &id) || clock_gettime(id, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- connections ---- */

static void rclose(void *p)
{
	struct rconn *r = p;

	redisFree(r->c);
	free(r);
}

static int ropen(struct bench_env *env, struct rconn **out)
{
	struct rconn *r = calloc(1, sizeof(*r));

	if (!r) {
		bench_env_err(env, "allocating");
		return -ENOMEM;
	}
	r->env = env;
	/* Per run: a subscriber left over from another run can never count as attached. */
	snprintf(r->channel, sizeof(r->channel), "ringcast.bench.%s", env->run_id);
	r->c = connect_to(env);
	if (!r->c) {
		free(r);
		return -ECONNREFUSED;
	}
	*out = r;
	return 0;
}

static int rerr(struct rconn *r, const char *what)
{
	bench_env_err(r->env, "%s: %s", what, r->c->errstr[0] ? r->c->errstr : "protocol error");
	return -EIO;
}

/* Read what has arrived (waiting up to timeout_ms for something), without ever blocking longer. */
static int read_some(struct rconn *r, int timeout_ms)
{
	struct pollfd pf = { .fd = r->c->fd, .events = POLLIN };
	int n = poll(&pf, 1, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	/* Readable: this read() returns at once, even on a blocking socket. */
	return redisBufferRead(r->c) == REDIS_OK ? 1 : rerr(r, "reading");
}

/* ---- publisher ---- */

static int rpub_open(struct bench_env *env, unsigned pub, void **out)
{
	return ropen(env, (struct rconn **)out);
}

static int rpub_wait_subs(void *p)
{
	struct rconn *r = p;

	for (;;) {
		redisReply *rep = redisCommand(r->c, "PUBSUB NUMSUB %s", r->channel);
		long long subs = -1;

		if (!rep)
			return rerr(r, "PUBSUB NUMSUB");
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_INTEGER)
			subs = rep->element[1]->integer;
		freeReplyObject(rep);
		if (subs >= (long long)r->env->subs)
			return 0;
		if (bench_now_ns() >= r->env->deadline_ns) {
			bench_env_err(r->env, "only %lld of %u subscribers subscribed", subs, r->env->subs);
			return -ETIMEDOUT;
		}
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

/* Take the replies that have been parsed; each is the receiver count of one PUBLISH. */
static int take_replies(struct rconn *r)
{
	void *rep;

	while (r->pending) {
		if (redisGetReplyFromReader(r->c, &rep) != REDIS_OK)
			return rerr(r, "PUBLISH reply");
		if (!rep)
			break;
		if (((redisReply *)rep)->type == REDIS_REPLY_ERROR) {
			bench_env_err(r->env, "PUBLISH: %s", ((redisReply *)rep)->str);
			freeReplyObject(rep);
			return -EIO;
		}
		freeReplyObject(rep);
		r->pending--;
	}
	return 0;
}

static int rpub_send(void *p, const void *buf, size_t len, bool more)
{
	struct rconn *r = p;
	int done = 0, err;

	if (redisAppendCommand(r->c, "PUBLISH %s %b", r->channel, buf, len) != REDIS_OK)
		return rerr(r, "PUBLISH");
	r->pending++;
	r->queued++;
	if (more && r->queued < WINDOW && sdslen(r->c->obuf) < FLUSH_BYTES)
		return 0;
	/* A blocking socket: this writes everything, waiting while the server is behind. */
	while (!done)
		if (redisBufferWrite(r->c, &done) != REDIS_OK)
			return rerr(r, "writing");
	r->queued = 0;
	/* Collect replies; flat out, hold at most WINDOW in flight (the server's input is bounded). */
	do {
		err = read_some(r, r->pending > WINDOW ? 1000 : 0);
		if (err < 0)
			return err;
		err = take_replies(r);
		if (err)
			return err;
	} while (r->pending > WINDOW);
	return 0;
}

/* ---- subscriber ---- */

static int rsub_open(struct bench_env *env, unsigned sub, void **out)
{
	struct rconn *r;
	redisReply *rep;
	int err = ropen(env, &r);

	if (err)
		return err;
	/* The reply confirms the subscription: from here on every PUBLISH reaches us. */
	rep = redisCommand(r->c, "SUBSCRIBE %s", r->channel);
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(rep);
		err = rerr(r, "SUBSCRIBE");
		rclose(r);
		return err;
	}
	freeReplyObject(rep);
	*out = r;
	return 0;
}

/* Hand over the parsed messages ("message", channel, payload).  The count, or a negative errno. */
static int take_messages(struct rconn *r, bench_rx_fn fn, void *ctx, bool *stop)
{
	redisReply *rep;
	void *v;
	int n = 0;

	while (n < BATCH && !*stop) {
		if (redisGetReplyFromReader(r->c, &v) != REDIS_OK)
			return rerr(r, "parsing");
		if (!v)
			break;
		rep = v;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && rep->element[2]->type == REDIS_REPLY_STRING &&
		    !strcmp(rep->element[0]->str, "message")) {
			*stop = fn(ctx, rep->element[2]->str, rep->element[2]->len, 0, 0) != 0;
			n++;
		}
		freeReplyObject(rep);
	}
	return n;
}

static int rsub_recv(void *p, int timeout_ms, bench_rx_fn fn, void *ctx)
{
	struct rconn *r = p;
	bool stop = false;
	int n, err;

	n = take_messages(r, fn, ctx, &stop);
	if (n)
		return n;
	err = read_some(r, timeout_ms);
	if (err <= 0)
		return err;
	return take_messages(r, fn, ctx, &stop);
}

const struct bench_transport bench_transport = {
	.abi = BENCH_TRANSPORT_ABI,
	.name = "redis",
	.what = "Redis PUBLISH/SUBSCRIBE, a private redis-server on 127.0.0.1",
	.setup = rsetup,
	.teardown = rteardown,
	.broker_cpu_ns = rbroker_cpu_ns,
	.pub_open = rpub_open,
	.pub_wait_subs = rpub_wait_subs,
	.pub_send = rpub_send,
	.pub_close = rclose,
	.sub_open = rsub_open,
	.sub_recv = rsub_recv,
	.sub_close = rclose,
};
