/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the ringcast CLI; see cli.h.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void vreport(const char *cmd, const char *kind, int err, const char *fmt, va_list ap)
{
	/* One fprintf per piece is fine: stderr is unbuffered and these are rare. */
	fprintf(stderr, "ringcast%s%s: %s", cmd ? " " : "", cmd ? cmd : "", kind);
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", ringcast_strerror(err));
	fputc('\n', stderr);
}

int cli_error(const char *cmd, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cmd, "", err, fmt, ap);
	va_end(ap);
	return CLI_EXIT_ERR;
}

void cli_die(const char *cmd, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cmd, "", err, fmt, ap);
	va_end(ap);
	exit(CLI_EXIT_ERR);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cmd, "", 0, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'ringcast %s --help' for more information.\n", cmd ? cmd : "");
	return CLI_EXIT_USAGE;
}

int cli_usage_hint(const char *cmd)
{
	fprintf(stderr, "Try 'ringcast %s --help' for more information.\n", cmd ? cmd : "");
	return CLI_EXIT_USAGE;
}

void cli_warn(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cmd, "warning: ", 0, fmt, ap);
	va_end(ap);
}

int cli_check_stdout(const char *cmd)
{
	int fl = fcntl(STDOUT_FILENO, F_GETFL);

	if (fl >= 0 && (fl & O_ACCMODE) != O_RDONLY)
		return 0;
	if (fl < 0)
		return cli_error(cmd, 0, "stdout: %s: nowhere to print", strerror(errno));
	return cli_error(cmd, 0, "stdout is closed or open read-only: nowhere to print");
}

const char *cli_socket_name(const char *path)
{
	const char *env;

	if (path)
		return path;
	env = getenv("RINGCAST_SOCKET");
	if (env && *env)
		return env;
	return RINGCAST_DEFAULT_SOCKET;
}

int cli_check_socket(const char *cmd, const char *path)
{
	if (!*path)
		return cli_usage_error(cmd, "--socket needs a path ($RINGCAST_SOCKET and the default apply "
				       "only without --socket)");
	return 0;
}

int cli_open(const char *cmd, const char *socket_path, struct ringcast **out)
{
	int ret = ringcast_open(out, socket_path);

	if (ret == 0)
		return 0;
	cli_error(cmd, ret, "cannot connect to ringcastd at %s", cli_socket_name(socket_path));
	if (ret == -ENOENT || ret == -ECONNREFUSED)
		fprintf(stderr, "Is ringcastd running?  Pick its socket with --socket PATH "
			"or $RINGCAST_SOCKET.\n");
	return CLI_EXIT_ERR;
}

/* ---- numbers ---- */

/*
 * The multiplier for the suffix at s, and its length in *used; 0 for an
 * unknown suffix.  An empty suffix is 1.
 */
static uint64_t suffix_mult(const char *s, size_t *used)
{
	static const struct {
		const char *name;
		uint64_t mult;
	} tab[] = {
		{ "Ki", 1ull << 10 }, { "Mi", 1ull << 20 }, { "Gi", 1ull << 30 }, { "Ti", 1ull << 40 },
		{ "k", 1000ull }, { "K", 1000ull }, { "M", 1000000ull }, { "G", 1000000000ull },
		{ "T", 1000000000000ull },
	};

	*used = 0;
	if (!*s)
		return 1;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		size_t n = strlen(tab[i].name);

		if (!strncmp(s, tab[i].name, n)) {
			*used = n;
			return tab[i].mult;
		}
	}
	return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	const char *p = s;
	size_t used;
	uint64_t mult;

	/* strtoull would accept "-1", " 1" and "0x1f"; numbers here are plain. */
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p == '.') {
		/* A fraction is only useful with a suffix; do it in long double. */
		char *end;
		long double v;

		errno = 0;
		v = strtold(s, &end);
		if (errno || end == s)
			return -EINVAL;
		/* strtold also takes exponents and hex floats; these are not numbers here. */
		for (const char *q = s; q < end; q++)
			if (!isdigit((unsigned char)*q) && *q != '.')
				return -EINVAL;
		mult = suffix_mult(end, &used);
		if (!mult || end[used])
			return -EINVAL;
		v *= mult;
		if (v != floorl(v))
			return -EINVAL;
		if (v >= 18446744073709551616.0L)
			return -ERANGE;
		*out = (uint64_t)v;
		return 0;
	} else {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno == ERANGE)
			return -ERANGE;
		if (end != p)
			return -EINVAL;
		mult = suffix_mult(end, &used);
		if (!mult || end[used])
			return -EINVAL;
		if (v && mult > UINT64_MAX / v)
			return -ERANGE;
		*out = (uint64_t)v * mult;
		return 0;
	}
}

int cli_parse_duration_ns(const char *s, uint64_t default_unit_ns, uint64_t *out)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "ms", 1000000 }, { "s", 1000000000ull },
		{ "m", 60000000000ull }, { "h", 3600000000000ull },
	};
	uint64_t unit = 0;
	long double v;
	char *end;

	if (!s || !(isdigit((unsigned char)*s) || (*s == '.' && isdigit((unsigned char)s[1]))))
		return -EINVAL;
	errno = 0;
	v = strtold(s, &end);
	if (errno || end == s)
		return -EINVAL;
	/* Reject hex floats, exponents and infinities: strtold takes them all. */
	for (const char *p = s; p < end; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return -EINVAL;
	if (!*end) {
		unit = default_unit_ns;
	} else {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strcmp(end, units[i].name))
				unit = units[i].ns;
		if (!unit)
			return -EINVAL;
	}
	v *= unit;
	if (v >= 18446744073709551616.0L)
		return -ERANGE;
	*out = (uint64_t)llroundl(v);
	return 0;
}

uint64_t cli_u64_or_exit(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;
	int ret = cli_parse_u64(s, &v);

	if (ret == -EINVAL)
		exit(cli_usage_error(cmd, "%s: '%s' is not a number (digits, optionally with k M G or Ki Mi Gi)",
				     opt, s));
	if (ret || v < min || v > max)
		exit(cli_usage_error(cmd, "%s: %s is out of range [%llu, %llu]", opt, s,
				     (unsigned long long)min, (unsigned long long)max));
	return v;
}

uint64_t cli_duration_or_exit(const char *cmd, const char *opt, const char *s, uint64_t default_unit_ns,
			      uint64_t min_ns, uint64_t max_ns)
{
	char lo[32], hi[32];
	uint64_t v;
	int ret = cli_parse_duration_ns(s, default_unit_ns, &v);

	if (ret == -EINVAL)
		exit(cli_usage_error(cmd, "%s: '%s' is not a duration (a number, optionally with ns us ms s m h)",
				     opt, s));
	if (ret || v < min_ns || v > max_ns)
		exit(cli_usage_error(cmd, "%s: %s is out of range [%s, %s]", opt, s,
				     cli_fmt_ns(lo, sizeof(lo), min_ns), cli_fmt_ns(hi, sizeof(hi), max_ns)));
	return v;
}

/* ---- text ---- */

/*
 * Length of the well-formed UTF-8 sequence at s (at most len bytes), and its
 * code point in *cp; 0 if the bytes there are not well-formed UTF-8.
 */
static size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool cli_utf8_valid(const void *s, size_t len)
{
	const unsigned char *p = s;
	uint32_t cp;

	while (len) {
		size_t n = utf8_seq(p, len, &cp);

		if (!n)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

void cli_put_escaped(FILE *f, const void *s, size_t len)
{
	const unsigned char *p = s;
	uint32_t cp;

	while (len) {
		size_t n = utf8_seq(p, len, &cp);

		if (n == 1 && cp == '\\') {
			fputs("\\\\", f);
		} else if (n == 1 && cp == '\n') {
			fputs("\\n", f);
		} else if (n == 1 && cp == '\r') {
			fputs("\\r", f);
		} else if (n == 1 && cp == '\t') {
			fputs("\\t", f);
		} else if (n == 1 && cp >= 0x20 && cp < 0x7f) {
			fputc((int)cp, f);
		} else if (n > 1 && cp >= 0xa0) {
			/* Printable non-ASCII; C1 controls (U+0080..U+009F) are escaped. */
			fwrite(p, 1, n, f);
		} else {
			/* Escape one byte and resynchronise on the next. */
			fprintf(f, "\\x%02x", p[0]);
			n = 1;
		}
		p += n;
		len -= n;
	}
}

void cli_put_json_str(FILE *f, const void *s, size_t len)
{
	const unsigned char *p = s;
	uint32_t cp;

	fputc('"', f);
	while (len) {
		size_t n = utf8_seq(p, len, &cp);

		if (n == 0) {
			fprintf(f, "\\u%04x", p[0]);
			n = 1;
		} else if (cp == '"') {
			fputs("\\\"", f);
		} else if (cp == '\\') {
			fputs("\\\\", f);
		} else if (cp == '\n') {
			fputs("\\n", f);
		} else if (cp == '\r') {
			fputs("\\r", f);
		} else if (cp == '\t') {
			fputs("\\t", f);
		} else if (cp < 0x20 || cp == 0x7f) {
			fprintf(f, "\\u%04x", cp);
		} else {
			fwrite(p, 1, n, f);
		}
		p += n;
		len -= n;
	}
	fputc('"', f);
}

void cli_put_base64(FILE *f, const void *s, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = s;
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(tab[(v >> 6) & 63], f);
		fputc(tab[v & 63], f);
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputs("==", f);
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(tab[(v >> 6) & 63], f);
		fputc('=', f);
	}
}

const char *cli_fmt_bytes(char *buf, size_t size, uint64_t bytes)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

const char *cli_fmt_ns(char *buf, size_t size, uint64_t ns)
{
	static const struct {
		uint64_t div;
		const char *name;
	} unit[] = { { 1000000000ull, "s" }, { 1000000, "ms" }, { 1000, "us" } };

	for (size_t i = 0; i < sizeof(unit) / sizeof(unit[0]); i++) {
		if (ns >= unit[i].div) {
			double v = (double)ns / (double)unit[i].div;

			snprintf(buf, size, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v,
				 unit[i].name);
			return buf;
		}
	}
	snprintf(buf, size, "%llu ns", (unsigned long long)ns);
	return buf;
}
