/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h): canonical request,
 * string to sign, derived signing key and signature, built with OpenSSL's
 * one-shot SHA-256 and HMAC.  Pure: no clock, no environment, no I/O, so
 * AWS's own test suite checks it byte for byte.  Strings are assembled in
 * open_memstream buffers; the derived keys are wiped after use.
 */
#include "sigv4.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sigv4_hdr {
	char *name;	/* lowercased */
	char *value;	/* trimmed, runs of whitespace collapsed */
	size_t order;	/* input position: keeps duplicates in order */
};

struct sigv4_q {
	char *name;	/* encoded */
	char *value;	/* encoded */
};

static void sigv4_hex(const unsigned char *b, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[b[i] >> 4];
		hex[2 * i + 1] = digits[b[i] & 15];
	}
	hex[2 * n] = '\0';
}

void xfer_sigv4_sha256_hex(const void *buf, size_t len, char *hex)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(buf, len, md);
	sigv4_hex(md, sizeof(md), hex);
}

void xfer_sigv4_amz_date(time_t t, char *buf, size_t n)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y%m%dT%H%M%SZ", &tm);
}

static int sigv4_unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

char *xfer_sigv4_uri_encode(const char *s, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	char *out = malloc(3 * strlen(s) + 1), *p = out;

	if (!out)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (sigv4_unreserved(*c) || (keep_slash && *c == '/')) {
			*p++ = (char)*c;
		} else {
			*p++ = '%';
			*p++ = digits[*c >> 4];
			*p++ = digits[*c & 15];
		}
	}
	*p = '\0';
	return out;
}

static int sigv4_q_cmp(const void *a, const void *b)
{
	const struct sigv4_q *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

char *xfer_sigv4_query(const struct xfer_sigv4_kv *q, size_t n)
{
	struct sigv4_q *v = calloc(n ? n : 1, sizeof(*v));
	char *out = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int ok = 1;

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i].name = xfer_sigv4_uri_encode(q[i].name, 0);
		v[i].value = xfer_sigv4_uri_encode(q[i].value ? q[i].value : "", 0);
		if (!v[i].name || !v[i].value)
			ok = 0;
	}
	if (!ok || !(f = open_memstream(&out, &len)))
		goto out;
	qsort(v, n, sizeof(*v), sigv4_q_cmp);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s=%s", i ? "&" : "", v[i].name, v[i].value);
	if (fclose(f) != 0) {
		free(out);
		out = NULL;
	}
out:
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
	return out;
}

/* Lowercase copy of a header name. */
static char *sigv4_lower(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Trimmed copy with every run of whitespace collapsed to one space. */
static char *sigv4_trimall(const char *s)
{
	char *d = malloc(strlen(s) + 1), *p = d;
	int space = 0;

	if (!d)
		return NULL;
	while (isspace((unsigned char)*s))
		s++;
	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			space = 1;
			continue;
		}
		if (space && p != d)
			*p++ = ' ';
		space = 0;
		*p++ = *s;
	}
	*p = '\0';
	return d;
}

static int sigv4_hdr_cmp(const void *a, const void *b)
{
	const struct sigv4_hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Writes the canonical headers block and collects the signed header list. */
static int sigv4_headers(const struct xfer_sigv4_req *req, FILE *canon, FILE *signed_list)
{
	size_t n = req->nheaders;
	struct sigv4_hdr *v = calloc(n ? n : 1, sizeof(*v));
	int rc = -1;

	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		v[i].name = sigv4_lower(req->headers[i].name);
		v[i].value = sigv4_trimall(req->headers[i].value ? req->headers[i].value : "");
		v[i].order = i;
		if (!v[i].name || !v[i].value)
			goto out;
	}
	qsort(v, n, sizeof(*v), sigv4_hdr_cmp);
	for (size_t i = 0; i < n; i++) {
		int first = i == 0 || strcmp(v[i].name, v[i - 1].name);
		int last = i + 1 == n || strcmp(v[i].name, v[i + 1].name);

		if (first) {
			fprintf(canon, "%s:", v[i].name);
			fprintf(signed_list, "%s%s", i ? ";" : "", v[i].name);
		} else {
			fputc(',', canon);
		}
		fputs(v[i].value, canon);
		if (last)
			fputc('\n', canon);
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
	return rc;
}

static int sigv4_hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 32;

	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
		    &olen) ? 0 : -1;
}

/* HMAC chain: "AWS4"+secret -> date -> region -> service -> "aws4_request" -> sts */
static int sigv4_signature(const struct xfer_sigv4_req *req, const char *date8,
			   const char *sts, char hex[65])
{
	unsigned char k[32], sig[32];
	size_t slen = strlen(req->secret_key);
	char *seed = malloc(slen + 5);
	int rc = -1;

	if (!seed)
		return -1;
	memcpy(seed, "AWS4", 4);
	memcpy(seed + 4, req->secret_key, slen + 1);
	if (sigv4_hmac(seed, slen + 4, date8, k) || sigv4_hmac(k, 32, req->region, k) ||
	    sigv4_hmac(k, 32, req->service, k) || sigv4_hmac(k, 32, "aws4_request", k) ||
	    sigv4_hmac(k, 32, sts, sig))
		goto out;
	sigv4_hex(sig, 32, hex);
	rc = 0;
out:
	OPENSSL_cleanse(seed, slen + 5);
	OPENSSL_cleanse(k, sizeof(k));
	free(seed);
	return rc;
}

static int sigv4_canonical(const struct xfer_sigv4_req *req, char **canon, char **signed_hdrs)
{
	size_t clen = 0, slen = 0;
	FILE *c = open_memstream(canon, &clen), *s = open_memstream(signed_hdrs, &slen);
	char *query = xfer_sigv4_query(req->query, req->nquery);
	int rc = -1;

	if (!c || !s || !query)
		goto out;
	fprintf(c, "%s\n%s\n%s\n", req->method, req->uri, query);
	if (sigv4_headers(req, c, s))
		goto out;
	fflush(s);
	fprintf(c, "\n%s\n%s", *signed_hdrs, req->payload_hash);
	rc = 0;
out:
	free(query);
	if ((c && fclose(c)) || (s && fclose(s)))
		rc = -1;
	return rc;
}

int xfer_sigv4_sign(const struct xfer_sigv4_req *req, struct xfer_sigv4_out *out)
{
	char amz[20], date8[9], crhash[65], *signed_hdrs = NULL, *scope = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!req->method || !req->uri || !req->payload_hash || !req->access_key ||
	    !req->secret_key || !req->region || !req->service)
		return -1;
	xfer_sigv4_amz_date(req->when, amz, sizeof(amz));
	memcpy(date8, amz, 8);
	date8[8] = '\0';
	if (sigv4_canonical(req, &out->canonical_request, &signed_hdrs))
		goto out;
	xfer_sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), crhash);
	if (asprintf(&scope, "%s/%s/%s/aws4_request", date8, req->region, req->service) < 0) {
		scope = NULL;
		goto out;
	}
	if (asprintf(&out->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz, scope, crhash) < 0) {
		out->string_to_sign = NULL;
		goto out;
	}
	if (sigv4_signature(req, date8, out->string_to_sign, out->signature))
		goto out;
	if (!(f = open_memstream(&out->authorization, &len)))
		goto out;
	fprintf(f, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		req->access_key, scope, signed_hdrs, out->signature);
	if (fclose(f) == 0)
		rc = 0;
out:
	free(signed_hdrs);
	free(scope);
	if (rc)
		xfer_sigv4_out_free(out);
	return rc;
}

void xfer_sigv4_out_free(struct xfer_sigv4_out *out)
{
	if (!out)
		return;
	free(out->canonical_request);
	free(out->string_to_sign);
	free(out->authorization);
	memset(out, 0, sizeof(*out));
}
