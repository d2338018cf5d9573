/*
 * store.c - the store interface's front: parses the URL scheme, picks the
 * backend and forwards every call to its vtable (see backend.h).  Backends
 * not built in yet answer with a one-line error instead of a crash.
 */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"


static const struct xfer_backend *xfer_pick(const char *scheme, size_t n)
{
	const struct xfer_backend *all[] = { &xfer_file_backend, &xfer_s3_backend,
					     &xfer_s3_backend, &xfer_az_backend };
	const char *names[] = { "file", "s3", "gs", "az" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && !strncmp(scheme, names[i], n))
			return all[i];
	return NULL;
}

int xfer_open(const char *url, const struct xfer_opts *opts, struct xfer_store **out)
{
	const char *sep = strstr(url, "://");
	const struct xfer_backend *be = &xfer_file_backend;
	int rc;

	*out = NULL;
	if (!strcmp(url, "none") || !*url)
		return log_fail(EX_USAGE, "no store configured (--store)");
	if (sep) /* else a bare path: a local folder store */
		be = xfer_pick(url, (size_t)(sep - url));
	if (!be) {
		int known = !sep || !strncmp(url, "file://", 7) || !strncmp(url, "s3://", 5) ||
			    !strncmp(url, "gs://", 5) || !strncmp(url, "az://", 5);
		if (known)
			return log_fail(EX_USAGE, "store '%s' is not available in this build", url);
		return log_fail(EX_USAGE, "unknown store URL '%s' (use file://, s3://, gs://, az://)",
				url);
	}
	rc = be->open(url, opts, out);
	if (rc == 0 && *out)
		(*out)->be = be;
	return rc;
}

void xfer_close(struct xfer_store *st)
{
	if (st)
		st->be->close(st);
}

const char *xfer_display(const struct xfer_store *st) { return st->display; }
const char *xfer_kind(const struct xfer_store *st) { return st->be->scheme; }

int xfer_put(struct xfer_store *st, const char *key, const void *buf, size_t len, int flags)
{
	return st->be->put(st, key, buf, len, flags);
}

int xfer_get(struct xfer_store *st, const char *key, char **buf, size_t *len, size_t max)
{
	return st->be->get(st, key, buf, len, max);
}

int xfer_get_range(struct xfer_store *st, const char *key, uint64_t off, void *buf, size_t len)
{
	return st->be->get_range(st, key, off, buf, len);
}

int xfer_head(struct xfer_store *st, const char *key, uint64_t *size)
{
	return st->be->head(st, key, size);
}

int xfer_list(struct xfer_store *st, const char *prefix, struct xfer_list *out)
{
	memset(out, 0, sizeof(*out));
	return st->be->list(st, prefix, out);
}

void xfer_list_free(struct xfer_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].key);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int xfer_delete(struct xfer_store *st, const char *key)
{
	return st->be->del(st, key);
}

int xfer_delete_many(struct xfer_store *st, const char *const *keys, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i += 1000) {
		size_t k = n - i < 1000 ? n - i : 1000;
		if (st->be->del_many) {
			rc = st->be->del_many(st, keys + i, k);
			continue;
		}
		for (size_t j = i; j < i + k && !rc; j++) {
			rc = st->be->del(st, keys[j]);
			if (rc == XFER_NOTFOUND)
				rc = 0;
		}
	}
	return rc;
}

int xfer_upload_begin(struct xfer_store *st, const char *key, struct xfer_upload **out)
{
	int rc = st->be->upload_begin(st, key, out);
	if (rc == 0)
		(*out)->st = st;
	return rc;
}

int xfer_upload_write(struct xfer_upload *up, const void *buf, size_t len)
{
	return up->st->be->upload_write(up, buf, len);
}

int xfer_upload_finish(struct xfer_upload *up)
{
	return up->st->be->upload_finish(up);
}

void xfer_upload_abort(struct xfer_upload *up)
{
	if (up)
		up->st->be->upload_abort(up);
}

int xfer_list_add(struct xfer_list *l, const char *key, uint64_t size, double mtime)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct xfer_entry *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return EX_OSERR;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n].key = strdup(key)))
		return EX_OSERR;
	l->v[l->n].size = size;
	l->v[l->n].mtime = mtime;
	l->n++;
	return 0;
}

static int xfer_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct xfer_entry *)a)->key, ((const struct xfer_entry *)b)->key);
}

void xfer_list_sort(struct xfer_list *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(l->v[0]), xfer_entry_cmp);
}
