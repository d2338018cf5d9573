/*
 * sv_events.c - one event of a run (start, notice, checkpoint-committed,
 * push-failed, resume, restart, migration, exit) fans out from sv_event()
 * to: user hooks (hooks/, started without blocking), the metrics file, this
 * run's summary in job.json runs[], and an event object in the store
 * (<job>/events/<time>-<host>.json).  Store writes happen on the "record"
 * thread owned here, fed through a small queue, so the loop never waits for
 * a network call; the thread coalesces summary updates (only the newest
 * snapshot is written).  This run's entry in job.json runs[] is written by
 * the same thread (sv_events_run): appended once the command has started,
 * so the command never waits for the store, then merged with the summary
 * and the run's end.  Event documents have one schema for every provider:
 * {version, event, job, time, unix, host, pid, run, provider, data}.
 */
#include "sv.h"
#include "hooks.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xfer.h"

struct sv_recorder {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake, idle;
	json_t *queue;		/* event documents waiting */
	json_t *summary;	/* newest run summary waiting, or NULL */
	json_t *entry;		/* run entry keys waiting (start, end), or NULL */
	char **argv;		/* the command, for a new job record */
	int index;		/* this run's entry: -1 not yet appended, -2 failed */
	int started;		/* sv_events_run was given the start */
	int busy, stop, running;
	struct xfer_store *st;
	char job[256], host[256];
};

/* ---- the record thread -------------------------------------------------- */

/* The run's entry: its first write appends it (start, summary and perhaps
 * the end at once), later ones merge their keys into it. */
static void sv_rec_run(struct sv_recorder *r, json_t *summary, json_t *entry)
{
	json_t *all;
	int at;

	pthread_mutex_lock(&r->mu);
	at = r->index;
	pthread_mutex_unlock(&r->mu);
	if (at == -2 || (!summary && !entry) || !(all = json_object()))
		return;
	if (summary)
		json_object_update(all, summary);
	if (entry)
		json_object_update(all, entry);
	if (at >= 0) {
		if (run_jobrec_run(r->st, r->job, NULL, at, all) < 0)
			log_warn("cannot update this run in '%s/job.json'", r->job);
	} else if ((at = run_jobrec_run(r->st, r->job, r->argv, -1, all)) < 0) {
		log_warn("cannot record this run in '%s/job.json'", r->job);
		at = -2;
	}
	json_decref(all);
	pthread_mutex_lock(&r->mu);
	r->index = at;
	pthread_mutex_unlock(&r->mu);
}

static void sv_rec_write(struct sv_recorder *r, json_t *events, json_t *summary, json_t *entry)
{
	size_t i;
	json_t *ev;

	json_array_foreach(events, i, ev)
		if (run_event_put(r->st, r->job, r->host, ev))
			log_warn("cannot write the %s event to the store",
				 json_string_value(json_object_get(ev, "event")));
	sv_rec_run(r, summary, entry);
}

static void *sv_rec_thread(void *arg)
{
	struct sv_recorder *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->stop && !json_array_size(r->queue) && !r->summary && !r->entry)
			pthread_cond_wait(&r->wake, &r->mu);
		if (!json_array_size(r->queue) && !r->summary && !r->entry)
			break;
		json_t *events = r->queue, *summary = r->summary, *entry = r->entry;
		r->queue = json_array();
		r->summary = r->entry = NULL;
		r->busy = 1;
		pthread_mutex_unlock(&r->mu);
		sv_rec_write(r, events, summary, entry);
		json_decref(events);
		json_decref(summary);
		json_decref(entry);
		pthread_mutex_lock(&r->mu);
		r->busy = 0;
		pthread_cond_broadcast(&r->idle);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void sv_rec_put(struct sv *sv, json_t *doc)
{
	struct sv_recorder *r = sv->rec;

	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	if (doc)
		json_array_append(r->queue, doc);
	if (r->started && sv->runsum) {
		json_decref(r->summary);
		r->summary = json_deep_copy(sv->runsum);
	}
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->mu);
}

void sv_events_flush(struct sv *sv)
{
	struct sv_recorder *r = sv->rec;
	struct timespec ts;

	if (!r || !r->running)
		return;
	sv_rec_put(sv, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 15; /* a store that hangs must not keep the run forever */
	pthread_mutex_lock(&r->mu);
	while ((json_array_size(r->queue) || r->summary || r->entry || r->busy) &&
	       pthread_cond_timedwait(&r->idle, &r->mu, &ts) == 0)
		;
	pthread_mutex_unlock(&r->mu);
}

/* Keys of this run's entry in job.json (its start, its end): handed to the
 * record thread, merged with what is still waiting; written at once by the
 * caller when there is no record thread.  Takes entry. */
void sv_events_run(struct sv *sv, json_t *entry)
{
	struct sv_recorder *r = sv->rec;

	if (!entry || !r) { /* no store, nothing to record in */
		json_decref(entry);
		return;
	}
	if (!r->running) { /* no record thread: written here */
		r->argv = sv->argv;
		sv_rec_run(r, NULL, entry);
		json_decref(entry);
		return;
	}
	pthread_mutex_lock(&r->mu);
	if (r->entry) {
		json_object_update(r->entry, entry);
		json_decref(entry);
	} else {
		r->entry = entry;
	}
	r->argv = sv->argv;
	r->started = 1;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->mu);
}

/* ---- set-up ------------------------------------------------------------- */

/* A hook left a JSON object in SPOTRUN_RECORD_FILE: it goes into the
 * record as a "hook-record" event (e.g. the nvidia-smi snapshot). */
static void sv_hook_recorded(void *arg, const char *event, const char *hook, int ok, const char *file)
{
	struct sv *sv = arg;
	json_error_t err;
	json_t *rec = json_load_file(file, 0, &err);

	if (!json_is_object(rec)) {
		log_warn("hook '%s': its record file is not a JSON object (%s)", hook, err.text);
		json_decref(rec);
		return;
	}
	sv_event(sv, "hook-record", json_pack("{s:s, s:s, s:b, s:o}", "hook", hook, "for", event,
					      "ok", ok, "record", rec));
}

int sv_events_open(struct sv *sv)
{
	struct hook_config hc = { .dir = opt_str(sv->o, OPT_HOOKS_DIR),
				  .timeout = opt_seconds(sv->o, OPT_HOOK_TIMEOUT),
				  .tmpdir = sv->rundir, .mask = &sv->orig_mask,
				  .recorded = sv_hook_recorded, .arg = sv };
	struct sv_recorder *r;
	char **specs = opt_list(sv->o, OPT_HOOK);
	int rc;

	hc.specs = specs;
	rc = hook_set_new(&hc, &sv->hooks);
	opt_list_free(specs);
	if (rc)
		return rc;
	sv->hook_strict = opt_flag(sv->o, OPT_HOOK_STRICT);
	gethostname(sv->host, sizeof(sv->host) - 1);
	if (!sv->host[0])
		snprintf(sv->host, sizeof(sv->host), "host");
	sv->runsum = json_object();
	if ((rc = sv_metrics_open(sv)))
		return rc;
	if (!sv->push.store || !(r = calloc(1, sizeof(*r))))
		return 0;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->wake, NULL);
	pthread_cond_init(&r->idle, NULL);
	r->queue = json_array();
	r->index = -1;
	r->st = sv->push.store;
	snprintf(r->job, sizeof(r->job), "%s", sv->job);
	snprintf(r->host, sizeof(r->host), "%s", sv->host);
	run_job_sanitize(r->host);
	sv->rec = r;
	return 0;
}

/* Starts writing what was queued so far (start, resume) once the store has
 * proved readable (sv_restore): a run that cannot start records nothing. */
void sv_events_record(struct sv *sv)
{
	struct sv_recorder *r = sv->rec;

	if (!r || r->running)
		return;
	if (pthread_create(&r->thread, NULL, sv_rec_thread, r)) {
		log_warn("cannot start the record thread: %s", strerror(errno));
		return;
	}
	r->running = 1;
}

void sv_events_close(struct sv *sv)
{
	struct sv_recorder *r = sv->rec;

	if (r) {
		if (r->running) {
			sv_events_flush(sv);
			pthread_mutex_lock(&r->mu);
			r->stop = 1;
			pthread_cond_signal(&r->wake);
			pthread_mutex_unlock(&r->mu);
			pthread_join(r->thread, NULL);
		}
		json_decref(r->queue);
		json_decref(r->summary);
		json_decref(r->entry);
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->wake);
		pthread_cond_destroy(&r->idle);
		free(r);
		sv->rec = NULL;
	}
	hook_set_free(sv->hooks);
	sv->hooks = NULL;
	sv_metrics_close(sv);
	json_decref(sv->runsum);
	sv->runsum = NULL;
}

int sv_spared_pgids(const struct sv *sv, pid_t *out, int max)
{
	return hook_pgids(sv->hooks, out, max);
}

/* ---- the event document and the run summary ------------------------------- */

json_t *sv_event_doc(struct sv *sv, const char *event, json_t *data)
{
	char now[40];
	json_t *d, *p;

	run_now_iso(now, sizeof(now));
	d = json_pack("{s:i, s:s, s:s, s:s, s:f, s:s, s:i, s:i}", "version", 1, "event", event, "job",
		      sv->job, "time", now, "unix", prov_now(), "host", sv->host, "pid", (int)getpid(),
		      "run", sv->starts_before + 1);
	if (!d) {
		json_decref(data);
		return NULL;
	}
	if (sv->id_settled)
		p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", sv->id.provider, "region",
			      sv->id.region, "zone", sv->id.zone, "instance_type", sv->id.instance_type,
			      "instance_id", sv->id.instance_id, "lifecycle", sv->id.lifecycle,
			      "scheduler", sv->id.scheduler);
	else
		p = json_pack("{s:s}", "name", "unknown");
	json_object_set_new(d, "provider", p);
	if (sv->slurm_job[0])
		json_object_set_new(d, "slurm", json_pack("{s:s, s:i}", "job", sv->slurm_job, "restart_count",
							  sv->slurm_restarts < 0 ? 0 : sv->slurm_restarts));
	json_object_set_new(d, "data", data ? data : json_object());
	return d;
}

static double sv_num(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static void sv_sum_append(struct sv *sv, const char *key, json_t *item)
{
	json_t *a = json_object_get(sv->runsum, key);

	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(sv->runsum, key, a);
	}
	json_array_append_new(a, item);
}

/* This run's summary, merged into its runs[] entry of job.json. */
static void sv_summary_update(struct sv *sv, const char *event, const json_t *doc)
{
	const json_t *data = json_object_get(doc, "data");
	json_t *time = json_object_get(doc, "time"), *pu;

	if (!sv->runsum)
		return;
	if (!strcmp(event, "notice")) {
		sv_sum_append(sv, "notices", json_pack("{s:O, s:O, s:O, s:O}", "time", time, "source",
			json_object_get(data, "source"), "kind", json_object_get(data, "kind"),
			"lead_seconds", json_object_get(data, "lead_seconds")));
	} else if (!strcmp(event, "restart")) {
		sv_sum_append(sv, "restarts", json_pack("{s:O, s:O, s:O}", "time", time, "code",
			json_object_get(data, "code"), "delay", json_object_get(data, "delay")));
	} else if (!strcmp(event, "resume")) {
		json_object_set(sv->runsum, "resumed_from", (json_t *)data);
	} else if (!strcmp(event, "checkpoint-committed") || !strcmp(event, "push-failed")) {
		if (!(pu = json_object_get(sv->runsum, "pushes"))) {
			pu = json_pack("{s:i, s:i, s:I, s:f}", "count", 0, "failures", 0, "bytes",
				       (json_int_t)0, "seconds", 0.0);
			json_object_set_new(sv->runsum, "pushes", pu);
		}
		if (!strcmp(event, "push-failed")) {
			json_object_set_new(pu, "failures", json_integer(json_integer_value(
				json_object_get(pu, "failures")) + 1));
			return;
		}
		if (!json_object_get(data, "seconds"))
			return; /* a local commit (--store none) is no push */
		double bytes = sv_num(pu, "bytes") + sv_num(data, "raw_bytes");
		double secs = sv_num(pu, "seconds") + sv_num(data, "seconds");
		json_object_set_new(pu, "count", json_integer(json_integer_value(json_object_get(pu, "count")) + 1));
		json_object_set_new(pu, "bytes", json_integer((json_int_t)bytes));
		json_object_set_new(pu, "seconds", json_real(secs));
		json_object_set_new(pu, "mb_per_s", json_real(secs > 0 ? bytes / secs / 1e6 : 0));
		json_object_set(pu, "last_step", json_object_get(data, "step"));
		json_object_set(pu, "last_seq", json_object_get(data, "seq"));
	}
}

static void sv_hook_env_add(char **env, int *n, const char *name, const char *value)
{
	if (value && asprintf(&env[*n], "%s=%s", name, value) >= 0)
		(*n)++;
}

static void sv_fire_hooks(struct sv *sv, const char *event, json_t *doc)
{
	char *env[12] = { 0 }, num[32], *s;
	int n = 0;

	if (!hook_event_ok(event) || !hook_count(sv->hooks, event))
		return;
	if (!(s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS)))
		return;
	snprintf(num, sizeof(num), "%d", sv->starts_before + sv->restarts);
	sv_hook_env_add(env, &n, "SPOTRUN_JOB", sv->job);
	sv_hook_env_add(env, &n, "SPOTRUN_CKPT_DIR", sv->ckpt_dir);
	sv_hook_env_add(env, &n, "SPOTRUN_STORE", run_store_url(sv->o));
	sv_hook_env_add(env, &n, "SPOTRUN_RESTARTS", num);
	sv_hook_env_add(env, &n, "SPOTRUN_HOST", sv->host);
	if (sv->id_settled)
		sv_hook_env_add(env, &n, "SPOTRUN_PROVIDER", sv->id.provider);
	if (sv->slurm_job[0])
		sv_hook_env_add(env, &n, "SPOTRUN_SLURM_JOB", sv->slurm_job);
	if (!strcmp(event, "exit")) {
		snprintf(num, sizeof(num), "%lld", json_integer_value(json_object_get(
			json_object_get(doc, "data"), "code")));
		sv_hook_env_add(env, &n, "SPOTRUN_EXIT_CODE", num);
	}
	hook_fire(sv->hooks, event, s, env);
	for (int i = 0; i < n; i++)
		free(env[i]);
	free(s);
}

/* One event of the run: hooks, metrics, the job record, the store's events/.
 * Takes the reference to data (may be NULL). */
void sv_event(struct sv *sv, const char *event, json_t *data)
{
	json_t *doc = sv_event_doc(sv, event, data);

	log_debug("event %s", event);
	if (!doc)
		return;
	sv_summary_update(sv, event, doc);
	sv_metrics_event(sv, event, json_object_get(doc, "data"));
	sv_fire_hooks(sv, event, doc);
	sv_rec_put(sv, doc);
	json_decref(doc);
}

/* The run is over: the exit event, its hooks (waited for, each within its
 * timeout), and everything recorded before the run entry is closed. */
void sv_events_exit(struct sv *sv, int code)
{
	const char *reason = sv->next == NEXT_INTERRUPTED ? "interrupted"
			     : sv->child_code ? "failed" : "finished";

	sv_event(sv, "exit", json_pack("{s:i, s:s, s:i, s:i}", "code", code, "reason", reason,
				       "child_code", sv->child_code, "restarts", sv->restarts));
	hook_drain(sv->hooks);
	sv_events_flush(sv);
}
