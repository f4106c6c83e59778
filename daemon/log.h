/* SPDX-License-Identifier: MIT */
/*
 * ringcastd's log: one line per event on stderr, "ringcastd: LEVEL: text".
 * systemd's journal adds the timestamp, so we do not.  The state is a
 * struct the caller owns and passes around (no hidden global), and it
 * counts what it printed so the shutdown summary can say how many errors
 * and warnings the run had.
 */
#ifndef RINGCASTD_LOG_H
#define RINGCASTD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum rcd_log_level {
	RCD_LOG_ERROR = -1, /* always printed */
	RCD_LOG_WARN = 0,   /* printed at level 0 (quiet) and up */
	RCD_LOG_INFO = 1,   /* level 1 (default) */
	RCD_LOG_DEBUG = 2,  /* level 2 */
};

struct rcd_log {
	int level;           /* cfg.log_level: 0 quiet .. 2 debug */
	uint64_t errors;     /* lines printed (or suppressed) per level */
	uint64_t warnings;
};

void rcd_log_init(struct rcd_log *log, int level);

/* Print one line at lvl (a trailing newline is added). */
void rcd_log(struct rcd_log *log, enum rcd_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define rcd_err(log, ...) rcd_log((log), RCD_LOG_ERROR, __VA_ARGS__)
#define rcd_warn(log, ...) rcd_log((log), RCD_LOG_WARN, __VA_ARGS__)
#define rcd_info(log, ...) rcd_log((log), RCD_LOG_INFO, __VA_ARGS__)
#define rcd_debug(log, ...) rcd_log((log), RCD_LOG_DEBUG, __VA_ARGS__)

/*
 * Make untrusted bytes (a topic from a client or a ring file) safe to
 * print: printable ASCII stays, everything else and the quote and
 * backslash become \xHH.  Always NUL-terminates out (cap > 0); truncates
 * with "..." when out is too small.  Returns out.
 */
char *rcd_escape(const char *s, size_t len, char *out, size_t cap);

/* Enough room for any escaped topic (255 bytes, 4 each, plus NUL). */
#define RCD_ESCAPED_TOPIC_MAX (255 * 4 + 1)

#endif /* RINGCASTD_LOG_H */
