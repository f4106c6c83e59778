/* SPDX-License-Identifier: MIT */
/*
 * ringcast bench: finding a transport.  ringcast and uds are built in;
 * the peers are modules, NAME.so in $RINGCAST_BENCH_PEERS or else in
 * bench-peers/ next to this program, loaded once and kept.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define CMD "bench"

extern const struct bench_transport bench_transport_ringcast;
extern const struct bench_transport bench_transport_uds;

static const struct bench_transport *const builtin[] = { &bench_transport_ringcast, &bench_transport_uds };

static struct {
	char name[16];
	const struct bench_transport *tr;
} loaded[BENCH_TRANSPORTS_MAX];

/* Directory of the peer modules into buf; false if it cannot be known. */
static bool peers_dir(char *buf, size_t len)
{
	const char *env = getenv("RINGCAST_BENCH_PEERS");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return true;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = '\0';
	return (size_t)snprintf(buf, len, "%.*s/bench-peers", (int)(len - 16), exe) < len;
}

static const struct bench_transport *load(const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	const struct bench_transport *tr;
	void *h;

	if (!peers_dir(dir, sizeof(dir))) {
		cli_error(CMD, -errno, "cannot find the bench-peers directory (set RINGCAST_BENCH_PEERS)");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s.so", dir, name);
	if (access(path, R_OK)) {
		cli_error(CMD, 0, "transport %s: %s is missing: build the peers with `make bench-peers` (it "
			  "installs their libraries) or point RINGCAST_BENCH_PEERS at them", name, path);
		return NULL;
	}
	/* RTLD_NOW: a missing library symbol fails here, not in the middle of a run. */
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		cli_error(CMD, 0, "transport %s: %s", name, dlerror());
		return NULL;
	}
	tr = dlsym(h, "bench_transport");
	if (!tr || tr->abi != BENCH_TRANSPORT_ABI || !tr->name || strcmp(tr->name, name)) {
		cli_error(CMD, 0, "transport %s: %s is not a bench transport of this build (rebuild it: make "
			  "bench-peers)", name, path);
		dlclose(h);
		return NULL;
	}
	return tr;
}

const struct bench_transport *bench_transport_get(const char *name)
{
	unsigned i;

	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (!strcmp(builtin[i]->name, name))
			return builtin[i];
	for (i = 0; i < BENCH_TRANSPORTS_MAX && loaded[i].tr; i++)
		if (!strcmp(loaded[i].name, name))
			return loaded[i].tr;
	if (i == BENCH_TRANSPORTS_MAX || strlen(name) >= sizeof(loaded[i].name)) {
		cli_error(CMD, -E2BIG, "transport %s", name);
		return NULL;
	}
	loaded[i].tr = load(name);
	if (loaded[i].tr)
		snprintf(loaded[i].name, sizeof(loaded[i].name), "%s", name);
	return loaded[i].tr;
}
