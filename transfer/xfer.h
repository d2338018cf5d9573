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
/* Deletes many keys (missing ones are not an error): one DeleteObjects
 * request per 1000 keys on S3, one call per key elsewhere. */
int xfer_delete_many(struct xfer_store *st, const char *const *keys, size_t n);

/* A large object written as a sequential stream; the backend cuts it into
 * upload parts and sends them in parallel (bounded: memory stays within
 * workers x part size).  Nothing is visible under key until finish
 * succeeds; abort (or a failed finish) leaves nothing behind. */
int xfer_upload_begin(struct xfer_store *st, const char *key, struct xfer_upload **out);
int xfer_upload_write(struct xfer_upload *up, const void *buf, size_t len);
int xfer_upload_finish(struct xfer_upload *up);	/* frees up */
void xfer_upload_abort(struct xfer_upload *up);	/* frees up; accepts NULL */

/* ==== price catalog and transfer planner [6/7 migration] ================
 * catalog.c: a versioned JSON price catalog (examples/catalog.json, see
 * docs/migration.md) read strictly: any error is EX_CONFIG (78), logged
 * with the file name and the reason.  Figures are data, never code.
 * plan.c: pure functions (no I/O, no logging) that price moving a job's
 * checkpoint to a target and rank targets by total cost. */

struct xfer_place {
	char provider[32];	/* "aws", "gcp", "azure", ..., "none"; "" unknown */
	char region[64];	/* "" unknown */
};

struct xfer_cat_machine {
	char type[96];		/* "p4d.24xlarge" */
	char gpu[64];		/* "A100-40GB" */
	int gpus;
	double spot, on_demand;	/* USD per hour; spot < 0: not listed */
	int estimate;		/* the figures are estimates, not list prices */
	char source[64];	/* id in the catalog's sources */
};

struct xfer_cat_region {
	struct xfer_place place;
	double internet_per_gb, cross_region_per_gb, same_region_per_gb;
	double store_mb_s;	/* typical object store throughput, MB/s */
	double interrupt_per_h;	/* expected spot interruptions per hour */
	char source[64];
	struct xfer_cat_machine *m;
	size_t nm;
};

struct xfer_cat_path {		/* a free or discounted path between two places */
	struct xfer_place from, to;	/* region "" = any region of the provider */
	double per_gb;
	char note[160];
};

struct xfer_catalog {
	char file[512];		/* for messages */
	char as_of[32];
	double restore_lost_hours;	/* lost work per interruption when the job's
					 * checkpoint interval is unknown */
	struct xfer_cat_region *r;
	size_t nr;
	struct xfer_cat_path *p;
	size_t np;
};

/* Parses catalog text; name is used in messages.  0 or EX_CONFIG (logged). */
int xfer_catalog_parse(const char *text, size_t len, const char *name, struct xfer_catalog **out);
/* path NULL: the default (xfer_catalog_default_path). 0 or EX_CONFIG. */
int xfer_catalog_load(const char *path, struct xfer_catalog **out);
void xfer_catalog_free(struct xfer_catalog *c);	/* accepts NULL */
/* dirname(/proc/self/exe)/examples/catalog.json, then
 * /usr/share/spotrun/catalog.json: the first that exists, else NULL.
 * Writes into buf. */
const char *xfer_catalog_default_path(char *buf, size_t n);
/* Region entry of a place (region "" matches the provider's first), or NULL. */
const struct xfer_cat_region *xfer_catalog_region(const struct xfer_catalog *c, const struct xfer_place *p);
/* "PROVIDER:REGION[:TYPE]" -> place and type ("" when absent): 0 or -1. */
int xfer_place_parse(const char *s, struct xfer_place *p, char *type, size_t tn);
/* Store URL -> provider of the service holding it: s3 -> aws, gs -> gcp,
 * az -> azure, file/bare path -> none. */
const char *xfer_url_provider(const char *url);

/* Egress price per GB of moving bytes from place `from` to place `to`:
 * a named path first, then same place (same provider and region, or an
 * unknown region) -> same_region, same provider -> cross_region, else the
 * source's internet price; from "none" or "" costs nothing (ingress is
 * free).  0, or EX_CONFIG when the catalog lacks the source's entry (why
 * then names it).  why: one short phrase on the rule used. */
int xfer_plan_egress(const struct xfer_catalog *c, const struct xfer_place *from,
		     const struct xfer_place *to, double *per_gb, char *why, size_t wn);
/* 1 when both places are the same (region "" on either side matches). */
int xfer_place_same(const struct xfer_place *a, const struct xfer_place *b);

struct xfer_plan_in {
	uint64_t bytes;		/* stored bytes of the newest checkpoint */
	int same_place;		/* target is where the store is: nothing moves */
	double egress_per_gb;
	double mb_s;		/* transfer throughput MB/s (> 0) */
	double hourly;		/* USD per hour of the target machine */
	double hours;		/* remaining run time */
	double interrupt_per_h;	/* target's interruptions per hour */
	double lost_hours;	/* work lost per interruption (half the checkpoint interval) */
};

struct xfer_plan_out {
	uint64_t move_bytes;
	double transfer_s, egress_usd;
	double restore_s;	/* one restore on this target */
	double interruptions;	/* expected count over the run */
	double overhead_h, overhead_usd;	/* preemption overhead */
	double compute_usd;	/* hourly x (hours + transfer) */
	double total_usd;
};

/* The model (docs/migration.md): move = same_place ? 0 : bytes;
 * transfer_s = move / (mb_s x 1e6); egress = move / 1e9 x egress_per_gb;
 * restore_s = bytes / (mb_s x 1e6); interruptions = interrupt_per_h x hours;
 * overhead_h = interruptions x (restore_s / 3600 + lost_hours);
 * compute = hourly x (hours + transfer_s / 3600); overhead_usd =
 * hourly x overhead_h; total = egress + compute + overhead_usd. */
void xfer_plan_compute(const struct xfer_plan_in *in, struct xfer_plan_out *out);

/* Remaining hours from progress: steps/hour between the first and the
 * newest checkpoint (step, time); (total - newest) / rate.  -1 when it
 * cannot be known (fewer than 2 points, no progress, total unknown). */
double xfer_plan_hours_left(long long first_step, double first_t, long long last_step, double last_t,
			    long long total_steps);
/* ==== end of the catalog and planner section =========================== */

/* ==== server-side copy [6/7 migration] ================================== */
#define XFER_NOCOPY (-4)
/* Copies src's object skey to dst's dkey inside the service (S3
 * CopyObject), when both stores are the same service at the same endpoint
 * (same backend, scheme and origin).  XFER_NOCOPY when they are not (the
 * caller streams instead); else 0, XFER_NOTFOUND or an EX_* code (logged). */
int xfer_copy(struct xfer_store *dst, const char *dkey, struct xfer_store *src, const char *skey,
	      uint64_t size);
/* ==== end of server-side copy =========================================== */

#endif
