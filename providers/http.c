/*
 * http.c - the one HTTP call of providers/: a single metadata request on
 * libcurl that can be abandoned at once.  Each call drives its own curl
 * multi handle with curl_multi_poll(), passing the watch's stop pipe as an
 * extra fd, so prov_watch_stop() interrupts a connect, a hanging GET or a
 * listener that never answers without waiting for a timeout.
 *
 * Every call has a connect and a total timeout (quick ones during
 * auto-detection so that it settles within 300 ms).  Proxies are never
 * used (metadata services are link-local; Azure rejects proxied calls),
 * redirects are not followed, bodies are capped at 64 KiB.  Nothing here
 * logs bodies or headers: tokens travel in them.
 */
#include "prov_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define PROV_HTTP_MAX_BODY 65536

static size_t prov_http_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct prov_http *h = user;
	size_t n = size * nmemb, room = PROV_HTTP_MAX_BODY - h->resp_len;
	char *p;

	if (n > room)
		return 0; /* too big for a metadata answer: fail the transfer */
	if (!(p = realloc(h->resp, h->resp_len + n + 1)))
		return 0;
	h->resp = p;
	memcpy(h->resp + h->resp_len, ptr, n);
	h->resp_len += n;
	h->resp[h->resp_len] = 0;
	return n;
}

/* Copies the value of header line "Name: value" into out if name matches. */
static void prov_header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
		return;
	prov_copy_trim(out, outlen, line + k + 1, n - k - 1);
}

static size_t prov_http_header(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct prov_http *h = user;
	size_t n = size * nmemb;

	prov_header_value(ptr, n, "ETag", h->etag, sizeof(h->etag));
	prov_header_value(ptr, n, "Metadata-Flavor", h->flavor, sizeof(h->flavor));
	return n;
}

void prov_http_timeouts(const struct prov_src *s, struct prov_http *h)
{
	if (s->quick) {
		h->connect_ms = 200;
		h->total_ms = 250;
	} else {
		h->connect_ms = 1000;
		h->total_ms = 5000;
	}
}

static pthread_once_t prov_curl_once = PTHREAD_ONCE_INIT;
static void prov_curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* libcurl is loaded and initialised here, in a watcher thread, on the first
 * request: never on the path that starts the command. */
static CURL *prov_http_easy(struct prov_http *h, struct curl_slist **hdrs)
{
	CURL *e;

	pthread_once(&prov_curl_once, prov_curl_init);
	if (!(e = curl_easy_init()))
		return NULL;
	for (int i = 0; i < 6 && h->headers[i]; i++)
		*hdrs = curl_slist_append(*hdrs, h->headers[i]);
	*hdrs = curl_slist_append(*hdrs, "Expect:"); /* no 100-continue round trip */
	curl_easy_setopt(e, CURLOPT_URL, h->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms > 0 ? h->connect_ms : 1000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->total_ms > 0 ? h->total_ms : 5000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, prov_http_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, prov_http_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
	curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L); /* never wait on a stuck resolver */
#endif
	if (h->method && strcmp(h->method, "GET"))
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, h->method);
	if (h->body || (h->method && (!strcmp(h->method, "PUT") || !strcmp(h->method, "POST")))) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->body ? h->body : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(h->body ? strlen(h->body) : 0));
	}
	return e;
}

/* Drives the transfer until done or stopped: CURLE_* result, or -2 stopped. */
static int prov_http_drive(struct prov_src *s, CURLM *m, CURL *e, int no_abort)
{
	struct curl_waitfd wfd = { .events = CURL_WAIT_POLLIN };
	int running = 1, rc = -1, left;
	CURLMsg *msg;

	wfd.fd = prov_src_stopfd(s);
	while (running) {
		if (curl_multi_perform(m, &running) != CURLM_OK)
			return CURLE_FAILED_INIT;
		if (!running)
			break;
		if (!no_abort && prov_src_stopping(s))
			return -2;
		curl_multi_poll(m, no_abort ? NULL : &wfd, no_abort ? 0 : 1, 200, NULL);
		if (!no_abort && prov_src_stopping(s))
			return -2;
	}
	while ((msg = curl_multi_info_read(m, &left)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == e)
			rc = (int)msg->data.result;
	return rc;
}

int prov_http(struct prov_src *s, struct prov_http *h)
{
	struct curl_slist *hdrs = NULL;
	CURLM *m = NULL;
	CURL *e;
	int rc = -1, r;

	h->status = 0;
	h->resp = NULL;
	h->resp_len = 0;
	h->etag[0] = h->flavor[0] = 0;
	if (!h->no_abort && prov_src_stopping(s))
		return -2;
	if (!(e = prov_http_easy(h, &hdrs)) || !(m = curl_multi_init()))
		goto out;
	curl_multi_add_handle(m, e);
	r = prov_http_drive(s, m, e, h->no_abort);
	if (r == -2) {
		rc = -2;
	} else if (r == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h->status);
		rc = 0;
	} else {
		log_debug("%s %s: %s", h->method ? h->method : "GET", h->url,
			  r > 0 ? curl_easy_strerror((CURLcode)r) : "failed");
	}
	curl_multi_remove_handle(m, e);
out:
	if (rc != 0)
		prov_http_free(h);
	curl_multi_cleanup(m);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
	return rc;
}

void prov_http_free(struct prov_http *h)
{
	free(h->resp);
	h->resp = NULL;
	h->resp_len = 0;
}
