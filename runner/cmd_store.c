/*
 * cmd_store.c - the store subcommands: push, pull, ls, verify, gc.  Each
 * parses its arguments, opens the store (default: the folder store
 * spotrun-store under the working folder, as for `spotrun run`) and calls the checkpoint engine
 * (checkpoint/ckpt.h).  Results go to stdout (tables, JSON, the restored
 * path); messages and the progress line go to stderr.
 *
 * Job resolution: --job (or SPOTRUN_JOB); push requires one, the others
 * fall back to the store's only job when it holds exactly one.
 */
#include "runner.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "xfer.h"


static int store_open(const struct opts *o, struct xfer_store **st)
{
	int rc = run_store_open(o, st);

	if (rc == 0 && !*st)
		return log_fail(EX_USAGE, "'spotrun %s' needs a store (--store URL), not 'none'",
				o->cmd_name);
	return rc;
}

static int store_nargs(const struct opts *o, int lo, int hi)
{
	if (o->nargs < lo || o->nargs > hi)
		return log_fail(EX_USAGE, "'spotrun %s' takes %s; see --help", o->cmd_name,
				hi == 0 ? "no arguments" : lo == hi ? "one folder" : "at most one folder");
	return 0;
}

/* --job, else the store's only job. */
static int store_job(const struct opts *o, struct xfer_store *st, const char **job, char **owned)
{
	char **jobs;
	size_t n;
	int rc;

	*owned = NULL;
	if ((*job = opt_str(o, OPT_JOB))) {
		if (!ckpt_job_ok(*job))
			return log_fail(EX_USAGE, "invalid job id '%s' (letters, digits, '.', '_', '-')", *job);
		return 0;
	}
	if ((rc = ckpt_jobs(st, &jobs, &n)))
		return rc;
	if (n == 1) {
		*job = *owned = jobs[0];
		jobs[0] = NULL;
	}
	ckpt_jobs_free(jobs, n);
	if (n == 0)
		return log_fail(EX_NOINPUT, "no checkpoints in %s", xfer_display(st));
	if (n > 1)
		return log_fail(EX_USAGE, "%s holds %zu jobs: pick one with --job", xfer_display(st), n);
	return 0;
}

/* The seq of --step's newest checkpoint, or of the newest. */
static int store_pick(const struct opts *o, struct xfer_store *st, const char *job, uint64_t *seq)
{
	return ckpt_find(st, job, opt_is_set(o, OPT_STEP) ? opt_int(o, OPT_STEP) : -1, seq);
}

int cmd_push(struct opts *o)
{
	struct xfer_store *st = NULL;
	struct ckpt_result r;
	struct ckpt_push_opts po = {
		.job = opt_str(o, OPT_JOB),
		.step = opt_is_set(o, OPT_STEP) ? opt_int(o, OPT_STEP) : -1,
		.workers = (int)opt_int(o, OPT_WORKERS),
		.part_size = (uint64_t)opt_int(o, OPT_PART_SIZE),
		.level = (int)opt_int(o, OPT_LEVEL),
		.progress = 1,
		.ident = { NULL, getenv("SPOTRUN_PROVIDER"), getenv("SPOTRUN_REGION"),
			   getenv("SPOTRUN_INSTANCE_TYPE") },
	};
	int rc;

	if ((rc = store_nargs(o, 1, 1)))
		return rc;
	if (!po.job)
		return log_fail(EX_USAGE, "push needs a job id: --job ID (or SPOTRUN_JOB)");
	if (po.level == 0)
		return log_fail(EX_USAGE, "--level 0 is not a zstd level");
	if ((rc = store_open(o, &st)))
		return rc;
	rc = ckpt_push(st, o->args[0], &po, &r);
	if (rc == 0)
		log_note("pushed '%s' as checkpoint %" PRIu64 " of '%s': %.1f MB -> %.1f MB in %.1fs (%.0f MB/s)",
			 r.name, r.seq, po.job, r.raw_bytes / 1e6, r.stored_bytes / 1e6, r.seconds,
			 r.seconds > 0 ? r.raw_bytes / 1e6 / r.seconds : 0.0);
	xfer_close(st);
	return rc;
}

int cmd_pull(struct opts *o)
{
	struct xfer_store *st = NULL;
	struct ckpt_pull_opts po = { .workers = (int)opt_int(o, OPT_WORKERS), .progress = 1 };
	struct ckpt_info *v = NULL;
	struct ckpt_result r;
	char *owned = NULL, dest[PATH_MAX], real[PATH_MAX];
	uint64_t seq;
	size_t n;
	int rc;

	if ((rc = store_nargs(o, 0, 1)) || (rc = store_open(o, &st)) ||
	    (rc = store_job(o, st, &po.job, &owned)) || (rc = store_pick(o, st, po.job, &seq)))
		goto out;
	if (o->nargs) {
		snprintf(dest, sizeof(dest), "%s", o->args[0]);
	} else {
		if ((rc = ckpt_list(st, po.job, &v, &n)))
			goto out;
		snprintf(dest, sizeof(dest), "./%s", "checkpoint");
		for (size_t i = 0; i < n; i++)
			if (v[i].seq == seq)
				snprintf(dest, sizeof(dest), "./%s", v[i].name);
	}
	if ((rc = ckpt_pull(st, seq, dest, &po, &r)))
		goto out;
	log_note("restored checkpoint %" PRIu64 " (step %lld) of '%s': %" PRIu64 " entries, %.1f MB in %.1fs",
		 r.seq, r.step, po.job, r.files, r.raw_bytes / 1e6, r.seconds);
	printf("%s\n", realpath(dest, real) ? real : dest);
out:
	free(v);
	free(owned);
	xfer_close(st);
	return rc;
}

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

static int store_print_json(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

	json_decref(j);
	if (!s)
		return log_fail(EX_SOFTWARE, "cannot encode JSON");
	printf("%s\n", s);
	free(s);
	return 0;
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
		rc = store_print_json(a);
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
		return store_print_json(a);
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

	if ((rc = store_nargs(o, 0, 0)) || (rc = store_open(o, &st)))
		return rc;
	if (job && !ckpt_job_ok(job))
		rc = log_fail(EX_USAGE, "invalid job id '%s'", job);
	else
		rc = job ? store_ls_job(st, job, opt_flag(o, OPT_JSON)) : store_ls_jobs(st, opt_flag(o, OPT_JSON));
	xfer_close(st);
	return rc;
}

int cmd_verify(struct opts *o)
{
	struct xfer_store *st = NULL;
	struct ckpt_pull_opts po = { .workers = (int)opt_int(o, OPT_WORKERS), .progress = 1 };
	char *owned = NULL;
	uint64_t seq = 0;
	int rc;

	if ((rc = store_nargs(o, 0, 0)) || (rc = store_open(o, &st)) ||
	    (rc = store_job(o, st, &po.job, &owned)) || (rc = store_pick(o, st, po.job, &seq)))
		goto out;
	rc = ckpt_verify(st, po.job, seq, &po);
	if (opt_flag(o, OPT_JSON))
		store_print_json(json_pack("{s:s, s:I, s:b}", "job", po.job, "seq", (json_int_t)seq, "ok", !rc));
	else if (rc == 0)
		printf("checkpoint %" PRIu64 " of '%s' is intact\n", seq, po.job);
	else
		log_error("checkpoint %" PRIu64 " of '%s' failed verification", seq, po.job);
out:
	free(owned);
	xfer_close(st);
	return rc;
}

int cmd_gc(struct opts *o)
{
	struct xfer_store *st = NULL;
	const char *job = opt_str(o, OPT_JOB);
	long long keep = opt_int(o, OPT_KEEP);
	char **jobs = NULL;
	size_t n = 0;
	int rc;

	if ((rc = store_nargs(o, 0, 0)))
		return rc;
	if (!opt_is_set(o, OPT_KEEP) || keep < 1)
		return log_fail(EX_USAGE, "gc needs --keep N with N >= 1");
	if (job && !ckpt_job_ok(job))
		return log_fail(EX_USAGE, "invalid job id '%s'", job);
	if ((rc = store_open(o, &st)))
		return rc;
	if (job)
		rc = ckpt_gc(st, job, (unsigned)keep, opt_flag(o, OPT_DRY_RUN));
	else if (!(rc = ckpt_jobs(st, &jobs, &n)))
		for (size_t i = 0; !rc && i < n; i++)
			rc = ckpt_gc(st, jobs[i], (unsigned)keep, opt_flag(o, OPT_DRY_RUN));
	ckpt_jobs_free(jobs, n);
	xfer_close(st);
	return rc;
}
