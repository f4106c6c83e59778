/* SPDX-License-Identifier: MIT */
/*
 * Leveled logging to stderr.  One fprintf per line with the whole line
 * formatted first, so lines from a crashing daemon are never interleaved
 * half-written; stderr is unbuffered, which is what a systemd service
 * wants (nothing is lost in a buffer when we are killed).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

void rcd_log_init(struct rcd_log *log, int level)
{
	memset(log, 0, sizeof(*log));
	log->level = level;
}

static const char *level_name(enum rcd_log_level lvl)
{
	switch (lvl) {
	case RCD_LOG_ERROR:
		return "error";
	case RCD_LOG_WARN:
		return "warning";
	case RCD_LOG_INFO:
		return "info";
	case RCD_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

void rcd_log(struct rcd_log *log, enum rcd_log_level lvl, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	/* Count before filtering: a quiet daemon still reports its totals. */
	if (lvl == RCD_LOG_ERROR)
		log->errors++;
	else if (lvl == RCD_LOG_WARN)
		log->warnings++;
	if (lvl != RCD_LOG_ERROR && (int)lvl > log->level)
		return;

	n = snprintf(line, sizeof(line), "ringcastd: %s: ", level_name(lvl));
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

static size_t escaped_len(unsigned char ch)
{
	return (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\') ? 1 : 4;
}

char *rcd_escape(const char *s, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i, total = 0, room;

	if (!cap)
		return out;
	for (i = 0; i < len; i++)
		total += escaped_len((unsigned char)s[i]);
	/* When it does not all fit, keep room for "..." (if there is any). */
	room = cap - 1;
	if (total > room)
		room = room >= 3 ? room - 3 : 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		size_t need = escaped_len(ch);

		if (o + need > room)
			break;
		if (need == 1) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	if (i < len && cap - 1 - o >= 3) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
