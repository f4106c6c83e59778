// SPDX-License-Identifier: MIT
/*
 * Pages of a shared file that a client cut out (sigbus.h): the handler
 * that keeps the daemon alive through the fault, and the tick's work on
 * what it flagged.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "registry.h"
#include "sigbus.h"

/*
 * The registry the SIGBUS handler searches.  A handler gets no context
 * pointer, so this one global is unavoidable; it is set while a registry
 * is open and read only by the handler.
 */
static struct rcd_registry *sigbus_reg;

static bool in_map(uintptr_t a, const void *base, size_t len)
{
	return base && a >= (uintptr_t)base && a - (uintptr_t)base < len;
}

/*
 * Cover the page holding address a with a private anonymous page, so the
 * faulting access completes (reads zeros, writes stay ours).  mmap is a
 * plain system call here (glibc's wrapper keeps no state), so it is as
 * safe in a handler as fallocate.  true if mapped.
 */
static bool stand_in(uintptr_t a, size_t page_size)
{
	void *page = (void *)(a & ~(uintptr_t)(page_size - 1));

	return mmap(page, page_size, PROT_READ | PROT_WRITE,
		    MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED;
}

/*
 * A fault on a page of a shared file that has none: a client truncated
 * the file or punched a hole in it, and tmpfs has no page to give (a
 * hole alone is filled on access; a full tmpfs cannot).  Restore the
 * file (fallocate reserves every page up to its size) and return; the
 * faulting instruction runs again and reads zeros.  When the file cannot
 * be restored (the runtime directory is full, perhaps filled by a client
 * on purpose), a private page stands in for the lost one in our mapping
 * and the topic (or the bells page) is flagged for the tick; dying here
 * would only fault again at the next start, on the same page.
 * Everything here is async-signal-safe: we only read our own lists
 * (never changed while shared memory is being touched) and make system
 * calls.
 */
static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	static const char msg[] = "ringcastd: error: SIGBUS outside the topic files\n";
	struct rcd_registry *reg = sigbus_reg;
	uintptr_t a = (uintptr_t)si->si_addr;
	volatile sig_atomic_t *flag = NULL, *lost = NULL;
	struct rcd_topic *t;
	int fd = -1, saved = errno;
	off_t size = 0;

	for (t = reg ? reg->first : NULL; t && fd < 0; t = t->next) {
		if (in_map(a, t->ring.hdr, t->ring.ring_len)) {
			fd = t->ring_fd;
			size = (off_t)t->ring.ring_len;
		} else if (in_map(a, t->ring.ctl, RC_CTL_SIZE)) {
			fd = t->ctl_fd;
			size = (off_t)RC_CTL_SIZE;
		}
		flag = &t->truncated;
		lost = &t->lost_page;
	}
	if (fd < 0 && reg && in_map(a, reg->bells, RC_BELLS_SIZE)) {
		fd = reg->bells_fd;
		size = (off_t)RC_BELLS_SIZE;
		flag = &reg->bells_truncated;
		lost = &reg->bells_lost[(a - (uintptr_t)reg->bells) / reg->page_size];
	}
	if (fd < 0)
		lost = NULL;
	if (fd >= 0 && fallocate(fd, 0, 0, size) == 0) {
		*flag = 1;
		errno = saved;
		return;
	}
	/*
	 * While the registry opens, the file being adopted is mapped by
	 * library code that does not tell us where; a fault on a missing
	 * page of a file (BUS_ADRERR) is that file's.  Its adoption sees
	 * start_lost and refuses it.
	 */
	if (!lost && reg && reg->starting && si->si_code == BUS_ADRERR)
		lost = &reg->start_lost;
	if (lost && stand_in(a, reg->page_size)) {
		*lost = 1;
		errno = saved;
		return;
	}
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing more we can say */
	}
	/* Returning with the default action re-faults: die with a core. */
	signal(SIGBUS, SIG_DFL);
	errno = saved;
}

void rcd_sigbus_uninstall(struct rcd_registry *reg)
{
	if (sigbus_reg != reg)
		return;
	signal(SIGBUS, SIG_DFL);
	sigbus_reg = NULL;
}

int rcd_sigbus_install(struct rcd_registry *reg)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	reg->page_size = (size_t)sysconf(_SC_PAGESIZE);
	sigbus_reg = reg;
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

/*
 * A topic whose mapping holds a stand-in page: our view of it is no
 * longer the clients', and new clients would fault on the page.  Stop
 * serving it (SUBSCRIBE, PUB_OPEN and STAT check retired), and unlink its
 * files so that no later daemon adopts the damaged ring: after a restart
 * the name gets a new one.  The mapping stays, so every pointer into it
 * (clients' slots, orphans) stays valid; what the daemon still does with
 * it (release slots, untether, repair) touches only its own copy of the
 * lost page, and helps the clients still on the other pages.
 */
static void retire(struct rcd_registry *reg, struct rcd_topic *t)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];

	t->retired = true;
	rcd_registry_unlink_files(reg, t->file);
	rcd_err(reg->log, "retired topic '%s' (%s): a page of its files is gone (truncated or "
		"punched out by a client) and %s has no room to restore it. New clients are "
		"refused, stat no longer shows it, and its files are removed: after a restart the "
		"topic gets a new ring", rcd_escape(t->name, t->len, esc, sizeof(esc)), t->file,
		reg->cfg->runtime_dir);
}

/* Bells of lost bells pages: the clients that hold them are not woken by us, and no one else gets them. */
static void bells_check_lost(struct rcd_registry *reg)
{
	const size_t first = offsetof(struct rc_bells_hdr, bells), each = sizeof(struct rc_bell);
	size_t i, ps = reg->page_size;

	for (i = 0; i < RCD_BELLS_PAGES_MAX; i++) {
		size_t lo, hi, b;

		if (!reg->bells_lost[i])
			continue;
		reg->bells_lost[i] = 0; /* a stand-in never faults again */
		lo = i * ps <= first ? 0 : (i * ps - first + each - 1) / each;
		hi = ((i + 1) * ps - first) / each; /* first bell of the next page */
		if (hi > RC_BELLS)
			hi = RC_BELLS;
		for (b = lo; b < hi; b++)
			reg->bell_dead[b / 8] |= (uint8_t)(1u << (b % 8));
		if (i == 0)
			reg->bells_hdr_lost = true;
		rcd_err(reg->log, "a page of %s/bells is gone (truncated or punched out by a client) "
			"and there is no room to restore it: doorbells %zu..%zu no longer reach their "
			"clients and are not handed out again%s", reg->cfg->runtime_dir, lo, hi - 1,
			i ? "" : "; its header is lost too, so no new client can connect until the "
			"directory has room and the daemon restarts");
	}
}

void rcd_registry_check_truncated(struct rcd_registry *reg)
{
	char esc[RCD_ESCAPED_TOPIC_MAX];
	struct rcd_topic *t;

	if (reg->bells_truncated) {
		reg->bells_truncated = 0;
		rcd_err(reg->log, "a client truncated %s/bells; its size is restored, "
			"its doorbells are lost", reg->cfg->runtime_dir);
		rcd_registry_bells_heal(reg);
	}
	bells_check_lost(reg);
	for (t = reg->first; t; t = t->next) {
		if (t->lost_page && !t->retired)
			retire(reg, t);
		if (!t->truncated)
			continue;
		t->truncated = 0;
		rcd_err(reg->log, "a client truncated the files of '%s' (%s); their size is "
			"restored, their contents are lost", rcd_escape(t->name, t->len, esc,
			sizeof(esc)), t->file);
	}
}
