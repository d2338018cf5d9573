/*
 * sv_move.c - the resume policy of `spotrun run` (docs/migration.md "The
 * resume policy"): getting the checkpoint to resume here is a move, priced
 * from the catalog before anything moves, allowed or refused by --migrate,
 * then recorded in job.json's migrations[] and as a `migration` event
 * (which also reaches the hooks).
 *
 * Two sources.  Without --from-store, the store's newest checkpoint is
 * pulled directly, and that is a migration when the place it was made (its
 * manifest's provider/region) and where this machine runs are both known
 * and differ.  With --from-store holding a newer checkpoint (sv_restore.c
 * decides which is newer), two ways are priced:
 *   pull     pull it directly from --from-store (egress from the
 *            from-store's place to here);
 *   migrate  copy it and every checkpoint it references into --store
 *            (ckpt_migrate_seqs: verified, committed with the same manifest,
 *            resumable), then pull from --store (egress from-store ->
 *            store, then store -> here).
 * The cheaper way wins; a tie goes to migrate, because later pushes then go
 * next to their base (incremental) and later restarts pull locally.  The
 * migrate way is impossible when --store holds a different checkpoint under
 * one of those seqs, or a seq at least as high (the copy would not be the
 * newest there).  It is a migration (so --migrate applies, to the chosen
 * way) when the from-store's place is a cloud, this machine's place is
 * known, and they differ.  A file:// --store counts as here.
 *
 * Known limits: list prices and the first pricing tier; a pull's bytes are
 * an upper bound (referenced data objects are counted whole); a restart
 * after a copy into --store, before the command commits a checkpoint here,
 * meets the one-store rule again (the checkpoint was still made elsewhere).
 */
#include "sv.h"

#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xfer.h"

#define SV_ID_WAIT 0.5

static const char *const sv_way_name[] = { "pull", "migrate" };

int sv_move_policy(const struct opts *o, double *max)
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

static void sv_place_set(struct xfer_place *p, const char *provider, const char *region)
{
	snprintf(p->provider, sizeof(p->provider), "%s", provider);
	snprintf(p->region, sizeof(p->region), "%s", region);
}

static const char *sv_place_text(const struct xfer_place *p, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s", p->provider[0] ? p->provider : "unknown", p->region[0] ? ":" : "", p->region);
	return buf;
}

/* ---- pricing ------------------------------------------------------------ */

static struct xfer_catalog *sv_catalog(struct sv *sv)
{
	struct xfer_catalog *cat = NULL;

	if (xfer_catalog_load(opt_str(sv->o, OPT_CATALOG), &cat))
		return NULL;
	return cat;
}

/* Throughput: earlier pushes, else the slower store of the catalog's two
 * places, else 100 MB/s. */
static double sv_mb_s(const struct sv *sv, const struct xfer_catalog *cat, const struct xfer_place *a,
		      const struct xfer_place *b)
{
	const struct xfer_cat_region *ra = cat ? xfer_catalog_region(cat, a) : NULL;
	const struct xfer_cat_region *rb = cat && b ? xfer_catalog_region(cat, b) : NULL;

	if (sv->push.bytes_per_sec > 0)
		return sv->push.bytes_per_sec / 1e6;
	if (ra && rb)
		return fmin(ra->store_mb_s, rb->store_mb_s);
	return ra ? ra->store_mb_s : rb ? rb->store_mb_s : 100;
}

/* Prices moving l->bytes from a to b (b_rate: whether b's store speed counts). */
static void sv_leg_price(const struct sv *sv, const struct xfer_catalog *cat, const struct xfer_place *a,
			 const struct xfer_place *b, int b_rate, struct sv_leg *l)
{
	l->seconds = l->bytes / (sv_mb_s(sv, cat, a, b_rate ? b : NULL) * 1e6);
	if (!cat) {
		snprintf(l->rule, sizeof(l->rule), "no price catalog");
		return;
	}
	if (xfer_plan_egress(cat, a, b, &l->per_gb, l->rule, sizeof(l->rule)))
		return;
	l->usd = l->bytes / 1e9 * l->per_gb;
	l->priced = 1;
}

static void sv_way_sum(struct sv_way_est *w, int legs)
{
	w->priced = w->pull.priced && (legs < 2 || w->copy.priced);
	w->bytes = w->pull.bytes + (legs < 2 ? 0 : w->copy.bytes);
	w->usd = w->pull.usd + (legs < 2 ? 0 : w->copy.usd);
	w->seconds = w->pull.seconds + (legs < 2 ? 0 : w->copy.seconds);
}

/* "0.002 GB, $2.00 (internet egress from aws), about 1 s" */
static void sv_way_text(const struct sv_way_est *w, enum sv_way way, char *out, size_t n)
{
	char usd[32];

	if (!w->possible) {
		snprintf(out, n, "not possible: %s", w->why_not);
		return;
	}
	if (w->priced)
		snprintf(usd, sizeof(usd), "$%.2f", w->usd);
	else
		snprintf(usd, sizeof(usd), "cost unknown");
	if (way == SV_PULL)
		snprintf(out, n, "%.3f GB, %s (%s), about %.0f s", w->bytes / 1e9, usd, w->pull.rule, w->seconds);
	else
		snprintf(out, n, "%.3f GB, %s (copy %.3f GB: %s; pull %.3f GB: %s), about %.0f s", w->bytes / 1e9,
			 usd, w->copy.bytes / 1e9, w->copy.rule, w->pull.bytes / 1e9, w->pull.rule, w->seconds);
}

/* Applies --migrate to the chosen way's estimate: 0 go on, EX_CONFIG
 * refused, EX_USAGE bad policy. */
static int sv_move_allowed(struct sv *sv, const struct sv_way_est *w)
{
	double max = 0, need = w->priced ? ceil(w->usd * 100) / 100 : 0;
	int pol = sv_move_policy(sv->o, &max);

	if (pol < 0)
		return EX_USAGE;
	if (pol == 1 || (pol == 2 && w->priced && w->usd <= max))
		return 0;
	if (pol == 2 && !w->priced)
		return log_fail(EX_CONFIG, "cannot check --migrate max-cost=%.2f without a price; rerun with "
				"--migrate allow", max);
	if (pol == 2)
		return log_fail(EX_CONFIG, "estimated migration cost $%.2f exceeds --migrate max-cost=%.2f; rerun "
				"with --migrate allow or --migrate max-cost=%.2f", w->usd, max, need);
	if (w->priced)
		return log_fail(EX_CONFIG, "not migrating (--migrate deny); rerun with --migrate allow or "
				"--migrate max-cost=%.2f", need);
	return log_fail(EX_CONFIG, "not migrating (--migrate deny); rerun with --migrate allow");
}

/* ---- pulling the store's own checkpoint ----------------------------------- */

int sv_move_check(struct sv *sv, uint64_t seq, struct sv_move *m)
{
	struct sv_way_est *w = &m->est[SV_PULL];
	struct xfer_catalog *cat;
	struct ckpt_origin og;
	char cost[400], a[128], b[128];
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
	sv_place_set(&m->from, og.provider, og.region);
	sv_place_set(&m->here, sv->id.provider, sv->id.region);
	if (xfer_place_same(&m->from, &m->here))
		return 0;
	m->active = m->migrating = w->possible = 1;
	m->way = SV_PULL;
	m->src = sv->push.store;
	m->seq = seq;
	w->pull.bytes = og.stored_bytes;
	if ((cat = sv_catalog(sv)))
		sv_leg_price(sv, cat, &m->from, &m->here, 0, &w->pull);
	if (cat && !w->pull.priced)
		log_warn("cannot price the migration: %s", w->pull.rule);
	xfer_catalog_free(cat);
	sv_way_sum(w, 1);
	if (w->priced)
		snprintf(cost, sizeof(cost), "%.3f GB, egress $%.2f (%s), about %.0f s", w->bytes / 1e9, w->usd,
			 w->pull.rule, w->seconds);
	else
		snprintf(cost, sizeof(cost), "%.3f GB, egress cost unknown (no catalog entry)", w->bytes / 1e9);
	log_note("checkpoint seq %llu of '%s' was made on %s and this machine is on %s: resuming here is a "
		 "migration: %s", (unsigned long long)seq, sv->job, sv_place_text(&m->from, a, sizeof(a)),
		 sv_place_text(&m->here, b, sizeof(b)), cost);
	return sv_move_allowed(sv, w);
}

/* ---- a newer checkpoint in --from-store ------------------------------------ */

/* --store's place: its URL's provider (region from its newest manifest when
 * made there); a file:// store is a folder this machine reads: here. */
static int sv_store_place(struct sv *sv, const struct ckpt_info *v, size_t n, struct xfer_place *p)
{
	const char *url = run_store_url(sv->o);
	struct ckpt_origin og = { 0 };
	int rc;

	if (!strcmp(xfer_url_provider(url), "none")) {
		*p = sv->here_place;
		return 0;
	}
	if (n > 0 && (rc = ckpt_origin(sv->push.store, sv->job, v[n - 1].seq, &og)))
		return rc;
	run_store_place(url, &og, p);
	return 0;
}

/* Can the checkpoint and what it references be copied into --store? */
static int sv_migrate_possible(struct sv *sv, struct xfer_store *from, const struct ckpt_needs *nd,
			       const struct ckpt_info *v, size_t n, struct sv_way_est *w)
{
	uint64_t bad = 0;
	int rc;

	if (n > 0 && v[n - 1].seq >= nd->seqs[nd->n - 1]) {
		snprintf(w->why_not, sizeof(w->why_not), "--store already holds seq %llu, which the copy would "
			 "not supersede", (unsigned long long)v[n - 1].seq);
		return 0;
	}
	rc = ckpt_migrate_conflict(from, sv->push.store, sv->job, nd->seqs, nd->n, &bad);
	if (rc == 1)
		snprintf(w->why_not, sizeof(w->why_not), "--store holds a different checkpoint under seq %llu",
			 (unsigned long long)bad);
	else if (rc == 0)
		w->possible = 1;
	return rc == 1 ? 0 : rc;
}

/* Prices both ways and picks one (the cheaper; a tie, or no price on
 * either, goes to migrate). */
static void sv_ways(struct sv *sv, const struct ckpt_needs *nd, struct sv_move *m)
{
	struct sv_way_est *a = &m->est[SV_PULL], *b = &m->est[SV_MIGRATE];
	struct xfer_catalog *cat = sv_catalog(sv);

	a->possible = 1;
	a->pull.bytes = b->pull.bytes = nd->pull_bytes;
	b->copy.bytes = nd->bytes;
	sv_leg_price(sv, cat, &m->from, &m->here, 0, &a->pull);
	sv_leg_price(sv, cat, &m->from, &m->store, 1, &b->copy);
	sv_leg_price(sv, cat, &m->store, &m->here, 0, &b->pull);
	xfer_catalog_free(cat);
	sv_way_sum(a, 1);
	sv_way_sum(b, 2);
	if (!b->possible)
		m->way = SV_PULL;
	else if (a->priced && b->priced)
		m->way = b->usd <= a->usd + 1e-9 ? SV_MIGRATE : SV_PULL;
	else
		m->way = a->priced ? SV_PULL : SV_MIGRATE;
}

/* Why m->way was chosen. */
static const char *sv_way_why(const struct sv_move *m)
{
	const struct sv_way_est *a = &m->est[SV_PULL], *b = &m->est[SV_MIGRATE];

	if (!b->possible)
		return "the only way";
	if (a->priced != b->priced)
		return "the only way with a price";
	if (!a->priced)
		return "no price for either; later pushes and restarts stay next to --store";
	if (m->way == SV_PULL || b->usd < a->usd - 1e-9)
		return "it costs less";
	return "it costs no more, and later pushes and restarts stay next to --store";
}

/* Both ways and the choice, before anything moves. */
static void sv_ways_log(struct sv *sv, struct xfer_store *from, const struct sv_move *m)
{
	char wa[700], wb[700], p1[128], p2[128], p3[128];

	sv_way_text(&m->est[SV_PULL], SV_PULL, wa, sizeof(wa));
	sv_way_text(&m->est[SV_MIGRATE], SV_MIGRATE, wb, sizeof(wb));
	log_note("checkpoint seq %llu of '%s' in %s (%s) is newer than any in %s (%s); this machine is on %s%s",
		 (unsigned long long)m->seq, sv->job, xfer_display(from), sv_place_text(&m->from, p1, sizeof(p1)),
		 xfer_display(sv->push.store), sv_place_text(&m->store, p2, sizeof(p2)),
		 sv_place_text(&m->here, p3, sizeof(p3)), m->migrating ? ": resuming here is a migration" : "");
	log_note("way 1, pull directly from %s: %s", xfer_display(from), wa);
	log_note("way 2, copy into %s first, then pull: %s", xfer_display(sv->push.store), wb);
	log_note("choosing way %d (%s): %s", m->way == SV_PULL ? 1 : 2, sv_way_name[m->way], sv_way_why(m));
}

/* Way migrate: the copy into --store. */
static int sv_copy_in(struct sv *sv, struct xfer_store *from, const struct ckpt_needs *nd, struct sv_move *m)
{
	const struct ckpt_migrate_result *r = &m->copied;
	int rc;

	log_note("copying %zu checkpoint(s) of '%s' (seq %llu and what it references) from %s into %s", nd->n,
		 sv->job, (unsigned long long)m->seq, xfer_display(from), xfer_display(sv->push.store));
	if ((rc = ckpt_migrate_seqs(from, sv->push.store, sv->job, nd->seqs, nd->n, &m->copied)))
		return rc;
	log_note("copied into %s: %u checkpoint(s), %u already there, %.3f GB (%.3f GB inside the service) in "
		 "%.1f s; %.3f GB verified", xfer_display(sv->push.store), r->copied, r->skipped, r->bytes / 1e9,
		 r->server_side_bytes / 1e9, r->seconds, r->verified_bytes / 1e9);
	return 0;
}

int sv_move_from(struct sv *sv, struct xfer_store *from, uint64_t seq, const struct ckpt_info *v, size_t n,
		 struct sv_move *m)
{
	struct ckpt_needs nd = { 0 };
	struct ckpt_origin og;
	int rc, runs;

	memset(m, 0, sizeof(*m));
	m->active = 1;
	m->src = from;
	m->seq = seq;
	if (sv_here(sv))
		sv_place_set(&sv->here_place, sv->id.provider, sv->id.region);
	else
		log_warn("where this machine runs is not known yet; pricing the move as leaving the cloud");
	m->here = sv->here_place;
	if ((rc = ckpt_origin(from, sv->job, seq, &og)) || (rc = ckpt_needs(from, sv->job, seq, &nd)) ||
	    (rc = sv_store_place(sv, v, n, &m->store)) ||
	    (rc = sv_migrate_possible(sv, from, &nd, v, n, &m->est[SV_MIGRATE])))
		goto out;
	run_store_place(opt_str(sv->o, OPT_FROM_STORE), &og, &m->from);
	m->migrating = m->from.provider[0] && strcmp(m->from.provider, "none") && sv->id_settled &&
		       !xfer_place_same(&m->from, &m->here);
	sv_ways(sv, &nd, m);
	sv_ways_log(sv, from, m);
	if (m->migrating && (rc = sv_move_allowed(sv, &m->est[m->way])))
		goto out;
	if (m->way == SV_MIGRATE && (rc = sv_copy_in(sv, from, &nd, m)))
		goto out;
	/* the job's earlier starts ran against the from-store */
	if ((runs = run_jobrec_count(from, sv->job)) > sv->starts_before)
		sv->starts_before = runs;
out:
	ckpt_needs_free(&nd);
	return rc;
}

/* ---- the record ------------------------------------------------------------ */

static json_t *sv_est_json(const struct sv_way_est *w)
{
	return json_pack("{s:b, s:I, s:f, s:f}", "priced", w->priced, "bytes", (json_int_t)w->bytes, "usd", w->usd,
			 "seconds", w->seconds);
}

static json_t *sv_leg_json(const struct sv_leg *l, uint64_t bytes, double seconds)
{
	return json_pack("{s:I, s:f, s:f, s:{s:I, s:f, s:f}, s:s}", "bytes", (json_int_t)bytes, "usd",
			 bytes / 1e9 * l->per_gb, "seconds", seconds, "estimated", "bytes", (json_int_t)l->bytes,
			 "usd", l->usd, "seconds", l->seconds, "egress_rule", l->rule);
}

/* The --from-store parts: where it went, the way not taken, the copy. */
static void sv_record_from(struct sv *sv, const struct sv_move *m, json_t *rec, uint64_t pull_b, double pull_s)
{
	const struct sv_way_est *alt = &m->est[m->way == SV_PULL ? SV_MIGRATE : SV_PULL];
	const struct ckpt_migrate_result *c = &m->copied;
	json_t *o = sv_est_json(alt);

	json_object_set_new(rec, "to", json_string(xfer_display(sv->push.store)));
	json_object_set_new(rec, "store_place", json_string(m->store.provider));
	json_object_set_new(rec, "store_region", json_string(m->store.region));
	json_object_set_new(rec, "policy", json_string(m->migrating ? opt_str(sv->o, OPT_MIGRATE)
					       : "not a migration (same place)"));
	json_object_set_new(o, "kind", json_string(sv_way_name[m->way == SV_PULL]));
	json_object_set_new(o, "possible", json_boolean(alt->possible));
	if (!alt->possible)
		json_object_set_new(o, "why_not", json_string(alt->why_not));
	json_object_set_new(rec, "alternative", o);
	if (m->way != SV_MIGRATE)
		return;
	json_object_set_new(rec, "copied", json_integer(c->copied));
	json_object_set_new(rec, "skipped", json_integer(c->skipped));
	json_object_set_new(rec, "server_side_bytes", json_integer((json_int_t)c->server_side_bytes));
	json_object_set_new(rec, "verified_bytes", json_integer((json_int_t)c->verified_bytes));
	json_object_set_new(rec, "copy", sv_leg_json(&m->est[SV_MIGRATE].copy, c->bytes, c->seconds));
	json_object_set_new(rec, "pull", sv_leg_json(&m->est[SV_MIGRATE].pull, pull_b, pull_s));
}

/* job.json of the store (from the from-store's record when it has none) and
 * of the from-store. */
static void sv_record_put(struct sv *sv, const struct sv_move *m, json_t *rec)
{
	json_t *base = m->src != sv->push.store ? run_jobrec_read(m->src, sv->job) : NULL;

	if (run_jobrec_migration(sv->push.store, sv->job, base, rec))
		log_warn("cannot record the migration in %s's job.json", xfer_display(sv->push.store));
	if (m->src != sv->push.store && run_jobrec_migration(m->src, sv->job, NULL, rec))
		log_warn("cannot record the migration in %s's job.json", xfer_display(m->src));
	json_decref(base);
}

void sv_move_done(struct sv *sv, struct sv_move *m, const struct ckpt_result *r)
{
	const struct sv_way_est *w = &m->est[m->way];
	uint64_t copy_b = m->way == SV_MIGRATE ? m->copied.bytes : 0, pull_b = r ? w->pull.bytes : 0;
	double pull_s = r ? r->seconds : 0;
	json_t *rec, *who;

	if (!m->active || m->recorded)
		return;
	m->recorded = 1;
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:b, s:o, s:{s:I, s:f, s:f}, s:s}",
			"kind", sv_way_name[m->way], "from", xfer_display(m->src), "from_place", m->from.provider,
			"from_region", m->from.region, "to_place", m->here.provider, "to_region", m->here.region,
			"seq", (json_int_t)(r ? r->seq : m->seq), "bytes", (json_int_t)w->bytes, "migration", m->migrating,
			"pulled", r != NULL, "estimated", sv_est_json(w), "actual", "bytes",
			(json_int_t)(copy_b + pull_b), "usd", copy_b / 1e9 * w->copy.per_gb + pull_b / 1e9 * w->pull.per_gb,
			"seconds", m->copied.seconds + pull_s, "egress_rule",
			m->way == SV_MIGRATE ? w->copy.rule : w->pull.rule);
	who = run_migration_who();
	if (!rec || !who) {
		log_warn("cannot record the migration: out of memory");
		goto out;
	}
	json_object_update(rec, who);
	if (sv->id_settled) { /* who: spotrun itself, here */
		json_object_set_new(rec, "provider", json_string(sv->id.provider));
		json_object_set_new(rec, "region", json_string(sv->id.region));
	}
	if (m->src != sv->push.store)
		sv_record_from(sv, m, rec, pull_b, pull_s);
	sv_record_put(sv, m, rec);
	sv_event(sv, "migration", json_incref(rec));
out:
	json_decref(rec);
	json_decref(who);
}
