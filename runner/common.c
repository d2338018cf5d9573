/*
 * common.c - small pieces several subcommands share: the store URL and its
 * default, opening the store with the transfer options, worker counts and
 * the job id rules.
 */
#include "runner.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xfer.h"
#include "ckpt.h"

const char *run_store_url(const struct opts *o)
{
	const char *v = opt_str(o, OPT_STORE);
	return v && *v ? v : RUN_DEFAULT_STORE;
}

int run_workers(const struct opts *o)
{
	long long w = opt_int(o, OPT_WORKERS);
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (w > 0)
		return w > 256 ? 256 : (int)w;
	return n > 0 ? (n > 64 ? 64 : (int)n) : 1;
}

int run_store_open(const struct opts *o, struct xfer_store **st)
{
	const char *url = run_store_url(o);
	struct xfer_opts xo = {
		.endpoint = opt_str(o, OPT_ENDPOINT),
		.workers = run_workers(o),
		.part_size = (uint64_t)opt_int(o, OPT_PART_SIZE),
	};

	*st = NULL;
	if (!strcmp(url, "none"))
		return 0;
	/* the HTTP layer reads its CA bundle from the option's env twin */
	if (opt_str(o, OPT_CA_BUNDLE) && setenv("SPOTRUN_CA_BUNDLE", opt_str(o, OPT_CA_BUNDLE), 1))
		return log_fail(EX_OSERR, "cannot set SPOTRUN_CA_BUNDLE");
	return xfer_open(url, &xo, st);
}

int run_store_open_other(const struct opts *o, const char *url, const char *opt, struct xfer_store **st)
{
	const char *own = run_store_url(o);
	const char *se = strstr(own, "://"), *de = strstr(url, "://");
	int same_scheme = se && de && se - own == de - url && !strncmp(own, url, (size_t)(se - own));
	struct xfer_opts xo = {
		.endpoint = same_scheme ? opt_str(o, OPT_ENDPOINT) : NULL,
		.workers = run_workers(o),
		.part_size = (uint64_t)opt_int(o, OPT_PART_SIZE),
	};

	*st = NULL;
	if (!*url || !strcmp(url, "none"))
		return log_fail(EX_USAGE, "%s: a store URL is required", opt);
	return xfer_open(url, &xo, st);
}

void run_job_sanitize(char *job)
{
	for (char *p = job; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			*p = '_';
	if (job[0] == '.')
		job[0] = '_';
	if (!job[0])
		strcpy(job, "job");
}

int run_store_need(const struct opts *o, struct xfer_store **st)
{
	int rc = run_store_open(o, st);

	if (rc == 0 && !*st)
		return log_fail(EX_USAGE, "'spotrun %s' needs a store (--store URL), not 'none'",
				o->cmd_name);
	return rc;
}

int run_nargs(const struct opts *o, int lo, int hi)
{
	if (o->nargs < lo || o->nargs > hi)
		return log_fail(EX_USAGE, "'spotrun %s' takes %s; see --help", o->cmd_name,
				hi == 0 ? "no arguments" : lo == hi ? "one folder" : "at most one folder");
	return 0;
}

/* --job, else the store's only job. */
int run_store_job(const struct opts *o, struct xfer_store *st, const char **job, char **owned)
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
int run_store_pick(const struct opts *o, struct xfer_store *st, const char *job, uint64_t *seq)
{
	return ckpt_find(st, job, opt_is_set(o, OPT_STEP) ? opt_int(o, OPT_STEP) : -1, seq);
}


/* Prints a JSON document on stdout (takes the reference). */
int run_print_json(struct json_t *j)
{
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

	json_decref(j);
	if (!s)
		return log_fail(EX_SOFTWARE, "cannot encode JSON");
	printf("%s\n", s);
	free(s);
	return 0;
}
