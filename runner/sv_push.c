/*
 * sv_push.c - checkpoints leave the machine while the command runs.  Each
 * folder the command commits is pushed by one background thread (one push
 * at a time; while it runs, newer commits replace each other in `pending`,
 * so the newest wins and the loop never blocks).  The thread reports
 * through a pipe the loop polls.  On the way out (FINISHING) the loop waits
 * for the newest committed folder to be safe in the store.
 *
 * Also here: restoring the newest committed checkpoint before the first
 * start, the upload-time estimate the grace budget subtracts (measured
 * throughput of earlier pushes, remembered across runs), --keep-local, and
 * the emergency plan: under a notice, the final push is planned against the
 * time left (see sv_plan_make).
 */
#include "sv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "xfer.h"

/* The emergency plan of the final push under a notice, and the measured
 * push rates per codec (0: bp1 default, 1: --portable), raw bytes/s.  Only
 * the loop thread writes these; the push thread reads the plan after
 * pthread_create.  One supervisor per process. */
static struct {
	double bps[2];
	int active, level;
	double est, left;
} sv_plan;

#define SV_PLAN_MARGIN 1.25
#define SV_PLAN_DEFAULT_BPS 150e6	/* before any push was measured */
#define SV_PLAN_HASH_BPS 800e6		/* re-hashing unchanged files (incremental) */

int sv_push_open(struct sv *sv)
{
	struct xfer_store *st = NULL;
	int rc = run_store_open(sv->o, &st);

	if (rc)
		return rc;
	sv->push.store = st;
	if (!st)
		return 0;
	if (opt_str(sv->o, OPT_ENCRYPT_KEY_FILE)) {
		if ((rc = ckpt_key_load(opt_str(sv->o, OPT_ENCRYPT_KEY_FILE), sv->push.key)))
			return rc;
		sv->push.have_key = 1;
	}
	if (pipe2(sv->push.done_fd, O_CLOEXEC | O_NONBLOCK))
		return log_fail(EX_OSERR, "pipe: %s", strerror(errno));
	log_info("store: %s", xfer_display(st));
	return 0;
}

void sv_push_close(struct sv *sv)
{
	explicit_bzero(sv->push.key, sizeof(sv->push.key));
	if (sv->push.running)
		pthread_join(sv->push.thread, NULL);
	sv->push.running = 0;
	for (int i = 0; i < 2; i++)
		if (sv->push.done_fd[i] >= 0)
			close(sv->push.done_fd[i]);
	xfer_close(sv->push.store);
	sv->push.store = NULL;
}

/* ---- the push thread ------------------------------------------------- */

static int sv_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(path) && errno != ENOENT ? -1 : 0;
}

/* --keep-local N: removes local finished folders beyond the newest N that
 * are committed in the store (by name).  Runs on the push thread. */
static void sv_prune_local(struct sv *sv)
{
	long long keep = opt_int(sv->o, OPT_KEEP_LOCAL);
	struct ckpt_info *v = NULL;
	size_t n = 0, kept = 0;

	if (keep <= 0 || ckpt_list(sv->push.store, sv->job, &v, &n))
		return;
	for (size_t i = n; i-- > 0;) {
		char path[PATH_MAX + 300];
		if (kept++ < (size_t)keep)
			continue;
		snprintf(path, sizeof(path), "%s/%s", sv->ckpt_dir, v[i].name);
		if (access(path, F_OK) || !strcmp(path, sv->push.active))
			continue;
		if (nftw(path, sv_rm_entry, 16, FTW_DEPTH | FTW_PHYS))
			log_warn("--keep-local: cannot remove '%s': %s", path, strerror(errno));
		else
			log_info("--keep-local: removed '%s' (safe in the store as seq %llu)", path,
				 (unsigned long long)v[i].seq);
	}
	free(v);
}

static void *sv_push_thread(void *arg)
{
	struct sv *sv = arg;
	struct ckpt_push_opts po = {
		.job = sv->job,
		.step = -1,
		.workers = run_workers(sv->o),
		.part_size = (uint64_t)opt_int(sv->o, OPT_PART_SIZE),
		.level = sv_plan.active ? sv_plan.level : (int)opt_int(sv->o, OPT_LEVEL),
		.portable = opt_flag(sv->o, OPT_PORTABLE),
		.full = opt_flag(sv->o, OPT_FULL),
		.key = sv->push.have_key ? sv->push.key : NULL,
		.ident = { .provider = sv->push.id.provider, .region = sv->push.id.region,
			   .instance_type = sv->push.id.instance_type },
	};
	char c = 1;

	sv->push.result = ckpt_push(sv->push.store, sv->push.active, &po, &sv->push.last);
	if (sv->push.result == 0)
		sv_prune_local(sv);
	if (write(sv->push.done_fd[1], &c, 1) < 0)
		log_warn("push: cannot wake the supervisor: %s", strerror(errno));
	return NULL;
}

static uint64_t sv_dir_bytes_sum;

static int sv_dir_add(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)path, (void)f;
	if (flag == FTW_F && S_ISREG(st->st_mode))
		sv_dir_bytes_sum += (uint64_t)st->st_size;
	return 0;
}

/* The rate of the codec this run pushes with: measured, else the blended
 * rate of earlier pushes, else a guess. */
static double sv_plan_rate(const struct sv *sv)
{
	double r = sv_plan.bps[opt_flag(sv->o, OPT_PORTABLE) ? 1 : 0];

	return r > 0 ? r : sv->push.bytes_per_sec > 0 ? sv->push.bytes_per_sec : SV_PLAN_DEFAULT_BPS;
}

/* Under a notice, before each push (the final one): estimate it from the folder's size
 * and the measured rate against the time left, and choose: push as usual;
 * push at level 1 (when a slower level is configured) relying on the
 * incremental push (unchanged files are only re-hashed); or skip and keep
 * the last committed checkpoint.  Returns 1 to skip. */
static int sv_plan_make(struct sv *sv, const char *dir)
{
	struct sv_pushq *q = &sv->push;
	double left = sv->notice.deadline - prov_now(), rate = sv_plan_rate(sv), est, fast;
	double unchanged = q->last.raw_bytes + q->last.ref_bytes > 0 && !opt_flag(sv->o, OPT_FULL) ?
			   (double)q->last.ref_bytes / (double)(q->last.raw_bytes + q->last.ref_bytes) : 0;
	int level = (int)opt_int(sv->o, OPT_LEVEL);

	sv_dir_bytes_sum = 0;
	nftw(dir, sv_dir_add, 16, FTW_PHYS);
	est = SV_PLAN_MARGIN * (double)sv_dir_bytes_sum * (1 - unchanged) / rate +
	      (double)sv_dir_bytes_sum * unchanged / SV_PLAN_HASH_BPS;
	fast = level > 1 ? est / 2 : est;	/* level 1 runs about twice as fast as 3+ */
	sv_plan.active = 1;
	sv_plan.left = left;
	sv_plan.level = level;
	sv_plan.est = est;
	if (est <= left || !q->last.seq) {
		log_note("emergency plan: push '%s' (%.0f MB) as configured: estimate %.1f s, %.1f s left%s",
			 dir, sv_dir_bytes_sum / 1e6, est, left,
			 est > left ? " (nothing committed yet: push whatever the time)" : "");
		return 0;
	}
	if (fast <= left) {
		sv_plan.level = 1;
		sv_plan.est = fast;
		log_note("emergency plan: push '%s' at level 1 instead of %d: estimate %.1f s, %.1f s left",
			 dir, level, fast, left);
		return 0;
	}
	log_warn("emergency plan: skip pushing '%s' (%.0f MB, estimate %.1f s, %.1f s left); checkpoint "
		 "%llu stays the newest in the store", dir, sv_dir_bytes_sum / 1e6, fast, left,
		 (unsigned long long)q->last.seq);
	sv_plan.active = 0;
	return 1;
}

/* After a push: per-codec rates, and how the emergency estimate did. */
static void sv_plan_learn(struct sv *sv, double rate)
{
	double *r = &sv_plan.bps[opt_flag(sv->o, OPT_PORTABLE) ? 1 : 0];

	*r = *r > 0 ? 0.5 * *r + 0.5 * rate : rate;
	if (sv_plan.active)
		log_note("emergency push took %.1f s (estimated %.1f s, %.1f s were left)", sv->push.last.seconds,
			 sv_plan.est, sv_plan.left);
	sv_plan.active = 0;
}

static void sv_push_start(struct sv *sv)
{
	struct sv_pushq *q = &sv->push;

	if (!q->store || q->running || !q->pending[0])
		return;
	if (sv->noticed && sv_plan_make(sv, q->pending)) {
		q->pending[0] = 0;	/* skipped: the last committed checkpoint stands */
		if (sv->state == SV_FINISHING)
			sv_finish_done(sv);
		return;
	}
	memcpy(q->active, q->pending, sizeof(q->active));
	q->pending[0] = 0;
	q->started_at = sv_mono();
	/* the thread reads only its own copy of the identity */
	memset(&q->id, 0, sizeof(q->id));
	if (sv->id_settled)
		q->id = sv->id;
	if (pthread_create(&q->thread, NULL, sv_push_thread, sv)) {
		log_error("cannot start the push thread: %s", strerror(errno));
		memcpy(q->pending, q->active, sizeof(q->pending));
		q->active[0] = 0;
		return;
	}
	q->running = 1;
	log_info("pushing '%s'", q->active);
}

/* ---- the loop's side ------------------------------------------------- */

void sv_push_done(struct sv *sv)
{
	struct sv_pushq *q = &sv->push;
	char buf[16];

	while (read(q->done_fd[0], buf, sizeof(buf)) > 0)
		;
	if (!q->running)
		return;
	pthread_join(q->thread, NULL);
	q->running = 0;
	if (q->result == 0) {
		double secs = q->last.seconds > 0.001 ? q->last.seconds : 0.001;
		double rate = (double)q->last.raw_bytes / secs;
		q->bytes_per_sec = q->bytes_per_sec > 0 ? 0.5 * q->bytes_per_sec + 0.5 * rate : rate;
		sv_plan_learn(sv, rate);
		q->last_raw_bytes = q->last.raw_bytes;
		memcpy(q->pushed, q->active, sizeof(q->pushed));
		log_note("pushed '%s' as seq %llu: %.1f MB in %.2f s (%.0f MB/s, stored %.1f MB)",
			 q->last.name, (unsigned long long)q->last.seq, q->last.raw_bytes / 1e6,
			 q->last.seconds, rate / 1e6, q->last.stored_bytes / 1e6);
		sv_state_save(sv, -1);
		sv_event(sv, "checkpoint-committed",
			 json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f}", "dir", q->active, "name",
				   q->last.name, "seq", (json_int_t)q->last.seq, "step",
				   (json_int_t)q->last.step, "raw_bytes", (json_int_t)q->last.raw_bytes,
				   "stored_bytes", (json_int_t)q->last.stored_bytes, "seconds",
				   q->last.seconds));
	} else {
		sv_event(sv, "push-failed", json_pack("{s:s, s:i}", "dir", q->active, "code", q->result));
		log_error("push of '%s' failed; it stays committed locally and is retried with the "
			  "next commit", q->active);
		if (!q->pending[0]) /* nothing newer: try this one again next time */
			memcpy(q->pending, q->active, sizeof(q->pending));
		q->failures++;
	}
	q->active[0] = 0;
	if (sv->state == SV_FINISHING) {
		if (q->result == 0 && q->pending[0])
			sv_push_start(sv);
		else
			sv_finish_done(sv);
		return;
	}
	if (q->result == 0)
		sv_push_start(sv);
}

void sv_push_committed(struct sv *sv, const char *dir)
{
	snprintf(sv->push.pending, sizeof(sv->push.pending), "%s", dir);
	sv->push.newest_committed_set = 1;
	if (sv->state != SV_FINISHING)
		sv_push_start(sv);
}

/* An early push (rebalance recommendation): the newest finished folder, if
 * it is not in the store yet. */
void sv_push_newest(struct sv *sv)
{
	struct run_local_ckpt c;

	if (!run_newest_local(sv->ckpt_dir, &c) || !strcmp(c.path, sv->push.pushed) ||
	    !strcmp(c.path, sv->push.active))
		return;
	sv_push_committed(sv, c.path);
}

/* Seconds the final push is expected to take: the last push's size at the
 * measured rate, with a 25% margin; unknown before the first push. */
double sv_push_estimate(const struct sv *sv)
{
	const struct sv_pushq *q = &sv->push;

	if (!q->store || q->bytes_per_sec <= 0)
		return 0;
	return SV_PLAN_MARGIN * (double)q->last_raw_bytes / sv_plan_rate(sv);
}

int sv_push_fd(const struct sv *sv) { return sv->push.store ? sv->push.done_fd[0] : -1; }

double sv_push_deadline(const struct sv *sv) { return INFINITY; }

/* The run is over (the command and its tree are gone): make sure the newest
 * finished folder is in the store, then DONE. */
void sv_finish(struct sv *sv)
{
	struct sv_pushq *q = &sv->push;

	sv_set_state(sv, SV_FINISHING);
	if (!q->store) {
		sv_finish_done(sv);
		return;
	}
	if (!q->pending[0] && !q->running)
		sv_push_newest(sv);
	if (q->running || q->pending[0]) {
		log_note("waiting for the newest checkpoint to reach the store");
		sv_push_start(sv);
		return;
	}
	sv_finish_done(sv);
}

void sv_finish_done(struct sv *sv)
{
	struct sv_pushq *q = &sv->push;

	if (q->store && (q->pending[0] || q->result)) {
		log_error("the newest checkpoint did not reach the store '%s'; it is still in '%s'",
			  xfer_display(q->store), sv->ckpt_dir);
		if (sv->next == NEXT_EXIT && sv->final_code == 0)
			sv->final_code = EX_UNAVAILABLE;
	} else if (sv->noticed && sv->watch) {
		/* the checkpoint is safe: let the provider take the machine now
		 * (Azure StartRequests); a no-op for the others */
		prov_watch_committed(sv->watch);
	}
	sv_set_state(sv, SV_DONE);
}

/* ---- the job record --------------------------------------------------- */

static json_t *sv_run_entry(struct sv *sv, int ended)
{
	char now[40], host[256] = "";
	json_t *r;

	gethostname(host, sizeof(host) - 1);
	run_now_iso(now, sizeof(now));
	r = json_pack("{s:s, s:s, s:i, s:i}", ended ? "ended" : "started", now, "host", host,
		      "pid", (int)getpid(), "start", sv->starts_before + 1);
	if (sv->run_started[0])
		json_object_set_new(r, "started", json_string(sv->run_started));
	else
		snprintf(sv->run_started, sizeof(sv->run_started), "%s", now);
	if (sv->id_settled)
		json_object_set_new(r, "provider", json_pack("{s:s, s:s, s:s}", "name", sv->id.provider,
							     "region", sv->id.region, "instance_type",
							     sv->id.instance_type));
	if (!ended)
		return r;
	json_object_set_new(r, "exit", json_integer(sv->final_code));
	json_object_set_new(r, "reason", json_string(sv->next == NEXT_INTERRUPTED ? "interrupted"
						     : sv->child_code ? "failed" : "finished"));
	json_object_set_new(r, "restarts", json_integer(sv->restarts));
	if (sv->push.last.seq)
		json_object_set_new(r, "last_push", json_pack("{s:I, s:I, s:I, s:f}", "seq",
			(json_int_t)sv->push.last.seq, "step", (json_int_t)sv->push.last.step,
			"raw_bytes", (json_int_t)sv->push.last.raw_bytes, "seconds", sv->push.last.seconds));
	if (sv->noticed)
		json_object_set_new(r, "notice", json_pack("{s:s, s:s, s:f}", "source", sv->notice.source,
			"kind", prov_kind_name(sv->notice.kind), "lead_seconds",
			sv->notice.deadline - sv->notice.received));
	return r;
}

void sv_record_start(struct sv *sv)
{
	if (sv->push.store)
		sv_events_run(sv, sv_run_entry(sv, 0));
}

void sv_record_end(struct sv *sv)
{
	if (!sv->push.store)
		return;
	sv_events_run(sv, sv_run_entry(sv, 1));
	sv_events_flush(sv);
}
