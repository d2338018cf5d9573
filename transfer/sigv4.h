/*
 * sigv4.h - private to transfer/: AWS Signature Version 4 as a pure
 * function.  Nothing here touches the network, the clock or the
 * environment: the caller passes every input (method, canonical URI,
 * query, headers, payload hash, credentials, region, service, time) and
 * gets back the canonical request, the string to sign, the signature and
 * the Authorization header value.  Used by the S3 backend (and GCS through
 * its XML API with HMAC keys); table-tested against AWS's published suite
 * in tests/unit/test_sigv4.c.
 *
 * Rules the caller must know:
 * - uri is the canonical URI, already percent-encoded (S3: each key byte
 *   outside A-Za-z0-9-._~ and '/' encoded once, no path normalization);
 *   xfer_sigv4_uri_encode() produces it.
 * - query values are raw (not encoded); the signer encodes and sorts them,
 *   and xfer_sigv4_query() gives the same string for the request URL so
 *   that what is sent is exactly what was signed.
 * - headers are exactly the headers to sign, including host and
 *   x-amz-date (and x-amz-security-token, x-amz-content-sha256 when used);
 *   names are lowercased, values trimmed with inner whitespace runs
 *   collapsed, duplicates joined with ',' in the order given.
 * Strings returned in struct xfer_sigv4_out are malloc'd; free with
 * xfer_sigv4_out_free().  Secrets are never copied into the outputs.
 */
#ifndef SPOTRUN_XFER_SIGV4_H
#define SPOTRUN_XFER_SIGV4_H

#include <stddef.h>
#include <time.h>

#define XFER_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define XFER_SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"

struct xfer_sigv4_kv {
	const char *name;
	const char *value;
};

struct xfer_sigv4_req {
	const char *method;			/* "GET", "PUT", ... */
	const char *uri;			/* canonical URI, already encoded */
	const struct xfer_sigv4_kv *query;	/* raw names/values */
	size_t nquery;
	const struct xfer_sigv4_kv *headers;	/* the headers to sign */
	size_t nheaders;
	const char *payload_hash;		/* hex SHA-256 or UNSIGNED-PAYLOAD */
	const char *access_key;
	const char *secret_key;
	const char *region;			/* "us-east-1"; GCS: "auto" */
	const char *service;			/* "s3" */
	time_t when;				/* signing time (UTC) */
};

struct xfer_sigv4_out {
	char *canonical_request;
	char *string_to_sign;
	char signature[65];
	char *authorization;			/* value of the Authorization header */
};

/* Signs req; 0, or -1 when out of memory or an input is missing. */
int xfer_sigv4_sign(const struct xfer_sigv4_req *req, struct xfer_sigv4_out *out);
void xfer_sigv4_out_free(struct xfer_sigv4_out *out);

/* "20150830T123600Z" for t (buf >= 17 bytes). */
void xfer_sigv4_amz_date(time_t t, char *buf, size_t n);
/* Lowercase hex SHA-256 of buf (hex >= 65 bytes). */
void xfer_sigv4_sha256_hex(const void *buf, size_t len, char *hex);
/* Percent-encodes s (RFC 3986 unreserved kept; '/' kept when keep_slash);
 * malloc'd, NULL when out of memory. */
char *xfer_sigv4_uri_encode(const char *s, int keep_slash);
/* The canonical query string for q (sorted, encoded; "" when n == 0);
 * malloc'd, NULL when out of memory. */
char *xfer_sigv4_query(const struct xfer_sigv4_kv *q, size_t n);

#endif
