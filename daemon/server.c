/* SPDX-License-Identifier: MIT */
/*
 * The control server's listening socket (see server.h): set up, accept
 * with one multishot io_uring accept, torn down at shutdown.  What happens
 * on a connection is conn.c's and requests.c's business.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "config.h"
#include "log.h"
#include "registry.h"
#include "reclaim.h"
#include "server.h"

static void accept_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags);

static int accept_arm(struct rcd_server *srv)
{
	return rcd_loop_accept(srv->loop, &srv->accept_op, srv->listen_fd);
}

static void retry_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags)
{
	struct rcd_server *srv = op->ctx;

	if (!srv->stopping && !srv->accept_op.armed)
		accept_arm(srv);
}

static int tick_arm(struct rcd_server *srv)
{
	return rcd_loop_timeout(srv->loop, &srv->tick_op, &srv->tick_ts, !srv->tick_oneshot);
}

static void tick_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags)
{
	struct rcd_server *srv = op->ctx;

	if (res == -EINVAL && !srv->tick_oneshot) {
		srv->tick_oneshot = true; /* kernel before 6.4: re-arm by hand */
	} else if (res != -ETIME && res != -ECANCELED && res != 0) {
		loop->errors++;
		rcd_warn(srv->log, "connection timer: %s", strerror(-res));
	}
	if (srv->stopping)
		return;
	if (res == -ETIME) {
		uint64_t now = rcd_now_ns();

		rcd_clients_tick(srv, now);
		rcd_reclaim_tick(srv, now);
	}
	if (!(flags & RCD_OP_MORE) && tick_arm(srv) < 0)
		rcd_err(srv->log, "cannot re-arm the connection timer: silent connections stay");
}

static void accept_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags)
{
	struct rcd_server *srv = op->ctx;

	if (res >= 0) {
		if (srv->stopping)
			close(res);
		else
			rcd_client_new(srv, res);
	} else if (res != -ECANCELED) {
		loop->errors++;
		rcd_warn(srv->log, "accept: %s", strerror(-res));
	}
	if ((flags & RCD_OP_MORE) || srv->stopping)
		return;
	/* The multishot accept ended.  After an error (out of fds, say)
	 * wait a little instead of failing again at once, in a loop. */
	if (res < 0)
		rcd_loop_timeout(loop, &srv->retry_op, &srv->retry_ts, false);
	else
		accept_arm(srv);
}

/*
 * Is a daemon listening at path?  1 yes, 0 no (nothing answers: a stale
 * file), negative errno if we cannot tell.
 */
static int probe(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), ret;

	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (ret == 0 || errno == EAGAIN) /* EAGAIN: listening, backlog full */
		ret = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		ret = 0;
	else
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * probe(), but a "yes" must last: a daemon killed a moment ago may still
 * listen for some milliseconds, as the kernel closes a dead process's
 * io_uring, and the socket with it, after the exit.  A restart right
 * after a kill -9 must not fail on that.  Looks for up to a second.
 */
static int probe_settled(const struct sockaddr_un *sa)
{
	int ret, i;

	for (i = 0; (ret = probe(sa)) == 1 && i < 20; i++)
		nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	return ret;
}

/*
 * bind() with the socket file born with mode: bind creates it with the
 * mode of the socket's inode less the umask, so the umask is the mode's
 * complement while bind runs.  A chmod() of the path afterwards would
 * follow a symlink put there in between, and leave a window in which the
 * file has the default mode.  The daemon has one thread: nothing else
 * creates a file while the umask is changed.
 */
static int bind_with_mode(int fd, const struct sockaddr_un *sa, uint32_t mode)
{
	mode_t old = umask(~mode & 0777);
	int ret = bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? -errno : 0;

	umask(old);
	return ret;
}

/*
 * Give the socket the group RCD_DEFAULT_GROUP when it exists, so that its
 * members may connect through the group bits of socket-mode.  Without the
 * group the socket keeps the daemon's own group (log line).  A daemon that
 * may not give the file that group (not root, not a member) keeps its own
 * group too: fewer users get in, never more.  Called before listen(), so
 * nobody connects while the file still has the daemon's group.  0 or
 * negative errno.
 */
static int set_group(struct rcd_server *srv, const char *path)
{
	const struct rcd_config *cfg = srv->cfg;
	/* only when the group bits let in someone the other bits do not */
	bool matters = (cfg->socket_mode & 070) & ~((cfg->socket_mode & 07) << 3);
	int ret;

	if (!cfg->have_group) {
		if (matters)
			rcd_info(srv->log, "no group '%s': socket %s is mode %04o with the daemon's "
				 "own group (gid %u); groupadd --system %s and restart to let its "
				 "members connect", RCD_DEFAULT_GROUP, path, cfg->socket_mode,
				 (unsigned)getegid(), RCD_DEFAULT_GROUP);
		return 0;
	}
	if (fchownat(AT_FDCWD, path, (uid_t)-1, cfg->group, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno == EPERM) {
		if (matters)
			rcd_info(srv->log, "cannot give socket %s the group '%s' (not root, not a "
				 "member): it keeps the daemon's group (gid %u)", path,
				 RCD_DEFAULT_GROUP, (unsigned)getegid());
		return 0;
	}
	ret = -errno;
	rcd_err(srv->log, "cannot give socket %s the group '%s': %s", path, RCD_DEFAULT_GROUP,
		strerror(-ret));
	return ret;
}

int rcd_server_open(struct rcd_server *srv, struct rcd_loop *loop, struct rcd_registry *reg,
		    struct rcd_duties *duties, const struct rcd_config *cfg, struct rcd_log *log)
{
	const char *path = cfg->socket_path;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *dir, *slash;
	struct stat st;
	int ret;

	memset(srv, 0, offsetof(struct rcd_server, scratch));
	srv->loop = loop;
	srv->reg = reg;
	srv->duties = duties;
	srv->cfg = cfg;
	srv->log = log;
	srv->listen_fd = -1;
	srv->retry_ts.tv_nsec = 100000000; /* 100 ms */
	srv->tick_ts.tv_nsec = RCD_CLIENT_TICK_NS;
	rcd_op_init(&srv->accept_op, accept_cb, srv);
	rcd_op_init(&srv->retry_op, retry_cb, srv);
	rcd_op_init(&srv->tick_op, tick_cb, srv);

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
		rcd_err(log, "socket path '%s' is empty or over %zu bytes", path ? path : "",
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	ret = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		ret = rcd_mkdirs(dir, 0755);
		if (ret < 0)
			rcd_err(log, "cannot create %s: %s", dir, strerror(-ret));
	}
	free(dir);
	if (ret < 0)
		return ret;

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			rcd_err(log, "%s exists and is not a socket; not touching it", path);
			return -EEXIST;
		}
		ret = probe_settled(&sa);
		if (ret == 1) {
			rcd_err(log, "another ringcastd is listening on %s", path);
			return -EADDRINUSE;
		}
		if (ret < 0) {
			rcd_err(log, "cannot tell whether a daemon listens on %s: %s", path,
				strerror(-ret));
			return ret;
		}
		rcd_info(log, "removing stale socket %s", path);
		if (unlink(path) < 0 && errno != ENOENT) {
			ret = -errno;
			rcd_err(log, "cannot remove stale socket %s: %s", path, strerror(-ret));
			return ret;
		}
	}
	srv->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		ret = -errno;
		rcd_err(log, "socket(AF_UNIX, SOCK_SEQPACKET): %s", strerror(-ret));
		return ret;
	}
	ret = bind_with_mode(srv->listen_fd, &sa, cfg->socket_mode);
	if (ret < 0) {
		rcd_err(log, "cannot bind %s: %s", path, strerror(-ret));
		goto fail;
	}
	/* What we bound, never a file someone put there since: no symlink followed. */
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
		ret = -EPERM;
		rcd_err(log, "%s is not the socket just bound (replaced?); stopping", path);
		goto fail;
	}
	srv->sock_dev = st.st_dev;
	srv->sock_ino = st.st_ino;
	ret = set_group(srv, path);
	if (ret < 0)
		goto fail_unlink;
	if (listen(srv->listen_fd, SOMAXCONN) < 0) {
		ret = -errno;
		rcd_err(log, "cannot listen on %s: %s", path, strerror(-ret));
		goto fail_unlink;
	}
	return 0;
fail_unlink:
	unlink(path);
fail:
	close(srv->listen_fd);
	srv->listen_fd = -1;
	return ret;
}

int rcd_server_start(struct rcd_server *srv)
{
	int ret = tick_arm(srv);

	return ret < 0 ? ret : accept_arm(srv);
}

void rcd_server_stop(struct rcd_server *srv)
{
	srv->stopping = true;
	rcd_loop_cancel(srv->loop, &srv->accept_op);
	rcd_loop_cancel(srv->loop, &srv->retry_op);
	rcd_loop_cancel(srv->loop, &srv->tick_op);
}

void rcd_server_close(struct rcd_server *srv)
{
	struct stat st;

	/* The listener first: a client that sees its connection close and
	 * reconnects at once must not land in this dying daemon's backlog. */
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		srv->listen_fd = -1;
		/* Unlink only our own socket: a second daemon may have
		 * replaced the path (after removing it as stale). */
		if (lstat(srv->cfg->socket_path, &st) == 0 && st.st_dev == srv->sock_dev &&
		    st.st_ino == srv->sock_ino)
			unlink(srv->cfg->socket_path);
	}
	/* The loop is gone: no operation will complete into a client now. */
	while (srv->clients) {
		struct rcd_client *c = srv->clients;

		c->recv_op.armed = c->send_op.armed = false;
		rcd_client_free(c);
	}
}
