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
	return json_pack("{s:I, s:I, s:I, s:I, s:s}", "raw_offset", (json_int_t)p->raw_offset,
			 "raw_size", (json_int_t)p->raw_size, "offset", (json_int_t)p->offset, "size",
			 (json_int_t)p->size, "sha256", hex);
}

static const char *ckpt_str(const char *s)
{
	return s ? s : "";
}

char *ckpt_manifest_encode(const struct ckpt_manifest *m)
{
	json_t *files = json_array(), *parts = json_array(), *gpu = NULL, *root = NULL;
	char *text = NULL;

	if (!files || !parts)
		goto out;
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
			 "format", CKPT_FORMAT, "job", m->job, "seq", (json_int_t)m->seq, "step",
			 m->step >= 0 ? json_integer(m->step) : json_null(), "name", m->name,
			 "created", ckpt_str(m->created), "host", ckpt_str(m->host), "provider",
			 ckpt_str(m->provider), "region", ckpt_str(m->region), "instance",
			 ckpt_str(m->instance), "gpu", gpu, "files", files, "parts", parts, "totals",
			 "files", (json_int_t)m->nfiles, "raw_bytes", (json_int_t)m->raw_bytes,
			 "stored_bytes", (json_int_t)m->stored_bytes, "compression", "codec", "zstd",
			 "level", m->level, "part_size", (json_int_t)m->part_size);
	gpu = NULL;	/* "o" stole it, even on failure */
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

static int ckpt_parse_file(json_t *o, size_t i, struct ckpt_file *f)
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
		const char *sha;
		json_error_t e;
		char what[64];
		struct ckpt_part *p;

		snprintf(what, sizeof(what), "parts[%zu]", i);
		if (json_unpack_ex(o, &e, 0, "{s:I, s:I, s:I, s:I, s:s}", "raw_offset", &ro, "raw_size",
				   &rs, "offset", &co, "size", &cs, "sha256", &sha))
			return ckpt_bad(what, e.text);
		if ((uint64_t)ro != raw || (uint64_t)co != off)
			return ckpt_bad(what, "offset does not follow the previous part");
		if (rs <= 0 || (uint64_t)rs > m->part_size || cs <= 0 ||
		    (uint64_t)cs > ZSTD_compressBound((size_t)rs))
			return ckpt_bad(what, "size out of range");
		if (!(p = ckpt_manifest_add_part(m)))
			return log_fail(EX_OSERR, "out of memory");
		if (ckpt_unhex(sha, p->sha))
			return ckpt_bad(what, "sha256 is not 64 hex digits");
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
	if (m->format != CKPT_FORMAT)
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
	if (strcmp(codec, "zstd") || psize < CKPT_PART_SIZE_MIN || psize > CKPT_PART_SIZE_MAX)
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
	if ((rc = ckpt_parse_head(root, m, &files, &parts)))
		goto out;
	rawb = m->raw_bytes;
	storedb = m->stored_bytes;
	json_array_foreach(files, i, o) {
		struct ckpt_file *f = ckpt_manifest_add_file(m);
		if (!f) {
			rc = log_fail(EX_OSERR, "out of memory");
			goto out;
		}
		if ((rc = ckpt_parse_file(o, i, f)))
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
