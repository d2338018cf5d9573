/*
 * cmd_ls.c - `spotrun ls`: the jobs in a store, or one job's committed
 * checkpoints (table or --json).
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


static int store_ls_job(struct xfer_store *st, const char *job, int as_json)
{
	struct ckpt_info *v;
	size_t n;
	int rc = ckpt_list(st, job, &v, &n);

	if (rc)
		return rc;
	if (as_json) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < n; i++)
			json_array_append_new(a, store_info_json(&v[i]));
		rc = run_print_json(a);
	} else if (n == 0) {
		log_note("job '%s' has no committed checkpoints in %s", job, xfer_display(st));
	} else {
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

