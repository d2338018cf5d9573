/*
 * http.h - private to transfer/: the HTTP layer the cloud store backends
 * and the credential providers share, on libcurl.
 *
 * Design: a request is a struct xfer_http_req the caller owns.  Requests
 * run in a batch (struct xfer_http_batch): ONE curl multi handle driven by
 * the calling thread with curl_multi_poll, at most max_parallel transfers
 * at once, each transfer's request reached through CURLOPT_PRIVATE.  A
 * blocking call (xfer_http_perform) is a batch of one run in the caller's
 * thread, so worker threads calling xfer_get_range at the same time each
 * drive their own small batch; one upload keeps one batch for its parts.
 * All batches of one struct xfer_http share a CURLSH connection and DNS
 * cache (locked), so connections are reused across calls and threads.
 * There is no background thread: nothing runs unless a caller waits.
 *
 * Every attempt has a connect timeout, a low-speed limit and an optional
 * total timeout.  Retries happen inside the batch: connection errors, 5xx
 * and 429 (and what the request's retryable() hook adds, e.g. S3 SlowDown
 * or RequestTimeout) are retried up to `tries` attempts with exponential
 * backoff and full jitter (delay uniform in [0, min(cap, base * 2^n)]);
 * other 4xx answers are final.  Before each attempt prepare() rebuilds the
 * headers (so a retry is signed afresh).  The layer never logs bodies or
 * headers (they may carry secrets); retries are logged at debug level
 * with the method and URL only.
 *
 * Environment knobs: SPOTRUN_RETRY_BASE_MS (default 200), SPOTRUN_RETRY_CAP_MS
 * (default 10000), SPOTRUN_RETRY_TRIES (default 5), SPOTRUN_HTTP_CONNECT_MS
 * (default 5000), SPOTRUN_HTTP_LOW_SPEED_S (abort below 1 KiB/s for this
 * long, default 30).
 */
#ifndef SPOTRUN_XFER_HTTP_H
#define SPOTRUN_XFER_HTTP_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

struct xfer_http;

struct xfer_http_req {
	/* Inputs, set by the caller. */
	const char *method;		/* GET, HEAD, PUT, POST, DELETE */
	const char *url;
	const void *body;		/* request body (PUT/POST), or NULL */
	size_t body_len;
	void *sink;			/* 2xx body goes here (ranged GET), or NULL */
	size_t sink_cap;
	size_t max_body;		/* sink == NULL: keep a 2xx body up to this size */
	/* Called before each attempt: set req->headers (freed by this layer
	 * before the next call and by xfer_http_req_cleanup); nonzero stops
	 * the request with that value in prep_rc. */
	int (*prepare)(struct xfer_http_req *req);
	/* Optional: nonzero if this HTTP answer (status, body) should be retried. */
	int (*retryable)(const struct xfer_http_req *req);
	void *user;
	long connect_ms;		/* 0: default */
	long total_ms;			/* 0: no total limit, only the low-speed limit */
	int tries;			/* 0: default */
	const char *log_url;		/* url as debug lines show it (secrets redacted); NULL: url */
	const char *keep_header;	/* a response header to copy into kept[] (e.g. an
					 * error code header that HEAD answers carry), or NULL */

	/* Outputs. */
	struct curl_slist *headers;
	int prep_rc;			/* nonzero: prepare() failed */
	CURLcode cc;			/* transport result of the last attempt */
	long status;			/* HTTP status of the last attempt, 0 if none */
	char errbuf[CURL_ERROR_SIZE];	/* curl's reason when cc != CURLE_OK */
	char *resp;			/* 2xx body (sink == NULL) or an error body (<= 64 KiB) */
	size_t resp_len;
	size_t sink_len;		/* bytes written into sink */
	int too_big;			/* the body did not fit sink_cap / max_body */
	int64_t content_length;		/* Content-Length of the answer, -1 if unknown */
	char etag[256];			/* ETag header, "" if none */
	char kept[128];			/* the keep_header header, "" if none */
	int attempts;

	/* Private to http.c. */
	CURL *easy;
	size_t sent;
	int64_t not_before;
	int state;
};

/* label names the service in debug lines ("s3", "imds"). */
struct xfer_http *xfer_http_new(const char *label);
void xfer_http_free(struct xfer_http *h);

/* Runs one request to the end (retries included) in this thread.  Returns 0
 * when an HTTP answer arrived (look at req->status), else -1 (look at cc,
 * errbuf, prep_rc). */
int xfer_http_perform(struct xfer_http *h, struct xfer_http_req *req);
/* Frees what the layer allocated in req (headers, resp); req stays reusable. */
void xfer_http_req_cleanup(struct xfer_http_req *req);

/* A set of parallel requests on one multi handle, driven by the caller. */
struct xfer_http_batch;
struct xfer_http_batch *xfer_http_batch_new(struct xfer_http *h, int max_parallel);
/* Queues req (not owned); it starts when a slot frees up.  0 or -1. */
int xfer_http_batch_add(struct xfer_http_batch *b, struct xfer_http_req *req);
/* Drives the transfers until one request is finished for good (retries
 * spent or success) and returns it; NULL when the batch is empty. */
struct xfer_http_req *xfer_http_batch_next(struct xfer_http_batch *b);
/* Requests still queued or running in the batch. */
size_t xfer_http_batch_pending(const struct xfer_http_batch *b);
/* Stops every request still in the batch and frees it; accepts NULL. */
void xfer_http_batch_free(struct xfer_http_batch *b);

/* 1 if req ended with an HTTP answer in 200..299. */
int xfer_http_ok(const struct xfer_http_req *req);
/* A short reason for the last attempt's failure: curl's message or "HTTP 503". */
const char *xfer_http_reason(const struct xfer_http_req *req, char *buf, size_t n);
/* Base64 MD5 of a body, for the Content-MD5 header of upload parts (the
 * server then refuses a part damaged on the way): out needs 25 bytes. */
void xfer_http_md5_b64(const void *buf, size_t len, char out[25]);
/* Milliseconds of a monotonic clock. */
int64_t xfer_http_now_ms(void);
/* An integer environment knob with a default. */
long xfer_http_env_long(const char *name, long def);

#endif
