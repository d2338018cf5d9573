/*
 * sv_restore.c - before the first start of `spotrun run`: find the newest
 * committed checkpoint of the job (in the store, in --from-store when that
 * holds a newer one, or a newer finished folder kept locally) and put it
 * into SPOTRUN_CKPT_DIR, falling back to the previous checkpoint when one
 * fails verification.  The store is the truth: when it cannot be read the
 * run does not start from scratch.
 *
 * Which is newer: the checkpoint with the higher step when both steps are
 * known, else the later commit time (manifest "created").  A checkpoint of
 * --from-store that is newer than the store's newest (and than the local
 * folder) is resumed through sv_move_from (sv_move.c): pulled directly, or
 * copied into the store first; either way the migration policy applies and
 * the move is recorded.  Otherwise the store's newest is pulled after
 * sv_move_check (docs/migration.md "The resume policy").
 *
 * Hardware (docs/guide.md "Hardware changes"): the GPU fingerprint recorded
 * in the checkpoint to resume is compared with this machine's.  A different
 * device count or multiset of device names (no GPU counts as zero devices)
 * is a hardware change: --hardware-change deny exits 78 before anything is
 * pulled; warn (default) logs a warning, allow an info line; both record a
 * hardware-change event once the restore succeeded, and the child resuming
 * from the restored folder gets SPOTRUN_HARDWARE_CHANGED=1, SPOTRUN_HARDWARE_OLD and
 * SPOTRUN_HARDWARE_NEW.
 */
#include "sv.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "xfer.h"

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

/* The hardware-change event's data: both fingerprints (JSON, null: no GPU). */
static json_t *sv_hw_data(uint64_t seq, const char *old, const char *now, const char *so, const char *sn,
			  enum sv_hw_policy pol)
{
	json_t *o = old ? json_loads(old, 0, NULL) : NULL, *n = now ? json_loads(now, 0, NULL) : NULL;

	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:s}", "seq", (json_int_t)seq, "old_summary", so,
			 "new_summary", sn, "old", o ? o : json_null(), "new", n ? n : json_null(), "policy",
			 pol == SV_HW_ALLOW ? "allow" : "warn");
}

/* Compares the GPUs checkpoint seq of st was made on with ours: 0 go on (a
 * change noted in sv->hw_*, *ev the event's data to record once resumed),
 * EX_CONFIG refused, or a store error. */
static int sv_hw_check(struct sv *sv, struct xfer_store *st, uint64_t seq, enum sv_hw_policy pol, json_t **ev)
{
	char *old = NULL, *now = NULL, so[512], sn[512];
	int rc;

	if ((rc = ckpt_gpu_recorded(st, sv->job, seq, &old)))
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
	*ev = sv_hw_data(seq, old, now, so, sn, pol);
	sv->hw_changed = 1;
	sv_hw_keep(sv->hw_old, sizeof(sv->hw_old), old);
	sv_hw_keep(sv->hw_new, sizeof(sv->hw_new), now);
out:
	free(old);
	free(now);
	return rc;
}

/* ---- restoring before the first start -------------------------------- */

/* A store's committed checkpoints, newest last, as the restore loop sees them. */
struct sv_src {
	struct xfer_store *st;
	struct ckpt_info *v;
	size_t n;
	int checked;		/* the resume policy has run */
	struct sv_move *m;	/* the move to record after the pull */
};

/* Pulls ci of s into the checkpoint folder: 0 done, EX_DATAERR when it
 * failed verification (the caller tries the previous one). */
static int sv_restore_one(struct sv *sv, struct sv_src *s, const struct ckpt_info *ci)
{
	struct ckpt_pull_opts po = { .job = sv->job, .workers = run_workers(sv->o), .replace = 1,
				     .key = sv->push.have_key ? sv->push.key : NULL };
	char dest[PATH_MAX + 300];
	struct ckpt_result r;
	int rc;

	if (!s->checked) { /* the newest the store offers decides */
		s->checked = 1;
		if ((rc = sv_move_check(sv, ci->seq, s->m)))
			return rc;
	}
	snprintf(dest, sizeof(dest), "%s/%s", sv->ckpt_dir, ci->name);
	log_note("restoring checkpoint seq %llu (step %lld, %.1f MB) from %s",
		 (unsigned long long)ci->seq, ci->step, ci->stored_bytes / 1e6, xfer_display(s->st));
	rc = ckpt_pull(s->st, ci->seq, dest, &po, &r);
	if (rc)
		return rc;
	log_note("restored '%s' in %.2f s", dest, r.seconds);
	sv_move_done(sv, s->m, &r);
	sv_event(sv, "resume", json_pack("{s:s, s:I, s:I, s:f}", "dir", dest, "seq", (json_int_t)ci->seq,
					 "step", (json_int_t)ci->step, "seconds", r.seconds));
	/* newest by commit time, so it is what the command resumes from */
	run_mark_complete(dest, ci->step);
	snprintf(sv->push.pushed, sizeof(sv->push.pushed), "%s", dest);
	return 0;
}

/* Is the local folder checkpoint ci, or newer than it? */
static int sv_local_covers(const struct run_local_ckpt *l, const struct ckpt_info *ci)
{
	const char *lname = strrchr(l->path, '/') + 1;

	return !strcmp(lname, ci->name) || (l->step >= 0 && ci->step >= 0 && l->step > ci->step);
}

/* Newest first: the local folder once it covers a checkpoint, else a pull,
 * trying the previous checkpoint after a verification failure. */
static int sv_restore_loop(struct sv *sv, struct sv_src *s, const struct run_local_ckpt *local, int have_local)
{
	int rc;

	for (size_t i = s->n; i-- > 0;) {
		if (have_local && sv_local_covers(local, &s->v[i])) {
			int same = !strcmp(strrchr(local->path, '/') + 1, s->v[i].name);
			log_note("resuming from the local '%s'%s", local->path,
				 same ? "" : " (newer than the store's; pushing it)");
			if (!same)
				sv_push_committed(sv, local->path);
			else
				snprintf(sv->push.pushed, sizeof(sv->push.pushed), "%s", local->path);
			return 0;
		}
		if ((rc = sv_restore_one(sv, s, &s->v[i])) != EX_DATAERR)
			return rc;
		log_error("checkpoint seq %llu failed verification; trying the previous one",
			  (unsigned long long)s->v[i].seq);
	}
	if (s->n > 0 && !have_local)
		/* every committed checkpoint failed (a wrong key, say): starting from
		 * scratch would bury them under newer sequence numbers */
		return log_fail(EX_DATAERR, "none of the %zu committed checkpoints of '%s' could be "
					    "restored; refusing to start from scratch", s->n, sv->job);
	if (have_local) /* never pushed (or the store lost it): push it now */
		sv_push_committed(sv, local->path);
	return 0;
}

/* Newer: the higher step when both are known, else the later commit. */
static int sv_newer(const struct ckpt_info *a, const struct ckpt_info *b)
{
	if (a->step >= 0 && b->step >= 0)
		return a->step > b->step;
	return strcmp(a->created, b->created) > 0;
}

/* --from-store, opened and listed when set. */
static int sv_from_open(struct sv *sv, struct sv_src *f)
{
	const char *url = opt_str(sv->o, OPT_FROM_STORE);
	int rc;

	if (!url)
		return 0;
	if ((rc = run_store_open_other(sv->o, url, "--from-store", &f->st)))
		return rc;
	if (!strcmp(xfer_display(f->st), xfer_display(sv->push.store)))
		return log_fail(EX_USAGE, "--from-store names the store itself (--store)");
	return ckpt_list(f->st, sv->job, &f->v, &f->n);
}

/* Does --from-store hold the checkpoint to resume?  Keeps in f only its
 * checkpoints newer than the store's newest (the fallbacks). */
static int sv_from_wins(struct sv *sv, struct sv_src *f, const struct sv_src *s,
			const struct run_local_ckpt *local, int have_local)
{
	const struct ckpt_info *top = f->n ? &f->v[f->n - 1] : NULL, *own = s->n ? &s->v[s->n - 1] : NULL;
	size_t keep = 0;

	if (!f->st)
		return 0;
	if (!top) {
		log_note("%s holds no committed checkpoint of '%s'", xfer_display(f->st), sv->job);
		return 0;
	}
	if (own && !sv_newer(top, own)) {
		log_info("%s holds nothing newer than %s (seq %llu, step %lld)", xfer_display(f->st),
			 xfer_display(s->st), (unsigned long long)own->seq, own->step);
		return 0;
	}
	if (have_local && sv_local_covers(local, top)) {
		log_info("the local '%s' is as new as the newest checkpoint of %s", local->path, xfer_display(f->st));
		return 0;
	}
	for (size_t i = 0; i < f->n; i++)
		if (!own || sv_newer(&f->v[i], own))
			f->v[keep++] = f->v[i];
	f->n = keep;
	return 1;
}

/* The checkpoint is in --from-store: the move (a copy into the store
 * first, or not), then what the restore loop reads. */
static int sv_from_move(struct sv *sv, struct sv_src *f, struct sv_src *s, struct sv_src **use)
{
	int rc;

	f->checked = 1;
	if ((rc = sv_move_from(sv, f->st, f->v[f->n - 1].seq, s->v, s->n, f->m)))
		return rc;
	if (f->m->way != SV_MIGRATE)
		return 0;
	free(s->v);
	s->v = NULL;
	s->checked = 1;
	*use = s;
	return ckpt_list(s->st, sv->job, &s->v, &s->n);
}

int sv_restore(struct sv *sv)
{
	struct run_local_ckpt local;
	struct sv_move m = { 0 };
	struct sv_src s = { .st = sv->push.store, .m = &m }, f = { .m = &m }, *use = &s;
	json_t *hw_ev = NULL;
	int have_local = run_newest_local(sv->ckpt_dir, &local), rc;
	enum sv_hw_policy hw = sv_hw_policy(sv->o);
	double max;

	if (hw == SV_HW_BAD)
		return EX_USAGE;
	if (!sv->push.store)
		return opt_str(sv->o, OPT_FROM_STORE) ? log_fail(EX_USAGE, "--from-store needs a store to "
								  "resume into (--store URL, not none)") : 0;
	if (sv_move_policy(sv->o, &max) < 0)
		return EX_USAGE;
	/* the store is the truth: starting from scratch while it is unreachable
	 * would commit older progress as newer sequence numbers */
	if ((rc = ckpt_list(s.st, sv->job, &s.v, &s.n)) || (rc = sv_from_open(sv, &f)))
		goto out;
	if (sv_from_wins(sv, &f, &s, &local, have_local))
		use = &f;
	/* the checkpoint to resume tells on what the job ran last */
	if (use->n > 0 && (rc = sv_hw_check(sv, use->st, use->v[use->n - 1].seq, hw, &hw_ev)))
		goto out;
	if (use == &f && (rc = sv_from_move(sv, &f, &s, &use)))
		goto out;
	rc = sv_restore_loop(sv, use, &local, have_local);
	if (m.way == SV_MIGRATE) /* copied, even when the pull failed */
		sv_move_done(sv, &m, NULL);
out:
	if (rc == 0 && sv->hw_changed && run_newest_local(sv->ckpt_dir, &local)) /* what the first start resumes */
		snprintf(sv->hw_dir, sizeof(sv->hw_dir), "%s", local.path);
	if (rc == 0 && hw_ev) /* recorded once resuming is certain */
		sv_event(sv, "hardware-change", hw_ev);
	else
		json_decref(hw_ev);
	free(s.v);
	free(f.v);
	xfer_close(f.st);
	return rc;
}
