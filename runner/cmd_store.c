/*
 * cmd_store.c - the store subcommands: push, pull, verify, gc (ls: cmd_ls.c).  Each
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


/* --encrypt-key-file: *key points at buf when given, else stays NULL. */
static int store_key(struct opts *o, unsigned char *buf, const unsigned char **key)
{
	const char *path = opt_str(o, OPT_ENCRYPT_KEY_FILE);
	int rc;

	*key = NULL;
	if (!path || !*path)
		return 0;
	if ((rc = ckpt_key_load(path, buf)))
		return rc;
	*key = buf;
	return 0;
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
		.portable = opt_flag(o, OPT_PORTABLE),
		.full = opt_flag(o, OPT_FULL),
		.ident = { NULL, getenv("SPOTRUN_PROVIDER"), getenv("SPOTRUN_REGION"),
			   getenv("SPOTRUN_INSTANCE_TYPE") },
	};
	unsigned char kbuf[CKPT_KEY_LEN];
	int rc;

	if ((rc = run_nargs(o, 1, 1)))
		return rc;
	if (!po.job)
		return log_fail(EX_USAGE, "push needs a job id: --job ID (or SPOTRUN_JOB)");
	if ((rc = store_key(o, kbuf, &po.key)))
		return rc;
	if (po.level == 0)
		return log_fail(EX_USAGE, "--level 0 is not a zstd level");
	if ((rc = run_store_need(o, &st)))
		return rc;
	rc = ckpt_push(st, o->args[0], &po, &r);
	if (rc == 0)
		log_note("pushed '%s' as checkpoint %" PRIu64 " of '%s': %.1f MB -> %.1f MB in %.1fs (%.0f MB/s)%s",
			 r.name, r.seq, po.job, r.raw_bytes / 1e6, r.stored_bytes / 1e6, r.seconds,
			 r.seconds > 0 ? r.raw_bytes / 1e6 / r.seconds : 0.0,
			 r.ref_bytes ? ", unchanged files referenced" : "");
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
	unsigned char kbuf[CKPT_KEY_LEN];
	int rc;

	if ((rc = run_nargs(o, 0, 1)) || (rc = store_key(o, kbuf, &po.key)) || (rc = run_store_need(o, &st)) ||
	    (rc = run_store_job(o, st, &po.job, &owned)) || (rc = run_store_pick(o, st, po.job, &seq)))
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

int cmd_verify(struct opts *o)
{
	struct xfer_store *st = NULL;
	struct ckpt_pull_opts po = { .workers = (int)opt_int(o, OPT_WORKERS), .progress = 1 };
	char *owned = NULL;
	uint64_t seq = 0;
	unsigned char kbuf[CKPT_KEY_LEN];
	int rc;

	if ((rc = run_nargs(o, 0, 0)) || (rc = store_key(o, kbuf, &po.key)) || (rc = run_store_need(o, &st)) ||
	    (rc = run_store_job(o, st, &po.job, &owned)) || (rc = run_store_pick(o, st, po.job, &seq)))
		goto out;
	rc = ckpt_verify(st, po.job, seq, &po);
	if (opt_flag(o, OPT_JSON))
		run_print_json(json_pack("{s:s, s:I, s:b}", "job", po.job, "seq", (json_int_t)seq, "ok", !rc));
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

	if ((rc = run_nargs(o, 0, 0)))
		return rc;
	if (!opt_is_set(o, OPT_KEEP) || keep < 1)
		return log_fail(EX_USAGE, "gc needs --keep N with N >= 1");
	if (job && !ckpt_job_ok(job))
		return log_fail(EX_USAGE, "invalid job id '%s'", job);
	if ((rc = run_store_need(o, &st)))
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
