/*
 * log.c - the log module (see log.h).  Formats one line per message and
 * writes it to stderr with a single write() under a mutex so lines from
 * worker threads never interleave.  JSON lines are built with jansson.
 */
#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_verbosity = 1;
static enum log_format log_format = LOG_FMT_HUMAN;
static int log_tty = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_names[] = { "error", "warning", "note", "info", "debug" };

void log_setup(int verbosity, enum log_format fmt)
{
	log_verbosity = verbosity;
	log_tty = isatty(STDERR_FILENO);
	log_format = fmt == LOG_FMT_AUTO ? LOG_FMT_HUMAN : fmt;
}

int log_parse_format(const char *s, enum log_format *out)
{
	if (!strcmp(s, "human") || !strcmp(s, "text"))
		*out = LOG_FMT_HUMAN;
	else if (!strcmp(s, "json"))
		*out = LOG_FMT_JSON;
	else
		return -1;
	return 0;
}

int log_enabled(enum log_level lvl)
{
	if (log_verbosity < 0) /* silenced (fuzz targets) */
		return 0;
	return lvl <= LOG_WARN || (int)lvl <= log_verbosity + 1;
}

static void log_timestamp(char *buf, size_t n)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void log_write(const char *line, size_t len)
{
	pthread_mutex_lock(&log_lock);
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, line, len);
		if (w <= 0)
			break;
		line += w;
		len -= (size_t)w;
	}
	pthread_mutex_unlock(&log_lock);
}

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	char msg[2048], ts[40], line[2300];
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_tty < 0)
		log_tty = isatty(STDERR_FILENO);
	log_timestamp(ts, sizeof(ts));
	if (log_format == LOG_FMT_JSON) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "time", ts, "level",
				      log_names[lvl], "msg", msg, "pid", (int)getpid());
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		if (s) {
			n = snprintf(line, sizeof(line), "%s\n", s);
			free(s);
		} else {
			n = snprintf(line, sizeof(line), "{\"level\":\"error\",\"msg\":\"log encoding failed\"}\n");
		}
		json_decref(o);
	} else if (log_tty) {
		n = snprintf(line, sizeof(line), "spotrun: %s: %s\n", log_names[lvl], msg);
	} else {
		n = snprintf(line, sizeof(line), "%s spotrun: %s: %s\n", ts, log_names[lvl], msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	log_write(line, (size_t)n);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

int log_fail(int code, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(LOG_ERROR))
		return code;
	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, fmt, ap);
	va_end(ap);
	return code;
}
