/* SPDX-License-Identifier: MIT */
/*
 * The keeper process and the daemon's side of its protocol (keeper.h).
 *
 * The keeper is forked twice from the daemon (so it is nobody's child and
 * outlives a daemon killed with SIGKILL), in a session of its own, with
 * every descriptor closed but its listening socket and the runtime
 * directory.  It trusts only a peer of its own uid: the daemon's.  It
 * looks at nothing it holds: it keeps descriptors and hands them back.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "keeper.h"
#include "log.h"
#include "ring_format.h"

int rcd_keeper_decode(const void *buf, size_t len, unsigned nfds, bool truncated,
		      struct rcd_keeper_msg *m)
{
	const char *end;
	bool named, with_fd;

	if (truncated || len != sizeof(*m))
		return -EBADMSG;
	memcpy(m, buf, sizeof(*m));
	if (m->op < RCD_KEEPER_PUT || m->op > RCD_KEEPER_END || m->reserved)
		return -EBADMSG;
	end = memchr(m->name, '\0', sizeof(m->name));
	if (!end)
		return -EBADMSG;
	/* One encoding per message: nothing after the name's NUL. */
	for (const char *p = end; p < m->name + sizeof(m->name); p++)
		if (*p)
			return -EBADMSG;
	named = m->op == RCD_KEEPER_PUT || m->op == RCD_KEEPER_DROP || m->op == RCD_KEEPER_ENTRY;
	with_fd = m->op == RCD_KEEPER_PUT || m->op == RCD_KEEPER_ENTRY;
	if (named != (end != m->name) || nfds != (with_fd ? 1u : 0u))
		return -EBADMSG;
	return 0;
}

#define KEEPER_CONNS 8
#define KEEPER_CHECK_MS 1000

/* Send one message, with fd attached when fd >= 0. */
static int send_msg(int sock, uint32_t op, const char *name, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct rcd_keeper_msg m = { .op = op };
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (name)
		snprintf(m.name, sizeof(m.name), "%s", name);
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(m))
		return errno == EAGAIN ? -EAGAIN : -EPIPE;
	return 0;
}

/*
 * Receive one message and the fd it carries (-1 if none).  0, -EAGAIN
 * (flags had MSG_DONTWAIT), -EPIPE at the end of the stream, or -EBADMSG
 * for a message of the wrong shape (rcd_keeper_decode(); any fd it
 * carried is closed).
 */
static int recv_msg(int sock, struct rcd_keeper_msg *m, int *fd, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	uint8_t raw[sizeof(*m) + 1]; /* one byte more: a longer message shows */
	struct iovec iov = { raw, sizeof(raw) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	ssize_t n;
	int nfds = 0;

	*fd = -1;
	n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : errno == EINTR ? -EINTR : -EPIPE;
	if (n == 0)
		return -EPIPE;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t i, k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds++ == 0)
				*fd = f;
			else
				close(f);
		}
	}
	if (rcd_keeper_decode(raw, (size_t)n, (unsigned)nfds,
			      mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC), m) < 0) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EBADMSG;
	}
	return 0;
}

/*
 * Append (name, fd) to the list v of *n entries, room for *cap.  0, or
 * -ENOMEM with fd closed.  Both sides keep such a list: the keeper what
 * it holds, the daemon what the keeper handed back.
 */
static int kept_append(struct rcd_kept **v, size_t *n, size_t *cap, const char *name, int fd)
{
	if (*n == *cap) {
		size_t more = *cap ? *cap * 2 : 64;
		struct rcd_kept *nv = realloc(*v, more * sizeof(*nv));

		if (!nv) {
			close(fd);
			return -ENOMEM;
		}
		*v = nv;
		*cap = more;
	}
	snprintf((*v)[*n].name, sizeof((*v)[*n].name), "%s", name);
	(*v)[(*n)++].fd = fd;
	return 0;
}

/* ---- the keeper process ---- */

struct held {
	struct rcd_kept *v;
	size_t n, cap;
};

static void held_drop(struct held *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].name, name)) {
			close(h->v[i].fd);
			h->v[i] = h->v[--h->n];
			return;
		}
}

static void held_put(struct held *h, const char *name, int fd)
{
	held_drop(h, name);
	/* Out of memory: the daemon's copy lives on; only a restart loses it. */
	kept_append(&h->v, &h->n, &h->cap, name, fd);
}

/* Handle one message from a daemon; false when the connection is done. */
static bool serve_one(struct held *h, int *conns, size_t self, int flags);

/*
 * Before answering a LIST, take in what every other connection has
 * queued: a daemon that died just after a PUT left it there, and the
 * daemon that follows it must get that file.
 */
static void drain_others(struct held *h, int *conns, size_t self)
{
	size_t i;

	for (i = 0; i < KEEPER_CONNS; i++)
		while (i != self && conns[i] >= 0 && serve_one(h, conns, i, MSG_DONTWAIT))
			;
}

static bool serve_one(struct held *h, int *conns, size_t self, int flags)
{
	struct rcd_keeper_msg m;
	size_t i;
	int fd, ret = recv_msg(conns[self], &m, &fd, flags);

	if (ret == -EAGAIN || ret == -EINTR)
		return false;
	if (ret < 0)
		goto close;
	switch (m.op) {
	case RCD_KEEPER_PUT: /* rcd_keeper_decode(): it came with its fd */
		held_put(h, m.name, fd);
		return true;
	case RCD_KEEPER_DROP:
		held_drop(h, m.name);
		break;
	case RCD_KEEPER_LIST:
		drain_others(h, conns, self);
		for (i = 0; i < h->n; i++)
			if (send_msg(conns[self], RCD_KEEPER_ENTRY, h->v[i].name, h->v[i].fd) < 0)
				goto close;
		if (send_msg(conns[self], RCD_KEEPER_END, NULL, -1) < 0)
			goto close;
		break;
	default:
		goto close;
	}
	if (fd >= 0)
		close(fd);
	return true;
close:
	if (fd >= 0)
		close(fd);
	close(conns[self]);
	conns[self] = -1;
	return false;
}

static void accept_one(int lfd, int *conns)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	size_t i;
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
		close(c);
		return;
	}
	for (i = 0; i < KEEPER_CONNS; i++)
		if (conns[i] < 0) {
			conns[i] = c;
			return;
		}
	close(c);
}

/*
 * Still wanted: the directory is still where it was (not removed, nor its
 * file system unmounted) and its keeper.sock is still ours.
 */
static bool wanted(int dirfd, const char *dir, ino_t sock_ino)
{
	struct stat st, at;

	if (fstat(dirfd, &st) < 0 || st.st_nlink == 0 || stat(dir, &at) < 0 ||
	    at.st_dev != st.st_dev || at.st_ino != st.st_ino)
		return false;
	return fstatat(dirfd, RCD_KEEPER_SOCK, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISSOCK(st.st_mode) && st.st_ino == sock_ino;
}

#define KEEPER_LFD 3
#define KEEPER_DIRFD 4

static volatile sig_atomic_t keeper_stop;

static void on_term(int sig)
{
	(void)sig;
	keeper_stop = 1;
}

/*
 * The node's files are about to go: tell their clients.  A client learns
 * of a new daemon from daemon_gen in the node file it maps; a daemon that
 * starts without us makes a new node file, and the clients of this one
 * would never see its generation move.  So move it here, the one write a
 * keeper ever makes: they reconnect, and the daemon they find gives them
 * the new files.  Release, like the daemon's store (pair #10): clients
 * load it with acquire.
 */
static void retire_node(const struct held *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		struct rc_node_hdr *n;

		if (strcmp(h->v[i].name, "node"))
			continue;
		n = mmap(NULL, RC_NODE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, h->v[i].fd, 0);
		if (n == MAP_FAILED)
			return;
		if (n->magic == RC_NODE_MAGIC)
			atomic_fetch_add_explicit(&n->daemon_gen, 1, memory_order_release);
		munmap(n, RC_NODE_SIZE);
	}
}

int rcd_keeper_main(int argc, char **argv)
{
	struct pollfd pfd[1 + KEEPER_CONNS];
	int conns[KEEPER_CONNS];
	struct held h = { 0 };
	struct rlimit rl;
	const char *dir;
	ino_t sock_ino;
	size_t i;
	int null;

	if (argc != 4)
		return 2;
	sock_ino = (ino_t)strtoull(argv[2], NULL, 10);
	dir = argv[3];
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	prctl(PR_SET_NAME, RCD_KEEPER_NAME, 0, 0, 0);
	{
		/* No SA_RESTART: the poll returns, and the loop retires the node. */
		struct sigaction sa = { .sa_handler = on_term };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (i = 0; i < KEEPER_CONNS; i++)
		conns[i] = -1;
	for (;;) {
		int n;

		pfd[0] = (struct pollfd){ .fd = KEEPER_LFD, .events = POLLIN };
		for (i = 0; i < KEEPER_CONNS; i++)
			pfd[1 + i] = (struct pollfd){ .fd = conns[i], .events = POLLIN };
		n = poll(pfd, 1 + KEEPER_CONNS, KEEPER_CHECK_MS);
		if (keeper_stop || (n == 0 && !wanted(KEEPER_DIRFD, dir, sock_ino))) {
			retire_node(&h);
			_exit(0);
		}
		if (n <= 0)
			continue;
		if (pfd[0].revents)
			accept_one(KEEPER_LFD, conns);
		for (i = 0; i < KEEPER_CONNS; i++)
			if (pfd[1 + i].revents && conns[i] >= 0)
				serve_one(&h, conns, i, MSG_DONTWAIT);
	}
}

/* ---- the daemon's side ---- */

static void sock_path(const struct rcd_keeper *k, struct sockaddr_un *a, socklen_t *len)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* Through the directory we hold, whatever its path's length. */
	snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/%s", k->dirfd,
		 RCD_KEEPER_SOCK);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

/*
 * The new keeper's process: our grandchild (so nobody's child once we
 * exit), in a session of its own, and a new program image.  A fork alone
 * would keep our mappings, the io_uring's rings among them, and with them
 * the ring and every request it holds: our listening socket would outlive
 * us.  It gets its socket and the directory as fds 3 and 4, nothing else
 * of ours (not our lock, above all), and the signal mask cleared (we
 * block signals for a signalfd).
 */
static __attribute__((noreturn)) void exec_keeper(int lfd, int dirfd, ino_t sock_ino,
						   const char *dir)
{
	char ino[24], *argv[] = { RCD_KEEPER_NAME, RCD_KEEPER_ARG, ino, (char *)dir, NULL };
	int l = fcntl(lfd, F_DUPFD, 10), d = fcntl(dirfd, F_DUPFD, 10);
	sigset_t none;

	if (l < 0 || d < 0 || dup2(l, KEEPER_LFD) < 0 || dup2(d, KEEPER_DIRFD) < 0)
		_exit(127);
	close_range(KEEPER_DIRFD + 1, ~0u, 0);
	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	snprintf(ino, sizeof(ino), "%llu", (unsigned long long)sock_ino);
	execv("/proc/self/exe", argv);
	_exit(127);
}

/* A new keeper, listening before we return.  0 or negative errno. */
static int spawn(struct rcd_keeper *k)
{
	struct sockaddr_un a;
	struct stat st;
	socklen_t len;
	mode_t old;
	pid_t pid;
	int lfd, ret;

	sock_path(k, &a, &len);
	unlinkat(k->dirfd, RCD_KEEPER_SOCK, 0);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	old = umask(077); /* the mode is set as it is made, not after */
	ret = bind(lfd, (struct sockaddr *)&a, len);
	umask(old);
	if (ret < 0 || listen(lfd, KEEPER_CONNS) < 0 ||
	    fstatat(k->dirfd, RCD_KEEPER_SOCK, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		if (fork() == 0)
			exec_keeper(lfd, k->dirfd, st.st_ino, k->dir);
		_exit(0);
	}
	close(lfd);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	rcd_info(k->log, "started a keeper for the node's files (%s)", k->path);
	return 0;
fail:
	ret = -errno;
	close(lfd);
	return ret;
}

static int connect_keeper(struct rcd_keeper *k)
{
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_un a;
	struct ucred cred;
	socklen_t len, clen = sizeof(cred);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	sock_path(k, &a, &len);
	if (connect(s, (struct sockaddr *)&a, len) < 0) {
		int ret = -errno;

		close(s);
		return ret;
	}
	/* The directory is ours alone, so this is ours; checked all the same. */
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != geteuid()) {
		close(s);
		return -EPERM;
	}
	/* A keeper that hangs must not hang the daemon's start. */
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	k->sock = s;
	return 0;
}

/* Connect, starting a keeper if none listens.  0 or negative errno. */
static int reach(struct rcd_keeper *k)
{
	int ret = connect_keeper(k);

	/*
	 * -EPERM (its peer is another uid) or -EACCES (we may not even
	 * connect): a socket of another user's, planted while the directory
	 * was open to others.  Not a word is sent to it; ours replaces it.
	 */
	if (ret == -EPERM || ret == -EACCES) {
		rcd_warn(k->log, "%s is not our keeper's (another user's socket); replacing it",
			 k->path);
		ret = -EPERM;
	}
	if (ret == -ENOENT || ret == -ECONNREFUSED || ret == -EPERM) {
		ret = spawn(k);
		if (ret == 0)
			ret = connect_keeper(k);
	}
	return ret;
}

static void free_kept(struct rcd_keeper *k)
{
	size_t i;

	for (i = 0; i < k->nkept; i++)
		if (k->kept[i].fd >= 0)
			close(k->kept[i].fd);
	free(k->kept);
	k->kept = NULL;
	k->nkept = 0;
}

static int list(struct rcd_keeper *k)
{
	size_t cap = 0;
	int ret = send_msg(k->sock, RCD_KEEPER_LIST, NULL, -1);

	while (ret == 0) {
		struct rcd_keeper_msg m;
		int fd;

		ret = recv_msg(k->sock, &m, &fd, 0);
		if (ret < 0)
			break;
		if (m.op == RCD_KEEPER_END)
			return 0;
		if (m.op != RCD_KEEPER_ENTRY) { /* an ENTRY comes with its fd (decode) */
			if (fd >= 0)
				close(fd);
			ret = -EBADMSG;
			break;
		}
		ret = kept_append(&k->kept, &k->nkept, &cap, m.name, fd);
	}
	free_kept(k);
	return ret;
}

int rcd_keeper_open(struct rcd_keeper *k, int dirfd, const char *dir, struct rcd_log *log)
{
	int ret;

	memset(k, 0, sizeof(*k));
	k->sock = -1;
	k->dirfd = dirfd;
	k->log = log;
	snprintf(k->path, sizeof(k->path), "%s/%s", dir, RCD_KEEPER_SOCK);
	snprintf(k->dir, sizeof(k->dir), "%s", dir);
	ret = reach(k);
	if (ret == 0)
		ret = list(k);
	if (ret < 0) {
		rcd_err(log, "cannot reach the keeper of the node's files at %s: %s", k->path,
			strerror(-ret));
		rcd_keeper_close(k);
	}
	return ret;
}

int rcd_keeper_take(struct rcd_keeper *k, const char *name)
{
	size_t i;

	for (i = 0; i < k->nkept; i++)
		if (k->kept[i].fd >= 0 && !strcmp(k->kept[i].name, name)) {
			int fd = k->kept[i].fd;

			k->kept[i].fd = -1;
			return fd;
		}
	return -1;
}

int rcd_keeper_put(struct rcd_keeper *k, const char *name, int fd)
{
	if (k->sock < 0)
		return -EPIPE;
	return send_msg(k->sock, RCD_KEEPER_PUT, name, fd);
}

void rcd_keeper_drop(struct rcd_keeper *k, const char *name)
{
	if (k->sock >= 0)
		send_msg(k->sock, RCD_KEEPER_DROP, name, -1);
}

bool rcd_keeper_lost(struct rcd_keeper *k)
{
	struct pollfd p = { .fd = k->sock, .events = POLLIN };
	int ret;

	/* The keeper never speaks unasked: anything to read is its end. */
	if (k->sock >= 0 && poll(&p, 1, 0) == 0)
		return false;
	if (k->sock >= 0) {
		close(k->sock);
		k->sock = -1;
		rcd_err(k->log, "the keeper of the node's files is gone; starting another");
	}
	ret = reach(k);
	if (ret < 0) {
		rcd_err(k->log, "cannot start a keeper at %s: %s; a restart of the daemon "
			"will not find this node's topics", k->path, strerror(-ret));
		return false;
	}
	return true;
}

void rcd_keeper_close(struct rcd_keeper *k)
{
	free_kept(k);
	if (k->sock >= 0)
		close(k->sock);
	k->sock = -1;
}
