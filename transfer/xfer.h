/*
 * xfer.h - the store interface: every backend (file://, s3://, gs://, az://)
 * implements these calls, and nothing above transfer/ knows which one it
 * talks to.  Keys are '/'-separated names relative to the store's prefix
 * (e.g. "ft-7b/ckpt/00000003/manifest.json").
 *
 * Return values: 0 on success; XFER_NOTFOUND or XFER_EXISTS (negative) for
 * the two expected outcomes callers branch on; otherwise a positive EX_*
 * code from sysexits.h, already logged once with a one-line reason:
 * EX_UNAVAILABLE (69) store unreachable after retries, EX_NOPERM (77)
 * credentials refused, EX_IOERR (74) local I/O, EX_USAGE (64) bad URL,
 * EX_CONFIG (78) missing configuration, EX_DATAERR (65) bad data.
 *
 * Thread safety: a store handle may be used from several threads at once
 * (workers call xfer_get_range and xfer_put concurrently).  An upload handle
 * is used by one thread.  Every network call has a timeout and retries with
 * backoff and jitter inside the backend.  Secrets never reach the log.
 */
#ifndef SPOTRUN_XFER_H
#define SPOTRUN_XFER_H

#include <stddef.h>
#include <stdint.h>
#include <sysexits.h>

#define XFER_NOTFOUND (-2)
#define XFER_EXISTS (-3)

struct xfer_store;
struct xfer_upload;

struct xfer_opts {
	const char *endpoint;	/* --endpoint, or NULL */
	int workers;		/* parallel transfers, >= 1 */
	uint64_t part_size;	/* upload part size hint (backends may round up) */
};

struct xfer_entry {
	char *key;		/* relative to the store prefix */
	uint64_t size;
	double mtime;		/* seconds since the epoch, 0 if unknown */
};

struct xfer_list {
	struct xfer_entry *v;
	size_t n, cap;
};

/* Opens url ("file:///path", "s3://bucket/prefix", ...); "none" is not a
 * store.  A bare path is taken as file://.  Does not touch the network. */
int xfer_open(const char *url, const struct xfer_opts *opts, struct xfer_store **out);
void xfer_close(struct xfer_store *st);
/* The store URL for messages (never carries credentials). */
const char *xfer_display(const struct xfer_store *st);
/* Backend kind: "file", "s3", "gs", "az". */
const char *xfer_kind(const struct xfer_store *st);

/* Small whole objects.  flags XFER_CREATE_ONLY: fail with XFER_EXISTS when
 * the key exists (If-None-Match: *, O_EXCL + link): the commit primitive. */
#define XFER_CREATE_ONLY 1
int xfer_put(struct xfer_store *st, const char *key, const void *buf, size_t len, int flags);
/* Reads a whole object of at most max bytes into a malloc'd buffer (NUL-terminated). */
int xfer_get(struct xfer_store *st, const char *key, char **buf, size_t *len, size_t max);
/* Reads exactly len bytes at off into buf. */
int xfer_get_range(struct xfer_store *st, const char *key, uint64_t off, void *buf, size_t len);
int xfer_head(struct xfer_store *st, const char *key, uint64_t *size);
/* Every key under prefix (recursive, sorted by key), paginating as needed. */
int xfer_list(struct xfer_store *st, const char *prefix, struct xfer_list *out);
void xfer_list_free(struct xfer_list *l);
int xfer_delete(struct xfer_store *st, const char *key);

/* A large object written as a sequential stream; the backend cuts it into
 * upload parts and sends them in parallel (bounded: memory stays within
 * workers x part size).  Nothing is visible under key until finish
 * succeeds; abort (or a failed finish) leaves nothing behind. */
int xfer_upload_begin(struct xfer_store *st, const char *key, struct xfer_upload **out);
int xfer_upload_write(struct xfer_upload *up, const void *buf, size_t len);
int xfer_upload_finish(struct xfer_upload *up);	/* frees up */
void xfer_upload_abort(struct xfer_upload *up);	/* frees up; accepts NULL */

#endif
