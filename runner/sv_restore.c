/*
 * sv_restore.c - before the first start of `spotrun run`: find the newest
 * committed checkpoint of the job (in the store, or a newer finished folder
 * kept locally) and put it into SPOTRUN_CKPT_DIR, falling back to the
 * previous checkpoint when one fails verification.  The store is the truth:
 * when it cannot be read the run does not start from scratch.
 *
 * Resume policy (docs/migration.md): before pulling from the store, the
 * place where the newest checkpoint was made (its manifest's provider and
 * region) is compared with where this machine runs (detection, waited for
 * at most SV_ID_WAIT s).  It is a migration only when both are known: the
 * checkpoint's provider is a cloud (not "" or "none"), this machine's
 * identity has settled (possibly on "none"), and the providers differ or
 * both regions are known and differ.  --migrate deny (default) prints what
 * the move costs and exits 78 with the flags that allow it; allow, or
 * max-cost=USD with the estimate within it, pulls directly and records the
 * migration in job.json.
 *
 * Hardware (docs/guide.md "Hardware changes"): the GPU fingerprint recorded
 * in the newest committed checkpoint is compared with this machine's.  A
 * different device count or multiset of device names (no GPU counts as
 * zero devices) is a hardware change: --hardware-change deny exits 78 before
 * anything is pulled; warn (default) logs a warning, allow an info line,
 * and the child resuming from the restored folder gets
 * SPOTRUN_HARDWARE_CHANGED=1, SPOTRUN_HARDWARE_OLD and SPOTRUN_HARDWARE_NEW.
 */
#include "sv.h"

#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "xfer.h"

#define SV_ID_WAIT 0.5

/* ---- resume policy ---------------------------------------------------- */

struct sv_move {
	int migrating;			/* 1: the pull is a migration */
	struct xfer_place from, here;
	uint64_t bytes;
	int priced;			/* estimate known */
	double per_gb, usd, seconds;
	char rule[200];
};

/* --migrate: 0 deny, 1 allow, 2 max-cost (*max set); -1 invalid (logged). */
static int sv_policy(const struct opts *o, double *max)
{
	const char *p = opt_str(o, OPT_MIGRATE);
	char *end;

	if (!p || !strcmp(p, "deny"))
		return 0;
	if (!strcmp(p, "allow"))
		return 1;
	if (!strncmp(p, "max-cost=", 9)) {
		*max = strtod(p + 9, &end);
		if (end != p + 9 && !*end && isfinite(*max) && *max >= 0)
			return 2;
	}
	log_error("--migrate: '%s' is not deny, allow or max-cost=USD", p);
	return -1;
}

/* This machine's identity, waiting for detection at most SV_ID_WAIT s.
 * Notices that arrive meanwhile stay queued for the loop. */
static int sv_here(struct sv *sv)
{
	double end = sv_mono() + SV_ID_WAIT;

	prov_watch_release(sv->watch); /* probes are held until the start */
	while (sv->watch && !sv->id_settled) {
		if ((sv->id_settled = prov_watch_identity(sv->watch, &sv->id)))
			break;
		double left = end - sv_mono();
		if (left <= 0)
			break;
		struct pollfd p = { .fd = prov_watch_fd(sv->watch), .events = POLLIN };
		if (poll(&p, 1, (int)(left * 1000) + 1) > 0)
			poll(NULL, 0, 10); /* readable for a notice, not the identity */
	}
	if (sv->id_settled)
		log_info("provider: %s%s%s", sv->id.provider, sv->id.region[0] ? " region " : "", sv->id.region);
	return sv->id_settled;
}

/* The cost of pulling the checkpoint here, from the catalog. */
static void sv_move_price(struct sv *sv, struct sv_move *m)
{
	struct xfer_catalog *cat = NULL;
	const struct xfer_cat_region *r;

	if (xfer_catalog_load(opt_str(sv->o, OPT_CATALOG), &cat))
		return;
	if (xfer_plan_egress(cat, &m->from, &m->here, &m->per_gb, m->rule, sizeof(m->rule))) {
		log_warn("cannot price the migration: %s", m->rule);
		goto out;
	}
	r = xfer_catalog_region(cat, &m->from);
	double mb_s = sv->push.bytes_per_sec > 0 ? sv->push.bytes_per_sec / 1e6 : r ? r->store_mb_s : 100;
	m->usd = m->bytes / 1e9 * m->per_gb;
	m->seconds = m->bytes / (mb_s * 1e6);
	m->priced = 1;
out:
	xfer_catalog_free(cat);
}

/* Is pulling checkpoint seq here a migration?  Fills m. */
static int sv_move_check(struct sv *sv, uint64_t seq, struct sv_move *m)
{
	struct ckpt_origin og;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = ckpt_origin(sv->push.store, sv->job, seq, &og)))
		return rc;
	if (!og.provider[0] || !strcmp(og.provider, "none"))
		return 0;
	if (!sv_here(sv)) {
		log_warn("where this machine runs is not known yet; resuming seq %llu (made on %s) without "
			 "the migration check", (unsigned long long)seq, og.provider);
		return 0;
	}
	snprintf(m->from.provider, sizeof(m->from.provider), "%s", og.provider);
	snprintf(m->from.region, sizeof(m->from.region), "%s", og.region);
	snprintf(m->here.provider, sizeof(m->here.provider), "%s", sv->id.provider);
	snprintf(m->here.region, sizeof(m->here.region), "%s", sv->id.region);
	if (xfer_place_same(&m->from, &m->here))
		return 0;
	m->migrating = 1;
	m->bytes = og.stored_bytes;
	sv_move_price(sv, m);
	return 0;
}

/* Applies --migrate: 0 go on, EX_CONFIG refused, EX_USAGE bad policy. */
static int sv_move_allowed(struct sv *sv, uint64_t seq, const struct sv_move *m)
{
	double max = 0, need = m->priced ? ceil(m->usd * 100) / 100 : 0;
	int pol = sv_policy(sv->o, &max);
	char cost[400];

	if (pol < 0)
		return EX_USAGE;
	if (m->priced)
		snprintf(cost, sizeof(cost), "%.3f GB, egress $%.2f (%s), about %.0f s", m->bytes / 1e9,
			 m->usd, m->rule, m->seconds);
	else
		snprintf(cost, sizeof(cost), "%.3f GB, egress cost unknown (no catalog entry)", m->bytes / 1e9);
	log_note("checkpoint seq %llu of '%s' was made on %s%s%s and this machine is on %s%s%s: "
		 "resuming here is a migration: %s", (unsigned long long)seq, sv->job, m->from.provider,
		 m->from.region[0] ? ":" : "", m->from.region, m->here.provider, m->here.region[0] ? ":" : "",
		 m->here.region, cost);
	if (pol == 1 || (pol == 2 && m->priced && m->usd <= max))
		return 0;
	if (pol == 2 && !m->priced)
		return log_fail(EX_CONFIG, "cannot check --migrate max-cost=%.2f without a price; rerun with "
				"--migrate allow", max);
	if (pol == 2)
		return log_fail(EX_CONFIG, "estimated migration cost $%.2f exceeds --migrate max-cost=%.2f; rerun "
				"with --migrate allow or --migrate max-cost=%.2f", m->usd, max, need);
	if (m->priced)
		return log_fail(EX_CONFIG, "not migrating (--migrate deny); rerun with --migrate allow or "
				"--migrate max-cost=%.2f", need);
	return log_fail(EX_CONFIG, "not migrating (--migrate deny); rerun with --migrate allow");
}

static void sv_move_record(struct sv *sv, const struct sv_move *m, const struct ckpt_result *r)
{
	json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:{s:b, s:f, s:f}, s:{s:f, s:f}}",
				"kind", "pull", "from", xfer_display(sv->push.store), "from_place",
				m->from.provider, "from_region", m->from.region, "to_place", m->here.provider,
				"seq", (json_int_t)r->seq, "bytes", (json_int_t)m->bytes, "estimated", "priced",
				m->priced, "usd", m->usd, "seconds", m->seconds, "actual", "usd",
				m->bytes / 1e9 * m->per_gb, "seconds", r->seconds);
	json_t *who = run_migration_who();

	if (rec && who) {
		json_object_update(rec, who);
		json_object_set_new(rec, "to_region", json_string(m->here.region));
		if (run_jobrec_migration(sv->push.store, sv->job, NULL, rec))
			log_warn("cannot record the migration in job.json");
	}
	sv_event(sv, "migration", json_incref(rec));
	json_decref(rec);
	json_decref(who);
}

/* ---- hardware -------------------------------------------------------- */

enum sv_hw_policy { SV_HW_DENY, SV_HW_WARN, SV_HW_ALLOW, SV_HW_BAD = -1 };

static enum sv_hw_policy sv_hw_policy(const struct opts *o)
{
	const char *p = opt_str(o, OPT_HARDWARE_CHANGE);

	if (!p || !strcmp(p, "warn"))
		return SV_HW_WARN;
	if (!strcmp(p, "deny"))
		return SV_HW_DENY;
	if (!strcmp(p, "allow"))
		return SV_HW_ALLOW;
	log_error("--hardware-change: '%s' is not deny, warn or allow", p);
	return SV_HW_BAD;
}

static void sv_hw_keep(char *dst, size_t n, const char *fp)
{
	if (snprintf(dst, n, "%s", fp ? fp : "null") >= (int)n) {
		log_warn("GPU fingerprint too long for the child's environment; passing its count only");
		json_t *j = json_loads(fp, 0, NULL);
		snprintf(dst, n, "{\"count\":%lld}", (long long)json_integer_value(json_object_get(j, "count")));
		json_decref(j);
	}
}

/* Compares the GPUs checkpoint seq was made on with ours: 0 go on (a change
 * noted in sv->hw_*), EX_CONFIG refused, or a store error. */
static int sv_hw_check(struct sv *sv, uint64_t seq, enum sv_hw_policy pol)
{
	char *old = NULL, *now = NULL, so[512], sn[512];
	int rc;

	if ((rc = ckpt_gpu_recorded(sv->push.store, sv->job, seq, &old)))
		return rc;
	now = ckpt_gpu_fingerprint();
	if (ckpt_gpu_same(old, now))
		goto out;
	ckpt_gpu_summary(old, so, sizeof(so));
	ckpt_gpu_summary(now, sn, sizeof(sn));
	if (pol == SV_HW_DENY) {
		rc = log_fail(EX_CONFIG, "hardware changed since checkpoint seq %llu of '%s' (old: %s, new: %s); "
			      "not resuming (--hardware-change deny); rerun with --hardware-change warn or allow",
			      (unsigned long long)seq, sv->job, so, sn);
		goto out;
	}
	if (pol == SV_HW_WARN)
		log_warn("hardware changed since checkpoint seq %llu of '%s' (old: %s, new: %s); resuming "
			 "(SPOTRUN_HARDWARE_CHANGED=1 for the command)", (unsigned long long)seq, sv->job, so, sn);
	else
		log_info("hardware changed since checkpoint seq %llu of '%s' (old: %s, new: %s); resuming "
			 "(--hardware-change allow)", (unsigned long long)seq, sv->job, so, sn);
	log_info("old GPU fingerprint: %s", old ? old : "null");
	log_info("new GPU fingerprint: %s", now ? now : "null");
	sv->hw_changed = 1;
	sv_hw_keep(sv->hw_old, sizeof(sv->hw_old), old);
	sv_hw_keep(sv->hw_new, sizeof(sv->hw_new), now);
out:
	free(old);
	free(now);
	return rc;
}

/* ---- restoring before the first start -------------------------------- */

/* Pulls checkpoint i of v into the checkpoint folder: 0 done, EX_DATAERR
 * when it failed verification (the caller tries the previous one). */
static int sv_restore_one(struct sv *sv, const struct ckpt_info *ci, int *checked)
{
	struct sv_move m = { 0 };
	struct ckpt_pull_opts po = { .job = sv->job, .workers = run_workers(sv->o), .replace = 1,
				     .key = sv->push.have_key ? sv->push.key : NULL };
	char dest[PATH_MAX + 300];
	struct ckpt_result r;
	int rc;

	if (!*checked) { /* the newest the store offers decides */
		*checked = 1;
		if ((rc = sv_move_check(sv, ci->seq, &m)) || (m.migrating && (rc = sv_move_allowed(sv, ci->seq, &m))))
			return rc;
	}
	snprintf(dest, sizeof(dest), "%s/%s", sv->ckpt_dir, ci->name);
	log_note("restoring checkpoint seq %llu (step %lld, %.1f MB) from %s",
		 (unsigned long long)ci->seq, ci->step, ci->stored_bytes / 1e6,
		 xfer_display(sv->push.store));
	rc = ckpt_pull(sv->push.store, ci->seq, dest, &po, &r);
	if (rc)
		return rc;
	log_note("restored '%s' in %.2f s", dest, r.seconds);
	if (m.migrating)
		sv_move_record(sv, &m, &r);
	sv_event(sv, "resume", json_pack("{s:s, s:I, s:I, s:f}", "dir", dest, "seq", (json_int_t)ci->seq,
					 "step", (json_int_t)ci->step, "seconds", r.seconds));
	/* newest by commit time, so it is what the command resumes from */
	run_mark_complete(dest, ci->step);
	snprintf(sv->push.pushed, sizeof(sv->push.pushed), "%s", dest);
	return 0;
}

int sv_restore(struct sv *sv)
{
	struct run_local_ckpt local;
	struct ckpt_info *v = NULL;
	size_t n = 0;
	int have_local = run_newest_local(sv->ckpt_dir, &local), rc, checked = 0;
	enum sv_hw_policy hw = sv_hw_policy(sv->o);
	double max;

	if (hw == SV_HW_BAD)
		return EX_USAGE;
	if (!sv->push.store)
		return 0;
	if (sv_policy(sv->o, &max) < 0)
		return EX_USAGE;
	/* the store is the truth: starting from scratch while it is unreachable
	 * would commit older progress as newer sequence numbers */
	if ((rc = ckpt_list(sv->push.store, sv->job, &v, &n)))
		return rc;
	/* the newest committed checkpoint tells on what the job ran last */
	if (n > 0 && (rc = sv_hw_check(sv, v[n - 1].seq, hw)))
		goto out;
	for (size_t i = n; i-- > 0;) {
		const char *lname = have_local ? strrchr(local.path, '/') + 1 : "";
		if (have_local && (!strcmp(lname, v[i].name) ||
				   (local.step >= 0 && v[i].step >= 0 && local.step > v[i].step))) {
			log_note("resuming from the local '%s'%s", local.path,
				 strcmp(lname, v[i].name) ? " (newer than the store's; pushing it)" : "");
			if (strcmp(lname, v[i].name))
				sv_push_committed(sv, local.path);
			else
				snprintf(sv->push.pushed, sizeof(sv->push.pushed), "%s", local.path);
			goto out;
		}
		rc = sv_restore_one(sv, &v[i], &checked);
		if (rc == 0)
			goto out;
		if (rc != EX_DATAERR)
			goto out;
		log_error("checkpoint seq %llu failed verification; trying the previous one",
			  (unsigned long long)v[i].seq);
	}
	if (n > 0 && !have_local) {
		/* every committed checkpoint failed (a wrong key, say): starting from
		 * scratch would bury them under newer sequence numbers */
		rc = log_fail(EX_DATAERR, "none of the %zu committed checkpoints of '%s' could be "
					  "restored; refusing to start from scratch", n, sv->job);
		goto out;
	}
	rc = 0;
	if (have_local) /* never pushed (or the store lost it): push it now */
		sv_push_committed(sv, local.path);
out:
	if (rc == 0 && sv->hw_changed && run_newest_local(sv->ckpt_dir, &local)) /* what the first start resumes */
		snprintf(sv->hw_dir, sizeof(sv->hw_dir), "%s", local.path);
	free(v);
	return rc;
}

