/*
 * pool.c - the parallel parts of one object for the cloud backends (see
 * pool.h): the upload slot pool of a streamed multipart/block upload, and
 * the ranged read split into parallel ranged GETs.  Both drive one batch
 * (http.h) in the calling thread; retries, backoff and timeouts happen
 * inside the batch, so a part that comes back here is finished for good.
 * A finished request is matched to its slot by a scan of the slots: there
 * are as many as workers, a handful.
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define POOL_SPLIT_MIN (8U << 20)	/* ranged reads above this go parallel */

/* ---- streamed upload ---- */

static struct xfer_pool_part *pool_slot(const struct xfer_pool *p, int i)
{
	return (struct xfer_pool_part *)(p->slots + (size_t)i * p->ops->slot_size);
}

int xfer_pool_init(struct xfer_pool *p, const struct xfer_pool_ops *ops, void *user, struct xfer_http *h,
		   int workers, size_t part_size, const char *display, const char *key)
{
	p->ops = ops;
	p->user = user;
	p->display = display;
	p->key = key;
	p->part_size = part_size;
	p->nslots = workers;
	p->slots = calloc((size_t)workers, ops->slot_size);
	p->batch = xfer_http_batch_new(h, workers);
	return p->slots && p->batch ? 0 : -1;
}

/* Waits for one part in flight and settles it; 0 when none was. */
static int pool_wait_one(struct xfer_pool *p)
{
	struct xfer_http_req *h = xfer_http_batch_next(p->batch);
	struct xfer_pool_part *s = NULL;
	int rc;

	if (!h)
		return 0;
	for (int i = 0; i < p->nslots && !s; i++)
		if (pool_slot(p, i)->req == h)
			s = pool_slot(p, i);
	if (!s) { /* cannot happen: every request in the batch is a slot's */
		if (!p->rc)
			p->rc = log_fail(EX_SOFTWARE, "%s: a finished upload request has no slot", p->ops->label);
		return 1;
	}
	rc = p->ops->done(p->user, s);
	if (rc && !p->rc)
		p->rc = rc;
	p->ops->release(s);
	s->req = NULL;
	s->len = 0;
	return 1;
}

static int pool_send(struct xfer_pool *p, struct xfer_pool_part *s)
{
	struct xfer_http_req *req = NULL;
	int rc;

	if (p->nparts >= p->ops->max_parts)
		return log_fail(EX_DATAERR, "%s: '%s%s' needs more than %d %ss of %zu bytes", p->ops->label,
				p->display, p->key, p->ops->max_parts, p->ops->noun, p->part_size);
	s->num = ++p->nparts;
	if ((rc = p->ops->send(p->user, s, &req)))
		return rc;
	if (xfer_http_batch_add(p->batch, req))
		return log_fail(EX_OSERR, "%s: out of memory", p->ops->label);
	s->req = req;
	return 0;
}

/* A free buffer to fill, waiting for a part in flight when all are busy. */
static int pool_free_slot(struct xfer_pool *p, struct xfer_pool_part **out)
{
	for (;;) {
		for (int i = 0; i < p->nslots; i++) {
			struct xfer_pool_part *s = pool_slot(p, i);
			if (s->req)
				continue;
			if (!s->buf && !(s->buf = malloc(p->part_size)))
				return log_fail(EX_OSERR, "%s: out of memory for a %zu-byte %s", p->ops->label,
						p->part_size, p->ops->noun);
			s->len = 0;
			*out = s;
			return 0;
		}
		if (!pool_wait_one(p))
			return log_fail(EX_SOFTWARE, "%s: upload slots busy with nothing in flight",
					p->ops->label);
		if (p->rc)
			return p->rc;
	}
}

int xfer_pool_write(struct xfer_pool *p, const void *buf, size_t len)
{
	const char *b = buf;

	while (len && !p->rc) {
		if (!p->cur && (p->rc = pool_free_slot(p, &p->cur)))
			break;
		size_t n = p->part_size - p->cur->len;
		if (n > len)
			n = len;
		memcpy(p->cur->buf + p->cur->len, b, n);
		p->cur->len += n;
		b += n;
		len -= n;
		if (p->cur->len == p->part_size) {
			p->rc = pool_send(p, p->cur);
			p->cur = NULL;
		}
	}
	return p->rc;
}

int xfer_pool_finish(struct xfer_pool *p)
{
	int rc = p->rc;

	if (!rc && p->nparts == 0) /* the whole stream fit in one part: one plain object */
		return p->ops->put(p->user, p->cur ? p->cur->buf : "", p->cur ? p->cur->len : 0);
	if (!rc && p->cur && p->cur->len)
		rc = pool_send(p, p->cur);
	p->cur = NULL;
	while (!rc && pool_wait_one(p))
		rc = p->rc;
	if (!rc)
		rc = p->ops->commit(p->user, p->nparts);
	if (rc)
		xfer_pool_abort(p);
	return rc;
}

void xfer_pool_abort(struct xfer_pool *p)
{
	xfer_http_batch_free(p->batch);
	p->batch = NULL;
	if (p->ops && p->ops->abort)
		p->ops->abort(p->user);
}

void xfer_pool_free(struct xfer_pool *p)
{
	xfer_http_batch_free(p->batch);
	p->batch = NULL;
	for (int i = 0; p->slots && i < p->nslots; i++) {
		struct xfer_pool_part *s = pool_slot(p, i);
		p->ops->release(s);
		free(s->buf);
	}
	free(p->slots);
	p->slots = NULL;
	p->cur = NULL;
}

/* ---- parallel ranged read ---- */

struct pool_read {
	const struct xfer_pool_range_ops *ops;
	void *user;
	const char *display, *key;	/* for messages */
	char *slots;			/* n x ops->slot_size */
	size_t n;
	struct xfer_http_batch *b;
};

static struct xfer_pool_range *pool_range(const struct pool_read *r, size_t i)
{
	return (struct xfer_pool_range *)(r->slots + i * r->ops->slot_size);
}

/* Maps a finished range and checks that it holds exactly what was asked. */
static int pool_range_check(const struct pool_read *r, struct xfer_http_req *h)
{
	struct xfer_pool_range *g = NULL;
	int rc;

	for (size_t i = 0; i < r->n && !g; i++)
		if (pool_range(r, i)->req == h)
			g = pool_range(r, i);
	if (!g) /* cannot happen: every request in the batch is a range's */
		return log_fail(EX_SOFTWARE, "%s: a finished read has no range", r->ops->label);
	if ((rc = r->ops->result(r->user, g)))
		return rc;
	if (h->sink_len != g->len || (h->status == 200 && g->off != 0))
		return log_fail(EX_DATAERR, "%s: short read of '%s%s' at offset %llu: got %zu of %zu bytes",
				r->ops->label, r->display, r->key, (unsigned long long)g->off, h->sink_len,
				g->len);
	return 0;
}

/* Builds and queues range i: chunk bytes at off + i x chunk (the last one shorter). */
static int pool_range_add(struct pool_read *r, size_t i, size_t chunk, uint64_t off, void *buf, size_t len)
{
	struct xfer_pool_range *g = pool_range(r, i);
	struct xfer_http_req *req = NULL;
	int rc;

	g->off = off + i * chunk;
	g->len = i + 1 < r->n ? chunk : len - i * chunk;
	g->buf = (char *)buf + i * chunk;
	snprintf(g->hdr, sizeof(g->hdr), "bytes=%llu-%llu", (unsigned long long)g->off,
		 (unsigned long long)(g->off + g->len - 1));
	if ((rc = r->ops->build(r->user, g, &req)))
		return rc;
	req->sink = g->buf;
	req->sink_cap = g->len;
	if (xfer_http_batch_add(r->b, req))
		return log_fail(EX_OSERR, "%s: out of memory", r->ops->label);
	g->req = req;
	return 0;
}

int xfer_pool_get_range(const struct xfer_pool_range_ops *ops, void *user, struct xfer_http *h, int workers,
			const char *display, const char *key, uint64_t off, void *buf, size_t len)
{
	struct pool_read r = { .ops = ops, .user = user, .display = display, .key = key, .n = 1 };
	size_t chunk = len;
	int rc = 0;

	if (len == 0)
		return 0;
	if (len > POOL_SPLIT_MIN && workers > 1) {
		chunk = (len + (size_t)workers - 1) / (size_t)workers;
		if (chunk < POOL_SPLIT_MIN / 2)
			chunk = POOL_SPLIT_MIN / 2;
		r.n = (len + chunk - 1) / chunk;
	}
	if (!(r.slots = calloc(r.n, ops->slot_size)) || !(r.b = xfer_http_batch_new(h, workers))) {
		rc = log_fail(EX_OSERR, "%s: out of memory", ops->label);
		goto out;
	}
	for (size_t i = 0; i < r.n && !rc; i++)
		rc = pool_range_add(&r, i, chunk, off, buf, len);
	for (struct xfer_http_req *d; !rc && (d = xfer_http_batch_next(r.b));)
		rc = pool_range_check(&r, d);
out:
	xfer_http_batch_free(r.b);
	for (size_t i = 0; r.slots && i < r.n; i++)
		ops->release(pool_range(&r, i));
	free(r.slots);
	return rc;
}
