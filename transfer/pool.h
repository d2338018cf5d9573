/*
 * pool.h - private to transfer/: the parallel parts of one object that the
 * cloud backends (s3.c, az.c) share: the upload slot pool behind a
 * streamed multipart/block upload, and the split of a large ranged read
 * into parallel ranged GETs.  The pool owns the buffers, the batch
 * (http.h) and the bookkeeping of what is in flight; the backend says how
 * to build the request of one part and what its answer means, through a
 * small table of callbacks.
 *
 * Slots: the backend's slot struct begins with struct xfer_pool_part (or
 * struct xfer_pool_range) and holds its own request struct after it; the
 * pool allocates ops->slot_size bytes per slot, zeroed, and hands the
 * callbacks a pointer to the head, which the backend casts to its struct.
 *
 * Upload, in call order: xfer_pool_init (inside the backend's upload
 * begin), xfer_pool_write any number of times, then xfer_pool_finish or
 * xfer_pool_abort, then xfer_pool_free.  Memory stays within workers x
 * part_size: a writer that finds every buffer busy waits for a part in
 * flight.  A full buffer is sent as part 1, 2, ... in order; the first
 * failure is sticky (every later write returns it) and stops nothing by
 * itself: finish and abort stop what is still in flight.  A stream that
 * ends before the first part is full is stored by ops->put as one object
 * and never touches the part calls.
 *
 * Messages come from the pool with ops->label as their head ("s3: ...");
 * every EX_* code returned is logged once, by the pool or the callback
 * that produced it.
 */
#ifndef SPOTRUN_XFER_POOL_H
#define SPOTRUN_XFER_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* ---- streamed upload ---- */

struct xfer_pool_part {
	char *buf;			/* part_size bytes, allocated on first use */
	size_t len;			/* bytes filled */
	int num;			/* part number, from 1; set before ops->send */
	struct xfer_http_req *req;	/* the request in flight; NULL: the slot is free */
};

struct xfer_pool_ops {
	const char *label;		/* head of messages: "s3", "az" */
	const char *noun;		/* a part in messages: "part", "block" */
	int max_parts;			/* the service's limit per object */
	size_t slot_size;		/* the backend's slot, headed by struct xfer_pool_part */
	/* Builds the request that stores p->buf[0..p->len) as part p->num
	 * (and, for the first, whatever must come before, e.g. S3's
	 * CreateMultipartUpload); the pool queues it.  0 or EX_* (logged). */
	int (*send)(void *user, struct xfer_pool_part *p, struct xfer_http_req **req);
	/* p's request is finished: map its answer and keep what commit needs
	 * (S3's ETag).  0 or EX_* (logged). */
	int (*done)(void *user, struct xfer_pool_part *p);
	/* Frees what send set up in p's slot: after done, and for every slot
	 * (sent or not, zeroed at first) in xfer_pool_free. */
	void (*release)(struct xfer_pool_part *p);
	/* The whole stream fit in the first part: store it as one object. */
	int (*put)(void *user, const void *buf, size_t len);
	/* Parts 1..nparts are stored: make them the object. */
	int (*commit)(void *user, int nparts);
	/* Optional: after a failure or an abort, nothing in flight any more. */
	void (*abort)(void *user);
};

struct xfer_pool {
	const struct xfer_pool_ops *ops;
	void *user;			/* the callbacks' first argument */
	const char *display, *key;	/* for messages; the backend's, outlive the pool */
	size_t part_size;
	char *slots;			/* nslots x ops->slot_size */
	int nslots;
	struct xfer_pool_part *cur;	/* the slot being filled, or NULL */
	struct xfer_http_batch *batch;	/* at most nslots parts in flight */
	int nparts;			/* parts sent so far */
	int rc;				/* sticky failure */
};

/* Sets up p (zeroed by the caller) for workers buffers of part_size bytes
 * on h; display and key name the object in messages.  0, or -1 when out of
 * memory (not logged: the caller says it once); xfer_pool_free either way. */
int xfer_pool_init(struct xfer_pool *p, const struct xfer_pool_ops *ops, void *user, struct xfer_http *h,
		   int workers, size_t part_size, const char *display, const char *key);
/* Appends to the stream; sends each buffer as it fills.  0 or the sticky EX_*. */
int xfer_pool_write(struct xfer_pool *p, const void *buf, size_t len);
/* Sends the last part, waits for all, then ops->commit (or ops->put when
 * no part was sent).  On failure stops what is in flight and calls
 * ops->abort.  0 or EX_*. */
int xfer_pool_finish(struct xfer_pool *p);
/* Stops every part in flight, then ops->abort. */
void xfer_pool_abort(struct xfer_pool *p);
/* Frees the batch, the slots (ops->release) and the buffers; not p itself. */
void xfer_pool_free(struct xfer_pool *p);

/* ---- parallel ranged read ---- */

struct xfer_pool_range {
	uint64_t off;
	size_t len;
	void *buf;			/* where the bytes go: the sink of req */
	char hdr[64];			/* "bytes=FIRST-LAST", the range header's value */
	struct xfer_http_req *req;	/* queued, or NULL */
};

struct xfer_pool_range_ops {
	const char *label;		/* head of messages */
	size_t slot_size;		/* the backend's slot, headed by struct xfer_pool_range */
	/* Builds the GET of g with g->hdr as its range header; the pool then
	 * points the request's sink at g->buf.  0 or EX_* (logged). */
	int (*build)(void *user, struct xfer_pool_range *g, struct xfer_http_req **req);
	/* Maps g's finished request onto xfer.h's codes (logged). */
	int (*result)(void *user, struct xfer_pool_range *g);
	/* Frees what build set up (also for slots never built, zeroed). */
	void (*release)(struct xfer_pool_range *g);
};

/* Reads len bytes at off into buf: one GET, or above 8 MiB with workers >
 * 1, about one per worker (at least 4 MiB each) in one batch.  A range that
 * came back short, or as the whole object (200) when it starts past 0, is
 * EX_DATAERR.  display and key name the object in messages.  0 (also for
 * len 0, with no request), XFER_NOTFOUND or EX_*; the first failure stops
 * the rest. */
int xfer_pool_get_range(const struct xfer_pool_range_ops *ops, void *user, struct xfer_http *h, int workers,
			const char *display, const char *key, uint64_t off, void *buf, size_t len);

#endif
