/*
 * log.h - spotrun's one log module: every message of every module goes
 * through here.  Human lines ("spotrun: error: ...") by default, JSON lines
 * with --log-format json for schedulers.  Thread-safe: one write() per line.
 *
 * Invariants: messages never contain secrets (callers pass redacted strings);
 * the log never exits the process; log_fail() returns its code so that
 * modules can write `return log_fail(EX_DATAERR, "...")` and the CLI exits.
 */
#ifndef SPOTRUN_LOG_H
#define SPOTRUN_LOG_H

#include <sysexits.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_NOTE, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FMT_AUTO = 0, LOG_FMT_HUMAN, LOG_FMT_JSON };

/* verbosity: -1 = nothing, 0 = errors+warnings, 1 = notes (default), 2 = info (-v), 3 = debug (-vv) */
void log_setup(int verbosity, enum log_format fmt);
int log_parse_format(const char *s, enum log_format *out);
int log_enabled(enum log_level lvl);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_note(...)  log_msg(LOG_NOTE, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Logs an error and returns code (an EX_* exit code from sysexits.h). */
int log_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
