/*
 * ckpt_fetch.c - the part pipeline of a pull or verify: worker threads take
 * parts in order, read each one's byte range of data.tar.zst, check its
 * SHA-256 against the manifest, and decode it (codec "zstd": one
 * independent zstd frame whose content size must equal the manifest's raw
 * size; codec "bp1": a byte-plane frame, ckpt_codec.c);
 * the consumer gets the raw parts strictly in order.  Part p lives in slot
 * p % nslots, and a worker starts part p only once part p - nslots has been
 * released by the consumer, so at most nslots parts (each a compressed and a
 * raw buffer) exist at once.
 */
#include "ckpt_int.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "log.h"
#include "xfer.h"

struct fetch_slot {
	unsigned char *comp, *raw;
	int done, rc;
};

struct ckpt_fetch {
	struct xfer_store *st;
	const struct ckpt_manifest *m;
	char key[512];
	int nslots, nthreads;
	struct fetch_slot *slots;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t next;		/* next part a worker takes */
	size_t released;	/* parts the consumer is done with */
	size_t cur;		/* parts handed to the consumer */
	int stop;
	EVP_MD *sha256;
	struct ckpt_progress *pg;
};

static int fetch_bp1(const struct ckpt_manifest *m, size_t i, ZSTD_DCtx *dc, const unsigned char *comp,
		     size_t len, unsigned char *raw, unsigned char **scratch)
{
	const struct ckpt_part *p = &m->parts[i];
	const char *why = "";

	if (!*scratch && !(*scratch = ckpt_big_alloc(m->part_size)))
		return log_fail(EX_OSERR, "out of memory");
	if (ckpt_bp_decode(dc, comp, len, raw, p->raw_size, *scratch, &why))
		return log_fail(EX_DATAERR, "part %zu of checkpoint %" PRIu64 " does not decode (bp1): %s", i,
				m->seq, why);
	return 0;
}

int ckpt_part_decode(const struct ckpt_manifest *m, size_t i, ZSTD_DCtx *dc, EVP_MD *sha256,
		     unsigned char *comp, unsigned char *raw, unsigned char **scratch)
{
	const struct ckpt_part *p = &m->parts[i];
	unsigned char sha[CKPT_SHA_LEN];
	unsigned long long fcs;
	size_t n, len = p->size;

	if (!EVP_Digest(comp, p->size, sha, NULL, sha256, NULL))
		return log_fail(EX_SOFTWARE, "sha256 failed");
	if (memcmp(sha, p->sha, CKPT_SHA_LEN))
		return log_fail(EX_DATAERR, "part %zu of checkpoint %" PRIu64 " is corrupt: sha256 mismatch "
			       "(bytes %" PRIu64 "..%" PRIu64 " of its data object)", i, m->seq, p->offset,
			       p->offset + p->size);
	if (m->enc.on && (!m->enc.have_key || ckpt_crypt_part(&m->enc, 0, i, comp, p->size, &len)))
		return log_fail(EX_DATAERR, "part %zu of checkpoint %" PRIu64 " does not decrypt", i, m->seq);
	if (p->codec == CKPT_CODEC_BP1)
		return fetch_bp1(m, i, dc, comp, len, raw, scratch);
	fcs = ZSTD_getFrameContentSize(comp, len);
	if (fcs != p->raw_size || ZSTD_findFrameCompressedSize(comp, len) != len)
		return log_fail(EX_DATAERR, "part %zu of checkpoint %" PRIu64 " is not one zstd frame of "
			       "%" PRIu64 " bytes", i, m->seq, p->raw_size);
	n = ZSTD_decompressDCtx(dc, raw, p->raw_size, comp, len);
	if (ZSTD_isError(n) || n != p->raw_size)
		return log_fail(EX_DATAERR, "part %zu of checkpoint %" PRIu64 " does not decompress: %s", i,
				m->seq, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size");
	return 0;
}

static int fetch_part(struct ckpt_fetch *f, ZSTD_DCtx *dc, size_t i, struct fetch_slot *s,
		      unsigned char **scratch)
{
	const struct ckpt_part *p = &f->m->parts[i];
	int rc;

	if ((rc = xfer_get_range(f->st, f->key, p->offset, s->comp, p->size)))
		return rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "checkpoint data '%s' is missing", f->key) : rc;
	return ckpt_part_decode(f->m, i, dc, f->sha256, s->comp, s->raw, scratch);
}

static void *fetch_worker(void *arg)
{
	struct ckpt_fetch *f = arg;
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	unsigned char *scratch = NULL;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (!f->stop && f->next < f->m->nparts && f->next >= f->released + (size_t)f->nslots)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->stop || f->next >= f->m->nparts)
			break;
		size_t i = f->next++;
		struct fetch_slot *s = &f->slots[i % (size_t)f->nslots];
		pthread_mutex_unlock(&f->mu);
		int rc = dc ? fetch_part(f, dc, i, s, &scratch) : log_fail(EX_OSERR, "out of memory");
		pthread_mutex_lock(&f->mu);
		s->rc = rc;
		s->done = 1;
		pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
	ZSTD_freeDCtx(dc);
	free(scratch);
	return NULL;
}

int ckpt_fetch_next(struct ckpt_fetch *f, const void **data, size_t *len)
{
	struct fetch_slot *s;
	int rc;

	pthread_mutex_lock(&f->mu);
	if (f->cur > f->released) {	/* the consumer is done with the previous part */
		f->slots[f->released % (size_t)f->nslots].done = 0;
		f->released++;
		pthread_cond_broadcast(&f->cv);
	}
	if (f->cur == f->m->nparts) {
		pthread_mutex_unlock(&f->mu);
		return 1;
	}
	s = &f->slots[f->cur % (size_t)f->nslots];
	while (!s->done)
		pthread_cond_wait(&f->cv, &f->mu);
	rc = s->rc;
	pthread_mutex_unlock(&f->mu);
	if (rc)
		return rc;
	*data = s->raw;
	*len = f->m->parts[f->cur].raw_size;
	f->cur++;
	if (f->pg)
		ckpt_progress_update(f->pg, f->m->parts[f->cur - 1].raw_offset + *len);
	return 0;
}

void ckpt_fetch_stop(struct ckpt_fetch *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	for (int i = 0; i < f->nthreads; i++)
		pthread_join(f->threads[i], NULL);
	for (int i = 0; f->slots && i < f->nslots; i++) {
		free(f->slots[i].comp);
		free(f->slots[i].raw);
	}
	free(f->slots);
	free(f->threads);
	EVP_MD_free(f->sha256);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

int ckpt_fetch_start(struct ckpt_fetch **out, struct xfer_store *st, const struct ckpt_manifest *m,
		     int workers, struct ckpt_progress *pg)
{
	struct ckpt_fetch *f = calloc(1, sizeof(*f));
	uint64_t maxraw = 0, maxcomp = 0;
	int rc = 0;

	*out = NULL;
	if (!f)
		return log_fail(EX_OSERR, "out of memory");
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->st = st;
	f->m = m;
	f->pg = pg;
	ckpt_key(f->key, sizeof(f->key), m->job, m->seq, "data.tar.zst");
	for (size_t i = 0; i < m->nparts; i++) {
		maxraw = m->parts[i].raw_size > maxraw ? m->parts[i].raw_size : maxraw;
		maxcomp = m->parts[i].size > maxcomp ? m->parts[i].size : maxcomp;
	}
	workers = ckpt_nworkers(workers);
	if ((size_t)workers > m->nparts)
		workers = m->nparts ? (int)m->nparts : 1;
	f->nslots = workers + 1;
	if (!(f->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
		rc = log_fail(EX_SOFTWARE, "OpenSSL has no SHA256");
		goto out;
	}
	f->slots = calloc((size_t)f->nslots, sizeof(*f->slots));
	f->threads = calloc((size_t)workers, sizeof(*f->threads));
	if (!f->slots || !f->threads) {
		rc = log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	for (int i = 0; i < f->nslots; i++)
		if (!(f->slots[i].comp = ckpt_big_alloc(maxcomp)) || !(f->slots[i].raw = ckpt_big_alloc(maxraw))) {
			rc = log_fail(EX_OSERR, "out of memory");
			goto out;
		}
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&f->threads[i], NULL, fetch_worker, f)) {
			rc = log_fail(EX_OSERR, "cannot start a worker thread");
			goto out;
		}
		f->nthreads++;
	}
out:
	if (rc) {
		ckpt_fetch_stop(f);
		return rc;
	}
	*out = f;
	return 0;
}
