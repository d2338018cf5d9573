/*
 * backend.h - private to transfer/: the vtable every store backend fills
 * in, and the common store header.  store.c dispatches xfer_* calls to it.
 * Nothing outside transfer/ includes this file.
 */
#ifndef SPOTRUN_XFER_BACKEND_H
#define SPOTRUN_XFER_BACKEND_H

#include "xfer.h"

struct xfer_backend {
	const char *scheme;	/* "file", "s3", "gs", "az" */
	/* url is the whole URL ("s3://b/p"; for file also a bare path); fill
	 * *out with a struct whose first member is struct xfer_store. */
	int (*open)(const char *url, const struct xfer_opts *opts, struct xfer_store **out);
	void (*close)(struct xfer_store *st);
	int (*put)(struct xfer_store *st, const char *key, const void *buf, size_t len, int flags);
	int (*get)(struct xfer_store *st, const char *key, char **buf, size_t *len, size_t max);
	int (*get_range)(struct xfer_store *st, const char *key, uint64_t off, void *buf, size_t len);
	int (*head)(struct xfer_store *st, const char *key, uint64_t *size);
	int (*list)(struct xfer_store *st, const char *prefix, struct xfer_list *out);
	int (*del)(struct xfer_store *st, const char *key);
	/* optional: many keys in one request (S3 DeleteObjects, at most 1000) */
	int (*del_many)(struct xfer_store *st, const char *const *keys, size_t n);
	int (*upload_begin)(struct xfer_store *st, const char *key, struct xfer_upload **out);
	int (*upload_write)(struct xfer_upload *up, const void *buf, size_t len);
	int (*upload_finish)(struct xfer_upload *up);
	void (*upload_abort)(struct xfer_upload *up);
};

/* Common head of every backend's store struct. */
struct xfer_store {
	const struct xfer_backend *be;
	char display[512];	/* scheme://..., no credentials */
	struct xfer_opts opts;
};

/* Common head of every backend's upload struct. */
struct xfer_upload {
	struct xfer_store *st;
};

extern const struct xfer_backend xfer_file_backend;
extern const struct xfer_backend xfer_s3_backend;	/* s3:// and gs:// */
extern const struct xfer_backend xfer_az_backend;

/* Appends one entry (copies key) to a list; 0 or EX_OSERR. */
int xfer_list_add(struct xfer_list *l, const char *key, uint64_t size, double mtime);
/* Sorts a list by key. */
void xfer_list_sort(struct xfer_list *l);

#endif
