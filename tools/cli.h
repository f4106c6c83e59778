/* SPDX-License-Identifier: MIT */
/*
 * What every `ringcast` subcommand needs: connecting, reporting errors with
 * the right exit status, parsing numbers, escaping text for terminals and
 * JSON, and a monotonic clock.
 *
 * Exit status convention, shared by all commands:
 *   0  success
 *   1  runtime error (daemon unreachable, publish failed, ...), printed
 *      with ringcast_strerror() text
 *   2  bad usage (unknown option, malformed number, missing argument)
 *
 * Helpers whose name ends in _or_exit() call exit(); use them only while
 * parsing arguments, before any resource (connection, child process) exists.
 */
#ifndef RINGCAST_CLI_H
#define RINGCAST_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <ringcast.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_ERR 1
#define CLI_EXIT_USAGE 2

/* The subcommands; argv[0] is the command name ("pub"). */
int cmd_pub(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_trace(int argc, char **argv);

/* CLOCK_MONOTONIC in nanoseconds (to compare with publish_ns, use ringcast_now_ns()). */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time consumed by this process, in nanoseconds. */
static inline uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- errors ---- */

/*
 * "ringcast CMD: <message>: <ringcast_strerror(err)>" on stderr; returns
 * CLI_EXIT_ERR so callers can `return cli_error(...)`.  err 0 omits the
 * error text.
 */
int cli_error(const char *cmd, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* As cli_error(), then exit(CLI_EXIT_ERR). */
void cli_die(const char *cmd, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
/*
 * "ringcast CMD: <message>" and a pointer to --help on stderr; returns
 * CLI_EXIT_USAGE.
 */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Only the pointer to --help, for when getopt_long has already said what
 * was wrong (main() sets argv[0] to "ringcast CMD" for its messages).
 */
int cli_usage_hint(const char *cmd);
/* "ringcast CMD: warning: <message>" on stderr. */
void cli_warn(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * For commands whose output is the point: 0 when stdout can be written,
 * else CLI_EXIT_ERR after saying so, before any work whose result would
 * be lost.  A stdout that was closed when ringcast started is /dev/null
 * opened read-only by then (ringcast.c), so it fails here too.
 */
int cli_check_stdout(const char *cmd);

/* ---- the daemon's socket ---- */

/*
 * The socket a client will use: path when given (--socket), else
 * $RINGCAST_SOCKET, else RINGCAST_DEFAULT_SOCKET.  For messages only: pass
 * the --socket value itself (NULL when absent) to ringcast_open() so the
 * library applies the same rule.
 */
const char *cli_socket_name(const char *path);
/*
 * Check a --socket PATH.  An empty one is bad usage: the library would
 * take it for no --socket at all and quietly use another socket.  0, or
 * CLI_EXIT_USAGE after saying why.
 */
int cli_check_socket(const char *cmd, const char *path);
/*
 * ringcast_open() with an error message that names the socket and says
 * what to do.  Returns 0, or CLI_EXIT_ERR after printing.
 */
int cli_open(const char *cmd, const char *socket_path, struct ringcast **out);

/* ---- numbers ---- */

/*
 * Parse a non-negative integer with an optional suffix: k/K M G T (powers
 * of 1000) or Ki Mi Gi Ti (powers of 1024); a fraction is allowed when the
 * result is whole ("1.5k" = 1500).  0, -EINVAL (not a number, junk after
 * it, a fraction left over) or -ERANGE (over UINT64_MAX).
 */
int cli_parse_u64(const char *s, uint64_t *out);
/*
 * Parse a duration: a non-negative decimal number with an optional unit ns,
 * us, ms, s, m or h; without a unit, default_unit_ns applies (1000000 for
 * milliseconds, 1000000000 for seconds).  0, -EINVAL or -ERANGE.
 */
int cli_parse_duration_ns(const char *s, uint64_t default_unit_ns, uint64_t *out);
/* cli_parse_u64() checked against [min, max]; bad input: usage error, exit 2. */
uint64_t cli_u64_or_exit(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max);
/* cli_parse_duration_ns() checked against [min, max] ns; bad input: exit 2. */
uint64_t cli_duration_or_exit(const char *cmd, const char *opt, const char *s, uint64_t default_unit_ns,
			      uint64_t min_ns, uint64_t max_ns);

/* ---- text ---- */

/* True if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool cli_utf8_valid(const void *s, size_t len);
/*
 * Write bytes for a terminal: printable ASCII and well-formed printable
 * UTF-8 as they are; backslash as \\, \n \r \t as such; any other byte as
 * \xHH.  The output is one line whatever the input.
 */
void cli_put_escaped(FILE *f, const void *s, size_t len);
/*
 * Write a quoted JSON string.  ", \ and control characters are escaped;
 * well-formed UTF-8 passes through; a byte that is not part of well-formed
 * UTF-8 is written as \u00XX (its Latin-1 reading).
 */
void cli_put_json_str(FILE *f, const void *s, size_t len);
/* Write base64 (RFC 4648, padded) of s[0..len), without quotes. */
void cli_put_base64(FILE *f, const void *s, size_t len);

/* "1.5 MiB", "512 B": binary units, for people. */
const char *cli_fmt_bytes(char *buf, size_t size, uint64_t bytes);
/* "850 ns", "12.3 us", "4.56 ms", "1.20 s": for people. */
const char *cli_fmt_ns(char *buf, size_t size, uint64_t ns);

#endif /* RINGCAST_CLI_H */
