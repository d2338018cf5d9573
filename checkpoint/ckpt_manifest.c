/*
 * ckpt_manifest.c - the manifest (manifest.json, "format": 1): encoding
 * with jansson and a strict parser.  The parser trusts nothing: every field
 * must be present with its JSON type, numbers must be in range, parts must
 * tile the tar stream and the data object without gaps, hashes must be 64
 * lowercase hex digits and totals must agree with the lists.  Unknown extra
 * fields are ignored so that a later format 1 writer may add some; a higher
 * "format" is refused.  See docs/store-format.md for the field list.
 */
#include "ckpt_int.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "log.h"

const char *ckpt_type_name(enum ckpt_type t)
{
	return t == CKPT_REG ? "file" : t == CKPT_DIR ? "dir" : t == CKPT_LNK ? "symlink" : "?";
}

static enum ckpt_type ckpt_type_parse(const char *s)
{
	return !strcmp(s, "file") ? CKPT_REG : !strcmp(s, "dir") ? CKPT_DIR :
	       !strcmp(s, "symlink") ? CKPT_LNK : 0;
}

static void *ckpt_grow(void *v, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return v;
	size_t nc = *cap ? 2 * *cap : 64;
	void *nv = realloc(v, nc * sz);
	if (nv) {
		memset((char *)nv + *cap * sz, 0, (nc - *cap) * sz);
		*cap = nc;
	}
	return nv;
}

struct ckpt_file *ckpt_manifest_add_file(struct ckpt_manifest *m)
{
	struct ckpt_file *v = ckpt_grow(m->files, &m->capfiles, m->nfiles, sizeof(*v));

	if (!v)
		return NULL;
	m->files = v;
	return &v[m->nfiles++];
}

struct ckpt_part *ckpt_manifest_add_part(struct ckpt_manifest *m)
{
	struct ckpt_part *v = ckpt_grow(m->parts, &m->capparts, m->nparts, sizeof(*v));

	if (!v)
		return NULL;
	m->parts = v;
	return &v[m->nparts++];
}

void ckpt_manifest_free(struct ckpt_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfiles; i++) {
		free(m->files[i].path);
		free(m->files[i].target);
	}
	free(m->files);
	free(m->parts);
	free(m->job);
	free(m->name);
	free(m->created);
	free(m->host);
	free(m->provider);
	free(m->region);
	free(m->instance);
	free(m->gpu);
	free(m->text);
	OPENSSL_cleanse(&m->enc, sizeof(m->enc));
	memset(m, 0, sizeof(*m));
}

/* ---- encoding -------------------------------------------------------- */

static json_t *ckpt_file_json(const struct ckpt_file *f)
{
	char hex[2 * CKPT_SHA_LEN + 1];
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "path", f->path, "type",
			      ckpt_type_name(f->type), "size", (json_int_t)f->size, "mode",
			      (json_int_t)f->mode, "mtime", (json_int_t)f->mtime, "mtime_nsec",
			      (json_int_t)f->mtime_nsec);

	if (o && f->type == CKPT_REG) {
		ckpt_hex(f->sha, hex);
		json_object_set_new(o, "sha256", json_string(hex));
		if (f->ref_seq)
			json_object_set_new(o, "ref", json_pack("{s:I, s:I}", "seq", (json_int_t)f->ref_seq,
								"data_offset", (json_int_t)f->data_off));
		else if (f->has_off)
			json_object_set_new(o, "data_offset", json_integer((json_int_t)f->data_off));
	}
	if (o && f->type == CKPT_LNK && json_object_set_new(o, "target", json_string(f->target))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *ckpt_part_json(const struct ckpt_part *p)
{
	char hex[2 * CKPT_SHA_LEN + 1];

	ckpt_hex(p->sha, hex);
	return json_pack("{s:I, s:I, s:I, s:I, s:s, s:s}", "raw_offset", (json_int_t)p->raw_offset,
			 "raw_size", (json_int_t)p->raw_size, "offset", (json_int_t)p->offset, "size",
			 (json_int_t)p->size, "sha256", hex, "codec", ckpt_codec_name(p->codec));
}

static int ckpt_bad(const char *what, const char *detail);

static json_t *ckpt_enc_json(const struct ckpt_crypt *c)
{
	char wn[2 * CKPT_NONCE_LEN + 1], wk[2 * sizeof(c->wrapped) + 1], pf[9];

	ckpt_hex_n(c->wrap_nonce, CKPT_NONCE_LEN, wn);
	ckpt_hex_n(c->wrapped, sizeof(c->wrapped), wk);
	ckpt_hex_n(c->prefix, sizeof(c->prefix), pf);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "cipher", "AES-256-GCM", "key_wrap", "AES-256-GCM",
			 "wrap_nonce", wn, "wrapped_key", wk, "nonce_prefix", pf, "mac", "HMAC-SHA256");
}

static int ckpt_parse_enc(json_t *root, struct ckpt_manifest *m)
{
	json_t *o = json_object_get(root, "encryption");
	const char *ci, *kw, *wn, *wk, *pf, *mac;
	struct ckpt_crypt *c = &m->enc;

	if (!o)
		return 0;
	if (m->format < 2 ||
	    json_unpack(o, "{s:s, s:s, s:s, s:s, s:s, s:s}", "cipher", &ci, "key_wrap", &kw, "wrap_nonce", &wn,
			"wrapped_key", &wk, "nonce_prefix", &pf, "mac", &mac) ||
	    strcmp(ci, "AES-256-GCM") || strcmp(kw, "AES-256-GCM") || strcmp(mac, "HMAC-SHA256") ||
	    strlen(wn) != 2 * CKPT_NONCE_LEN || strlen(wk) != 2 * sizeof(c->wrapped) || strlen(pf) != 8 ||
	    ckpt_unhex_n(wn, strlen(wn), c->wrap_nonce) || ckpt_unhex_n(wk, strlen(wk), c->wrapped) ||
	    ckpt_unhex_n(pf, 8, c->prefix))
		return ckpt_bad("encryption", "unsupported or malformed");
	c->on = 1;
	return 0;
}

static const char *ckpt_str(const char *s)
{
	return s ? s : "";
}

char *ckpt_manifest_encode(const struct ckpt_manifest *m)
{
	json_t *files = json_array(), *parts = json_array(), *gpu = NULL, *root = NULL;
	char *text = NULL;
	int format = m->format >= 1 && m->format <= CKPT_FORMAT ? m->format : 1;

	if (!files || !parts)
		goto out;
	for (size_t i = 0; i < m->nparts; i++)
		if (m->parts[i].codec != CKPT_CODEC_ZSTD)
			format = 2;
	for (size_t i = 0; i < m->nfiles; i++)
		if (m->files[i].ref_seq)
			format = 2;
	if (m->enc.on)
		format = 2;
	for (size_t i = 0; i < m->nfiles; i++)
		if (json_array_append_new(files, ckpt_file_json(&m->files[i])))
			goto out;
	for (size_t i = 0; i < m->nparts; i++)
		if (json_array_append_new(parts, ckpt_part_json(&m->parts[i])))
			goto out;
	gpu = m->gpu ? json_loads(m->gpu, 0, NULL) : NULL;
	if (!gpu || !json_is_object(gpu)) {
		json_decref(gpu);
		gpu = json_null();
	}
	root = json_pack("{s:i, s:s, s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:O, s:O,"
			 " s:{s:I, s:I, s:I}, s:{s:s, s:i, s:I}}",
			 "format", format, "job", m->job, "seq", (json_int_t)m->seq, "step",
			 m->step >= 0 ? json_integer(m->step) : json_null(), "name", m->name,
			 "created", ckpt_str(m->created), "host", ckpt_str(m->host), "provider",
			 ckpt_str(m->provider), "region", ckpt_str(m->region), "instance",
			 ckpt_str(m->instance), "gpu", gpu, "files", files, "parts", parts, "totals",
			 "files", (json_int_t)m->nfiles, "raw_bytes", (json_int_t)m->raw_bytes,
			 "stored_bytes", (json_int_t)m->stored_bytes, "compression", "codec",
			 format >= 2 ? "bp1" : "zstd",
			 "level", m->level, "part_size", (json_int_t)m->part_size);
	gpu = NULL;	/* "o" stole it, even on failure */
	if (root && m->enc.on && json_object_set_new(root, "encryption", ckpt_enc_json(&m->enc))) {
		json_decref(root);
		root = NULL;
	}
	if (root)
		text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
out:
	json_decref(root);
	json_decref(files);
	json_decref(parts);
	return text;
}

/* ---- parsing --------------------------------------------------------- */

static int ckpt_bad(const char *what, const char *detail)
{
	return log_fail(EX_DATAERR, "malformed manifest: %s%s%s", what, detail ? ": " : "",
			detail ? detail : "");
}

static int ckpt_dup(char **dst, const char *s)
{
	return (*dst = strdup(s)) ? 0 : log_fail(EX_OSERR, "out of memory");
}

/* Format 2: "data_offset" (in this tar stream) or "ref": {"seq", "data_offset"}. */
static int ckpt_parse_where(json_t *o, const char *what, const struct ckpt_manifest *m, struct ckpt_file *f)
{
	json_t *off = json_object_get(o, "data_offset"), *ref = json_object_get(o, "ref");
	json_int_t rs, ro;

	if (off && (ref || !json_is_integer(off) || json_integer_value(off) < 0))
		return ckpt_bad(what, "bad data_offset");
	if (off) {
		f->data_off = (uint64_t)json_integer_value(off);
		f->has_off = 1;
	}
	if (!ref)
		return 0;
	if (m->format < 2 || f->type != CKPT_REG || json_unpack(ref, "{s:I, s:I}", "seq", &rs, "data_offset", &ro) ||
	    rs < 1 || (uint64_t)rs >= m->seq || ro < 0)
		return ckpt_bad(what, "bad ref");
	f->ref_seq = (uint64_t)rs;
	f->data_off = (uint64_t)ro;
	f->has_off = 1;
	return 0;
}

static int ckpt_parse_file(json_t *o, size_t i, const struct ckpt_manifest *m, struct ckpt_file *f)
{
	const char *path, *type, *sha = NULL, *target = NULL;
	json_int_t size, mode, mtime, nsec;
	size_t plen;
	json_error_t e;
	char what[64];

	snprintf(what, sizeof(what), "files[%zu]", i);
	if (json_unpack_ex(o, &e, 0, "{s:s%, s:s, s:I, s:I, s:I, s:I, s?s, s?s}", "path", &path, &plen,
			   "type", &type, "size", &size, "mode", &mode, "mtime", &mtime, "mtime_nsec",
			   &nsec, "sha256", &sha, "target", &target))
		return ckpt_bad(what, e.text);
	if (plen != strlen(path) || !ckpt_path_safe(path))
		return ckpt_bad(what, "unsafe path");
	if (!(f->type = ckpt_type_parse(type)))
		return ckpt_bad(what, "unknown type");
	if (size < 0 || mode < 0 || mode > 07777 || nsec < 0 || nsec > 999999999 ||
	    (f->type != CKPT_REG && size != 0))
		return ckpt_bad(what, "number out of range");
	if (f->type == CKPT_REG && (!sha || ckpt_unhex(sha, f->sha)))
		return ckpt_bad(what, "sha256 missing or not 64 hex digits");
	if (f->type == CKPT_LNK && (!target || !*target))
		return ckpt_bad(what, "symlink without target");
	if (f->type == CKPT_REG && ckpt_parse_where(o, what, m, f))
		return EX_DATAERR;
	f->size = (uint64_t)size;
	f->mode = (uint32_t)mode;
	f->mtime = mtime;
	f->mtime_nsec = (long)nsec;
	if (ckpt_dup(&f->path, path) || (target && f->type == CKPT_LNK && ckpt_dup(&f->target, target)))
		return EX_OSERR;
	return 0;
}

static int ckpt_parse_parts(json_t *arr, struct ckpt_manifest *m)
{
	uint64_t raw = 0, off = 0;
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o) {
		json_int_t ro, rs, co, cs;
		const char *sha, *codec = "zstd";
		json_error_t e;
		char what[64];
		struct ckpt_part *p;
		int c;

		snprintf(what, sizeof(what), "parts[%zu]", i);
		if (json_unpack_ex(o, &e, 0, "{s:I, s:I, s:I, s:I, s:s, s?s}", "raw_offset", &ro, "raw_size",
				   &rs, "offset", &co, "size", &cs, "sha256", &sha, "codec", &codec))
			return ckpt_bad(what, e.text);
		if ((c = ckpt_codec_parse(codec)) < 0 || (c != CKPT_CODEC_ZSTD && m->format < 2))
			return ckpt_bad(what, "unknown codec");
		if ((uint64_t)ro != raw || (uint64_t)co != off)
			return ckpt_bad(what, "offset does not follow the previous part");
		if (rs <= 0 || (uint64_t)rs > m->part_size || cs <= (m->enc.on ? CKPT_TAG_LEN : 0) ||
		    (uint64_t)cs > (c == CKPT_CODEC_ZSTD ? ZSTD_compressBound((size_t)rs) :
				    ckpt_codec_bound((size_t)rs)) + (m->enc.on ? CKPT_TAG_LEN : 0))
			return ckpt_bad(what, "size out of range");
		if (!(p = ckpt_manifest_add_part(m)))
			return log_fail(EX_OSERR, "out of memory");
		if (ckpt_unhex(sha, p->sha))
			return ckpt_bad(what, "sha256 is not 64 hex digits");
		p->codec = c;
		p->raw_offset = raw;
		p->raw_size = (uint64_t)rs;
		p->offset = off;
		p->size = (uint64_t)cs;
		raw += (uint64_t)rs;
		off += (uint64_t)cs;
	}
	m->raw_bytes = raw;
	m->stored_bytes = off;
	return 0;
}

static int ckpt_parse_head(json_t *root, struct ckpt_manifest *m, json_t **files, json_t **parts)
{
	const char *job, *name, *created, *host, *prov, *region, *inst, *codec;
	json_int_t seq, nfiles, rawb, storedb, psize;
	json_t *step, *gpu;
	json_error_t e;
	int rc;

	if (json_unpack_ex(root, &e, 0, "{s:i}", "format", &m->format))
		return ckpt_bad("format", e.text);
	if (m->format < 1 || m->format > CKPT_FORMAT)
		return log_fail(EX_DATAERR, "manifest format %d is not understood by this spotrun (%d)",
				m->format, CKPT_FORMAT);
	if (json_unpack_ex(root, &e, 0,
			   "{s:s, s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o,"
			   " s:{s:I, s:I, s:I}, s:{s:s, s:i, s:I}}",
			   "job", &job, "seq", &seq, "step", &step, "name", &name, "created", &created,
			   "host", &host, "provider", &prov, "region", &region, "instance", &inst, "gpu",
			   &gpu, "files", files, "parts", parts, "totals", "files", &nfiles, "raw_bytes",
			   &rawb, "stored_bytes", &storedb, "compression", "codec", &codec, "level",
			   &m->level, "part_size", &psize))
		return ckpt_bad("fields", e.text);
	if (!ckpt_job_ok(job) || seq < 0 || !ckpt_path_safe(name) || strchr(name, '/'))
		return ckpt_bad("job, seq or name", "invalid value");
	if (!(json_is_null(step) || (json_is_integer(step) && json_integer_value(step) >= 0)))
		return ckpt_bad("step", "not a whole number or null");
	if (!json_is_null(gpu) && !json_is_object(gpu))
		return ckpt_bad("gpu", "not an object or null");
	if (!json_is_array(*files) || !json_is_array(*parts))
		return ckpt_bad("files/parts", "not arrays");
	if ((strcmp(codec, "zstd") && strcmp(codec, "bp1")) || psize < CKPT_PART_SIZE_MIN || psize > CKPT_PART_SIZE_MAX)
		return ckpt_bad("compression", "unsupported codec or part size");
	if (nfiles < 0 || (size_t)nfiles != json_array_size(*files))
		return ckpt_bad("totals.files", "does not match files[]");
	m->seq = (uint64_t)seq;
	m->step = json_is_integer(step) ? json_integer_value(step) : -1;
	m->part_size = (uint64_t)psize;
	m->raw_bytes = (uint64_t)rawb;
	m->stored_bytes = (uint64_t)storedb;
	if ((rc = ckpt_dup(&m->job, job)) || (rc = ckpt_dup(&m->name, name)) ||
	    (rc = ckpt_dup(&m->created, created)) || (rc = ckpt_dup(&m->host, host)) ||
	    (rc = ckpt_dup(&m->provider, prov)) || (rc = ckpt_dup(&m->region, region)) ||
	    (rc = ckpt_dup(&m->instance, inst)))
		return rc;
	if (json_is_object(gpu) && !(m->gpu = json_dumps(gpu, JSON_COMPACT)))
		return log_fail(EX_OSERR, "out of memory");
	return 0;
}

int ckpt_manifest_parse(const char *text, size_t len, struct ckpt_manifest *m)
{
	json_t *root, *files = NULL, *parts = NULL, *o;
	json_error_t e;
	uint64_t rawb, storedb;
	size_t i;
	int rc;

	memset(m, 0, sizeof(*m));
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	if (!root)
		return ckpt_bad("not JSON", e.text);
	if (!json_is_object(root)) {
		rc = ckpt_bad("top level", "not an object");
		goto out;
	}
	if ((rc = ckpt_parse_head(root, m, &files, &parts)) || (rc = ckpt_parse_enc(root, m)))
		goto out;
	rawb = m->raw_bytes;
	storedb = m->stored_bytes;
	json_array_foreach(files, i, o) {
		struct ckpt_file *f = ckpt_manifest_add_file(m);
		if (!f) {
			rc = log_fail(EX_OSERR, "out of memory");
			goto out;
		}
		if ((rc = ckpt_parse_file(o, i, m, f)))
			goto out;
	}
	if ((rc = ckpt_parse_parts(parts, m)))
		goto out;
	if (m->nparts == 0 || rawb != m->raw_bytes || storedb != m->stored_bytes)
		rc = ckpt_bad("totals", "do not match parts[]");
out:
	json_decref(root);
	if (rc)
		ckpt_manifest_free(m);
	return rc;
}
