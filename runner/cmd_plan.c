/*
 * cmd_plan.c - `spotrun plan` (rank resume targets by total cost) and
 * `spotrun migrate` (copy a job's checkpoints to another store, verified
 * and recorded), plus the pieces the resume policy (sv_restore.c) shares:
 * where a checkpoint is, what moving it costs, and the migration record in
 * job.json.  The arithmetic is in transfer/plan.c, the prices in the
 * catalog (transfer/catalog.c), the copy engine in checkpoint/ckpt_migrate.c;
 * this file gathers the inputs from the store and prints.  The model and
 * every rule are in docs/migration.md.
 */
#include "runner.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "hooks.h"
#include "xfer.h"

#define PLAN_MAX_ROWS 512

/* What the planner knows about a job (from the store). */
struct plan_job {
	const char *job;
	uint64_t seq, bytes;		/* newest checkpoint; its stored bytes */
	uint64_t all_bytes;		/* every committed checkpoint */
	size_t nckpt;
	struct ckpt_origin origin;	/* of the newest */
	struct xfer_place src;		/* where the store holds it */
	double measured_mb_s;		/* pushes in job.json; 0 unknown */
	double hours_left;		/* from progress; -1 unknown */
	double lost_hours;		/* half the checkpoint interval; -1 unknown */
};

static double plan_time(const char *rfc3339)
{
	struct tm tm = { 0 };
	const char *e = strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm);

	return e ? (double)timegm(&tm) : -1;
}

/* Throughput of earlier pushes (runs[].last_push) and total_steps. */
static void plan_jobrec(struct xfer_store *st, const char *job, double *mb_s, long long *total)
{
	char key[512], *buf = NULL;
	size_t len = 0, i;
	double bytes = 0, secs = 0;
	json_t *o = NULL, *r;

	*mb_s = 0;
	*total = -1;
	snprintf(key, sizeof(key), "%s/job.json", job);
	if (xfer_get(st, key, &buf, &len, 4u << 20) || !(o = json_loadb(buf, len, 0, NULL)))
		goto out;
	if (json_is_integer(json_object_get(o, "total_steps")))
		*total = json_integer_value(json_object_get(o, "total_steps"));
	json_array_foreach(json_object_get(o, "runs"), i, r) {
		json_t *p = json_object_get(r, "last_push");
		double b = json_number_value(json_object_get(p, "raw_bytes"));
		double s = json_number_value(json_object_get(p, "seconds"));
		if (b > 0 && s > 0)
			bytes += b, secs += s;
	}
	if (secs > 0)
		*mb_s = bytes / secs / 1e6;
out:
	json_decref(o);
	free(buf);
}

/* The store's place: s3/gs/az name the provider (region from the newest
 * manifest when it was made there, else unknown); a file store is where the
 * manifest says it was made. */
void run_store_place(const char *url, const struct ckpt_origin *og, struct xfer_place *p)
{
	const char *sp = xfer_url_provider(url);

	memset(p, 0, sizeof(*p));
	if (!strcmp(sp, "none")) {
		snprintf(p->provider, sizeof(p->provider), "%s", og->provider[0] ? og->provider : "none");
		snprintf(p->region, sizeof(p->region), "%s", og->region);
		return;
	}
	snprintf(p->provider, sizeof(p->provider), "%s", sp);
	if (!strcmp(og->provider, sp))
		snprintf(p->region, sizeof(p->region), "%s", og->region);
}

static int run_plan_job(struct xfer_store *st, const char *url, const char *job, struct plan_job *pj)
{
	struct ckpt_info *v = NULL;
	long long total;
	size_t n = 0;
	int rc;

	memset(pj, 0, sizeof(*pj));
	pj->job = job;
	pj->hours_left = pj->lost_hours = -1;
	if ((rc = ckpt_list(st, job, &v, &n)))
		return rc;
	if (!n) {
		free(v);
		return log_fail(EX_NOINPUT, "no committed checkpoints of '%s' in %s", job, xfer_display(st));
	}
	pj->nckpt = n;
	pj->seq = v[n - 1].seq;
	for (size_t i = 0; i < n; i++)
		pj->all_bytes += v[i].stored_bytes;
	if ((rc = ckpt_origin(st, job, pj->seq, &pj->origin)))
		goto out;
	pj->bytes = pj->origin.stored_bytes;
	run_store_place(url, &pj->origin, &pj->src);
	plan_jobrec(st, job, &pj->measured_mb_s, &total);
	if (n >= 2) {
		double t0 = plan_time(v[0].created), t1 = plan_time(v[n - 1].created);
		pj->hours_left = xfer_plan_hours_left(v[0].step, t0, v[n - 1].step, t1, total);
		if (t0 >= 0 && t1 > t0)
			pj->lost_hours = (t1 - t0) / (double)(n - 1) / 3600 / 2;
	}
out:
	free(v);
	return rc;
}

/* ---- plan --------------------------------------------------------------- */

struct plan_row {
	struct xfer_place to;
	const struct xfer_cat_machine *m;
	const struct xfer_cat_region *r;
	int same, on_demand_used;
	double egress_per_gb, mb_s, hourly;
	char rule[200], reason[400];
	struct xfer_plan_out out;
};

struct plan_ctx {
	struct opts *o;
	struct xfer_catalog *cat;
	struct plan_job pj;
	double hours;
	const char *hours_from;
	struct plan_row *rows;
	size_t n;
};

static int plan_row_fill(struct plan_ctx *p, const struct xfer_cat_region *r, const struct xfer_cat_machine *m)
{
	struct plan_row *w;
	const struct xfer_cat_region *sr = xfer_catalog_region(p->cat, &p->pj.src);
	int rc;

	if (p->n >= PLAN_MAX_ROWS)
		return log_fail(EX_USAGE, "too many targets (at most %d)", PLAN_MAX_ROWS);
	w = &p->rows[p->n];
	memset(w, 0, sizeof(*w));
	w->to = r->place;
	w->m = m;
	w->r = r;
	w->same = xfer_place_same(&p->pj.src, &r->place);
	if ((rc = xfer_plan_egress(p->cat, &p->pj.src, &r->place, &w->egress_per_gb, w->rule, sizeof(w->rule))))
		return log_fail(rc, "price catalog '%s': %s", p->cat->file, w->rule);
	w->mb_s = p->pj.measured_mb_s > 0 ? p->pj.measured_mb_s
		  : sr && sr->store_mb_s < r->store_mb_s ? sr->store_mb_s : r->store_mb_s;
	w->on_demand_used = m->spot < 0;
	w->hourly = m->spot >= 0 ? m->spot : m->on_demand;
	struct xfer_plan_in in = {
		.bytes = p->pj.bytes, .same_place = w->same, .egress_per_gb = w->egress_per_gb,
		.mb_s = w->mb_s, .hourly = w->hourly, .hours = p->hours,
		.interrupt_per_h = r->interrupt_per_h,
		.lost_hours = p->pj.lost_hours >= 0 ? p->pj.lost_hours : p->cat->restore_lost_hours,
	};
	xfer_plan_compute(&in, &w->out);
	p->n++;
	return 0;
}

/* One --targets item, or every machine of the catalog. */
static int plan_target(struct plan_ctx *p, const char *item)
{
	struct xfer_place pl;
	char type[96];
	const struct xfer_cat_region *r;
	int rc = 0;

	if (xfer_place_parse(item, &pl, type, sizeof(type)) || !pl.region[0])
		return log_fail(EX_USAGE, "--targets: '%s' is not PROVIDER:REGION[:TYPE]", item);
	if (!(r = xfer_catalog_region(p->cat, &pl)))
		return log_fail(EX_CONFIG, "price catalog '%s' has no entry for %s:%s", p->cat->file,
				pl.provider, pl.region);
	for (size_t i = 0; i < r->nm && !rc; i++)
		if (!type[0] || !strcmp(type, r->m[i].type))
			rc = plan_row_fill(p, r, &r->m[i]);
	if (!rc && type[0] && (!p->n || strcmp(p->rows[p->n - 1].m->type, type)))
		return log_fail(EX_CONFIG, "price catalog '%s' has no machine type '%s' in %s:%s",
				p->cat->file, type, pl.provider, pl.region);
	return rc;
}

static int plan_targets(struct plan_ctx *p)
{
	const char *t = opt_str(p->o, OPT_TARGETS);
	char *copy, *save = NULL, *item;
	int rc = 0;

	if (!(p->rows = calloc(PLAN_MAX_ROWS, sizeof(*p->rows))))
		return log_fail(EX_OSERR, "out of memory");
	if (!t || !*t) {
		for (size_t i = 0; i < p->cat->nr && !rc; i++)
			for (size_t j = 0; j < p->cat->r[i].nm && !rc; j++)
				rc = plan_row_fill(p, &p->cat->r[i], &p->cat->r[i].m[j]);
		return rc;
	}
	if (!(copy = strdup(t)))
		return log_fail(EX_OSERR, "out of memory");
	for (item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save))
		rc = plan_target(p, item);
	free(copy);
	if (!rc && !p->n)
		rc = log_fail(EX_USAGE, "--targets: no target given");
	return rc;
}

static int plan_cmp(const void *a, const void *b)
{
	const struct plan_row *x = a, *y = b;

	if (x->out.total_usd != y->out.total_usd)
		return x->out.total_usd < y->out.total_usd ? -1 : 1;
	return x->out.transfer_s < y->out.transfer_s ? -1 : x->out.transfer_s > y->out.transfer_s;
}

/* Why each row ranks where it does, against the cheapest row that needs
 * no move (staying where the checkpoint is), if any. */
static void plan_reasons(struct plan_ctx *p)
{
	const struct plan_row *stay = NULL;

	for (size_t i = 0; i < p->n && !stay; i++)
		if (p->rows[i].same)
			stay = &p->rows[i];
	for (size_t i = 0; i < p->n; i++) {
		struct plan_row *w = &p->rows[i];
		char *s = w->reason;
		size_t n = sizeof(w->reason);
		int k;

		if (w->same)
			k = snprintf(s, n, "checkpoint already here: nothing to move");
		else if (stay && w->hourly < stay->hourly && w->out.total_usd > stay->out.total_usd)
			k = snprintf(s, n, "egress $%.2f outweighs the cheaper hourly price ($%.3f/h vs $%.3f/h in %s:%s)",
				     w->out.egress_usd, w->hourly, stay->hourly, stay->to.provider, stay->to.region);
		else if (stay && w->hourly < stay->hourly)
			k = snprintf(s, n, "cheaper hourly price ($%.3f/h vs $%.3f/h) pays for egress $%.2f",
				     w->hourly, stay->hourly, w->out.egress_usd);
		else
			k = snprintf(s, n, "egress $%.2f (%s)", w->out.egress_usd, w->rule);
		if (k > 0 && (size_t)k < n && w->on_demand_used)
			k += snprintf(s + k, n - (size_t)k, "; no spot price, on-demand used");
		if (k > 0 && (size_t)k < n && w->m->estimate)
			snprintf(s + k, n - (size_t)k, "; prices are estimates");
	}
}

static json_t *plan_json(const struct plan_ctx *p)
{
	json_t *a = json_array();

	for (size_t i = 0; i < p->n; i++) {
		const struct plan_row *w = &p->rows[i];
		json_array_append_new(a, json_pack(
			"{s:i, s:s, s:s, s:s, s:s, s:i, s:I, s:f, s:f, s:f, s:f, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:s}",
			"rank", (int)i + 1, "provider", w->to.provider, "region", w->to.region, "type", w->m->type,
			"gpu", w->m->gpu, "gpus", w->m->gpus, "move_bytes", (json_int_t)w->out.move_bytes,
			"transfer_seconds", w->out.transfer_s, "throughput_mb_s", w->mb_s,
			"egress_per_gb", w->egress_per_gb, "egress_usd", w->out.egress_usd,
			"hourly_kind", w->on_demand_used ? "on_demand" : "spot", "hourly_usd", w->hourly,
			"interruptions", w->out.interruptions, "overhead_hours", w->out.overhead_h,
			"overhead_usd", w->out.overhead_usd, "compute_usd", w->out.compute_usd,
			"total_usd", w->out.total_usd, "egress_rule", w->rule, "reason", w->reason));
	}
	return json_pack("{s:s, s:I, s:I, s:{s:s, s:s}, s:f, s:s, s:s, s:s, s:o}", "job", p->pj.job,
			 "seq", (json_int_t)p->pj.seq, "bytes", (json_int_t)p->pj.bytes, "source", "provider",
			 p->pj.src.provider, "region", p->pj.src.region, "hours", p->hours, "hours_from",
			 p->hours_from, "catalog", p->cat->file, "catalog_as_of", p->cat->as_of, "targets", a);
}

static void plan_print(const struct plan_ctx *p)
{
	printf("job '%s': newest checkpoint seq %" PRIu64 ", %.3f GB, in %s%s%s; %.2f h left (%s)\n",
	       p->pj.job, p->pj.seq, p->pj.bytes / 1e9, p->pj.src.provider, p->pj.src.region[0] ? ":" : "",
	       p->pj.src.region, p->hours, p->hours_from);
	printf("prices: %s (as of %s; list prices, check them)\n", p->cat->file, p->cat->as_of);
	printf("%-4s %-24s %-26s %9s %9s %9s %8s %9s %10s  %s\n", "rank", "target", "type", "move GB",
	       "xfer s", "egress $", "$/h", "preempt $", "total $", "why");
	for (size_t i = 0; i < p->n; i++) {
		const struct plan_row *w = &p->rows[i];
		char tgt[100];
		snprintf(tgt, sizeof(tgt), "%s:%s", w->to.provider, w->to.region);
		printf("%-4zu %-24s %-26s %9.3f %9.0f %9.2f %8.3f %9.2f %10.2f  %s\n", i + 1, tgt, w->m->type,
		       w->out.move_bytes / 1e9, w->out.transfer_s, w->out.egress_usd, w->hourly,
		       w->out.overhead_usd, w->out.total_usd, w->reason);
	}
}

/* --hours, else from progress; unknown is a usage error. */
static int plan_hours(const struct opts *o, const struct plan_job *pj, double *h, const char **from)
{
	if (opt_is_set(o, OPT_HOURS)) {
		*h = opt_number(o, OPT_HOURS);
		*from = "--hours";
		return 0;
	}
	if (pj->hours_left >= 0) {
		*h = pj->hours_left;
		*from = "progress rate of the job's checkpoints and job.json total_steps";
		return 0;
	}
	return log_fail(EX_USAGE, "the remaining run time of '%s' is unknown (job.json has no "
			"total_steps, or fewer than two checkpoints with steps): pass --hours H", pj->job);
}

int cmd_plan(struct opts *o)
{
	struct plan_ctx p = { .o = o };
	struct xfer_store *st = NULL;
	char *owned = NULL;
	const char *job;
	int rc;

	if ((rc = run_nargs(o, 0, 0)) || (rc = run_store_need(o, &st)) ||
	    (rc = run_store_job(o, st, &job, &owned)) || (rc = xfer_catalog_load(opt_str(o, OPT_CATALOG), &p.cat)) ||
	    (rc = run_plan_job(st, run_store_url(o), job, &p.pj)) ||
	    (rc = plan_hours(o, &p.pj, &p.hours, &p.hours_from)) || (rc = plan_targets(&p)))
		goto out;
	qsort(p.rows, p.n, sizeof(*p.rows), plan_cmp);
	plan_reasons(&p);
	if (opt_flag(o, OPT_JSON))
		rc = run_print_json(plan_json(&p));
	else
		plan_print(&p);
out:
	free(p.rows);
	xfer_catalog_free(p.cat);
	free(owned);
	xfer_close(st);
	return rc;
}

/* ---- migration record ------------------------------------------------ */

json_t *run_migration_who(void)
{
	char host[256] = "", now[40];
	const char *user = getenv("USER"), *prov = getenv("SPOTRUN_PROVIDER");
	const char *region = getenv("SPOTRUN_REGION");

	gethostname(host, sizeof(host) - 1);
	run_now_iso(now, sizeof(now));
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "at", now, "host", host, "user", user ? user : "",
			 "pid", (int)getpid(), "provider", prov ? prov : "", "region", region ? region : "");
}

/* Appends rec to <job>/job.json's "migrations" in st; when st has no job
 * record yet, base (another store's record) is the starting point. */
int run_jobrec_migration(struct xfer_store *st, const char *job, json_t *base, json_t *rec)
{
	char key[512], *s = NULL, now[40];
	json_t *o = run_jobrec_read(st, job), *a;
	int rc;

	snprintf(key, sizeof(key), "%s/job.json", job);
	if (!o) {
		run_now_iso(now, sizeof(now));
		o = json_is_object(base) ? json_deep_copy(base)
		    : json_pack("{s:i, s:s, s:s, s:[]}", "version", 1, "job", job, "created", now, "runs");
	}
	if (!o)
		goto oom;
	a = json_object_get(o, "migrations");
	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(o, "migrations", a);
	}
	json_array_append(a, rec);
	if (!(s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS)))
		goto oom;
	rc = xfer_put(st, key, s, strlen(s), 0);
	goto out;
oom:
	rc = log_fail(EX_OSERR, "out of memory");
out:
	free(s);
	json_decref(o);
	return rc;
}

/* ---- migrate ------------------------------------------------------------- */

struct mig_est {
	struct xfer_place to;
	double per_gb, mb_s, usd, seconds;
	char rule[200];
};

static int mig_estimate(struct opts *o, const struct plan_job *pj, const char *to_url, struct mig_est *e)
{
	struct xfer_catalog *cat = NULL;
	const struct xfer_cat_region *sr, *dr;
	int rc;

	memset(e, 0, sizeof(*e));
	snprintf(e->to.provider, sizeof(e->to.provider), "%s", xfer_url_provider(to_url));
	if ((rc = xfer_catalog_load(opt_str(o, OPT_CATALOG), &cat)))
		return rc;
	if ((rc = xfer_plan_egress(cat, &pj->src, &e->to, &e->per_gb, e->rule, sizeof(e->rule)))) {
		rc = log_fail(rc, "price catalog '%s': %s", cat->file, e->rule);
		goto out;
	}
	sr = xfer_catalog_region(cat, &pj->src);
	dr = xfer_catalog_region(cat, &e->to);
	e->mb_s = pj->measured_mb_s > 0 ? pj->measured_mb_s : sr && dr ? fmin(sr->store_mb_s, dr->store_mb_s)
		  : sr ? sr->store_mb_s : dr ? dr->store_mb_s : 100;
	e->usd = pj->all_bytes / 1e9 * e->per_gb;
	e->seconds = pj->all_bytes / (e->mb_s * 1e6);
out:
	xfer_catalog_free(cat);
	return rc;
}

static int mig_open_dst(struct opts *o, const char *to, struct xfer_store **dst)
{
	return run_store_open_other(o, to, "--to", dst);
}

static json_t *mig_record(const char *from, const char *to, const struct plan_job *pj,
			  const struct mig_est *e, const struct ckpt_migrate_result *r)
{
	json_t *rec = json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:I, s:I, s:{s:f, s:f, s:f}, s:{s:f, s:f}, s:s}",
				"kind", "migrate", "from", from, "to", to, "bytes", (json_int_t)r->bytes,
				"copied", (int)r->copied, "skipped", (int)r->skipped, "server_side_bytes",
				(json_int_t)r->server_side_bytes, "verified_bytes", (json_int_t)r->verified_bytes,
				"estimated", "bytes", (double)pj->all_bytes, "usd", e->usd, "seconds", e->seconds,
				"actual", "usd", r->bytes / 1e9 * e->per_gb, "seconds", r->seconds,
				"egress_rule", e->rule);
	json_t *who = run_migration_who();

	if (rec && who)
		json_object_update(rec, who);
	json_decref(who);
	return rec;
}


static void mig_print_plan(const char *from, const char *to, const struct plan_job *pj, const struct mig_est *e,
			   int dry)
{
	printf("%s '%s': %zu checkpoints, %.3f GB, from %s (%s%s%s) to %s (%s)\n",
	       dry ? "would migrate" : "migrating", pj->job, pj->nckpt, pj->all_bytes / 1e9, from,
	       pj->src.provider, pj->src.region[0] ? ":" : "", pj->src.region, to, e->to.provider);
	printf("estimate: egress $%.2f ($%.4f/GB, %s), about %.0f s at %.0f MB/s\n", e->usd, e->per_gb,
	       e->rule, e->seconds, e->mb_s);
	fflush(stdout);
}

/* --hook/--hooks-dir: validated before anything moves. */
static int mig_hooks_open(struct opts *o, struct hook_set **h)
{
	char **specs = opt_list(o, OPT_HOOK);
	const char *tmp = getenv("TMPDIR");
	struct hook_config hc = { .specs = specs, .dir = opt_str(o, OPT_HOOKS_DIR),
				  .timeout = opt_seconds(o, OPT_HOOK_TIMEOUT), .tmpdir = tmp && *tmp ? tmp : "/tmp" };
	int rc = hook_set_new(&hc, h);

	opt_list_free(specs);
	return rc;
}

/* The migration event (the document of docs/hooks.md, data: the record),
 * its hooks waited for; --hook-strict turns a failed hook into exit 70. */
static int mig_hooks_fire(struct opts *o, struct hook_set *h, const char *job, json_t *rec)
{
	char host[256] = "", now[40], *s, *env[4] = { 0 };
	const char *prov = getenv("SPOTRUN_PROVIDER");
	struct timespec ts;
	json_t *doc;

	if (!hook_count(h, "migration"))
		return 0;
	gethostname(host, sizeof(host) - 1);
	run_now_iso(now, sizeof(now));
	clock_gettime(CLOCK_REALTIME, &ts);
	doc = json_pack("{s:i, s:s, s:s, s:s, s:f, s:s, s:i, s:i, s:{s:s}, s:O}", "version", 1, "event",
			"migration", "job", job, "time", now, "unix", ts.tv_sec + ts.tv_nsec / 1e9, "host", host,
			"pid", (int)getpid(), "run", 0, "provider", "name", prov && *prov ? prov : "unknown",
			"data", rec);
	if (!doc || !(s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS))) {
		json_decref(doc);
		return log_fail(EX_SOFTWARE, "cannot encode the migration event");
	}
	if (asprintf(&env[0], "SPOTRUN_JOB=%s", job) < 0)
		env[0] = NULL;
	else if (asprintf(&env[1], "SPOTRUN_STORE=%s", run_store_url(o)) < 0)
		env[1] = NULL;
	hook_fire(h, "migration", s, env);
	hook_drain(h);
	free(env[0]);
	free(env[1]);
	free(s);
	json_decref(doc);
	if (hook_failures(h) && opt_flag(o, OPT_HOOK_STRICT))
		return log_fail(EX_SOFTWARE, "%d hook(s) failed and --hook-strict is set", hook_failures(h));
	return 0;
}

int cmd_migrate(struct opts *o)
{
	struct xfer_store *src = NULL, *dst = NULL;
	const char *to = opt_str(o, OPT_TO), *job, *from = run_store_url(o);
	struct ckpt_migrate_result r;
	struct hook_set *hooks = NULL;
	struct plan_job pj;
	struct mig_est e;
	json_t *rec = NULL, *base = NULL;
	char *owned = NULL;
	int rc;

	if (!to)
		return log_fail(EX_USAGE, "'spotrun migrate' needs --to URL (the destination store)");
	if ((rc = run_nargs(o, 0, 0)) || (rc = mig_hooks_open(o, &hooks)) || (rc = run_store_need(o, &src)) ||
	    (rc = run_store_job(o, src, &job, &owned)) || (rc = run_plan_job(src, from, job, &pj)) ||
	    (rc = mig_estimate(o, &pj, to, &e)))
		goto out;
	mig_print_plan(xfer_display(src), to, &pj, &e, opt_flag(o, OPT_DRY_RUN));
	if (opt_is_set(o, OPT_MAX_COST) && e.usd > opt_number(o, OPT_MAX_COST)) {
		rc = log_fail(EX_CONFIG, "estimated cost $%.2f exceeds --max-cost %.2f: not migrating", e.usd,
			      opt_number(o, OPT_MAX_COST));
		goto out;
	}
	if (opt_flag(o, OPT_DRY_RUN) || (rc = mig_open_dst(o, to, &dst)))
		goto out;
	if (!strcmp(xfer_display(src), xfer_display(dst))) {
		rc = log_fail(EX_USAGE, "--to names the source store itself");
		goto out;
	}
	if ((rc = ckpt_migrate(src, dst, job, run_workers(o), &r)))
		goto out;
	rec = mig_record(xfer_display(src), xfer_display(dst), &pj, &e, &r);
	base = run_jobrec_read(src, job);
	if ((rc = run_jobrec_migration(dst, job, base, rec)) || (rc = run_jobrec_migration(src, job, NULL, rec)))
		goto out;
	printf("migrated '%s': %u checkpoints copied, %u already there, %.3f GB (%.3f GB inside the "
	       "service) in %.1f s; %.3f GB verified at the destination\n", job, r.copied, r.skipped,
	       r.bytes / 1e9, r.server_side_bytes / 1e9, r.seconds, r.verified_bytes / 1e9);
	fflush(stdout);
	rc = mig_hooks_fire(o, hooks, job, rec);
out:
	hook_set_free(hooks);
	json_decref(rec);
	json_decref(base);
	free(owned);
	xfer_close(src);
	xfer_close(dst);
	return rc;
}
