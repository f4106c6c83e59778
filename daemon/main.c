/* SPDX-License-Identifier: MIT */
/*
 * ringcastd: set up (config, runtime directory and rings, listening
 * socket), run the io_uring loop, shut down cleanly on SIGTERM/SIGINT.
 *
 * Exit codes: 0 after a clean shutdown (or --help/--version), 1 when
 * setting up fails, with a one-line reason naming the path and the errno.
 *
 * Signals are blocked and read from a signalfd through the loop, so a
 * signal is just another completion: no handler runs in the middle of a
 * callback.  SIGPIPE is ignored (sends use MSG_NOSIGNAL anyway).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "duties.h"
#include "keeper.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "server.h"

#define RING_ENTRIES 256

struct daemon {
	struct rcd_config cfg;
	struct rcd_log log;
	struct rcd_loop loop;
	struct rcd_registry reg;
	struct rcd_duties duties;
	struct rcd_server srv;
	int sigfd;
	struct rcd_op sig_op;
	struct signalfd_siginfo si;
};

static void sig_arm(struct daemon *d)
{
	if (rcd_loop_read(&d->loop, &d->sig_op, d->sigfd, &d->si, sizeof(d->si)) < 0)
		rcd_err(&d->log, "cannot watch for signals: SIGTERM will not stop the daemon");
}

static void sig_cb(struct rcd_loop *loop, struct rcd_op *op, int res, unsigned flags)
{
	struct daemon *d = op->ctx;

	if (res != (int)sizeof(d->si)) {
		loop->errors++;
		rcd_warn(&d->log, "signalfd read: %s", res < 0 ? strerror(-res) : "short read");
		if (!loop->stop)
			sig_arm(d);
		return;
	}
	switch (d->si.ssi_signo) {
	case SIGTERM:
	case SIGINT:
		rcd_info(&d->log, "%s: shutting down",
			 d->si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		rcd_server_stop(&d->srv);
		rcd_duties_stop(&d->duties);
		rcd_loop_stop(loop);
		return;
	case SIGHUP:
		rcd_info(&d->log, "SIGHUP: reloading the config is not supported yet; restart "
			 "the daemon instead (clients resume their slots)");
		break;
	}
	sig_arm(d);
}

/* Block the signals we read through the loop; ignore SIGPIPE. */
static int setup_signals(struct daemon *d)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	d->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	return d->sigfd < 0 ? -errno : 0;
}

/* Every client holds a socket, and every topic two fds: allow many. */
static void raise_fd_limit(struct rcd_log *log)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rcd_debug(log, "cannot raise the fd limit: %m");
	}
}

static void summary(struct daemon *d)
{
	rcd_info(&d->log,
		 "stopped: %llu connections, %llu requests (%llu bad), %zu topics, "
		 "%llu publisher repairs, %llu untethered, orphans %llu resumed / %llu reaped, "
		 "%llu loop errors, %llu errors and %llu warnings logged",
		 (unsigned long long)d->srv.accepted, (unsigned long long)d->srv.requests,
		 (unsigned long long)d->srv.bad_requests, d->reg.ntopics,
		 (unsigned long long)d->duties.repaired, (unsigned long long)d->duties.untethered,
		 (unsigned long long)d->duties.resumed, (unsigned long long)d->duties.reaped,
		 (unsigned long long)d->loop.errors, (unsigned long long)d->log.errors,
		 (unsigned long long)d->log.warnings);
}

static struct daemon the_daemon; /* big (reply scratch): not on the stack */

int main(int argc, char **argv)
{
	struct daemon *d = &the_daemon;
	size_t node_len;
	int ret;

	if (argc > 1 && !strcmp(argv[1], RCD_KEEPER_ARG))
		return rcd_keeper_main(argc, argv);
	d->sigfd = -1;
	ret = rcd_config_defaults(&d->cfg);
	if (ret < 0) {
		fprintf(stderr, "ringcastd: error: cannot set up defaults: %s\n", strerror(-ret));
		return 1;
	}
	ret = rcd_config_from_args(&d->cfg, argc, argv);
	if (ret) {
		rcd_config_free(&d->cfg);
		return ret == 1 ? 0 : 1; /* 1: --help or --version printed */
	}
	rcd_log_init(&d->log, d->cfg.log_level);
	node_len = d->cfg.node ? strlen(d->cfg.node) : 0;
	if (node_len == 0 || node_len > RC_PROTO_NODE_MAX) {
		rcd_err(&d->log, "node name must be 1 to %d bytes", RC_PROTO_NODE_MAX);
		goto fail_cfg;
	}
	ret = setup_signals(d);
	if (ret < 0) {
		rcd_err(&d->log, "cannot set up signal handling: %s", strerror(-ret));
		goto fail_cfg;
	}
	raise_fd_limit(&d->log);
	ret = rcd_loop_init(&d->loop, &d->log, RING_ENTRIES);
	if (ret < 0) {
		rcd_err(&d->log, "cannot set up io_uring: %s", strerror(-ret));
		goto fail_cfg;
	}
	/*
	 * The socket first: "another ringcastd is listening" is the clearest
	 * reason to stop.  Nothing is accepted before rcd_server_start(), so
	 * a client that connects early waits in the backlog until the rings
	 * are adopted and their orphans recorded.
	 */
	if (rcd_server_open(&d->srv, &d->loop, &d->reg, &d->duties, &d->cfg, &d->log) < 0)
		goto fail_loop; /* logged, with the path */
	if (rcd_registry_open(&d->reg, &d->cfg, &d->log) < 0)
		goto fail_srv_open; /* logged, with the path */
	if (rcd_duties_init(&d->duties, &d->loop, &d->reg, &d->cfg, &d->log) < 0) {
		rcd_err(&d->log, "out of memory recording the previous daemon's slots");
		goto fail_duties;
	}

	rcd_info(&d->log, "node '%s', socket %s, runtime dir %s (%zu topics adopted, %u skipped), "
		 "daemon generation %llu", d->cfg.node, d->cfg.socket_path, d->cfg.runtime_dir,
		 d->reg.ntopics, d->reg.skipped, (unsigned long long)d->reg.gen);
	if (d->cfg.cluster)
		rcd_warn(&d->log, "cluster link (--cluster %s) is not implemented yet; "
			 "running as a single node", d->cfg.cluster);
	else
		rcd_info(&d->log, "cluster link off (no --cluster): single node");

	rcd_op_init(&d->sig_op, sig_cb, d);
	sig_arm(d);
	if (rcd_duties_start(&d->duties) < 0 || rcd_server_start(&d->srv) < 0) {
		rcd_err(&d->log, "cannot start the event loop");
		goto fail_srv;
	}
	rcd_registry_announce(&d->reg);
	/*
	 * A client learns of a new daemon when it next looks at daemon_gen.
	 * One asleep in ringcast_wait() on a quiet topic would not look
	 * before the reap grace ends: ring the adopted subscribers' bells.
	 */
	rcd_duties_wake_orphans(&d->duties);
	ret = rcd_loop_run(&d->loop);
	if (ret < 0)
		rcd_err(&d->log, "event loop failed: %s", strerror(-ret));

	rcd_loop_exit(&d->loop);
	rcd_server_close(&d->srv);
	summary(d);
	rcd_duties_free(&d->duties);
	rcd_registry_close(&d->reg);
	close(d->sigfd);
	rcd_config_free(&d->cfg);
	return ret < 0 ? 1 : 0;

fail_srv:
	rcd_loop_exit(&d->loop);
	rcd_server_close(&d->srv);
	rcd_duties_free(&d->duties);
	rcd_registry_close(&d->reg);
	goto fail_cfg;
fail_duties:
	rcd_duties_free(&d->duties);
	rcd_registry_close(&d->reg);
fail_srv_open:
	rcd_server_close(&d->srv);
fail_loop:
	rcd_loop_exit(&d->loop);
fail_cfg:
	if (d->sigfd >= 0)
		close(d->sigfd);
	rcd_config_free(&d->cfg);
	return 1;
}
