/*
 * http.c - the libcurl layer of transfer/ (see http.h for the design): a
 * batch is one multi handle driven by the calling thread with
 * curl_multi_poll, bounded parallelism, per-transfer context through
 * CURLOPT_PRIVATE, and retries with exponential backoff and full jitter
 * scheduled inside the batch (a request waiting for its retry simply has
 * a not-before time that bounds the poll timeout).  Connections and DNS
 * answers are shared between batches through a locked CURLSH.
 */
#include "http.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define HTTP_ERR_BODY_MAX (64 * 1024)

enum { HTTP_QUEUED = 0, HTTP_ACTIVE, HTTP_DONE };

struct xfer_http {
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	char label[32];
	long base_ms, cap_ms, connect_ms, low_speed_s;
	int tries;
	char ca_bundle[4096];	/* SPOTRUN_CA_BUNDLE (--ca-bundle), AWS_CA_BUNDLE, CURL_CA_BUNDLE */
};

struct xfer_http_batch {
	struct xfer_http *h;
	CURLM *multi;
	int max_active, active;
	struct xfer_http_req **v;	/* queued, running or done-not-returned */
	size_t n, cap;
	unsigned int seed;
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;

static void http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int64_t xfer_http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long xfer_http_env_long(const char *name, long def)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 10);
	return (*end || v < 0) ? def : v;
}

static void http_lock(CURL *e, curl_lock_data d, curl_lock_access a, void *u)
{
	struct xfer_http *h = u;

	if (d < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->locks[d]);
}

static void http_unlock(CURL *e, curl_lock_data d, void *u)
{
	struct xfer_http *h = u;

	if (d < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->locks[d]);
}

struct xfer_http *xfer_http_new(const char *label)
{
	struct xfer_http *h = calloc(1, sizeof(*h));

	pthread_once(&http_once, http_global_init);
	if (!h)
		return NULL;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->locks[i], NULL);
	snprintf(h->label, sizeof(h->label), "%s", label);
	h->base_ms = xfer_http_env_long("SPOTRUN_RETRY_BASE_MS", 200);
	h->cap_ms = xfer_http_env_long("SPOTRUN_RETRY_CAP_MS", 10000);
	h->tries = (int)xfer_http_env_long("SPOTRUN_RETRY_TRIES", 5);
	h->connect_ms = xfer_http_env_long("SPOTRUN_HTTP_CONNECT_MS", 5000);
	h->low_speed_s = xfer_http_env_long("SPOTRUN_HTTP_LOW_SPEED_S", 30);
	if (h->tries < 1)
		h->tries = 1;
	/* TLS verification is always on; a private CA comes from a bundle file */
	static const char *const ca_vars[] = { "SPOTRUN_CA_BUNDLE", "AWS_CA_BUNDLE", "CURL_CA_BUNDLE" };
	for (size_t i = 0; i < sizeof(ca_vars) / sizeof(ca_vars[0]) && !h->ca_bundle[0]; i++) {
		const char *v = getenv(ca_vars[i]);
		if (v && *v)
			snprintf(h->ca_bundle, sizeof(h->ca_bundle), "%s", v);
	}
	h->share = curl_share_init();
	if (h->share) {
		curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, http_lock);
		curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, http_unlock);
		curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	}
	return h;
}

void xfer_http_free(struct xfer_http *h)
{
	if (!h)
		return;
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->locks[i]);
	free(h);
}

void xfer_http_req_cleanup(struct xfer_http_req *req)
{
	curl_slist_free_all(req->headers);
	req->headers = NULL;
	free(req->resp);
	req->resp = NULL;
	req->resp_len = 0;
}

int xfer_http_ok(const struct xfer_http_req *req)
{
	return req->cc == CURLE_OK && !req->prep_rc && req->status >= 200 && req->status < 300;
}

const char *xfer_http_reason(const struct xfer_http_req *req, char *buf, size_t n)
{
	if (req->cc != CURLE_OK)
		snprintf(buf, n, "%s", req->errbuf[0] ? req->errbuf : curl_easy_strerror(req->cc));
	else
		snprintf(buf, n, "HTTP %ld", req->status);
	return buf;
}

/* ---- curl callbacks ---- */

static int http_append(struct xfer_http_req *req, const char *p, size_t n, size_t max)
{
	char *r;

	if (req->resp_len + n > max)
		return -1;
	if (!(r = realloc(req->resp, req->resp_len + n + 1)))
		return -1;
	memcpy(r + req->resp_len, p, n);
	req->resp = r;
	req->resp_len += n;
	r[req->resp_len] = '\0';
	return 0;
}

static size_t http_write(char *p, size_t size, size_t nmemb, void *u)
{
	struct xfer_http_req *req = u;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300) { /* an error body: keep its head for the reason */
		if (req->resp_len + n <= HTTP_ERR_BODY_MAX)
			http_append(req, p, n, HTTP_ERR_BODY_MAX);
		return n;
	}
	if (req->sink) {
		if (req->sink_len + n > req->sink_cap) {
			req->too_big = 1;
			return 0;
		}
		memcpy((char *)req->sink + req->sink_len, p, n);
		req->sink_len += n;
		return n;
	}
	if (http_append(req, p, n, req->max_body)) {
		req->too_big = 1;
		return 0;
	}
	return n;
}

static size_t http_read(char *p, size_t size, size_t nmemb, void *u)
{
	struct xfer_http_req *req = u;
	size_t n = size * nmemb, left = req->body_len - req->sent;

	if (n > left)
		n = left;
	memcpy(p, (const char *)req->body + req->sent, n);
	req->sent += n;
	return n;
}

static int http_seek(void *u, curl_off_t off, int origin)
{
	struct xfer_http_req *req = u;

	if (origin != SEEK_SET || off < 0 || (size_t)off > req->body_len)
		return CURL_SEEKFUNC_FAIL;
	req->sent = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ---- one attempt ---- */

static void http_reset_outputs(struct xfer_http_req *req)
{
	curl_slist_free_all(req->headers);
	req->headers = NULL;
	free(req->resp);
	req->resp = NULL;
	req->resp_len = req->sink_len = req->sent = 0;
	req->too_big = 0;
	req->status = 0;
	req->cc = CURLE_OK;
	req->errbuf[0] = '\0';
	req->etag[0] = '\0';
	req->kept[0] = '\0';
	req->content_length = -1;
}

static void http_set_method(struct xfer_http_req *req)
{
	CURL *e = req->easy;

	if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(req->method, "PUT")) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, http_read);
		curl_easy_setopt(e, CURLOPT_READDATA, req);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, http_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, req);
	} else if (!strcmp(req->method, "POST")) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else if (strcmp(req->method, "GET")) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	}
}

/* Builds the easy handle for the next attempt; -1 when it cannot start. */
static int http_start(struct xfer_http_batch *b, struct xfer_http_req *req)
{
	struct xfer_http *h = b->h;
	CURL *e;

	http_reset_outputs(req);
	req->attempts++;
	if (req->prepare && (req->prep_rc = req->prepare(req)) != 0)
		return -1;
	if (req->body || !strcmp(req->method, "PUT"))
		req->headers = curl_slist_append(req->headers, "Expect:");
	if (!(e = req->easy = curl_easy_init())) {
		req->cc = CURLE_OUT_OF_MEMORY;
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->connect_ms ? req->connect_ms : h->connect_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, h->low_speed_s);
	if (req->total_ms)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->total_ms);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_bundle[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_bundle);
	if (h->share)
		curl_easy_setopt(e, CURLOPT_SHARE, h->share);
	http_set_method(req);
	if (curl_multi_add_handle(b->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		req->easy = NULL;
		req->cc = CURLE_FAILED_INIT;
		return -1;
	}
	req->state = HTTP_ACTIVE;
	b->active++;
	return 0;
}

static int http_transport_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		return 1;
	default:
		return 0;
	}
}

static int http_should_retry(const struct xfer_http_req *req)
{
	if (req->cc != CURLE_OK)
		return !req->too_big && http_transport_retryable(req->cc);
	if (req->status >= 500 || req->status == 429)
		return 1;
	return req->retryable && req->retryable(req);
}

/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
static int64_t http_backoff_ms(struct xfer_http_batch *b, int attempt)
{
	int64_t lim = b->h->base_ms;

	for (int i = 1; i < attempt && lim < b->h->cap_ms; i++)
		lim *= 2;
	if (lim > b->h->cap_ms)
		lim = b->h->cap_ms;
	if (lim <= 0)
		return 0;
	return (int64_t)(rand_r(&b->seed) % (unsigned int)(lim + 1));
}

/* An attempt ended: collect its answer, then finish or schedule a retry. */
static void http_finish_attempt(struct xfer_http_batch *b, struct xfer_http_req *req, CURLcode cc)
{
	int tries = req->tries ? req->tries : b->h->tries;
	struct curl_header *hd = NULL;
	curl_off_t cl = -1;
	char why[CURL_ERROR_SIZE + 16];
	int64_t retry_after_ms;

	req->cc = cc;
	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
	if (curl_easy_getinfo(req->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK)
		req->content_length = cl;
	if (curl_easy_header(req->easy, "ETag", 0, CURLH_HEADER, -1, &hd) == CURLHE_OK)
		snprintf(req->etag, sizeof(req->etag), "%s", hd->value);
	if (req->keep_header &&
	    curl_easy_header(req->easy, req->keep_header, 0, CURLH_HEADER, -1, &hd) == CURLHE_OK)
		snprintf(req->kept, sizeof(req->kept), "%s", hd->value);
	retry_after_ms = 0; /* a 429/503 may say when to come back (seconds form) */
	if ((req->status == 429 || req->status == 503) &&
	    curl_easy_header(req->easy, "Retry-After", 0, CURLH_HEADER, -1, &hd) == CURLHE_OK) {
		char *end;
		long secs = strtol(hd->value, &end, 10);
		if (end != hd->value && !*end && secs > 0)
			retry_after_ms = (secs > 60 ? 60 : secs) * 1000;
	}
	curl_multi_remove_handle(b->multi, req->easy);
	curl_easy_cleanup(req->easy);
	req->easy = NULL;
	b->active--;
	if (req->attempts < tries && http_should_retry(req)) {
		int64_t d = http_backoff_ms(b, req->attempts);
		if (d < retry_after_ms)
			d = retry_after_ms;
		log_debug("%s: %s %s: %s, retry %d of %d in %lld ms", b->h->label, req->method,
			  req->log_url ? req->log_url : req->url,
			  xfer_http_reason(req, why, sizeof(why)), req->attempts, tries - 1, (long long)d);
		req->not_before = xfer_http_now_ms() + d;
		req->state = HTTP_QUEUED;
		return;
	}
	req->state = HTTP_DONE;
}

/* ---- batches ---- */

struct xfer_http_batch *xfer_http_batch_new(struct xfer_http *h, int max_parallel)
{
	struct xfer_http_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	if (!(b->multi = curl_multi_init())) {
		free(b);
		return NULL;
	}
	b->h = h;
	b->max_active = max_parallel > 0 ? max_parallel : 1;
	b->seed = (unsigned int)xfer_http_now_ms() ^ (unsigned int)(uintptr_t)b;
	return b;
}

int xfer_http_batch_add(struct xfer_http_batch *b, struct xfer_http_req *req)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 8;
		struct xfer_http_req **v = realloc(b->v, cap * sizeof(*v));
		if (!v)
			return -1;
		b->v = v;
		b->cap = cap;
	}
	req->state = HTTP_QUEUED;
	req->attempts = 0;
	req->prep_rc = 0;
	req->not_before = 0;
	req->easy = NULL;
	b->v[b->n++] = req;
	return 0;
}

size_t xfer_http_batch_pending(const struct xfer_http_batch *b)
{
	return b ? b->n : 0;
}

static struct xfer_http_req *http_take_done(struct xfer_http_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct xfer_http_req *req = b->v[i];
		if (req->state == HTTP_DONE) {
			memmove(&b->v[i], &b->v[i + 1], (b->n - i - 1) * sizeof(b->v[0]));
			b->n--;
			return req;
		}
	}
	return NULL;
}

/* Starts queued requests whose time has come; returns ms until the next one is due. */
static long http_start_due(struct xfer_http_batch *b)
{
	int64_t now = xfer_http_now_ms();
	long wait = 1000;

	for (size_t i = 0; i < b->n; i++) {
		struct xfer_http_req *req = b->v[i];
		if (req->state != HTTP_QUEUED)
			continue;
		if (req->not_before > now) {
			if (req->not_before - now < wait)
				wait = (long)(req->not_before - now);
			continue;
		}
		if (b->active >= b->max_active)
			continue;
		if (http_start(b, req))
			req->state = HTTP_DONE;
	}
	return wait;
}

struct xfer_http_req *xfer_http_batch_next(struct xfer_http_batch *b)
{
	struct xfer_http_req *req;
	int running, ended;
	CURLMsg *m;

	for (;;) {
		if ((req = http_take_done(b)) || b->n == 0)
			return req;
		long wait = http_start_due(b);
		if ((req = http_take_done(b)))
			return req;
		curl_multi_perform(b->multi, &running);
		for (ended = 0; (m = curl_multi_info_read(b->multi, &running)); ended++) {
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&req);
			http_finish_attempt(b, req, m->data.result);
		}
		if (!ended) /* else a retry may be due sooner than wait: recompute first */
			curl_multi_poll(b->multi, NULL, 0, (int)(wait > 0 ? wait : 0), NULL);
	}
}

void xfer_http_batch_free(struct xfer_http_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		struct xfer_http_req *req = b->v[i];
		if (req->easy) {
			curl_multi_remove_handle(b->multi, req->easy);
			curl_easy_cleanup(req->easy);
			req->easy = NULL;
		}
		req->state = HTTP_DONE;
	}
	curl_multi_cleanup(b->multi);
	free(b->v);
	free(b);
}

int xfer_http_perform(struct xfer_http *h, struct xfer_http_req *req)
{
	struct xfer_http_batch *b = xfer_http_batch_new(h, 1);

	if (!b) {
		req->cc = CURLE_OUT_OF_MEMORY;
		return -1;
	}
	if (xfer_http_batch_add(b, req)) {
		xfer_http_batch_free(b);
		req->cc = CURLE_OUT_OF_MEMORY;
		return -1;
	}
	xfer_http_batch_next(b);
	xfer_http_batch_free(b);
	return (req->cc == CURLE_OK && !req->prep_rc && req->status) ? 0 : -1;
}

void xfer_http_md5_b64(const void *buf, size_t len, char out[25])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = 0;
	if (EVP_Digest(buf, len, md, &n, EVP_md5(), NULL) == 1 && n == 16)
		EVP_EncodeBlock((unsigned char *)out, md, 16);
}
