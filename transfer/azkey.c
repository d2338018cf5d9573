/*
 * azkey.c - Azure Storage SharedKey signing and connection strings as pure
 * functions (see azkey.h for the rules).  The string to sign is built in
 * an open_memstream buffer; headers and query parameters are sorted
 * through index arrays so the caller's arrays stay untouched.  HMAC and
 * Base64 come from OpenSSL; the decoded key lives on the stack and is
 * cleansed before returning.
 */
#include "azkey.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AZKEY_MAX_KEY 256		/* decoded key bytes (real keys: 64) */

static const char *const azkey_std[] = {
	"Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
	"Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
	"If-Unmodified-Since", "Range",
};

static const char *azkey_header(const struct xfer_az_req *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (!strcasecmp(r->headers[i].name, name))
			return r->headers[i].value;
	return "";
}

/* Trimmed value with every whitespace run that holds a line break folded
 * into one space. */
static void azkey_put_value(FILE *f, const char *v)
{
	const char *end = v + strlen(v);

	while (*v && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	while (v < end) {
		const char *run = v;
		int fold = 0;

		if (!isspace((unsigned char)*v)) {
			fputc(*v++, f);
			continue;
		}
		for (; v < end && isspace((unsigned char)*v); v++)
			fold |= *v == '\r' || *v == '\n';
		if (fold)
			fputc(' ', f);
		else
			fwrite(run, 1, (size_t)(v - run), f);
	}
}

static void azkey_put_lower(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(tolower((unsigned char)*s), f);
}

static int azkey_is_xms(const char *name)
{
	return !strncasecmp(name, "x-ms-", 5);
}

/* Sorts idx[0..n) by the lowercased names of kv (stable: insertion sort,
 * the lists are short). */
static void azkey_sort(const struct xfer_az_kv *kv, size_t *idx, size_t n, int by_value)
{
	for (size_t i = 1; i < n; i++) {
		size_t v = idx[i], j = i;
		while (j > 0) {
			int c = strcasecmp(kv[idx[j - 1]].name, kv[v].name);
			if (c == 0 && by_value)
				c = strcmp(kv[idx[j - 1]].value, kv[v].value);
			if (c <= 0)
				break;
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = v;
	}
}

static int azkey_canon_headers(FILE *f, const struct xfer_az_req *r)
{
	size_t *idx = calloc(r->nheaders + 1, sizeof(*idx)), n = 0;

	if (!idx)
		return -1;
	for (size_t i = 0; i < r->nheaders; i++)
		if (azkey_is_xms(r->headers[i].name))
			idx[n++] = i;
	azkey_sort(r->headers, idx, n, 0);
	for (size_t i = 0; i < n; i++) {
		const struct xfer_az_kv *h = &r->headers[idx[i]];
		if (i > 0 && !strcasecmp(r->headers[idx[i - 1]].name, h->name)) {
			fputc(',', f);
		} else {
			if (i > 0)
				fputc('\n', f);
			azkey_put_lower(f, h->name);
			fputc(':', f);
		}
		azkey_put_value(f, h->value);
	}
	if (n)
		fputc('\n', f);
	free(idx);
	return 0;
}

static int azkey_canon_resource(FILE *f, const struct xfer_az_req *r)
{
	size_t *idx = calloc(r->nquery + 1, sizeof(*idx));

	if (!idx)
		return -1;
	fprintf(f, "/%s%s", r->account, r->path);
	for (size_t i = 0; i < r->nquery; i++)
		idx[i] = i;
	azkey_sort(r->query, idx, r->nquery, 1);
	for (size_t i = 0; i < r->nquery; i++) {
		const struct xfer_az_kv *q = &r->query[idx[i]];
		if (i > 0 && !strcasecmp(r->query[idx[i - 1]].name, q->name)) {
			fprintf(f, ",%s", q->value);
			continue;
		}
		fputc('\n', f);
		azkey_put_lower(f, q->name);
		fprintf(f, ":%s", q->value);
	}
	free(idx);
	return 0;
}

static char *azkey_string_to_sign(const struct xfer_az_req *r)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	int bad = 0;

	if (!f)
		return NULL;
	fprintf(f, "%s\n", r->method);
	for (size_t i = 0; i < sizeof(azkey_std) / sizeof(azkey_std[0]); i++) {
		const char *v = azkey_header(r, azkey_std[i]);
		if (!strcmp(azkey_std[i], "Content-Length") && !strcmp(v, "0"))
			v = "";
		fprintf(f, "%s\n", v);
	}
	bad = azkey_canon_headers(f, r) || azkey_canon_resource(f, r);
	if (fclose(f) || bad) {
		free(s);
		return NULL;
	}
	return s;
}

/* Decodes Base64 key into buf; its length, or -1 when invalid. */
static int azkey_decode_key(const char *b64, unsigned char *buf, size_t cap)
{
	size_t n = strlen(b64), pad = 0;
	int len;

	if (n == 0 || n % 4 || n / 4 * 3 > cap)
		return -1;
	if (b64[n - 1] == '=')
		pad++;
	if (n > 1 && b64[n - 2] == '=')
		pad++;
	len = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
	if (len < 0 || (size_t)len < pad)
		return -1;
	return len - (int)pad;
}

int xfer_az_sign(const struct xfer_az_req *req, struct xfer_az_out *out)
{
	unsigned char key[AZKEY_MAX_KEY], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int klen, rc = -1;

	memset(out, 0, sizeof(*out));
	if (!req->method || !req->account || !req->path || !req->key_b64)
		return -1;
	if ((klen = azkey_decode_key(req->key_b64, key, sizeof(key))) < 0)
		goto out;
	if (!(out->string_to_sign = azkey_string_to_sign(req)))
		goto out;
	if (!HMAC(EVP_sha256(), key, klen, (const unsigned char *)out->string_to_sign,
		  strlen(out->string_to_sign), mac, &maclen))
		goto out;
	EVP_EncodeBlock((unsigned char *)out->signature, mac, (int)maclen);
	if (asprintf(&out->authorization, "SharedKey %s:%s", req->account, out->signature) < 0) {
		out->authorization = NULL;
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	if (rc)
		xfer_az_out_free(out);
	return rc;
}

void xfer_az_out_free(struct xfer_az_out *out)
{
	if (!out)
		return;
	free(out->string_to_sign);
	free(out->authorization);
	memset(out, 0, sizeof(*out));
}

void xfer_az_rfc1123(time_t t, char *buf, size_t n)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

char *xfer_az_redact_sas(const char *sas)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	for (const char *p = sas; *p;) {
		size_t n = strcspn(p, "&");
		if (!strncasecmp(p, "sig=", 4))
			fputs("sig=REDACTED", f);
		else
			fwrite(p, 1, n, f);
		p += n;
		if (*p)
			fputc(*p++, f);
	}
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- connection strings ---- */

static char **azkey_conn_field(struct xfer_az_connstr *c, const char *name, size_t n)
{
	static const struct { const char *name; size_t off; } map[] = {
		{ "AccountName", offsetof(struct xfer_az_connstr, account_name) },
		{ "AccountKey", offsetof(struct xfer_az_connstr, account_key) },
		{ "BlobEndpoint", offsetof(struct xfer_az_connstr, blob_endpoint) },
		{ "SharedAccessSignature", offsetof(struct xfer_az_connstr, sas) },
		{ "DefaultEndpointsProtocol", offsetof(struct xfer_az_connstr, protocol) },
		{ "EndpointSuffix", offsetof(struct xfer_az_connstr, suffix) },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].name) == n && !strncasecmp(name, map[i].name, n))
			return (char **)((char *)c + map[i].off);
	return NULL;
}

static void azkey_trim(const char **p, size_t *n)
{
	while (*n && isspace((unsigned char)**p))
		(*p)++, (*n)--;
	while (*n && isspace((unsigned char)(*p)[*n - 1]))
		(*n)--;
}

/* One "Key = Value" part of length n (blanks around both trimmed); 0 or -1. */
static int azkey_conn_part(struct xfer_az_connstr *c, const char *p, size_t n)
{
	const char *eq, *v;
	char **field;
	size_t kn, vn;

	azkey_trim(&p, &n);
	if (!n)
		return 0;
	if (!(eq = memchr(p, '=', n)) || eq == p)
		return -1;
	kn = (size_t)(eq - p);
	v = eq + 1;
	vn = n - kn - 1;
	azkey_trim(&p, &kn);
	azkey_trim(&v, &vn);
	if (!(field = azkey_conn_field(c, p, kn)))
		return 0;
	if (field == &c->sas && vn && *v == '?')
		v++, vn--;
	if (*field) {
		OPENSSL_cleanse(*field, strlen(*field));
		free(*field);
	}
	return (*field = strndup(v, vn)) ? 0 : -1;
}

int xfer_az_connstr_parse(const char *s, struct xfer_az_connstr *out)
{
	memset(out, 0, sizeof(*out));
	while (s && *s) {
		const char *semi = strchr(s, ';');
		size_t n = semi ? (size_t)(semi - s) : strlen(s);
		if (azkey_conn_part(out, s, n))
			return -1;
		s = semi ? semi + 1 : NULL;
	}
	return 0;
}

static void azkey_free_secret(char *s)
{
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void xfer_az_connstr_free(struct xfer_az_connstr *c)
{
	if (!c)
		return;
	azkey_free_secret(c->account_key);
	azkey_free_secret(c->sas);
	free(c->account_name);
	free(c->blob_endpoint);
	free(c->protocol);
	free(c->suffix);
	memset(c, 0, sizeof(*c));
}
