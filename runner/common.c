/*
 * common.c - small pieces several subcommands share: the store URL and its
 * default, opening the store with the transfer options, worker counts and
 * the job id rules.
 */
#include "runner.h"

#include <string.h>
#include <unistd.h>

#include "xfer.h"

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
