/*
 * ckpt_migrate.c - the migration copy engine: copies a job's committed
 * checkpoints from one store to another without local disk, verifies them
 * at the destination and commits them there with the same manifests.
 *
 * Per checkpoint (ascending seq, seq numbers kept so that manifests that
 * reference files of earlier seqs of the job stay valid): every object
 * under <job>/ckpt/<seq>/ except claim.json and manifest.json is copied,
 * by S3 CopyObject when both stores are one service at one endpoint
 * (xfer_copy), else streamed: ranged GETs of CKM_CHUNK bytes (the S3 and
 * Azure backends split them into parallel ranged GETs) written into a
 * multipart upload (parallel part uploads), so memory stays within one
 * chunk plus the upload's workers x part size.  Objects up to one chunk
 * go as one PUT.
 *
 * Verification, precisely: after an object is copied, its size at the
 * destination (HEAD) must equal the source's, and the object is read back
 * from the destination in full: its SHA-256 must equal the SHA-256 of the
 * source bytes (hashed while streaming, or read from the source for a
 * server-side copy), and for data.tar.zst each manifest part's SHA-256 over
 * [offset, offset+size) must equal the manifest's.  The source bytes are
 * also checked against the manifest's parts while streaming, so a corrupt
 * source stops the copy before anything is committed.  The manifest is
 * written last, create-only.
 *
 * Resume: a checkpoint whose manifest is at the destination byte for byte
 * is skipped.  An object that is at the destination with the right size
 * and hashes is kept; any other object is copied again whole (a multipart
 * upload cut by a kill is invisible and is not resumed).  Parts are parsed
 * from the manifest with jansson here, leniently: if they do not tile the
 * data object (a newer manifest layout), only the whole-object hash is
 * checked.
 *
 * One checkpoint instead of all (the resume policy's copy into --store,
 * runner/sv_move.c): ckpt_needs walks files[].ref.seq down from it to every
 * checkpoint whose data it reads, transitively, so each checkpoint copied
 * is complete at the destination; ckpt_migrate_seqs copies just those, and
 * ckpt_migrate_conflict tells beforehand whether one of them would meet a
 * different committed checkpoint there.
 */
#include "ckpt_int.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xfer.h"

#define CKM_CHUNK (16u << 20)

struct ckm_part {
	uint64_t off, size;
	unsigned char sha[CKPT_SHA_LEN];
};

struct ckm_obj {
	const char *key;
	uint64_t size;
	struct ckm_part *parts;	/* NULL: whole-object hash only */
	size_t nparts;
};

struct ckm {
	struct xfer_store *src, *dst;
	struct ckpt_migrate_result *r;
	unsigned char *buf;	/* CKM_CHUNK */
};

/* ---- manifest bits ---------------------------------------------------- */

static void ckm_strcpy(json_t *m, const char *k, char *out, size_t n)
{
	const char *v = json_string_value(json_object_get(m, k));
	snprintf(out, n, "%s", v ? v : "");
}

/* Parts of data.tar.zst from the manifest when they tile [0, size). */
static void ckm_parts(json_t *m, uint64_t size, struct ckm_obj *o)
{
	json_t *a = json_object_get(m, "parts"), *p;
	uint64_t at = 0;
	size_t i;

	if (!json_is_array(a) || !json_array_size(a) ||
	    !(o->parts = calloc(json_array_size(a), sizeof(*o->parts))))
		return;
	json_array_foreach(a, i, p) {
		json_t *off = json_object_get(p, "offset"), *sz = json_object_get(p, "size");
		const char *h = json_string_value(json_object_get(p, "sha256"));
		if (!json_is_integer(off) || !json_is_integer(sz) || !h || json_integer_value(off) < 0 ||
		    json_integer_value(sz) < 0 || (uint64_t)json_integer_value(off) != at ||
		    strlen(h) != 2 * CKPT_SHA_LEN || ckpt_unhex(h, o->parts[i].sha))
			goto lenient;
		o->parts[i].off = at;
		o->parts[i].size = (uint64_t)json_integer_value(sz);
		at += o->parts[i].size;
	}
	if (at == size) {
		o->nparts = json_array_size(a);
		return;
	}
lenient:
	log_debug("migrate: manifest parts do not tile the data object; checking its whole hash only");
	free(o->parts);
	o->parts = NULL;
}

/* Bytes of every object under seq but its manifest and claim; *data: of
 * data.tar.zst alone (may be NULL). */
static int ckm_seq_bytes(struct xfer_store *st, const char *job, uint64_t seq, uint64_t *all, uint64_t *data)
{
	struct xfer_list l = { 0 };
	char pre[600];
	int rc;

	*all = 0;
	if (data)
		*data = 0;
	ckpt_key(pre, sizeof(pre), job, seq, "");
	if ((rc = xfer_list(st, pre, &l)))
		return rc;
	for (size_t i = 0; i < l.n; i++) {
		const char *leaf = l.v[i].key + strlen(pre);
		if (strcmp(leaf, "manifest.json") && strcmp(leaf, "claim.json"))
			*all += l.v[i].size;
		if (data && !strcmp(leaf, "data.tar.zst"))
			*data = l.v[i].size;
	}
	xfer_list_free(&l);
	return 0;
}

int ckpt_origin(struct xfer_store *st, const char *job, uint64_t seq, struct ckpt_origin *o)
{
	char key[600], *text = NULL;
	size_t len;
	json_t *m = NULL, *step;
	int rc;

	memset(o, 0, sizeof(*o));
	o->step = -1;
	ckpt_key(key, sizeof(key), job, seq, "manifest.json");
	if ((rc = xfer_get(st, key, &text, &len, CKPT_MANIFEST_MAX)))
		return rc == XFER_NOTFOUND ? log_fail(EX_NOINPUT, "no checkpoint seq %llu of '%s'",
						      (unsigned long long)seq, job) : rc;
	if (!(m = json_loadb(text, len, 0, NULL))) {
		rc = log_fail(EX_DATAERR, "checkpoint seq %llu of '%s': manifest is not JSON",
			      (unsigned long long)seq, job);
		goto out;
	}
	ckm_strcpy(m, "provider", o->provider, sizeof(o->provider));
	ckm_strcpy(m, "region", o->region, sizeof(o->region));
	ckm_strcpy(m, "instance", o->instance, sizeof(o->instance));
	ckm_strcpy(m, "created", o->created, sizeof(o->created));
	if (json_is_integer(step = json_object_get(m, "step")))
		o->step = json_integer_value(step);
	rc = ckm_seq_bytes(st, job, seq, &o->stored_bytes, NULL);
out:
	json_decref(m);
	free(text);
	return rc;
}

/* ---- hashing ----------------------------------------------------------- */

struct ckm_hash {
	EVP_MD_CTX *whole, *part;
	const struct ckm_obj *o;
	size_t pi;		/* current part */
	uint64_t at;		/* bytes hashed */
	int bad;		/* 1 + index of the first part that failed */
};

static int ckm_hash_init(struct ckm_hash *h, const struct ckm_obj *o)
{
	memset(h, 0, sizeof(*h));
	h->o = o;
	h->whole = EVP_MD_CTX_new();
	h->part = EVP_MD_CTX_new();
	if (!h->whole || !h->part || !EVP_DigestInit_ex(h->whole, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(h->part, EVP_sha256(), NULL))
		return log_fail(EX_SOFTWARE, "cannot set up SHA-256");
	return 0;
}

static void ckm_hash_free(struct ckm_hash *h)
{
	EVP_MD_CTX_free(h->whole);
	EVP_MD_CTX_free(h->part);
}

static void ckm_hash_update(struct ckm_hash *h, const unsigned char *p, size_t n)
{
	EVP_DigestUpdate(h->whole, p, n);
	while (n && h->o->parts && h->pi < h->o->nparts) {
		const struct ckm_part *cp = &h->o->parts[h->pi];
		uint64_t left = cp->off + cp->size - h->at;
		size_t k = n < left ? n : (size_t)left;
		unsigned char md[EVP_MAX_MD_SIZE];

		EVP_DigestUpdate(h->part, p, k);
		p += k, n -= k, h->at += k;
		if (h->at == cp->off + cp->size) {
			EVP_DigestFinal_ex(h->part, md, NULL);
			if (memcmp(md, cp->sha, CKPT_SHA_LEN) && !h->bad)
				h->bad = (int)h->pi + 1;
			EVP_DigestInit_ex(h->part, EVP_sha256(), NULL);
			h->pi++;
		}
	}
	h->at += n;
}

static void ckm_hash_final(struct ckm_hash *h, unsigned char *out)
{
	EVP_DigestFinal_ex(h->whole, out, NULL);
}

/* Reads key of st in chunks through h.  0 or an EX_* code. */
static int ckm_read_all(struct ckm *c, struct xfer_store *st, const struct ckm_obj *o, struct ckm_hash *h)
{
	for (uint64_t off = 0; off < o->size;) {
		size_t n = o->size - off < CKM_CHUNK ? (size_t)(o->size - off) : CKM_CHUNK;
		int rc = xfer_get_range(st, o->key, off, c->buf, n);
		if (rc)
			return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "migrate: '%s' vanished", o->key) : rc;
		ckm_hash_update(h, c->buf, n);
		off += n;
	}
	return 0;
}

/* SHA-256 of an object of st (and its part check): 0, EX_DATAERR, or EX_*. */
static int ckm_digest(struct ckm *c, struct xfer_store *st, const struct ckm_obj *o, unsigned char *sha,
		      int *bad_part)
{
	struct ckm_hash h;
	int rc = ckm_hash_init(&h, o);

	if (!rc && !(rc = ckm_read_all(c, st, o, &h)))
		ckm_hash_final(&h, sha);
	*bad_part = h.bad;
	ckm_hash_free(&h);
	return rc;
}

/* ---- one object ------------------------------------------------------- */

/* Is o at dst with its size and hashes?  1 yes, 0 no, else -EX_*. */
static int ckm_check_dst(struct ckm *c, const struct ckm_obj *o, const unsigned char *want, int quiet)
{
	unsigned char got[EVP_MAX_MD_SIZE];
	uint64_t size = 0;
	int bad = 0, rc = xfer_head(c->dst, o->key, &size);

	if (rc == XFER_NOTFOUND || (!rc && size != o->size)) {
		if (!quiet)
			log_error("migrate: '%s%s' has %llu bytes at the destination, expected %llu",
				  xfer_display(c->dst), o->key, (unsigned long long)size,
				  (unsigned long long)o->size);
		return 0;
	}
	if (rc || (rc = ckm_digest(c, c->dst, o, got, &bad)))
		return -rc;
	c->r->verified_bytes += o->size;
	if (bad || memcmp(got, want, CKPT_SHA_LEN)) {
		if (!quiet)
			log_error("migrate: '%s%s' at the destination does not match: %s%d", xfer_display(c->dst),
				  o->key, bad ? "part " : "whole-object hash", bad ? bad - 1 : 0);
		return 0;
	}
	return 1;
}

/* Streams o from src into dst; *sha gets the source bytes' SHA-256. */
static int ckm_stream(struct ckm *c, const struct ckm_obj *o, unsigned char *sha)
{
	struct xfer_upload *up = NULL;
	struct ckm_hash h;
	int rc = ckm_hash_init(&h, o);

	if (rc)
		goto out;
	if (o->size <= CKM_CHUNK) {	/* one read, one PUT */
		if (!(rc = ckm_read_all(c, c->src, o, &h)) && !h.bad)
			rc = xfer_put(c->dst, o->key, c->buf, (size_t)o->size, 0);
		goto done;
	}
	if ((rc = xfer_upload_begin(c->dst, o->key, &up)))
		goto out;
	for (uint64_t off = 0; off < o->size && !h.bad;) {
		size_t n = o->size - off < CKM_CHUNK ? (size_t)(o->size - off) : CKM_CHUNK;
		if ((rc = xfer_get_range(c->src, o->key, off, c->buf, n)))
			goto out;
		ckm_hash_update(&h, c->buf, n);
		if (h.bad)
			break;
		if ((rc = xfer_upload_write(up, c->buf, n)))
			goto out;
		off += n;
	}
	if (!h.bad) {
		rc = xfer_upload_finish(up);
		up = NULL;
	}
done:
	if (!rc && h.bad)
		rc = log_fail(EX_DATAERR, "migrate: source '%s%s' part %d does not match its manifest",
			      xfer_display(c->src), o->key, h.bad - 1);
	if (!rc)
		ckm_hash_final(&h, sha);
out:
	xfer_upload_abort(up);
	ckm_hash_free(&h);
	return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "migrate: '%s' vanished", o->key) : rc;
}

static int ckm_object(struct ckm *c, const struct ckm_obj *o)
{
	unsigned char sha[EVP_MAX_MD_SIZE];
	int bad = 0, rc, ok;

	rc = xfer_copy(c->dst, o->key, c->src, o->key, o->size);
	if (rc == 0) {
		c->r->server_side_bytes += o->size;
		log_info("migrate: '%s': copied inside the service", o->key);
		if ((rc = ckm_digest(c, c->src, o, sha, &bad)))
			return rc;
		if (bad)
			return log_fail(EX_DATAERR, "migrate: source '%s' part %d does not match its manifest",
					o->key, bad - 1);
	} else if (rc == XFER_NOCOPY) {
		if ((rc = ckm_stream(c, o, sha)))
			return rc;
	} else {
		return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "migrate: '%s' vanished", o->key) : rc;
	}
	c->r->bytes += o->size;
	ok = ckm_check_dst(c, o, sha, 0);
	if (ok < 0)
		return -ok;
	if (!ok)
		return log_fail(EX_DATAERR, "migrate: '%s%s' failed verification at the destination",
				xfer_display(c->dst), o->key);
	return 0;
}

/* Already at dst from an earlier, interrupted run?  1 yes (verified). */
static int ckm_resumable(struct ckm *c, const struct ckm_obj *o)
{
	unsigned char sha[EVP_MAX_MD_SIZE];
	uint64_t size = 0;
	int bad = 0, rc = xfer_head(c->dst, o->key, &size);

	if (rc || size != o->size)
		return 0;
	if ((rc = ckm_digest(c, c->src, o, sha, &bad)))
		return -rc;
	if (bad)
		return -log_fail(EX_DATAERR, "migrate: source '%s' part %d does not match its manifest",
				 o->key, bad - 1);
	return ckm_check_dst(c, o, sha, 1);
}

/* ---- one checkpoint --------------------------------------------------- */

/* Manifest key at dst compared with text: CKM_ABSENT, CKM_SAME, CKM_OTHER,
 * or an EX_* / store error (positive). */
enum { CKM_ABSENT = 0, CKM_SAME = -100, CKM_OTHER = -101 };
static int ckm_dst_state(struct xfer_store *dst, const char *key, const char *text, size_t len)
{
	char *have = NULL;
	size_t hl = 0;
	int rc = xfer_get(dst, key, &have, &hl, CKPT_MANIFEST_MAX);

	if (rc == XFER_NOTFOUND)
		rc = CKM_ABSENT;
	else if (!rc)
		rc = hl == len && !memcmp(have, text, len) ? CKM_SAME : CKM_OTHER;
	free(have);
	return rc;
}

/* The destination's manifest: 1 identical (skip), 0 absent, else EX_*. */
static int ckm_dst_manifest(struct ckm *c, const char *key, const char *text, size_t len)
{
	int rc = ckm_dst_state(c->dst, key, text, len);

	if (rc == CKM_OTHER)
		return log_fail(EX_DATAERR, "migrate: '%s%s' exists with a different checkpoint; "
				"refusing to overwrite it", xfer_display(c->dst), key);
	return rc == CKM_SAME ? 1 : rc;
}

static int ckm_seq(struct ckm *c, const char *job, uint64_t seq)
{
	char mkey[600], pre[600], *text = NULL;
	struct xfer_list l = { 0 };
	json_t *m = NULL;
	size_t len = 0;
	int rc;

	ckpt_key(mkey, sizeof(mkey), job, seq, "manifest.json");
	ckpt_key(pre, sizeof(pre), job, seq, "");
	if ((rc = xfer_get(c->src, mkey, &text, &len, CKPT_MANIFEST_MAX)))
		goto out;
	if ((rc = ckm_dst_manifest(c, mkey, text, len)) == 1) {
		log_note("migrate: seq %llu is already at the destination", (unsigned long long)seq);
		c->r->skipped++;
		rc = 0;
		goto out;
	}
	if (rc || (rc = xfer_list(c->src, pre, &l)))
		goto out;
	m = json_loadb(text, len, 0, NULL);
	for (size_t i = 0; i < l.n && !rc; i++) {
		const char *leaf = l.v[i].key + strlen(pre);
		struct ckm_obj o = { .key = l.v[i].key, .size = l.v[i].size };
		if (!strcmp(leaf, "manifest.json") || !strcmp(leaf, "claim.json"))
			continue;
		if (!strcmp(leaf, "data.tar.zst") && m)
			ckm_parts(m, o.size, &o);
		int have = ckm_resumable(c, &o);
		if (have < 0)
			rc = -have;
		else if (have)
			log_info("migrate: '%s' is already at the destination (verified)", o.key);
		else
			rc = ckm_object(c, &o);
		free(o.parts);
	}
	if (rc)
		goto out;
	rc = xfer_put(c->dst, mkey, text, len, XFER_CREATE_ONLY);
	if (rc == XFER_EXISTS)
		rc = ckm_dst_manifest(c, mkey, text, len) == 1 ? 0 : EX_DATAERR;
	if (!rc) {
		c->r->copied++;
		log_note("migrate: seq %llu committed at %s", (unsigned long long)seq, xfer_display(c->dst));
	}
out:
	json_decref(m);
	xfer_list_free(&l);
	free(text);
	return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "migrate: seq %llu changed while copying",
					      (unsigned long long)seq) : rc;
}

int ckpt_migrate_seqs(struct xfer_store *src, struct xfer_store *dst, const char *job, const uint64_t *seqs,
		      size_t n, struct ckpt_migrate_result *r)
{
	struct ckpt_migrate_result dummy;
	struct ckm c = { .src = src, .dst = dst, .r = r ? r : &dummy };
	double t0 = ckpt_now();
	int rc = 0;

	memset(c.r, 0, sizeof(*c.r));
	if (!(c.buf = malloc(CKM_CHUNK)))
		return log_fail(EX_OSERR, "out of memory");
	for (size_t i = 0; i < n && !rc; i++)
		rc = ckm_seq(&c, job, seqs[i]);
	c.r->seconds = ckpt_now() - t0;
	free(c.buf);
	return rc;
}

int ckpt_migrate(struct xfer_store *src, struct xfer_store *dst, const char *job, int workers,
		 struct ckpt_migrate_result *r)
{
	struct ckpt_info *v = NULL;
	uint64_t *seqs = NULL;
	size_t n = 0;
	int rc;

	(void)workers;	/* the stores' own worker counts bound the parallel parts */
	if (r)
		memset(r, 0, sizeof(*r));
	if ((rc = ckpt_list(src, job, &v, &n)))
		return rc;
	if (!n)
		rc = log_fail(EX_NOINPUT, "no committed checkpoints of '%s' in %s", job, xfer_display(src));
	else if (!(seqs = calloc(n, sizeof(*seqs))))
		rc = log_fail(EX_OSERR, "out of memory");
	for (size_t i = 0; !rc && i < n; i++)
		seqs[i] = v[i].seq;
	if (!rc)
		rc = ckpt_migrate_seqs(src, dst, job, seqs, n, r);
	free(seqs);
	free(v);
	return rc;
}

/* ---- one checkpoint and what it references ------------------------------ */

/* Adds seq to the ascending set nd->seqs: 1 added, 0 already there, -1 OOM. */
static int ckm_set_add(struct ckpt_needs *nd, uint64_t seq)
{
	size_t i = 0;
	uint64_t *v;

	while (i < nd->n && nd->seqs[i] < seq)
		i++;
	if (i < nd->n && nd->seqs[i] == seq)
		return 0;
	if (!(v = realloc(nd->seqs, (nd->n + 1) * sizeof(*v))))
		return -1;
	memmove(v + i + 1, v + i, (nd->n - i) * sizeof(*v));
	v[i] = seq;
	nd->seqs = v;
	nd->n++;
	return 1;
}

/* Adds to set the seqs whose data objects checkpoint seq's files reference
 * (files[].ref.seq; always below seq). */
static int ckm_refs(struct xfer_store *st, const char *job, uint64_t seq, struct ckpt_needs *set)
{
	char key[600], *text = NULL;
	size_t len = 0, i;
	json_t *m = NULL, *f;
	int rc;

	ckpt_key(key, sizeof(key), job, seq, "manifest.json");
	if ((rc = xfer_get(st, key, &text, &len, CKPT_MANIFEST_MAX)))
		return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "checkpoint seq %llu of '%s' is referenced "
						      "but not committed", (unsigned long long)seq, job) : rc;
	if (!(m = json_loadb(text, len, 0, NULL)))
		rc = log_fail(EX_DATAERR, "checkpoint seq %llu of '%s': manifest is not JSON",
			      (unsigned long long)seq, job);
	json_array_foreach(json_object_get(m, "files"), i, f) {
		json_t *rs = json_object_get(json_object_get(f, "ref"), "seq");
		if (rc || !json_is_integer(rs))
			continue;
		if (json_integer_value(rs) < 1 || (uint64_t)json_integer_value(rs) >= seq)
			rc = log_fail(EX_DATAERR, "checkpoint seq %llu of '%s': files[%zu] has a bad reference",
				      (unsigned long long)seq, job, i);
		else if (ckm_set_add(set, (uint64_t)json_integer_value(rs)) < 0)
			rc = log_fail(EX_OSERR, "out of memory");
	}
	json_decref(m);
	free(text);
	return rc;
}

int ckpt_needs(struct xfer_store *st, const char *job, uint64_t seq, struct ckpt_needs *nd)
{
	struct ckpt_needs direct = { 0 };
	uint64_t all, data, below = seq;
	int rc;

	memset(nd, 0, sizeof(*nd));
	if ((rc = ckm_refs(st, job, seq, &direct)) || (rc = ckm_seq_bytes(st, job, seq, &nd->pull_bytes, NULL)))
		goto out;
	for (size_t i = 0; i < direct.n && !rc; i++)
		if (!(rc = ckm_seq_bytes(st, job, direct.seqs[i], &all, &data)))
			nd->pull_bytes += data;
	for (size_t i = 0; i < direct.n && !rc; i++)
		if (ckm_set_add(nd, direct.seqs[i]) < 0)
			rc = log_fail(EX_OSERR, "out of memory");
	if (rc || ckm_set_add(nd, seq) < 0) {
		rc = rc ? rc : log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	/* references point below their checkpoint: walking down the set visits
	 * each member once, including the ones it adds */
	for (;;) {
		size_t i = nd->n;
		while (i > 0 && nd->seqs[i - 1] >= below)
			i--;
		if (!i)
			break;
		below = nd->seqs[i - 1];
		if ((rc = ckm_refs(st, job, below, nd)))
			goto out;
	}
	for (size_t i = 0; i < nd->n && !rc; i++)
		if (!(rc = ckm_seq_bytes(st, job, nd->seqs[i], &all, NULL)))
			nd->bytes += all;
out:
	free(direct.seqs);
	if (rc)
		ckpt_needs_free(nd);
	return rc;
}

void ckpt_needs_free(struct ckpt_needs *nd)
{
	if (nd) {
		free(nd->seqs);
		nd->seqs = NULL;
		nd->n = 0;
	}
}

int ckpt_migrate_conflict(struct xfer_store *src, struct xfer_store *dst, const char *job, const uint64_t *seqs,
			  size_t n, uint64_t *bad)
{
	char key[600], *text = NULL;
	size_t len = 0;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		ckpt_key(key, sizeof(key), job, seqs[i], "manifest.json");
		if ((rc = xfer_get(src, key, &text, &len, CKPT_MANIFEST_MAX)))
			return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "checkpoint seq %llu of '%s' vanished",
							      (unsigned long long)seqs[i], job) : rc;
		rc = ckm_dst_state(dst, key, text, len);
		free(text);
		text = NULL;
		if (rc == CKM_OTHER) {
			*bad = seqs[i];
			return 1;
		}
		if (rc == CKM_SAME)
			rc = 0;
	}
	return rc;
}
