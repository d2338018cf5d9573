/*
 * ckpt_ref.c - incremental pushes.  Push side: a regular file whose path,
 * size and mtime (ns) match a file of the job's previous committed
 * checkpoint is hashed now (pread, SHA-256); when the hash matches too the
 * file becomes a reference (ref_seq, data_off) to the data object that
 * holds its bytes - the previous checkpoint's, or the one it referenced in
 * turn, so references never chain.  Pull/verify side: a referenced file is
 * read back from that data object's parts (each part's SHA-256 checked,
 * decoded with ckpt_part_decode) and its own SHA-256 checked.
 */
#include "ckpt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "log.h"
#include "xfer.h"

#define REF_BUF (1u << 20)

static int ref_cmp(const void *a, const void *b, void *ctx)
{
	const struct ckpt_manifest *m = ctx;

	return strcmp(m->files[*(const size_t *)a].path, m->files[*(const size_t *)b].path);
}

static const struct ckpt_file *ref_find(const struct ckpt_manifest *m, const size_t *order, const char *path)
{
	size_t lo = 0, hi = m->nfiles;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->files[order[mid]].path, path);
		if (!c)
			return &m->files[order[mid]];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int ref_hash(int rootfd, const struct ckpt_file *f, unsigned char *buf, unsigned char *sha)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t off = 0;
	int fd, rc = 0;

	if (!md)
		return log_fail(EX_OSERR, "out of memory");
	if ((fd = openat(rootfd, f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		EVP_MD_CTX_free(md);
		return log_fail(EX_IOERR, "cannot open '%s': %s", f->path, strerror(errno));
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (off < f->size && !rc) {
		size_t want = f->size - off < REF_BUF ? (size_t)(f->size - off) : REF_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n <= 0)
			rc = log_fail(EX_IOERR, "cannot read '%s': %s", f->path, n ? strerror(errno) : "it shrank");
		else
			EVP_DigestUpdate(md, buf, (size_t)n);
		off += n > 0 ? (uint64_t)n : 0;
	}
	EVP_DigestFinal_ex(md, sha, NULL);
	EVP_MD_CTX_free(md);
	close(fd);
	return rc;
}

/* The newest committed checkpoint of m->job, if any (no message when none). */
static int ref_prev(struct xfer_store *st, const char *job, const unsigned char *ukey,
		    struct ckpt_manifest *prev, int *have)
{
	int rc, found;

	*have = 0;
	if ((rc = ckpt_read_newest(st, job, prev, &found)) || !found)
		return rc;
	/* only within the same protection: plain to plain, or the same key */
	if (!prev->enc.on != !ukey || (ukey && ckpt_unlock(st, prev, ukey))) {
		log_info("incremental push: the previous checkpoint is protected differently, pushing everything");
		ckpt_manifest_free(prev);
		return 0;
	}
	*have = 1;
	return 0;
}

int ckpt_ref_mark(struct xfer_store *st, struct ckpt_manifest *m, int rootfd, const unsigned char *ukey,
		  uint64_t *saved)
{
	struct ckpt_manifest prev;
	size_t *order = NULL;
	unsigned char *buf = NULL, sha[CKPT_SHA_LEN];
	int have, rc;

	*saved = 0;
	if ((rc = ref_prev(st, m->job, ukey, &prev, &have)) || !have)
		return rc;
	order = malloc((prev.nfiles + 1) * sizeof(*order));
	buf = malloc(REF_BUF);
	if (!order || !buf) {
		rc = log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < prev.nfiles; i++)
		order[i] = i;
	qsort_r(order, prev.nfiles, sizeof(*order), ref_cmp, &prev);
	for (size_t i = 0; i < m->nfiles && !rc; i++) {
		struct ckpt_file *f = &m->files[i];
		const struct ckpt_file *p = f->type == CKPT_REG && f->size ? ref_find(&prev, order, f->path) : NULL;
		if (!p || p->type != CKPT_REG || !p->has_off || p->size != f->size || p->mtime != f->mtime ||
		    p->mtime_nsec != f->mtime_nsec)
			continue;
		if ((rc = ref_hash(rootfd, f, buf, sha)) || memcmp(sha, p->sha, CKPT_SHA_LEN))
			continue;
		memcpy(f->sha, sha, CKPT_SHA_LEN);
		f->ref_seq = p->ref_seq ? p->ref_seq : prev.seq;
		f->data_off = p->data_off;
		f->has_off = 1;
		*saved += f->size;
	}
out:
	free(order);
	free(buf);
	ckpt_manifest_free(&prev);
	return rc;
}

/* ---- reading references back --------------------------------------------- */

struct ckpt_refs {
	struct xfer_store *st;
	const struct ckpt_manifest *m;
	struct ckpt_manifest src;	/* the manifest of the data object read from */
	const unsigned char *ukey;
	int have_src;
	char key[512];
	ZSTD_DCtx *dc;
	EVP_MD *sha256;
	EVP_MD_CTX *md;
	unsigned char *comp, *raw, *scratch;
	size_t comp_cap, raw_cap;
};

int ckpt_refs_open(struct ckpt_refs **out, struct xfer_store *st, const struct ckpt_manifest *m,
		   const unsigned char *ukey)
{
	struct ckpt_refs *r = calloc(1, sizeof(*r));

	*out = r;
	if (!r)
		return log_fail(EX_OSERR, "out of memory");
	r->ukey = ukey;
	r->st = st;
	r->m = m;
	r->dc = ZSTD_createDCtx();
	r->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	r->md = EVP_MD_CTX_new();
	if (!r->dc || !r->sha256 || !r->md)
		return log_fail(EX_OSERR, "out of memory");
	return 0;
}

void ckpt_refs_close(struct ckpt_refs *r)
{
	if (!r)
		return;
	if (r->have_src)
		ckpt_manifest_free(&r->src);
	ZSTD_freeDCtx(r->dc);
	EVP_MD_free(r->sha256);
	EVP_MD_CTX_free(r->md);
	free(r->comp);
	free(r->raw);
	free(r->scratch);
	free(r);
}

static int refs_source(struct ckpt_refs *r, uint64_t seq)
{
	int rc;

	if (r->have_src && r->src.seq == seq)
		return 0;
	if (r->have_src)
		ckpt_manifest_free(&r->src);
	r->have_src = 0;
	if ((rc = ckpt_read_manifest(r->st, r->m->job, seq, &r->src)))
		return rc == EX_NOINPUT ? log_fail(EX_DATAERR, "checkpoint %" PRIu64 " references checkpoint %"
						   PRIu64 ", which is gone", r->m->seq, seq) : rc;
	r->have_src = 1;
	if ((rc = ckpt_unlock(r->st, &r->src, r->ukey)))
		return rc;
	ckpt_key(r->key, sizeof(r->key), r->m->job, seq, "data.tar.zst");
	return 0;
}

static int refs_buffers(struct ckpt_refs *r, const struct ckpt_part *p)
{
	if (p->size > r->comp_cap) {
		free(r->comp);
		if (!(r->comp = ckpt_big_alloc(p->size)))
			return log_fail(EX_OSERR, "out of memory");
		r->comp_cap = p->size;
	}
	if (p->raw_size > r->raw_cap) {
		free(r->raw);
		if (!(r->raw = ckpt_big_alloc(p->raw_size)))
			return log_fail(EX_OSERR, "out of memory");
		r->raw_cap = p->raw_size;
	}
	return 0;
}

/* The part of src holding raw offset off (binary search), or -1. */
static long refs_part(const struct ckpt_manifest *src, uint64_t off)
{
	size_t lo = 0, hi = src->nparts;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct ckpt_part *p = &src->parts[mid];
		if (off < p->raw_offset)
			hi = mid;
		else if (off >= p->raw_offset + p->raw_size)
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

static int refs_copy(struct ckpt_refs *r, const struct ckpt_file *f, struct ckpt_writer *w)
{
	uint64_t at = f->data_off, end = f->data_off + f->size;
	int rc;

	while (at < end) {
		long i = refs_part(&r->src, at);
		const struct ckpt_part *p;
		if (i < 0)
			return log_fail(EX_DATAERR, "reference of '%s' points outside checkpoint %" PRIu64,
					f->path, r->src.seq);
		p = &r->src.parts[i];
		if ((rc = refs_buffers(r, p)))
			return rc;
		if ((rc = xfer_get_range(r->st, r->key, p->offset, r->comp, p->size)))
			return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "checkpoint data '%s' is missing", r->key) : rc;
		if ((rc = ckpt_part_decode(&r->src, (size_t)i, r->dc, r->sha256, r->comp, r->raw, &r->scratch)))
			return rc;
		uint64_t from = at - p->raw_offset, n = p->raw_offset + p->raw_size - at;
		n = n < end - at ? n : end - at;
		EVP_DigestUpdate(r->md, r->raw + from, n);
		if (w && (rc = ckpt_writer_data(w, r->raw + from, n, at - f->data_off)))
			return rc;
		at += n;
	}
	return 0;
}

int ckpt_refs_read(struct ckpt_refs *r, const struct ckpt_file *f, struct ckpt_writer *w)
{
	unsigned char sha[CKPT_SHA_LEN];
	int rc;

	if ((rc = refs_source(r, f->ref_seq)))
		return rc;
	EVP_DigestInit_ex(r->md, r->sha256, NULL);
	if ((rc = refs_copy(r, f, w)))
		return rc;
	EVP_DigestFinal_ex(r->md, sha, NULL);
	if (memcmp(sha, f->sha, CKPT_SHA_LEN))
		return log_fail(EX_DATAERR, "file '%s' of checkpoint %" PRIu64 " (stored in checkpoint %" PRIu64
				") does not match its sha256", f->path, r->m->seq, f->ref_seq);
	return 0;
}
