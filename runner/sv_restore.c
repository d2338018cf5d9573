/*
 * sv_restore.c - before the first start of `spotrun run`: find the newest
 * committed checkpoint of the job (in the store, or a newer finished folder
 * kept locally) and put it into SPOTRUN_CKPT_DIR, falling back to the
 * previous checkpoint when one fails verification.  The store is the truth:
 * when it cannot be read the run does not start from scratch.
 */
#include "sv.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "xfer.h"

/* ---- restoring before the first start -------------------------------- */

/* Pulls checkpoint i of v into the checkpoint folder: 0 done, EX_DATAERR
 * when it failed verification (the caller tries the previous one). */
static int sv_restore_one(struct sv *sv, const struct ckpt_info *ci)
{
	struct ckpt_pull_opts po = { .job = sv->job, .workers = run_workers(sv->o), .replace = 1 };
	char dest[PATH_MAX + 300];
	struct ckpt_result r;
	int rc;

	snprintf(dest, sizeof(dest), "%s/%s", sv->ckpt_dir, ci->name);
	log_note("restoring checkpoint seq %llu (step %lld, %.1f MB) from %s",
		 (unsigned long long)ci->seq, ci->step, ci->stored_bytes / 1e6,
		 xfer_display(sv->push.store));
	rc = ckpt_pull(sv->push.store, ci->seq, dest, &po, &r);
	if (rc)
		return rc;
	log_note("restored '%s' in %.2f s", dest, r.seconds);
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
	int have_local = run_newest_local(sv->ckpt_dir, &local), rc;

	if (!sv->push.store)
		return 0;
	/* the store is the truth: starting from scratch while it is unreachable
	 * would commit older progress as newer sequence numbers */
	if ((rc = ckpt_list(sv->push.store, sv->job, &v, &n)))
		return rc;
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
		rc = sv_restore_one(sv, &v[i]);
		if (rc == 0)
			goto out;
		if (rc != EX_DATAERR)
			goto out;
		log_error("checkpoint seq %llu failed verification; trying the previous one",
			  (unsigned long long)v[i].seq);
	}
	rc = 0;
	if (have_local) /* never pushed (or the store lost it): push it now */
		sv_push_committed(sv, local.path);
out:
	free(v);
	return rc;
}

