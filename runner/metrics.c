/*
 * metrics.c - `--metrics-file PATH`: Prometheus text-format metrics for
 * node_exporter's textfile collector, rewritten on every change of the run
 * (start, notice, push, restart, exit).  The file is written to a temp name
 * next to PATH and renamed over it, so a scraper never reads half a file.
 * Counters start at 0 in each spotrun process; spotrun_restarts_total counts
 * the job's earlier starts (SPOTRUN_RESTARTS) so it survives requeues.
 * Runs on the loop thread: a few hundred bytes into a local file.
 */
#include "sv.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SV_METRICS_NOTICE_KINDS 16

struct sv_metrics {
	char path[PATH_MAX], tmp[PATH_MAX + 32];
	int up;
	struct { char provider[32], kind[24]; long long n; } notices[SV_METRICS_NOTICE_KINDS];
	int nnotices;
	long long pushes, failures;
	double push_seconds, push_seconds_total, push_bytes, push_bytes_total, last_step;
	double started, last_event;
};

/* Label values: backslash, double quote and newline escaped. */
static void sv_metrics_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void sv_metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sv_metrics_one(FILE *f, const struct sv *sv, const char *name, const char *type,
			   const char *help, double v)
{
	sv_metrics_head(f, name, type, help);
	fprintf(f, "%s{job=\"", name);
	sv_metrics_label(f, sv->job);
	fprintf(f, "\"} %.17g\n", v);
}

static void sv_metrics_body(FILE *f, const struct sv *sv, const struct sv_metrics *m)
{
	sv_metrics_one(f, sv, "spotrun_up", "gauge", "1 while spotrun supervises the job, 0 after it exited", m->up);
	sv_metrics_one(f, sv, "spotrun_start_time_seconds", "gauge", "when this spotrun started (unix time)", m->started);
	sv_metrics_head(f, "spotrun_notices_total", "counter", "interruption notices received, by source and kind");
	for (int i = 0; i < m->nnotices; i++) {
		fputs("spotrun_notices_total{job=\"", f);
		sv_metrics_label(f, sv->job);
		fputs("\",provider=\"", f);
		sv_metrics_label(f, m->notices[i].provider);
		fputs("\",kind=\"", f);
		sv_metrics_label(f, m->notices[i].kind);
		fprintf(f, "\"} %lld\n", m->notices[i].n);
	}
	sv_metrics_one(f, sv, "spotrun_pushes_total", "counter", "checkpoints pushed to the store", (double)m->pushes);
	sv_metrics_one(f, sv, "spotrun_push_failures_total", "counter", "checkpoint pushes that failed", (double)m->failures);
	sv_metrics_one(f, sv, "spotrun_push_seconds", "gauge", "duration of the last push", m->push_seconds);
	sv_metrics_one(f, sv, "spotrun_push_seconds_total", "counter", "time spent pushing", m->push_seconds_total);
	sv_metrics_one(f, sv, "spotrun_push_bytes", "gauge", "size (uncompressed) of the last pushed checkpoint", m->push_bytes);
	sv_metrics_one(f, sv, "spotrun_push_bytes_total", "counter", "bytes (uncompressed) pushed", m->push_bytes_total);
	sv_metrics_one(f, sv, "spotrun_last_committed_step", "gauge", "step of the newest committed checkpoint, -1 unknown", m->last_step);
	sv_metrics_one(f, sv, "spotrun_restarts_total", "counter", "starts of this job before the current one",
		       (double)(sv->starts_before + sv->restarts));
	sv_metrics_one(f, sv, "spotrun_last_event_timestamp_seconds", "gauge", "unix time of the last event", m->last_event);
}

static void sv_metrics_write(const struct sv *sv, struct sv_metrics *m)
{
	FILE *f = fopen(m->tmp, "we");

	if (!f) {
		log_warn("cannot write the metrics file '%s': %s", m->tmp, strerror(errno));
		return;
	}
	sv_metrics_body(f, sv, m);
	if (ferror(f) | fclose(f) || rename(m->tmp, m->path)) {
		log_warn("cannot write the metrics file '%s': %s", m->path, strerror(errno));
		unlink(m->tmp);
	}
}

int sv_metrics_open(struct sv *sv)
{
	const char *path = opt_str(sv->o, OPT_METRICS_FILE);
	struct sv_metrics *m;

	if (!path || !*path)
		return 0;
	if (strlen(path) >= PATH_MAX)
		return log_fail(EX_USAGE, "--metrics-file path too long");
	if (!(m = calloc(1, sizeof(*m))))
		return log_fail(EX_OSERR, "out of memory");
	snprintf(m->path, sizeof(m->path), "%s", path);
	snprintf(m->tmp, sizeof(m->tmp), "%s.tmp.%d", path, (int)getpid());
	m->up = 1;
	m->last_step = -1;
	m->started = m->last_event = prov_now();
	sv->metrics = m;
	sv_metrics_write(sv, m);
	return 0;
}

static void sv_metrics_notice(struct sv_metrics *m, const json_t *data)
{
	const char *src = json_string_value(json_object_get(data, "source"));
	const char *kind = json_string_value(json_object_get(data, "kind"));
	int i;

	src = src ? src : "unknown";
	kind = kind ? kind : "unknown";
	for (i = 0; i < m->nnotices; i++)
		if (!strcmp(m->notices[i].provider, src) && !strcmp(m->notices[i].kind, kind))
			break;
	if (i == m->nnotices) {
		if (i == SV_METRICS_NOTICE_KINDS)
			return;
		m->nnotices++;
		snprintf(m->notices[i].provider, sizeof(m->notices[i].provider), "%s", src);
		snprintf(m->notices[i].kind, sizeof(m->notices[i].kind), "%s", kind);
	}
	m->notices[i].n++;
}

void sv_metrics_event(struct sv *sv, const char *event, const json_t *data)
{
	struct sv_metrics *m = sv->metrics;
	const json_t *step = json_object_get(data, "step");

	if (!m)
		return;
	m->last_event = prov_now();
	if (!strcmp(event, "notice")) {
		sv_metrics_notice(m, data);
	} else if (!strcmp(event, "push-failed")) {
		m->failures++;
	} else if (!strcmp(event, "checkpoint-committed") || !strcmp(event, "resume")) {
		if (json_is_integer(step) && json_integer_value(step) >= 0)
			m->last_step = (double)json_integer_value(step);
		if (!strcmp(event, "checkpoint-committed") && json_object_get(data, "seconds")) {
			m->pushes++;
			m->push_seconds = json_number_value(json_object_get(data, "seconds"));
			m->push_bytes = json_number_value(json_object_get(data, "raw_bytes"));
			m->push_seconds_total += m->push_seconds;
			m->push_bytes_total += m->push_bytes;
		}
	} else if (!strcmp(event, "exit")) {
		m->up = 0;
	}
	sv_metrics_write(sv, m);
}

void sv_metrics_close(struct sv *sv)
{
	free(sv->metrics);
	sv->metrics = NULL;
}
