/*
 * ckpt_store.c - the checkpoint index kept in a store: sequence numbers
 * (claimed create-only, so two concurrent pushes never share one), listing
 * committed checkpoints (those with a manifest), finding one by step, the
 * job names, and garbage collection.  Everything is derived from a listing
 * of "<job>/ckpt/" plus the manifests; there is no other index to go stale.
 */
#include "ckpt_int.h"

#include <openssl/crypto.h>

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xfer.h"

#define CKPT_CLAIM_TRIES 1000
#define CKPT_LEFTOVER_AGE 3600.0

/* One seq folder seen in a listing. */
struct ckpt_seqdir {
	uint64_t seq;
	int committed;
	double mtime;		/* newest object */
	size_t first, n;	/* its keys in the (sorted) listing */
};

/* Parses "<job>/ckpt/<digits>/<leaf>": returns the leaf or NULL. */
static const char *ckpt_parse_key(const char *key, size_t plen, uint64_t *seq)
{
	const char *p = key + plen, *e;
	char *end;

	if (*p < '0' || *p > '9')
		return NULL;
	*seq = strtoull(p, &end, 10);
	e = end;
	return *e == '/' ? e + 1 : NULL;
}

/* Lists job's seq folders in ascending seq order; *l keeps the keys. */
static int ckpt_scan_seqs(struct xfer_store *st, const char *job, struct xfer_list *l,
			  struct ckpt_seqdir **out, size_t *nout)
{
	char prefix[300];
	struct ckpt_seqdir *v = NULL;
	size_t n = 0, plen;
	int rc;

	*out = NULL;
	*nout = 0;
	snprintf(prefix, sizeof(prefix), "%s/ckpt/", job);
	plen = strlen(prefix);
	if ((rc = xfer_list(st, prefix, l)))
		return rc;
	if (l->n && !(v = calloc(l->n, sizeof(*v))))
		return log_fail(EX_OSERR, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		uint64_t seq;
		const char *leaf = ckpt_parse_key(l->v[i].key, plen, &seq);
		if (!leaf)
			continue;
		if (!n || v[n - 1].seq != seq) {
			v[n].seq = seq;
			v[n].first = i;
			n++;
		}
		struct ckpt_seqdir *d = &v[n - 1];
		d->n = i + 1 - d->first;
		d->committed |= !strcmp(leaf, "manifest.json");
		if (l->v[i].mtime > d->mtime)
			d->mtime = l->v[i].mtime;
	}
	*out = v;
	*nout = n;
	return 0;
}

int ckpt_read_manifest(struct xfer_store *st, const char *job, uint64_t seq, struct ckpt_manifest *m)
{
	char key[512], *text = NULL;
	size_t len = 0;
	int rc;

	ckpt_key(key, sizeof(key), job, seq, "manifest.json");
	rc = xfer_get(st, key, &text, &len, CKPT_MANIFEST_MAX);
	if (rc == XFER_NOTFOUND)
		return log_fail(EX_NOINPUT, "checkpoint %" PRIu64 " of job '%s' does not exist in %s", seq,
				job, xfer_display(st));
	if (rc)
		return rc;
	rc = ckpt_manifest_parse(text, len, m);
	if (rc == 0) {
		m->text = text;
		m->textlen = len;
		text = NULL;
	}
	free(text);
	if (rc == 0 && (strcmp(m->job, job) || m->seq != seq)) {
		rc = log_fail(EX_DATAERR, "manifest '%s' belongs to job '%s' seq %" PRIu64, key, m->job,
			      m->seq);
		ckpt_manifest_free(m);
	}
	if (rc == EX_DATAERR)
		log_error("checkpoint %" PRIu64 " of '%s': the manifest is unusable", seq, job);
	return rc;
}

int ckpt_unlock(struct xfer_store *st, struct ckpt_manifest *m, const unsigned char *ukey)
{
	unsigned char mac[32], want[32];
	char key[512], *hex = NULL;
	size_t len = 0;
	int rc;

	if (!m->enc.on || m->enc.have_key)
		return 0;
	if (!ukey)
		return log_fail(EX_DATAERR, "checkpoint %" PRIu64 " of '%s' is encrypted: give its key with "
				"--encrypt-key-file", m->seq, m->job);
	if ((rc = ckpt_crypt_unwrap(&m->enc, ukey, m->job, m->seq)))
		return rc;
	ckpt_key(key, sizeof(key), m->job, m->seq, "manifest.mac");
	if ((rc = xfer_get(st, key, &hex, &len, 1024)))
		return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "checkpoint %" PRIu64 " of '%s': manifest.mac "
						      "is missing", m->seq, m->job) : rc;
	while (len && (hex[len - 1] == '\n' || hex[len - 1] == ' '))
		len--;
	rc = len != 64 || ckpt_unhex_n(hex, 64, want) || !m->text ||
	     ckpt_crypt_mac(&m->enc, m->text, m->textlen, mac) || CRYPTO_memcmp(mac, want, 32);
	free(hex);
	if (rc)
		return log_fail(EX_DATAERR, "checkpoint %" PRIu64 " of '%s': the manifest is not authentic "
				"(manifest.mac does not match)", m->seq, m->job);
	return 0;
}

static char *ckpt_claim_text(const char *host)
{
	char h[256] = "", now[40];
	json_t *o;
	char *s;

	if (host)
		snprintf(h, sizeof(h), "%s", host);
	else if (gethostname(h, sizeof(h) - 1))
		h[0] = 0;
	ckpt_rfc3339(time(NULL), now);
	o = json_pack("{s:s, s:I, s:s}", "host", h, "pid", (json_int_t)getpid(), "time", now);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

int ckpt_claim(struct xfer_store *st, const char *job, const char *host, uint64_t *seq)
{
	struct xfer_list l;
	struct ckpt_seqdir *v;
	size_t n;
	char key[512], *text;
	int rc = ckpt_scan_seqs(st, job, &l, &v, &n);

	if (rc)
		goto out;
	*seq = n ? v[n - 1].seq + 1 : 1;
	if (!(text = ckpt_claim_text(host))) {
		rc = log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	for (int i = 0; i < CKPT_CLAIM_TRIES; i++, (*seq)++) {
		ckpt_key(key, sizeof(key), job, *seq, "claim.json");
		rc = xfer_put(st, key, text, strlen(text), XFER_CREATE_ONLY);
		if (rc != XFER_EXISTS)
			break;
	}
	if (rc == XFER_EXISTS)
		rc = log_fail(EX_TEMPFAIL, "cannot claim a checkpoint number for '%s'", job);
	free(text);
out:
	free(v);
	xfer_list_free(&l);
	return rc;
}

int ckpt_read_newest(struct xfer_store *st, const char *job, struct ckpt_manifest *m, int *have)
{
	struct xfer_list l;
	struct ckpt_seqdir *v;
	size_t n;
	int rc;

	*have = 0;
	if ((rc = ckpt_scan_seqs(st, job, &l, &v, &n)))
		goto out;
	for (size_t i = n; i-- > 0 && !*have;) {
		if (!v[i].committed)
			continue;
		if (!(rc = ckpt_read_manifest(st, job, v[i].seq, m)))
			*have = 1;
		else if (rc == EX_DATAERR || rc == EX_NOINPUT) /* bad, or gone since the listing */
			log_warn("skipping checkpoint %" PRIu64 " of '%s'", v[i].seq, job);
		else
			break;
		rc = 0;
	}
out:
	free(v);
	xfer_list_free(&l);
	return rc;
}

int ckpt_list(struct xfer_store *st, const char *job, struct ckpt_info **out, size_t *nout)
{
	struct xfer_list l;
	struct ckpt_seqdir *v;
	struct ckpt_info *iv = NULL;
	size_t n, k = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	if ((rc = ckpt_scan_seqs(st, job, &l, &v, &n)))
		goto out;
	if (n && !(iv = calloc(n, sizeof(*iv)))) {
		rc = log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct ckpt_manifest m;
		struct ckpt_info *ci = &iv[k];
		if (!v[i].committed)
			continue;
		if ((rc = ckpt_read_manifest(st, job, v[i].seq, &m))) {
			if (rc != EX_DATAERR)
				goto out;
			log_warn("skipping checkpoint %" PRIu64 " of '%s'", v[i].seq, job);
			rc = 0;
			continue;
		}
		ci->seq = m.seq;
		ci->step = m.step;
		snprintf(ci->name, sizeof(ci->name), "%s", m.name);
		snprintf(ci->created, sizeof(ci->created), "%s", m.created);
		ci->raw_bytes = m.raw_bytes;
		ci->stored_bytes = m.stored_bytes;
		ci->files = (unsigned)m.nfiles;
		ckpt_manifest_free(&m);
		k++;
	}
	*out = iv;
	*nout = k;
	iv = NULL;
out:
	free(iv);
	free(v);
	xfer_list_free(&l);
	return rc;
}

/* Newest first; a manifest it cannot read stops the search (EX_DATAERR):
 * silently falling back to an older checkpoint would hide the damage. */
int ckpt_find(struct xfer_store *st, const char *job, long long step, uint64_t *seq)
{
	struct xfer_list l;
	struct ckpt_seqdir *v;
	size_t n;
	int rc = ckpt_scan_seqs(st, job, &l, &v, &n);

	if (rc)
		goto out;
	rc = EX_NOINPUT;
	for (size_t i = n; i-- > 0;) {
		struct ckpt_manifest m;
		if (!v[i].committed)
			continue;
		if (step >= 0) {
			int r = ckpt_read_manifest(st, job, v[i].seq, &m);
			if (r) {
				rc = r;
				break;
			}
			long long s = m.step;
			ckpt_manifest_free(&m);
			if (s != step)
				continue;
		}
		*seq = v[i].seq;
		rc = 0;
		break;
	}
	if (rc == EX_NOINPUT && step < 0)
		log_error("job '%s' has no committed checkpoint in %s", job, xfer_display(st));
	else if (rc == EX_NOINPUT)
		log_error("job '%s' has no committed checkpoint of step %lld in %s", job, step,
			  xfer_display(st));
out:
	free(v);
	xfer_list_free(&l);
	return rc;
}

static int ckpt_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void ckpt_jobs_free(char **jobs, size_t n)
{
	for (size_t i = 0; jobs && i < n; i++)
		free(jobs[i]);
	free(jobs);
}

int ckpt_jobs(struct xfer_store *st, char ***out, size_t *nout)
{
	struct xfer_list l;
	char **v = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	if ((rc = xfer_list(st, "", &l)))
		return rc;
	if (l.n && !(v = calloc(l.n, sizeof(*v))))
		rc = log_fail(EX_OSERR, "out of memory");
	for (size_t i = 0; !rc && i < l.n; i++) {
		const char *k = l.v[i].key, *slash = strchr(k, '/');
		if (!slash)
			continue;
		if (n && !strncmp(v[n - 1], k, (size_t)(slash - k)) && !v[n - 1][slash - k])
			continue;	/* the listing is sorted: same job as the last */
		if (!(v[n] = strndup(k, (size_t)(slash - k))))
			rc = log_fail(EX_OSERR, "out of memory");
		else if (!ckpt_job_ok(v[n]))
			free(v[n]);
		else
			n++;
	}
	xfer_list_free(&l);
	if (rc) {
		ckpt_jobs_free(v, n);
		return rc;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), ckpt_cmp_str);
	*out = v;
	*nout = n;
	return 0;
}

/* Deletes one seq folder's keys, the manifest first (it stops existing at
 * once), then the rest in one batch (DeleteObjects on S3). */
static int ckpt_gc_one(struct xfer_store *st, const struct xfer_list *l, const struct ckpt_seqdir *d)
{
	const char **rest = calloc(d->n ? d->n : 1, sizeof(*rest));
	size_t nrest = 0;
	int rc = 0;

	if (!rest)
		return EX_OSERR;
	for (size_t i = d->first; i < d->first + d->n; i++) {
		const char *key = l->v[i].key;
		int is_manifest = strlen(key) >= 13 && !strcmp(key + strlen(key) - 13, "manifest.json");
		if (!is_manifest) {
			rest[nrest++] = key;
			continue;
		}
		int r = xfer_delete(st, key);
		if (r && r != XFER_NOTFOUND && !rc)
			rc = r;
	}
	if (!rc && nrest)
		rc = xfer_delete_many(st, rest, nrest);
	free(rest);
	return rc;
}

static int ckpt_has(const uint64_t *v, size_t n, uint64_t seq)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == seq)
			return 1;
	return 0;
}

/* Which committed checkpoints stay: the newest keep, and every checkpoint
 * whose data one that stays references (incremental pushes; references
 * point to lower seqs only, so one pass from the newest down finds all).
 * (*stay)[i] for v[i].  A store error reading a kept manifest stops gc. */
static int ckpt_gc_plan(struct xfer_store *st, const char *job, const struct ckpt_seqdir *v, size_t n,
			unsigned keep, unsigned char **stay)
{
	uint64_t *refs = NULL;
	size_t nrefs = 0, cap = 0, seen = 0;
	int rc = 0;

	if (!(*stay = calloc(n + 1, 1)))
		return log_fail(EX_OSERR, "out of memory");
	for (size_t i = n; i-- > 0 && !rc;) {
		struct ckpt_manifest m;
		if (!v[i].committed)
			continue;
		if (seen++ >= keep && !ckpt_has(refs, nrefs, v[i].seq))
			continue;
		(*stay)[i] = 1;
		if ((rc = ckpt_read_manifest(st, job, v[i].seq, &m))) {
			if (rc == EX_DATAERR) {	/* unusable anyway: what it references cannot matter */
				rc = 0;
				continue;
			}
			log_error("gc: cannot read checkpoint %" PRIu64 " of '%s' to find what it references; "
				  "nothing deleted", v[i].seq, job);
			break;
		}
		for (size_t j = 0; j < m.nfiles && !rc; j++) {
			uint64_t r = m.files[j].ref_seq;
			if (!r || ckpt_has(refs, nrefs, r))
				continue;
			if (nrefs == cap) {
				uint64_t *nv = realloc(refs, (cap = cap ? 2 * cap : 16) * sizeof(*refs));
				if (!nv) {
					rc = log_fail(EX_OSERR, "out of memory");
					break;
				}
				refs = nv;
			}
			refs[nrefs++] = r;
		}
		ckpt_manifest_free(&m);
	}
	free(refs);
	return rc;
}

int ckpt_gc(struct xfer_store *st, const char *job, unsigned keep, int dry_run)
{
	unsigned char *stay = NULL;
	struct xfer_list l;
	struct ckpt_seqdir *v;
	size_t n, ncommitted = 0, seen = 0;
	uint64_t newest = 0;
	double now = (double)time(NULL);
	int rc, have = 0;

	if (keep < 1)
		return log_fail(EX_USAGE, "gc must keep at least 1 checkpoint");
	if (!ckpt_job_ok(job))
		return log_fail(EX_USAGE, "invalid job id '%s'", job ? job : "");
	if ((rc = ckpt_scan_seqs(st, job, &l, &v, &n)) || (rc = ckpt_gc_plan(st, job, v, n, keep, &stay)))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (v[i].committed) {
			ncommitted++;
			newest = v[i].seq;
			have = 1;
		}
	for (size_t i = 0; i < n && !rc; i++) {
		const struct ckpt_seqdir *d = &v[i];
		const char *why = NULL;
		if (d->committed && ++seen + keep <= ncommitted && !stay[i])
			why = "old checkpoint";
		if (d->committed && stay[i] && seen + keep <= ncommitted)
			log_note("keeping checkpoint %" PRIu64 " of '%s': a newer kept checkpoint references its data",
				 d->seq, job);
		else if (!d->committed && ((have && d->seq < newest) ||
					   (d->mtime > 0 && now - d->mtime > CKPT_LEFTOVER_AGE)))
			why = "leftover of an unfinished push";
		if (!why)
			continue;
		log_note("%s %s %" PRIu64 " of '%s'", dry_run ? "would delete" : "deleting", why, d->seq, job);
		if (!dry_run)
			rc = ckpt_gc_one(st, &l, d);
	}
out:
	free(stay);
	free(v);
	xfer_list_free(&l);
	return rc;
}
