/*
 * az.c - the Azure Blob store backend (az://account/container/prefix).
 *
 * Each store call builds one struct az_req: the encoded URL path, the
 * query (decoded values), the extra headers, and a fresh x-ms-date for
 * every attempt: http.c calls az_prepare() before each try, which signs
 * with SharedKey (azkey.c) or, with a SAS token, adds nothing (the token
 * rides in the URL).  Answers map onto xfer.h's codes in az_result(): 404
 * -> XFER_NOTFOUND (ContainerNotFound -> EX_CONFIG), 409
 * BlobAlreadyExists / 412 on a create-only put -> XFER_EXISTS, 401/403 ->
 * EX_NOPERM with Azure's error code, transport errors or 5xx after the
 * retries -> EX_UNAVAILABLE, other answers -> EX_PROTOCOL.  The error code
 * comes from the <Error><Code> body (expat, awsxml.c) or, for HEAD, from
 * the x-ms-error-code header.
 *
 * Uploads: the stream is cut into blocks of max(opts.part_size, 4 MiB) held
 * in opts.workers buffers; a full buffer becomes a Put Block in the
 * upload's batch (one curl multi handle, at most `workers` in flight) and
 * the writer waits for a free buffer, so memory stays within workers x
 * block size.  Put Block List commits the blob at finish; a stream that
 * ends before the first block is full is one Put Blob.  Nothing needs
 * cleaning on failure or abort: uncommitted blocks are invisible and Azure
 * discards them by itself (after a week, or when the blob is next
 * committed).  Block ids are "sr" + a random tag per upload + the block
 * number, all the same length as Azure requires.  Ranged reads over 8 MiB
 * are split into parallel ranged GETs in one batch.  The slot pool and the
 * split are pool.c's, shared with s3.c; this file says how to make and read
 * one block's request.
 *
 * Endpoint: --endpoint, else the connection string's BlobEndpoint, else
 * PROTOCOL://ACCOUNT.blob.SUFFIX (https, core.windows.net).  The endpoint
 * may carry a path (Azurite: http://127.0.0.1:10000/devstoreaccount1): it
 * prefixes every request path, and so the SharedKey canonicalized resource
 * (/account/devstoreaccount1/container/blob).  SPOTRUN_AZ_LIST_MAX_RESULTS
 * sets List Blobs' page size (tests use 2).
 *
 * Secrets: the account key and SAS token stay in the store struct; URLs
 * given to the log have the SAS signature replaced by "REDACTED".
 * Known limits: at most 50000 blocks per blob (50000 x block size); the
 * backend never creates containers.
 */
#include "backend.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "awsxml.h"
#include "azkey.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "sigv4.h"

#define AZ_VERSION "2021-08-06"
#define AZ_MIN_BLOCK (4ULL << 20)
#define AZ_MAX_BLOCKS 50000
#define AZ_XML_MAX (16U << 20)		/* largest XML answer we read */
#define AZ_MAX_Q 6
#define AZ_MAX_H 6
#define AZ_FAIL_FMT "az: cannot %s '%s%s': HTTP %ld%s"

struct az_store {
	struct xfer_store base;
	char *account;
	char *container;
	char *prefix;			/* "" or ending in '/' */
	char *origin;			/* scheme://host[:port], no trailing '/' */
	char *base_path;		/* endpoint path: "" or "/x" without trailing '/' */
	char *key;			/* Base64 account key (secret), or NULL */
	char *sas;			/* SAS token without '?' (secret), or NULL */
	char *sas_log;			/* the token with its signature redacted */
	int workers;
	size_t block_size;
	long list_max;			/* 0: server default */
	struct xfer_http *http;
};

struct az_req {
	struct xfer_http_req http;
	struct az_store *st;
	char *path;			/* encoded URL path */
	char *url;
	char *log_url;
	struct xfer_az_kv q[AZ_MAX_Q];
	size_t nq;
	struct xfer_az_kv h[AZ_MAX_H];	/* extra headers, signed too */
	size_t nh;
};

/* ---- requests ---- */

static void az_header(struct curl_slist **hl, const char *name, const char *value)
{
	char line[2048];

	snprintf(line, sizeof(line), "%s: %s", name, value);
	*hl = curl_slist_append(*hl, line);
	OPENSSL_cleanse(line, sizeof(line));
}

/* Before each attempt: x-ms-date afresh, then the SharedKey signature. */
static int az_prepare(struct xfer_http_req *hr)
{
	struct az_req *r = hr->user;
	struct az_store *st = r->st;
	struct xfer_az_kv h[AZ_MAX_H + 3];
	struct xfer_az_out o;
	char date[40], clen[24];
	size_t n = 0, nsent;

	xfer_az_rfc1123(time(NULL), date, sizeof(date));
	h[n++] = (struct xfer_az_kv){ "x-ms-date", date };
	h[n++] = (struct xfer_az_kv){ "x-ms-version", AZ_VERSION };
	for (size_t i = 0; i < r->nh; i++)
		h[n++] = r->h[i];
	nsent = n;
	if (!strcmp(hr->method, "PUT")) { /* curl sends it; signed, not added again */
		snprintf(clen, sizeof(clen), "%zu", hr->body_len);
		h[n++] = (struct xfer_az_kv){ "Content-Length", clen };
	}
	for (size_t i = 0; i < nsent; i++)
		az_header(&hr->headers, h[i].name, h[i].value);
	if (!st->key)
		return 0;
	struct xfer_az_req sr = { hr->method, st->account, r->path, r->q, r->nq, h, n, st->key };
	if (xfer_az_sign(&sr, &o))
		return log_fail(EX_SOFTWARE, "az: cannot sign a request");
	az_header(&hr->headers, "Authorization", o.authorization);
	OPENSSL_cleanse(o.signature, sizeof(o.signature));
	xfer_az_out_free(&o);
	return 0;
}

static void az_req_free(struct az_req *r)
{
	xfer_http_req_cleanup(&r->http);
	free(r->path);
	free(r->url);
	free(r->log_url);
	r->path = r->url = r->log_url = NULL;
}

static char *az_full_key(const struct az_store *st, const char *key)
{
	char *k = NULL;

	if (asprintf(&k, "%s%s", st->prefix, key) < 0)
		return NULL;
	return k;
}

/* The URL (with the SAS token) and its loggable twin. */
static int az_req_urls(struct az_req *r, const char *query)
{
	struct az_store *st = r->st;
	const char *sep = *query ? "?" : "", *amp = *query ? "&" : "?";

	if (asprintf(&r->url, "%s%s%s%s%s%s", st->origin, r->path, sep, query, st->sas ? amp : "",
		     st->sas ? st->sas : "") < 0)
		r->url = NULL;
	if (asprintf(&r->log_url, "%s%s%s%s%s%s", st->origin, r->path, sep, query, st->sas ? amp : "",
		     st->sas ? st->sas_log : "") < 0)
		r->log_url = NULL;
	return r->url && r->log_url ? 0 : -1;
}

/* Sets up r for method on full_key ("" = the container) with the query
 * already in r->q.  0 or an EX_* code (logged). */
static int az_req_init(struct az_store *st, struct az_req *r, const char *method, const char *full_key)
{
	char *enc = xfer_sigv4_uri_encode(full_key, 1), *query = NULL;
	struct xfer_sigv4_kv q[AZ_MAX_Q];
	int rc = 0;

	for (size_t i = 0; i < r->nq; i++)
		q[i] = (struct xfer_sigv4_kv){ r->q[i].name, r->q[i].value };

	r->st = st;
	r->http.method = method;
	r->http.prepare = az_prepare;
	r->http.user = r;
	r->http.keep_header = "x-ms-error-code";
	if (!enc || !(query = xfer_sigv4_query(q, r->nq)) ||
	    asprintf(&r->path, "%s/%s%s%s", st->base_path, st->container, *full_key ? "/" : "", enc) < 0 ||
	    az_req_urls(r, query))
		rc = log_fail(EX_OSERR, "az: out of memory");
	r->http.url = r->url;
	r->http.log_url = r->log_url;
	free(enc);
	free(query);
	return rc;
}

static void az_add_query(struct az_req *r, const char *name, const char *value)
{
	r->q[r->nq++] = (struct xfer_az_kv){ name, value };
}

static void az_add_header(struct az_req *r, const char *name, const char *value)
{
	r->h[r->nh++] = (struct xfer_az_kv){ name, value };
}

/* Azure's error code (body or x-ms-error-code header) and the first line
 * of its message, as ": Code: message" for the one log line. */
static void az_error(const struct xfer_http_req *h, char *code, size_t ncode, char *detail, size_t n)
{
	struct xfer_awsxml_error e;

	detail[0] = '\0';
	if (xfer_awsxml_error(h->resp, h->resp_len, &e)) {
		memset(&e, 0, sizeof(e));
		snprintf(e.code, sizeof(e.code), "%.63s", h->kept);
	}
	e.message[strcspn(e.message, "\r\n")] = '\0';
	snprintf(code, ncode, "%s", e.code);
	if (e.code[0])
		snprintf(detail, n, ": %s%s%s", e.code, e.message[0] ? ": " : "", e.message);
}

/* Maps a finished request onto xfer.h's codes and logs one line when it is
 * an error.  create_only: 412, and 409 BlobAlreadyExists, mean XFER_EXISTS. */
static int az_result(struct az_req *r, const char *op, const char *key, int create_only)
{
	struct az_store *st = r->st;
	struct xfer_http_req *h = &r->http;
	char why[400], code[64], detail[400];
	const char *d = st->base.display;

	if (h->prep_rc)
		return h->prep_rc;
	if (h->too_big)
		return log_fail(EX_DATAERR, "az: cannot %s '%s%s': object larger than expected", op, d, key);
	if (h->cc != CURLE_OK)
		return log_fail(EX_UNAVAILABLE, "az: cannot %s '%s%s': %s unreachable: %s (after %d tries)",
				op, d, key, st->origin, xfer_http_reason(h, why, sizeof(why)), h->attempts);
	if (h->status >= 200 && h->status < 300)
		return 0;
	az_error(h, code, sizeof(code), detail, sizeof(detail));
	if (h->status == 404 && !strcmp(code, "ContainerNotFound"))
		return log_fail(EX_CONFIG, "az: cannot %s '%s%s': container '%s' not found", op, d, key,
				st->container);
	if (h->status == 404)
		return XFER_NOTFOUND;
	if (create_only && (h->status == 412 ||
			    (h->status == 409 && (!code[0] || !strcmp(code, "BlobAlreadyExists")))))
		return XFER_EXISTS;
	if (h->status == 401 || h->status == 403)
		return log_fail(EX_NOPERM, AZ_FAIL_FMT, op, d, key, h->status, detail);
	if (h->status >= 500 || h->status == 429)
		return log_fail(EX_UNAVAILABLE, "az: cannot %s '%s%s': HTTP %ld%s (after %d tries)", op, d,
				key, h->status, detail, h->attempts);
	if (h->status == 416)
		return log_fail(EX_DATAERR, "az: cannot %s '%s%s': range outside the object", op, d, key);
	return log_fail(EX_PROTOCOL, AZ_FAIL_FMT, op, d, key, h->status, detail);
}

static int az_run(struct az_req *r, const char *op, const char *key, int create_only)
{
	xfer_http_perform(r->st->http, &r->http);
	return az_result(r, op, key, create_only);
}

/* ---- small objects ---- */

/* Runs method on key (relative to the prefix) with r's query, headers and
 * body already set; the answer stays in r for the caller, who frees r. */
static int az_call(struct az_store *st, struct az_req *r, const char *method, const char *key, const char *op,
		   int create_only)
{
	char *fk = az_full_key(st, key);
	int rc;

	if (!fk)
		return log_fail(EX_OSERR, "az: out of memory");
	if (!(rc = az_req_init(st, r, method, fk)))
		rc = az_run(r, op, key, create_only);
	free(fk);
	return rc;
}

static int az_put(struct xfer_store *xs, const char *key, const void *buf, size_t len, int flags)
{
	struct az_req r = { 0 };
	int rc;

	az_add_header(&r, "x-ms-blob-type", "BlockBlob");
	if (flags & XFER_CREATE_ONLY)
		az_add_header(&r, "If-None-Match", "*");
	r.http.body = buf ? buf : "";
	r.http.body_len = len;
	rc = az_call((struct az_store *)xs, &r, "PUT", key, "put", flags & XFER_CREATE_ONLY);
	az_req_free(&r);
	return rc;
}

static int az_get(struct xfer_store *xs, const char *key, char **buf, size_t *len, size_t max)
{
	struct az_req r = { 0 };
	int rc;

	*buf = NULL;
	*len = 0;
	r.http.max_body = max;
	if (!(rc = az_call((struct az_store *)xs, &r, "GET", key, "get", 0))) {
		*buf = r.http.resp ? r.http.resp : calloc(1, 1);
		*len = r.http.resp_len;
		r.http.resp = NULL;
		if (!*buf)
			rc = log_fail(EX_OSERR, "az: out of memory");
	}
	az_req_free(&r);
	return rc;
}

static int az_head(struct xfer_store *xs, const char *key, uint64_t *size)
{
	struct az_req r = { 0 };
	int rc;

	if (!(rc = az_call((struct az_store *)xs, &r, "HEAD", key, "head", 0))) {
		if (r.http.content_length < 0)
			rc = log_fail(EX_PROTOCOL, "az: head '%s%s': no Content-Length", xs->display, key);
		else if (size)
			*size = (uint64_t)r.http.content_length;
	}
	az_req_free(&r);
	return rc;
}

static int az_del(struct xfer_store *xs, const char *key)
{
	struct az_req r = { 0 };
	int rc = az_call((struct az_store *)xs, &r, "DELETE", key, "delete", 0);

	az_req_free(&r);
	return rc;
}

/* ---- ranged reads ---- */

struct az_range {
	struct xfer_pool_range g;	/* first: the pool's view of the slot */
	struct az_req r;
};

struct az_read {			/* the range callbacks' context */
	struct az_store *st;
	const char *key;
	char *full;
};

static int az_range_build(void *user, struct xfer_pool_range *g, struct xfer_http_req **req)
{
	struct az_read *rd = user;
	struct az_range *ar = (struct az_range *)g;
	int rc;

	az_add_header(&ar->r, "x-ms-range", g->hdr);
	if ((rc = az_req_init(rd->st, &ar->r, "GET", rd->full)))
		return rc;
	*req = &ar->r.http;
	return 0;
}

static int az_range_result(void *user, struct xfer_pool_range *g)
{
	return az_result(&((struct az_range *)g)->r, "read", ((struct az_read *)user)->key, 0);
}

static void az_range_release(struct xfer_pool_range *g)
{
	az_req_free(&((struct az_range *)g)->r);
}

static const struct xfer_pool_range_ops az_range_ops = {
	.label = "az",
	.slot_size = sizeof(struct az_range),
	.build = az_range_build,
	.result = az_range_result,
	.release = az_range_release,
};

static int az_get_range(struct xfer_store *xs, const char *key, uint64_t off, void *buf, size_t len)
{
	struct az_store *st = (struct az_store *)xs;
	struct az_read rd = { st, key, az_full_key(st, key) };
	int rc;

	if (!rd.full)
		return log_fail(EX_OSERR, "az: out of memory");
	rc = xfer_pool_get_range(&az_range_ops, &rd, st->http, st->workers, st->base.display, key, off, buf,
				 len);
	free(rd.full);
	return rc;
}

/* ---- listing ---- */

struct az_page {
	struct az_store *st;
	struct xfer_list *out;
	char name[2048];
	uint64_t size;
	double mtime;
	char *next_marker;
	int rc;
};

/* "Mon, 30 Nov 2026 09:44:24 GMT" -> seconds since the epoch, 0 if not that. */
static double az_parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);

	return end && !*end ? (double)timegm(&tm) : 0;
}

static int az_page_cb(void *ud, const char *path, const char *text)
{
	struct az_page *p = ud;
	size_t plen = strlen(p->st->prefix);

	if (!strcmp(path, "EnumerationResults/Blobs/Blob/Name")) {
		snprintf(p->name, sizeof(p->name), "%s", text);
		p->size = 0;
		p->mtime = 0;
	} else if (!strcmp(path, "EnumerationResults/Blobs/Blob/Properties/Content-Length")) {
		p->size = strtoull(text, NULL, 10);
	} else if (!strcmp(path, "EnumerationResults/Blobs/Blob/Properties/Last-Modified")) {
		p->mtime = az_parse_time(text);
	} else if (!strcmp(path, "EnumerationResults/Blobs/Blob")) {
		if (strncmp(p->name, p->st->prefix, plen) || !p->name[plen])
			return 0; /* not under the store prefix: cannot happen, skip */
		if ((p->rc = xfer_list_add(p->out, p->name + plen, p->size, p->mtime)))
			return 1;
	} else if (!strcmp(path, "EnumerationResults/NextMarker") && *text) {
		free(p->next_marker);
		if (!(p->next_marker = strdup(text)))
			return p->rc = EX_OSERR;
	}
	return 0;
}

/* One List Blobs page; on success *marker is the next page's marker or NULL. */
static int az_list_page(struct az_store *st, const char *full_prefix, char **marker, struct xfer_list *out)
{
	struct az_req r = { 0 };
	struct az_page p = { .st = st, .out = out };
	char maxres[24];
	int rc;

	az_add_query(&r, "restype", "container");
	az_add_query(&r, "comp", "list");
	if (*full_prefix)
		az_add_query(&r, "prefix", full_prefix);
	if (st->list_max > 0) {
		snprintf(maxres, sizeof(maxres), "%ld", st->list_max);
		az_add_query(&r, "maxresults", maxres);
	}
	if (*marker)
		az_add_query(&r, "marker", *marker);
	r.http.max_body = AZ_XML_MAX;
	if ((rc = az_req_init(st, &r, "GET", "")) || (rc = az_run(&r, "list", full_prefix, 0)))
		goto out;
	if (xfer_awsxml_parse(r.http.resp ? r.http.resp : "", r.http.resp_len, az_page_cb, &p)) {
		rc = p.rc ? log_fail(EX_OSERR, "az: out of memory") :
			    log_fail(EX_PROTOCOL, "az: cannot list '%s': malformed List Blobs answer",
				     st->base.display);
		goto out;
	}
	free(*marker);
	*marker = p.next_marker;
	p.next_marker = NULL;
out:
	free(p.next_marker);
	az_req_free(&r);
	return rc;
}

static int az_list(struct xfer_store *xs, const char *prefix, struct xfer_list *out)
{
	struct az_store *st = (struct az_store *)xs;
	char *fp = az_full_key(st, prefix ? prefix : ""), *marker = NULL;
	int rc = 0, pages = 0;

	if (!fp)
		return log_fail(EX_OSERR, "az: out of memory");
	do {
		rc = az_list_page(st, fp, &marker, out);
		pages++;
	} while (!rc && marker);
	free(marker);
	free(fp);
	if (rc) {
		xfer_list_free(out);
		return rc == XFER_NOTFOUND ? log_fail(EX_CONFIG, "az: container of '%s' not found",
						      st->base.display) : rc;
	}
	log_debug("az: listed %zu keys in %d pages", out->n, pages);
	xfer_list_sort(out);
	return 0;
}

/* ---- block upload ---- */

struct az_block {
	struct xfer_pool_part p;	/* first: the pool's view of the slot */
	struct az_req r;
	char id[32];
	char md5[32];
};

struct az_upload {
	struct xfer_upload base;
	struct xfer_pool pool;		/* buffers, blocks in flight, sticky failure */
	struct az_store *st;
	char *key;			/* relative, for messages */
	char *full;
	unsigned int tag;		/* random, part of every block id */
};

/* Block id of block num: Base64 of 18 bytes ("sr" + 8 hex + 8 digits), so
 * every id has the same length and no padding. */
static void az_block_id(const struct az_upload *up, int num, char *out)
{
	char raw[32];

	snprintf(raw, sizeof(raw), "sr%08x%08u", up->tag, (unsigned int)num % 100000000u);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, 18);
}

/* The Put Block of one full buffer. */
static int az_block_send(void *user, struct xfer_pool_part *pp, struct xfer_http_req **req)
{
	struct az_upload *up = user;
	struct az_block *p = (struct az_block *)pp;
	int rc;

	memset(&p->r, 0, sizeof(p->r));
	az_block_id(up, pp->num, p->id);
	az_add_query(&p->r, "comp", "block");
	az_add_query(&p->r, "blockid", p->id);
	/* the service checks the block against its MD5 (Md5Mismatch, 400) */
	xfer_http_md5_b64(pp->buf, pp->len, p->md5);
	az_add_header(&p->r, "Content-MD5", p->md5);
	p->r.http.body = pp->buf;
	p->r.http.body_len = pp->len;
	if ((rc = az_req_init(up->st, &p->r, "PUT", up->full)))
		return rc;
	*req = &p->r.http;
	return 0;
}

static int az_block_done(void *user, struct xfer_pool_part *pp)
{
	struct az_upload *up = user;

	return az_result(&((struct az_block *)pp)->r, "upload a block of", up->key, 0);
}

static void az_block_release(struct xfer_pool_part *pp)
{
	az_req_free(&((struct az_block *)pp)->r);
}

/* The stream fit in one block: one Put Blob. */
static int az_upload_put(void *user, const void *buf, size_t len)
{
	struct az_upload *up = user;

	return az_put(&up->st->base, up->key, buf, len, 0);
}

/* The Put Block List body: every block id (Base64, nothing to escape). */
static char *az_blocklist_body(struct az_upload *up, int nblocks, size_t *len)
{
	char *out = NULL, id[32];
	FILE *f = open_memstream(&out, len);

	if (!f)
		return NULL;
	fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>", f);
	for (int i = 1; i <= nblocks; i++) {
		az_block_id(up, i, id);
		fprintf(f, "<Latest>%s</Latest>", id);
	}
	fputs("</BlockList>", f);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* Put Block List.  On failure the uploaded blocks stay uncommitted:
 * invisible, and discarded by Azure itself; nothing to clean up. */
static int az_commit_blocks(void *user, int nblocks)
{
	struct az_upload *up = user;
	struct az_req r = { 0 };
	size_t len = 0;
	char *body = az_blocklist_body(up, nblocks, &len);
	int rc;

	if (!body)
		return log_fail(EX_OSERR, "az: out of memory");
	az_add_query(&r, "comp", "blocklist");
	r.http.body = body;
	r.http.body_len = len;
	if (!(rc = az_req_init(up->st, &r, "PUT", up->full)))
		rc = az_run(&r, "commit the blocks of", up->key, 0);
	az_req_free(&r);
	free(body);
	return rc;
}

static const struct xfer_pool_ops az_pool_ops = {
	.label = "az",
	.noun = "block",
	.max_parts = AZ_MAX_BLOCKS,
	.slot_size = sizeof(struct az_block),
	.send = az_block_send,
	.done = az_block_done,
	.release = az_block_release,
	.put = az_upload_put,
	.commit = az_commit_blocks,
	.abort = NULL,			/* uncommitted blocks expire by themselves */
};

static void az_upload_free(struct az_upload *up)
{
	xfer_pool_free(&up->pool);
	free(up->key);
	free(up->full);
	free(up);
}

static int az_upload_begin(struct xfer_store *xs, const char *key, struct xfer_upload **out)
{
	struct az_store *st = (struct az_store *)xs;
	struct az_upload *up = calloc(1, sizeof(*up));

	*out = NULL;
	if (!up)
		return log_fail(EX_OSERR, "az: out of memory");
	up->st = st;
	if (RAND_bytes((unsigned char *)&up->tag, sizeof(up->tag)) != 1)
		up->tag = (unsigned int)xfer_http_now_ms() ^ (unsigned int)(uintptr_t)up;
	up->key = strdup(key);
	up->full = az_full_key(st, key);
	if (!up->key || !up->full ||
	    xfer_pool_init(&up->pool, &az_pool_ops, up, st->http, st->workers, st->block_size, st->base.display,
			   up->key)) {
		az_upload_free(up);
		return log_fail(EX_OSERR, "az: out of memory");
	}
	*out = &up->base;
	return 0;
}

static int az_upload_write(struct xfer_upload *xu, const void *buf, size_t len)
{
	return xfer_pool_write(&((struct az_upload *)xu)->pool, buf, len);
}

static int az_upload_finish(struct xfer_upload *xu)
{
	struct az_upload *up = (struct az_upload *)xu;
	int rc = xfer_pool_finish(&up->pool);

	az_upload_free(up);
	return rc;
}

static void az_upload_abort(struct xfer_upload *xu)
{
	struct az_upload *up = (struct az_upload *)xu;

	xfer_pool_abort(&up->pool);
	az_upload_free(up);
}

/* ---- open / close ---- */

static const char *az_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static void az_free_secret(char *s)
{
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	free(s);
}

static void az_close(struct xfer_store *xs)
{
	struct az_store *st = (struct az_store *)xs;

	if (!st)
		return;
	xfer_http_free(st->http);
	az_free_secret(st->key);
	az_free_secret(st->sas);
	free(st->sas_log);
	free(st->account);
	free(st->container);
	free(st->prefix);
	free(st->origin);
	free(st->base_path);
	free(st);
}

/* Account (may be empty), container and prefix of az://account/container/prefix. */
static int az_parse_url(struct az_store *st, const char *url)
{
	const char *a = url + 5, *s1 = strchr(a, '/'), *c, *s2, *p;
	size_t clen, plen;

	if (!s1)
		return log_fail(EX_USAGE, "store URL '%s' has no container (az://ACCOUNT/CONTAINER/PREFIX)", url);
	c = s1 + 1;
	s2 = strchr(c, '/');
	clen = s2 ? (size_t)(s2 - c) : strlen(c);
	p = s2 ? s2 + 1 : "";
	plen = strlen(p);
	while (plen && p[plen - 1] == '/')
		plen--;
	if (!clen)
		return log_fail(EX_USAGE, "store URL '%s' has no container (az://ACCOUNT/CONTAINER/PREFIX)", url);
	st->account = strndup(a, (size_t)(s1 - a));
	st->container = strndup(c, clen);
	if (asprintf(&st->prefix, "%.*s%s", (int)plen, p, plen ? "/" : "") < 0)
		st->prefix = NULL;
	if (!st->account || !st->container || !st->prefix)
		return log_fail(EX_OSERR, "az: out of memory");
	return 0;
}

/* The account: the URL's, else AZURE_STORAGE_ACCOUNT, else AccountName. */
static int az_account(struct az_store *st, const struct xfer_az_connstr *cs)
{
	const char *a = az_env("AZURE_STORAGE_ACCOUNT");

	if (st->account[0])
		return 0;
	if (!a)
		a = cs->account_name;
	if (!a || !*a)
		return log_fail(EX_USAGE, "az: no storage account in the store URL, AZURE_STORAGE_ACCOUNT "
				"or AZURE_STORAGE_CONNECTION_STRING");
	free(st->account);
	return (st->account = strdup(a)) ? 0 : log_fail(EX_OSERR, "az: out of memory");
}

/* The key or SAS token: AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, then the
 * connection string's AccountKey, SharedAccessSignature.  *how says which. */
static int az_credentials(struct az_store *st, const struct xfer_az_connstr *cs, const char **how)
{
	const char *key = az_env("AZURE_STORAGE_KEY"), *sas = az_env("AZURE_STORAGE_SAS_TOKEN");
	const char *from = "environment";
	struct xfer_az_req probe = { "GET", "a", "/", NULL, 0, NULL, 0, NULL };
	struct xfer_az_out o;

	if (!key && !sas) {
		key = cs->account_key;
		sas = cs->sas;
		from = "connection string";
	}
	if (key) {
		if (!(st->key = strdup(key)))
			return log_fail(EX_OSERR, "az: out of memory");
		probe.key_b64 = st->key;
		if (xfer_az_sign(&probe, &o))
			return log_fail(EX_CONFIG, "az: the account key from the %s is not valid Base64", from);
		xfer_az_out_free(&o);
		*how = !strcmp(from, "environment") ? "SharedKey (environment)" : "SharedKey (connection string)";
		return 0;
	}
	if (!sas)
		return log_fail(EX_CONFIG, "az: no Azure credentials found (set AZURE_STORAGE_KEY, "
				"AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING)");
	if (*sas == '?')
		sas++;
	if (!(st->sas = strdup(sas)) || !(st->sas_log = xfer_az_redact_sas(sas)))
		return log_fail(EX_OSERR, "az: out of memory");
	*how = !strcmp(from, "environment") ? "SAS (environment)" : "SAS (connection string)";
	return 0;
}

/* Origin and base path of the blob endpoint through curl's URL parser. */
static int az_endpoint(struct az_store *st, const char *endpoint)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	size_t plen;
	int rc = EX_USAGE;

	if (!u || curl_url_set(u, CURLUPART_URL, endpoint, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) || curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0))
		goto out;
	if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))
		goto out;
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	for (plen = strlen(path); plen && path[plen - 1] == '/';)
		plen--;
	if (asprintf(&st->origin, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "") < 0)
		st->origin = NULL;
	if (!st->origin || !(st->base_path = strndup(path, plen))) {
		rc = EX_OSERR;
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

/* Account, credentials and endpoint from the URL, options and environment. */
static int az_configure(struct az_store *st, const struct xfer_opts *opts, const char **how)
{
	const char *conn = az_env("AZURE_STORAGE_CONNECTION_STRING");
	const char *ep = opts && opts->endpoint && *opts->endpoint ? opts->endpoint : NULL;
	struct xfer_az_connstr cs;
	char *defep = NULL;
	int rc;

	if (xfer_az_connstr_parse(conn, &cs)) {
		rc = log_fail(EX_CONFIG, "az: AZURE_STORAGE_CONNECTION_STRING is malformed "
			      "(expected Key=Value pairs separated by ';')");
		goto out;
	}
	if ((rc = az_account(st, &cs)) || (rc = az_credentials(st, &cs, how)))
		goto out;
	if (!ep && !(ep = cs.blob_endpoint)) {
		if (asprintf(&defep, "%s://%s.blob.%s", cs.protocol ? cs.protocol : "https", st->account,
			     cs.suffix ? cs.suffix : "core.windows.net") < 0) {
			defep = NULL;
			rc = log_fail(EX_OSERR, "az: out of memory");
			goto out;
		}
		ep = defep;
	}
	if ((rc = az_endpoint(st, ep)))
		rc = rc == EX_OSERR ? log_fail(EX_OSERR, "az: out of memory") :
				      log_fail(EX_USAGE, "az: cannot use endpoint '%s'", ep);
out:
	free(defep);
	xfer_az_connstr_free(&cs);
	return rc;
}

static int az_open(const char *url, const struct xfer_opts *opts, struct xfer_store **out)
{
	struct az_store *st = calloc(1, sizeof(*st));
	const char *how = "";
	int rc;

	*out = NULL;
	if (!st)
		return log_fail(EX_OSERR, "az: out of memory");
	st->base.be = &xfer_az_backend;
	if (opts)
		st->base.opts = *opts;
	if ((rc = az_parse_url(st, url)) || (rc = az_configure(st, opts, &how)))
		goto fail;
	snprintf(st->base.display, sizeof(st->base.display), "az://%s/%s/%s", st->account, st->container,
		 st->prefix);
	st->workers = opts && opts->workers > 0 ? opts->workers : 4;
	st->block_size = opts && opts->part_size > AZ_MIN_BLOCK ? (size_t)opts->part_size : AZ_MIN_BLOCK;
	st->list_max = xfer_http_env_long("SPOTRUN_AZ_LIST_MAX_RESULTS", 0);
	if (!(st->http = xfer_http_new("az"))) {
		rc = log_fail(EX_OSERR, "az: out of memory");
		goto fail;
	}
	log_debug("az: %s%s, account %s, %s", st->origin, st->base_path, st->account, how);
	*out = &st->base;
	return 0;
fail:
	az_close(&st->base);
	return rc;
}

const struct xfer_backend xfer_az_backend = {
	.scheme = "az",
	.open = az_open,
	.close = az_close,
	.put = az_put,
	.get = az_get,
	.get_range = az_get_range,
	.head = az_head,
	.list = az_list,
	.del = az_del,
	.upload_begin = az_upload_begin,
	.upload_write = az_upload_write,
	.upload_finish = az_upload_finish,
	.upload_abort = az_upload_abort,
};
