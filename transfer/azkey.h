/*
 * azkey.h - private to transfer/: Azure Storage SharedKey signing and
 * connection-string parsing as pure functions.  Nothing here touches the
 * network, the clock or the environment: the Azure Blob backend (az.c)
 * passes every input and gets back the string to sign, the signature and
 * the Authorization header value.  Table-tested in tests/unit/test_azkey.c
 * against tests/fixtures/azure-sharedkey (made by an independent Python
 * implementation of Microsoft's documented algorithm).
 *
 * SharedKey for the Blob service (versions 2009-09-19 and later):
 *   StringToSign = VERB \n Content-Encoding \n Content-Language \n
 *     Content-Length \n Content-MD5 \n Content-Type \n Date \n
 *     If-Modified-Since \n If-Match \n If-None-Match \n
 *     If-Unmodified-Since \n Range \n CanonicalizedHeaders
 *     CanonicalizedResource
 *   - standard headers are looked up case-insensitively; a missing one is
 *     "", and Content-Length "0" is also "" (an empty body);
 *   - CanonicalizedHeaders: every x-ms-* header, name lowercased, sorted by
 *     name, value trimmed with line folds replaced by one space,
 *     "name:value\n" each (duplicates joined with ',' in the order given);
 *   - CanonicalizedResource: "/" account path, then for each query
 *     parameter sorted by lowercased name "\nname:value" (values decoded;
 *     several values of one name sorted and joined with ',').
 *   Signature = Base64(HMAC-SHA256(Base64Decode(key), StringToSign)),
 *   Authorization = "SharedKey account:signature".
 *
 * Strings returned in struct xfer_az_out are malloc'd; free them with
 * xfer_az_out_free().  The key is never copied into the outputs.
 */
#ifndef SPOTRUN_XFER_AZKEY_H
#define SPOTRUN_XFER_AZKEY_H

#include <stddef.h>
#include <time.h>

struct xfer_az_kv {
	const char *name;
	const char *value;
};

struct xfer_az_req {
	const char *method;			/* "GET", "PUT", ... */
	const char *account;			/* storage account name */
	const char *path;			/* URL path as sent (encoded), starts with '/' */
	const struct xfer_az_kv *query;		/* decoded names/values */
	size_t nquery;
	const struct xfer_az_kv *headers;	/* the request's headers */
	size_t nheaders;
	const char *key_b64;			/* the account key, Base64 */
};

struct xfer_az_out {
	char *string_to_sign;
	char signature[64];			/* Base64 of 32 bytes */
	char *authorization;			/* "SharedKey account:signature" */
};

/* Signs req; 0, or -1 when out of memory, an input is missing or the key
 * is not valid Base64. */
int xfer_az_sign(const struct xfer_az_req *req, struct xfer_az_out *out);
void xfer_az_out_free(struct xfer_az_out *out);

/* "Sun, 11 Oct 2009 21:49:13 GMT" for t, independent of the locale. */
void xfer_az_rfc1123(time_t t, char *buf, size_t n);

/* A copy of a SAS token for log lines: every "sig=" value replaced by
 * "REDACTED".  malloc'd, NULL when out of memory. */
char *xfer_az_redact_sas(const char *sas);

/* The fields of an Azure Storage connection string
 * ("Key=Value;Key=Value", keys case-insensitive, a value may contain '=').
 * Each field is malloc'd or NULL when absent. */
struct xfer_az_connstr {
	char *account_name;		/* AccountName */
	char *account_key;		/* AccountKey (secret) */
	char *blob_endpoint;		/* BlobEndpoint */
	char *sas;			/* SharedAccessSignature (secret), without '?' */
	char *protocol;			/* DefaultEndpointsProtocol */
	char *suffix;			/* EndpointSuffix */
};

/* Parses s into *out; 0, or -1 when malformed (a part without '=') or out
 * of memory.  Unknown keys are ignored.  *out is cleared first and must
 * be freed with xfer_az_connstr_free() either way. */
int xfer_az_connstr_parse(const char *s, struct xfer_az_connstr *out);
/* Wipes the secrets and frees; accepts a zeroed struct. */
void xfer_az_connstr_free(struct xfer_az_connstr *c);

#endif
