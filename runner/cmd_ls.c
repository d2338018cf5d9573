/*
 * cmd_ls.c - `spotrun ls`: the jobs in a store, or one job's committed
 * checkpoints (table or --json).  A job run under `spotrun run` has a job
 * record (job.json) and event objects (events/): then `ls --job J` shows
 * its timeline first (runs, notices with source and lead time, pushes with
 * size, MB/s and step, restarts, requeues) and --json prints one object
 * {job, runs, timeline, checkpoints}; a job that only ever got `spotrun
 * push` keeps the plain checkpoint table and JSON list.
 */
#include "runner.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "xfer.h"

static void store_size(char *out, size_t n, uint64_t b)
{
	const char *u[] = { "B", "KB", "MB", "GB", "TB" };
	double v = (double)b;
	int i = 0;

	while (v >= 1000 && i < 4) {
		v /= 1000;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static json_t *store_info_json(const struct ckpt_info *c)
{
	return json_pack("{s:I, s:o, s:s, s:s, s:I, s:I, s:I}", "seq", (json_int_t)c->seq, "step",
			 c->step >= 0 ? json_integer(c->step) : json_null(), "name", c->name, "created",
			 c->created, "files", (json_int_t)c->files, "raw_bytes", (json_int_t)c->raw_bytes,
			 "stored_bytes", (json_int_t)c->stored_bytes);
}


#define LS_EVENTS_MAX 2000	/* newest events shown */

/* The job's event documents (schema version 1), oldest first. */
static json_t *ls_events(struct xfer_store *st, const char *job)
{
	struct xfer_list l = { 0 };
	char prefix[300];
	json_t *a = json_array();

	snprintf(prefix, sizeof(prefix), "%s/events/", job);
	if (xfer_list(st, prefix, &l))
		return a;
	for (size_t i = l.n > LS_EVENTS_MAX ? l.n - LS_EVENTS_MAX : 0; i < l.n; i++) {
		char *buf = NULL;
		size_t len = 0;
		json_t *ev = NULL;
		if (xfer_get(st, l.v[i].key, &buf, &len, 1u << 20) == 0)
			ev = json_loadb(buf, len, 0, NULL);
		free(buf);
		/* the event schema (sv_events.c); older notice-only objects are skipped */
		if (json_is_object(ev) && json_is_object(json_object_get(ev, "data")) &&
		    json_is_string(json_object_get(ev, "event")))
			json_array_append(a, ev);
		json_decref(ev);
	}
	xfer_list_free(&l);
	return a;
}


#define LS_S(o, k) (json_string_value(json_object_get((o), (k))) ?: "-")
#define LS_N(o, k) json_number_value(json_object_get((o), (k)))
#define LS_I(o, k) json_integer_value(json_object_get((o), (k)))

/* One line of details for an event. */
static void ls_details(const json_t *ev, char *out, size_t n)
{
	const char *e = LS_S(ev, "event");
	const json_t *d = json_object_get(ev, "data"), *p = json_object_get(ev, "provider");
	char size[32];

	out[0] = 0;
	if (!strcmp(e, "start")) {
		snprintf(out, n, "run %lld, provider %s%s%s, %lld earlier start(s)", LS_I(ev, "run"),
			 LS_S(p, "name"), json_object_get(ev, "slurm") ? ", slurm job " : "",
			 json_object_get(ev, "slurm") ? LS_S(json_object_get(ev, "slurm"), "job") : "",
			 LS_I(d, "restarts"));
	} else if (!strcmp(e, "notice")) {
		snprintf(out, n, "%s %s from %s, lead %.1f s", LS_S(p, "name"), LS_S(d, "kind"),
			 LS_S(d, "source"), LS_N(d, "lead_seconds"));
	} else if (!strcmp(e, "checkpoint-committed") || !strcmp(e, "resume")) {
		double secs = LS_N(d, "seconds"), bytes = LS_N(d, "raw_bytes");
		store_size(size, sizeof(size), (uint64_t)bytes);
		if (json_object_get(d, "local"))
			snprintf(out, n, "step %lld, local only (%s)", LS_I(d, "step"), LS_S(d, "name"));
		else if (!strcmp(e, "resume"))
			snprintf(out, n, "seq %lld step %lld, pulled in %.2f s", LS_I(d, "seq"), LS_I(d, "step"), secs);
		else
			snprintf(out, n, "seq %lld step %lld, %s in %.2f s (%.1f MB/s)", LS_I(d, "seq"),
				 LS_I(d, "step"), size, secs, secs > 0 ? bytes / secs / 1e6 : 0.0);
	} else if (!strcmp(e, "push-failed")) {
		snprintf(out, n, "'%s' (code %lld)", LS_S(d, "dir"), LS_I(d, "code"));
	} else if (!strcmp(e, "restart")) {
		snprintf(out, n, "restart %lld after status %lld (backoff %.2f s)", LS_I(d, "restart"),
			 LS_I(d, "code"), LS_N(d, "delay"));
	} else if (!strcmp(e, "requeue")) {
		snprintf(out, n, "scontrol requeue %s: %s", LS_S(d, "slurm_job"),
			 json_is_true(json_object_get(d, "ok")) ? "ok" : "failed");
	} else if (!strcmp(e, "hook-record")) {
		snprintf(out, n, "hook %s (on %s) recorded %zu field(s)", LS_S(d, "hook"), LS_S(d, "for"),
			 json_object_size(json_object_get(d, "record")));
	} else if (!strcmp(e, "migration")) {
		const json_t *es = json_object_get(d, "estimated"), *ac = json_object_get(d, "actual");
		snprintf(out, n, "%s from %s (%s -> %s), %.3f GB: estimated $%.2f in %.0f s, took %.1f s",
			 LS_S(d, "kind"), LS_S(d, "from"), LS_S(d, "from_place"), LS_S(d, "to_place"),
			 LS_N(es, "bytes") / 1e9, LS_N(es, "usd"), LS_N(es, "seconds"), LS_N(ac, "seconds"));
	} else if (!strcmp(e, "hardware-change")) {
		snprintf(out, n, "seq %lld: old %s, new %s (%s)", LS_I(d, "seq"), LS_S(d, "old_summary"),
			 LS_S(d, "new_summary"), LS_S(d, "policy"));
	} else if (!strcmp(e, "exit")) {
		snprintf(out, n, "code %lld (%s)", LS_I(d, "code"), LS_S(d, "reason"));
	}
}

static void ls_timeline_table(const json_t *events)
{
	size_t i;
	json_t *ev;

	printf("%-24s %-5s %-21s %-16s %s\n", "TIME", "RUN", "EVENT", "HOST", "DETAILS");
	json_array_foreach(events, i, ev) {
		char det[600], run[16];
		const char *e = LS_S(ev, "event");
		snprintf(run, sizeof(run), "%lld", LS_I(ev, "run"));
		ls_details(ev, det, sizeof(det));
		printf("%-24s %-5s %-21s %-16.16s %s\n", LS_S(ev, "time"), run,
		       !strcmp(e, "checkpoint-committed") ? "checkpoint" : e, LS_S(ev, "host"), det);
	}
	printf("\n");
}

static void ls_timeline(struct xfer_store *st, const char *job)
{
	json_t *events = ls_events(st, job);

	ls_timeline_table(events);
	json_decref(events);
}

static int store_ls_job(struct xfer_store *st, const char *job, int as_json)
{
	struct ckpt_info *v;
	size_t n;
	int rc = ckpt_list(st, job, &v, &n);
	json_t *rec;

	if (rc)
		return rc;
	rec = run_jobrec_read(st, job);
	if (as_json) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < n; i++)
			json_array_append_new(a, store_info_json(&v[i]));
		if (rec) {
			json_t *runs = json_object_get(rec, "runs");
			a = json_pack("{s:s, s:O, s:o, s:o}", "job", job, "runs", runs ? runs : json_null(),
				      "timeline", ls_events(st, job), "checkpoints", a);
		}
		rc = run_print_json(a);
	} else if (n == 0) {
		if (rec)
			ls_timeline(st, job);
		log_note("job '%s' has no committed checkpoints in %s", job, xfer_display(st));
	} else {
		if (rec)
			ls_timeline(st, job);
		printf("%-8s %-8s %-20s %-28s %7s %10s %10s %6s\n", "SEQ", "STEP", "CREATED", "NAME", "FILES",
		       "RAW", "STORED", "RATIO");
		for (size_t i = 0; i < n; i++) {
			char raw[32], stored[32], step[24] = "-";
			store_size(raw, sizeof(raw), v[i].raw_bytes);
			store_size(stored, sizeof(stored), v[i].stored_bytes);
			if (v[i].step >= 0)
				snprintf(step, sizeof(step), "%lld", v[i].step);
			printf("%-8" PRIu64 " %-8s %-20s %-28s %7u %10s %10s %6.2f\n", v[i].seq, step,
			       v[i].created, v[i].name, v[i].files, raw, stored,
			       v[i].stored_bytes ? (double)v[i].raw_bytes / v[i].stored_bytes : 0.0);
		}
	}
	free(v);
	json_decref(rec);
	return rc;
}

static int store_ls_jobs(struct xfer_store *st, int as_json)
{
	json_t *a = as_json ? json_array() : NULL;
	char **jobs;
	size_t n;
	int rc = ckpt_jobs(st, &jobs, &n);

	if (rc)
		return rc;
	if (!as_json && n)
		printf("%-32s %11s %-8s %-20s\n", "JOB", "CHECKPOINTS", "STEP", "NEWEST");
	for (size_t i = 0; !rc && i < n; i++) {
		struct ckpt_info *v;
		size_t k;
		if ((rc = ckpt_list(st, jobs[i], &v, &k)))
			break;
		struct ckpt_info *last = k ? &v[k - 1] : NULL;
		char step[24] = "-";
		if (last && last->step >= 0)
			snprintf(step, sizeof(step), "%lld", last->step);
		if (a)
			json_array_append_new(a, json_pack("{s:s, s:I, s:o}", "job", jobs[i], "checkpoints",
							   (json_int_t)k, "newest",
							   last ? store_info_json(last) : json_null()));
		else
			printf("%-32s %11zu %-8s %-20s\n", jobs[i], k, step, last ? last->created : "-");
		free(v);
	}
	ckpt_jobs_free(jobs, n);
	if (!rc && a)
		return run_print_json(a);
	json_decref(a);
	if (!rc && !as_json && n == 0)
		log_note("no jobs in %s", xfer_display(st));
	return rc;
}

int cmd_ls(struct opts *o)
{
	struct xfer_store *st = NULL;
	const char *job = opt_str(o, OPT_JOB);
	int rc;

	if ((rc = run_nargs(o, 0, 0)) || (rc = run_store_need(o, &st)))
		return rc;
	if (job && !ckpt_job_ok(job))
		rc = log_fail(EX_USAGE, "invalid job id '%s'", job);
	else
		rc = job ? store_ls_job(st, job, opt_flag(o, OPT_JSON)) : store_ls_jobs(st, opt_flag(o, OPT_JSON));
	xfer_close(st);
	return rc;
}

