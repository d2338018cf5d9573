/*
 * ckpt_push.c - pushes one checkpoint folder: scan -> reads (ckpt_read.c,
 * hashing every file on the way) -> a pax tar stream written by libarchive
 * into fixed-size part buffers (noting where each file's typed tensors
 * land, for the bp1 codec) -> worker threads code each part (bp1 when it
 * holds typed ranges, else an independent zstd frame; --portable: zstd
 * only), encrypt it (AES-256-GCM, --encrypt-key-file) and hash the stored
 * bytes -> this thread appends the finished
 * parts in order to the data object -> manifest, written create-only: the
 * commit.  Files unchanged since the previous checkpoint are left out of
 * the archive and referenced (ckpt_ref.c) unless o->full.
 *
 * Memory: nslots = workers + 1 part slots, each a raw and a compressed
 * buffer of part_size, allocated once; the tar writer blocks for a free slot
 * when every slot is being filled, compressed or waiting to be written, so
 * memory does not depend on the checkpoint's size.  A slot goes FREE ->
 * FILLED (this thread) -> DONE (a worker) -> written and FREE (this thread);
 * part p always lives in slot p % nslots.
 */
#include "ckpt_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "log.h"
#include "xfer.h"

enum { SLOT_FREE, SLOT_FILLED, SLOT_DONE };

struct push_slot {
	unsigned char *raw, *comp;
	size_t raw_len, comp_len, comp_cap;
	int state;
	int codec;			/* enum ckpt_codec of comp */
	uint64_t index;			/* part number (the GCM nonce's counter) */
	struct ckpt_region *rg;		/* typed ranges of raw, for the bp1 codec */
	size_t nrg;
	unsigned char sha[CKPT_SHA_LEN];
};

#define PUSH_MAX_REGIONS (CKPT_BP_MAXSEG / 2)

struct push {
	struct ckpt_manifest *m;
	int level;
	uint64_t psize;
	int nslots, nthreads;
	struct push_slot *slots;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t filled;	/* parts handed to the workers */
	uint64_t taken;		/* parts a worker has started */
	uint64_t written;	/* parts appended to the data object */
	int err;		/* first worker error */
	int stop;
	struct push_slot *cur;	/* being filled by the tar writer, or NULL */
	int rc;			/* error seen inside a libarchive callback */
	struct xfer_upload *up;
	EVP_MD *sha256;
	int portable;		/* plain zstd frames only */
	uint64_t pos;		/* tar stream bytes handed to push_tar_write so far */
	struct ckpt_region *hint;	/* typed ranges of the file being written (file offsets) */
	size_t nhint, hi;
	uint64_t hbase;		/* stream offset of that file's first data byte */
};

/* ---- workers ----------------------------------------------------------- */

static int push_compress(struct push *ps, ZSTD_CCtx *cc, unsigned char *scratch, struct push_slot *s)
{
	size_t n;

	s->codec = CKPT_CODEC_ZSTD;
	if (s->nrg && scratch) {
		if (ckpt_bp_encode(cc, ps->level, s->raw, s->raw_len, s->rg, s->nrg, scratch, s->comp,
				   s->comp_cap, &n))
			return log_fail(EX_SOFTWARE, "bp1 encoder: output buffer too small");
		s->codec = CKPT_CODEC_BP1;
	} else {
		ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
		if (ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, ps->level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)))
			return log_fail(EX_SOFTWARE, "cannot set up zstd (level %d)", ps->level);
		n = ZSTD_compress2(cc, s->comp, s->comp_cap, s->raw, s->raw_len);
	}
	if (ZSTD_isError(n))
		return log_fail(EX_SOFTWARE, "zstd: %s", ZSTD_getErrorName(n));
	if (ps->m->enc.on && (n + CKPT_TAG_LEN > s->comp_cap ||
			      ckpt_crypt_part(&ps->m->enc, 1, s->index, s->comp, n, &n)))
		return log_fail(EX_SOFTWARE, "AES-256-GCM failed");
	s->comp_len = n;
	if (!EVP_Digest(s->comp, n, s->sha, NULL, ps->sha256, NULL))
		return log_fail(EX_SOFTWARE, "sha256 failed");
	return 0;
}

static void *push_worker(void *arg)
{
	struct push *ps = arg;
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	unsigned char *scratch = ps->portable ? NULL : malloc(ps->psize);
	int rc = 0;

	if (!ps->portable && !scratch)
		rc = log_fail(EX_OSERR, "out of memory");
	else if (!cc || ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, ps->level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)))
		rc = log_fail(EX_SOFTWARE, "cannot set up zstd (level %d)", ps->level);
	pthread_mutex_lock(&ps->mu);
	if (rc && !ps->err)
		ps->err = rc;
	while (!rc) {
		while (!ps->stop && ps->taken >= ps->filled)
			pthread_cond_wait(&ps->cv, &ps->mu);
		if (ps->stop)
			break;
		struct push_slot *s = &ps->slots[ps->taken % (uint64_t)ps->nslots];
		s->index = ps->taken++;
		pthread_mutex_unlock(&ps->mu);
		rc = push_compress(ps, cc, scratch, s);
		pthread_mutex_lock(&ps->mu);
		s->state = SLOT_DONE;
		if (rc && !ps->err)
			ps->err = rc;
		pthread_cond_broadcast(&ps->cv);
	}
	pthread_mutex_unlock(&ps->mu);
	ZSTD_freeCCtx(cc);
	free(scratch);
	return NULL;
}

/* ---- ordered writing ------------------------------------------------- */

static int push_append(struct push *ps, struct push_slot *s)
{
	struct ckpt_manifest *m = ps->m;
	struct ckpt_part *p = ckpt_manifest_add_part(m);
	int rc;

	if (!p)
		return log_fail(EX_OSERR, "out of memory");
	p->raw_offset = m->raw_bytes;
	p->raw_size = s->raw_len;
	p->offset = m->stored_bytes;
	p->size = s->comp_len;
	p->codec = s->codec;
	if (s->codec != CKPT_CODEC_ZSTD)
		m->format = 2;
	memcpy(p->sha, s->sha, CKPT_SHA_LEN);
	if ((rc = xfer_upload_write(ps->up, s->comp, s->comp_len)))
		return rc;
	m->raw_bytes += s->raw_len;
	m->stored_bytes += s->comp_len;
	return 0;
}

/* Appends finished parts in order until at least `upto` are written (waiting
 * for the workers as needed), then any that are already finished. */
static int push_flush(struct push *ps, uint64_t upto)
{
	int rc = 0;

	pthread_mutex_lock(&ps->mu);
	while (!rc && ps->written < ps->filled) {
		struct push_slot *s = &ps->slots[ps->written % (uint64_t)ps->nslots];
		while (!ps->err && s->state != SLOT_DONE && ps->written < upto)
			pthread_cond_wait(&ps->cv, &ps->mu);
		if ((rc = ps->err) || s->state != SLOT_DONE)
			break;
		pthread_mutex_unlock(&ps->mu);
		rc = push_append(ps, s);
		pthread_mutex_lock(&ps->mu);
		s->state = SLOT_FREE;
		ps->written++;
	}
	pthread_mutex_unlock(&ps->mu);
	return rc;
}

static int push_submit(struct push *ps)
{
	pthread_mutex_lock(&ps->mu);
	ps->cur->state = SLOT_FILLED;
	ps->filled++;
	ps->cur = NULL;
	pthread_cond_broadcast(&ps->cv);
	pthread_mutex_unlock(&ps->mu);
	return push_flush(ps, 0);
}

static int push_take_slot(struct push *ps)
{
	uint64_t p = ps->filled;
	int rc = 0;

	if (p >= (uint64_t)ps->nslots)
		rc = push_flush(ps, p - (uint64_t)ps->nslots + 1);
	if (rc)
		return rc;
	ps->cur = &ps->slots[p % (uint64_t)ps->nslots];
	ps->cur->raw_len = 0;
	ps->cur->nrg = 0;
	return 0;
}

static void push_add_region(struct push_slot *s, uint64_t off, uint64_t len, unsigned w)
{
	struct ckpt_region *l = s->nrg ? &s->rg[s->nrg - 1] : NULL;

	if (l && l->width == w && l->off + l->len == off && l->len % w == 0)
		l->len += len;
	else if (s->nrg < PUSH_MAX_REGIONS)
		s->rg[s->nrg++] = (struct ckpt_region){ off, len, w };
}

/* Stream bytes [pos, pos + n) land at offset so of the current slot: note
 * the typed ranges of the file being written among them, each starting on
 * an element boundary of its tensor. */
static void push_note_regions(struct push *ps, uint64_t pos, size_t n, size_t so)
{
	uint64_t fa, fb;

	if (pos < ps->hbase)
		return;
	fa = pos - ps->hbase;
	fb = fa + n;
	while (ps->hi < ps->nhint && ps->hint[ps->hi].off + ps->hint[ps->hi].len <= fa)
		ps->hi++;
	for (size_t j = ps->hi; j < ps->nhint && ps->hint[j].off < fb; j++) {
		const struct ckpt_region *h = &ps->hint[j];
		uint64_t a = h->off > fa ? h->off : fa, b = h->off + h->len < fb ? h->off + h->len : fb;
		if (!h->len || b <= a)
			continue;
		a += (h->width - (a - h->off) % h->width) % h->width;
		if (a < b)
			push_add_region(ps->cur, so + (a - fa), b - a, h->width);
	}
}

/* libarchive's write callback: the tar stream lands in part buffers. */
static la_ssize_t push_tar_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct push *ps = ctx;
	const unsigned char *p = buf;
	size_t left = len;

	while (left) {
		if (!ps->cur && (ps->rc = push_take_slot(ps))) {
			archive_set_error(a, EIO, "part upload failed");
			return -1;
		}
		size_t n = ps->psize - ps->cur->raw_len;
		n = n < left ? n : left;
		if (ps->nhint)
			push_note_regions(ps, ps->pos, n, ps->cur->raw_len);
		ps->pos += n;
		memcpy(ps->cur->raw + ps->cur->raw_len, p, n);
		ps->cur->raw_len += n;
		p += n;
		left -= n;
		if (ps->cur->raw_len == ps->psize && (ps->rc = push_submit(ps))) {
			archive_set_error(a, EIO, "part upload failed");
			return -1;
		}
	}
	return (la_ssize_t)len;
}

/* ---- setup and teardown ------------------------------------------------ */

static int push_start(struct push *ps, int workers)
{
	ps->nthreads = 0;
	ps->nslots = workers + 1;
	pthread_mutex_init(&ps->mu, NULL);
	pthread_cond_init(&ps->cv, NULL);
	if (!(ps->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return log_fail(EX_SOFTWARE, "OpenSSL has no SHA256");
	ps->slots = calloc((size_t)ps->nslots, sizeof(*ps->slots));
	ps->threads = calloc((size_t)workers, sizeof(*ps->threads));
	if (!ps->slots || !ps->threads)
		return log_fail(EX_OSERR, "out of memory");
	for (int i = 0; i < ps->nslots; i++) {
		struct push_slot *s = &ps->slots[i];
		s->comp_cap = ckpt_codec_bound(ps->psize) + CKPT_TAG_LEN;
		if (!(s->raw = malloc(ps->psize)) || !(s->comp = malloc(s->comp_cap)) ||
		    !(s->rg = malloc(PUSH_MAX_REGIONS * sizeof(*s->rg))))
			return log_fail(EX_OSERR, "out of memory for %d parts of %llu bytes", ps->nslots,
					(unsigned long long)ps->psize);
	}
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&ps->threads[i], NULL, push_worker, ps))
			return log_fail(EX_OSERR, "cannot start a worker thread");
		ps->nthreads++;
	}
	return 0;
}

static void push_stop(struct push *ps)
{
	pthread_mutex_lock(&ps->mu);
	ps->stop = 1;
	pthread_cond_broadcast(&ps->cv);
	pthread_mutex_unlock(&ps->mu);
	for (int i = 0; i < ps->nthreads; i++)
		pthread_join(ps->threads[i], NULL);
	for (int i = 0; ps->slots && i < ps->nslots; i++) {
		free(ps->slots[i].raw);
		free(ps->slots[i].comp);
		free(ps->slots[i].rg);
	}
	free(ps->slots);
	free(ps->threads);
	EVP_MD_free(ps->sha256);
	pthread_cond_destroy(&ps->cv);
	pthread_mutex_destroy(&ps->mu);
}

/* ---- the tar stream -------------------------------------------------- */

static int push_header(struct push *ps, struct archive *a, struct archive_entry *e,
		       const char *tarpath, const struct ckpt_file *f)
{
	archive_entry_clear(e);
	archive_entry_copy_pathname(e, tarpath);
	archive_entry_set_filetype(e, f->type == CKPT_REG ? AE_IFREG : f->type == CKPT_DIR ? AE_IFDIR : AE_IFLNK);
	archive_entry_set_perm(e, f->mode);
	archive_entry_set_size(e, (la_int64_t)f->size);
	archive_entry_set_mtime(e, f->mtime, f->mtime_nsec);
	if (f->type == CKPT_LNK)
		archive_entry_copy_symlink(e, f->target);
	if (archive_write_header(a, e) < ARCHIVE_WARN)
		return ps->rc ? ps->rc : log_fail(EX_SOFTWARE, "tar: %s", archive_error_string(a));
	return 0;
}

/* Streams file i's contents into the archive, hashing them. */
static int push_data_loop(struct push *ps, struct archive *a, struct ckpt_reader *rd, EVP_MD_CTX *md,
			  size_t i, struct ckpt_progress *pg, uint64_t *done)
{
	struct ckpt_file *f = &ps->m->files[i];
	uint64_t left = f->size;
	int rc;

	while (left) {
		const void *data;
		size_t fi, len;
		if ((rc = ckpt_reader_next(rd, &fi, &data, &len)))
			return rc == 1 ? log_fail(EX_SOFTWARE, "reader ended early") : rc;
		if (fi != i || len > left)
			return log_fail(EX_SOFTWARE, "reader out of step at '%s'", f->path);
		EVP_DigestUpdate(md, data, len);
		if (archive_write_data(a, data, len) != (la_ssize_t)len)
			return ps->rc ? ps->rc : log_fail(EX_SOFTWARE, "tar: %s", archive_error_string(a));
		left -= len;
		*done += len;
		ckpt_progress_update(pg, *done);
	}
	EVP_DigestFinal_ex(md, f->sha, NULL);
	return 0;
}

/* File i's data, with its typed ranges (ckpt_hint.c) noted for the codec.
 * libarchive writes through (blocks of 0), so the header is out and the
 * data starts at stream offset ps->pos, a multiple of 512. */
static int push_data(struct push *ps, struct archive *a, struct ckpt_reader *rd, EVP_MD_CTX *md,
		     int rootfd, size_t i, struct ckpt_progress *pg, uint64_t *done)
{
	int rc;

	if (!EVP_DigestInit_ex(md, ps->sha256, NULL))
		return log_fail(EX_SOFTWARE, "sha256 failed");
	if (!ps->portable && ps->pos % 512 == 0)
		ckpt_hints(rootfd, &ps->m->files[i], &ps->hint, &ps->nhint);
	ps->hbase = ps->pos;
	ps->m->files[i].data_off = ps->pos;
	ps->m->files[i].has_off = ps->pos % 512 == 0;	/* else not trusted for references */
	ps->hi = 0;
	rc = push_data_loop(ps, a, rd, md, i, pg, done);
	free(ps->hint);
	ps->hint = NULL;
	ps->nhint = 0;
	return rc;
}

static int push_root_entry(struct push *ps, struct archive *a, struct archive_entry *e, int rootfd)
{
	struct stat sb;
	struct ckpt_file root = { .type = CKPT_DIR };

	if (fstat(rootfd, &sb))
		return log_fail(EX_IOERR, "cannot stat '%s': %s", ps->m->name, strerror(errno));
	root.mode = sb.st_mode & 07777;
	root.mtime = sb.st_mtim.tv_sec;
	root.mtime_nsec = sb.st_mtim.tv_nsec;
	return push_header(ps, a, e, ps->m->name, &root);
}

static int push_tar(struct push *ps, int rootfd, int progress)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct ckpt_reader *rd = NULL;
	struct ckpt_progress pg;
	uint64_t total = 0, done = 0;
	char path[PATH_MAX];
	int rc;

	if (!a || !e || !md) {
		rc = log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ps->m->nfiles; i++)
		total += ps->m->files[i].ref_seq ? 0 : ps->m->files[i].size;
	ckpt_progress_init(&pg, progress, "push", total);
	if (archive_write_set_format_pax(a) || archive_write_add_filter_none(a) ||
	    archive_write_set_bytes_per_block(a, 0) ||
	    archive_write_open(a, ps, NULL, push_tar_write, NULL)) {
		rc = log_fail(EX_SOFTWARE, "tar: %s", archive_error_string(a));
		goto out;
	}
	if ((rc = ckpt_reader_open(&rd, rootfd, ps->m)) || (rc = push_root_entry(ps, a, e, rootfd)))
		goto out;
	for (size_t i = 0; i < ps->m->nfiles && !rc; i++) {
		struct ckpt_file *f = &ps->m->files[i];
		if (f->ref_seq)
			continue;	/* in an earlier checkpoint's data object */
		snprintf(path, sizeof(path), "%s/%s", ps->m->name, f->path);
		if (!(rc = push_header(ps, a, e, path, f)) && f->type == CKPT_REG)
			rc = push_data(ps, a, rd, md, rootfd, i, &pg, &done);
	}
	if (!rc && archive_write_close(a))
		rc = ps->rc ? ps->rc : log_fail(EX_SOFTWARE, "tar: %s", archive_error_string(a));
	if (!rc && ps->cur && ps->cur->raw_len)
		rc = push_submit(ps);
	if (!rc)
		rc = push_flush(ps, ps->filled);
	ckpt_progress_end(&pg);
out:
	ckpt_reader_close(rd);
	archive_write_free(a);
	archive_entry_free(e);
	EVP_MD_CTX_free(md);
	return rc;
}

/* ---- the push ---------------------------------------------------------- */

static int push_name(const char *dir, char *name, size_t n)
{
	char real[PATH_MAX];
	const char *b;

	if (!realpath(dir, real))
		return log_fail(errno == ENOENT || errno == ENOTDIR ? EX_NOINPUT : EX_IOERR,
				"cannot open folder '%s': %s", dir, strerror(errno));
	b = strrchr(real, '/');
	b = b ? b + 1 : real;
	if (!*b || (size_t)snprintf(name, n, "%s", b) >= n)
		return log_fail(EX_USAGE, "cannot push '%s': it needs a folder name", dir);
	return 0;
}

static int push_ident(struct ckpt_manifest *m, const struct ckpt_push_opts *o)
{
	char host[256] = "", created[40];
	const struct ckpt_ident *id = &o->ident;

	if (id->host)
		snprintf(host, sizeof(host), "%s", id->host);
	else if (gethostname(host, sizeof(host) - 1))
		host[0] = 0;
	ckpt_rfc3339(time(NULL), created);
	m->gpu = o->gpu_json ? strdup(o->gpu_json) : ckpt_gpu_fingerprint();
	if (!(m->created = strdup(created)) || !(m->host = strdup(host)) ||
	    !(m->provider = strdup(id->provider ? id->provider : "")) ||
	    !(m->region = strdup(id->region ? id->region : "")) ||
	    !(m->instance = strdup(id->instance_type ? id->instance_type : "")))
		return log_fail(EX_OSERR, "out of memory");
	return 0;
}

/* The data objects this checkpoint references still exist (a gc that ran
 * since they were chosen would have removed them). */
static int push_refs_alive(struct xfer_store *st, const struct ckpt_manifest *m)
{
	uint64_t last = 0;
	char key[512];
	int rc;

	for (size_t i = 0; i < m->nfiles; i++) {
		uint64_t s = m->files[i].ref_seq;
		if (!s || s == last)
			continue;
		last = s;
		ckpt_key(key, sizeof(key), m->job, s, "manifest.json");
		if ((rc = xfer_head(st, key, NULL)))
			return rc == XFER_NOTFOUND ? log_fail(EX_TEMPFAIL, "checkpoint %llu, referenced by this "
							      "push, was collected meanwhile: push again",
							      (unsigned long long)s) : rc;
	}
	return 0;
}

/* An encrypted checkpoint's manifest.mac, written before the manifest. */
static int push_mac(struct xfer_store *st, const struct ckpt_manifest *m, const char *text)
{
	unsigned char mac[32];
	char hex[66], key[512];
	int rc;

	if (!m->enc.on)
		return 0;
	if ((rc = ckpt_crypt_mac(&m->enc, text, strlen(text), mac)))
		return rc;
	ckpt_hex_n(mac, 32, hex);
	strcat(hex, "\n");
	ckpt_key(key, sizeof(key), m->job, m->seq, "manifest.mac");
	return xfer_put(st, key, hex, strlen(hex), 0);
}

/* Data upload and manifest, once the seq is claimed. */
static int push_commit(struct xfer_store *st, struct push *ps, int rootfd,
		       const struct ckpt_push_opts *o, int workers)
{
	struct ckpt_manifest *m = ps->m;
	char key[512], *text = NULL;
	int rc;

	if (o->key && (rc = ckpt_crypt_new(&m->enc, o->key, m->job, m->seq)))
		return rc;
	ckpt_key(key, sizeof(key), m->job, m->seq, "data.tar.zst");
	if ((rc = xfer_upload_begin(st, key, &ps->up)))
		return rc;
	rc = push_start(ps, workers);
	if (!rc) {
		struct ckpt_locale loc = ckpt_utf8_begin();
		rc = push_tar(ps, rootfd, o->progress);
		ckpt_utf8_end(loc);
	}
	push_stop(ps);
	if (rc) {
		xfer_upload_abort(ps->up);
		return rc;
	}
	if ((rc = xfer_upload_finish(ps->up)) || (rc = push_ident(m, o)))
		goto fail;
	if (!(text = ckpt_manifest_encode(m))) {
		rc = log_fail(EX_SOFTWARE, "cannot encode the manifest");
		goto fail;
	}
	if ((rc = push_refs_alive(st, m)) || (rc = push_mac(st, m, text)))
		goto fail;
	/* gc removes claims of abandoned pushes: do not commit data it may be deleting */
	ckpt_key(key, sizeof(key), m->job, m->seq, "claim.json");
	if ((rc = xfer_head(st, key, NULL))) {
		rc = rc == XFER_NOTFOUND ? log_fail(EX_TEMPFAIL, "checkpoint %llu was collected while "
						    "being pushed", (unsigned long long)m->seq) : rc;
		goto fail;
	}
	ckpt_key(key, sizeof(key), m->job, m->seq, "manifest.json");
	rc = xfer_put(st, key, text, strlen(text), XFER_CREATE_ONLY);
	if (rc == XFER_EXISTS)
		rc = log_fail(EX_SOFTWARE, "checkpoint %llu of '%s' is already committed",
			      (unsigned long long)m->seq, m->job);
	free(text);
	return rc;
fail:
	free(text);
	ckpt_key(key, sizeof(key), m->job, m->seq, "data.tar.zst");
	xfer_delete(st, key);
	return rc;
}

static int push_check_opts(const char *dir, const struct ckpt_push_opts *o, uint64_t *psize, int *level)
{
	if (!o || !ckpt_job_ok(o->job))
		return log_fail(EX_USAGE, "invalid job id '%s' (letters, digits, '.', '_', '-')",
				o && o->job ? o->job : "");
	if (!dir || !*dir)
		return log_fail(EX_USAGE, "no folder to push");
	*psize = o->part_size ? o->part_size : CKPT_PART_SIZE_DEFAULT;
	if (*psize < CKPT_PART_SIZE_MIN || *psize > CKPT_PART_SIZE_MAX)
		return log_fail(EX_USAGE, "part size %llu is outside 64K..1G", (unsigned long long)*psize);
	*level = o->level ? o->level : 1;
	if (*level < ZSTD_minCLevel() || *level > ZSTD_maxCLevel())
		return log_fail(EX_USAGE, "zstd level %d is outside %d..%d", *level, ZSTD_minCLevel(),
				ZSTD_maxCLevel());
	return 0;
}

int ckpt_push(struct xfer_store *st, const char *dir, const struct ckpt_push_opts *o,
	      struct ckpt_result *r)
{
	struct ckpt_manifest m = { .format = 1 };	/* 2 once a part is not plain zstd */
	struct push ps = { .m = &m };
	char name[256], key[512];
	double t0 = ckpt_now();
	uint64_t refb = 0;
	int rootfd = -1, rc, claimed = 0;

	if ((rc = push_check_opts(dir, o, &ps.psize, &ps.level)) || (rc = push_name(dir, name, sizeof(name))))
		return rc;
	if ((rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return log_fail(EX_NOINPUT, "cannot open folder '%s': %s", dir, strerror(errno));
	ps.portable = o->portable;
	m.level = ps.level;
	m.part_size = ps.psize;
	m.step = o->step >= 0 ? o->step : ckpt_step_from_name(name);
	if (!(m.job = strdup(o->job)) || !(m.name = strdup(name))) {
		rc = log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	if ((rc = ckpt_scan(dir, &m)) || (!o->full && (rc = ckpt_ref_mark(st, &m, rootfd, o->key, &refb))) ||
	    (rc = ckpt_claim(st, o->job, o->ident.host, &m.seq)))
		goto out;
	if (refb)
		log_info("incremental push: %.1f MB unchanged since the previous checkpoint, referenced",
			 refb / 1e6);
	claimed = 1;
	rc = push_commit(st, &ps, rootfd, o, ckpt_nworkers(o->workers));
	if (rc == 0 && r) {
		ckpt_result_fill(r, &m, t0);
		r->ref_bytes = refb;
	}
out:
	if (rc && claimed) {
		ckpt_key(key, sizeof(key), m.job, m.seq, "claim.json");
		xfer_delete(st, key);
	}
	if (rootfd >= 0)
		close(rootfd);
	ckpt_manifest_free(&m);
	return rc;
}
