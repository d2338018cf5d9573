/*
 * test_azkey.c - table-driven tests of transfer/azkey.c.  The SharedKey
 * cases come from tests/fixtures/azure-sharedkey/cases.json, made by
 * azsign.py (an independent Python implementation of Microsoft's
 * documented algorithm whose requests Azurite accepts in
 * tests/integration/azure.sh): each case is signed here and the string to
 * sign, signature and Authorization value are compared, printing both on a
 * mismatch.  Connection strings and the RFC 1123 date have their own tables.
 */
#include "check.h"

#include <jansson.h>

#include "azkey.h"

#define MAXKV 32

static json_t *load_cases(void)
{
	char path[2048];
	const char *top = getenv("SPOTRUN_TOP");
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/tests/fixtures/azure-sharedkey/cases.json", top ? top : ".");
	if (!(j = json_load_file(path, 0, &err)) || !json_is_array(j))
		CHECK_FAIL("cannot load '%s': %s", path, err.text);
	return j;
}

/* [[name, value], ...] -> kv; returns the count. */
static size_t pairs(json_t *arr, struct xfer_az_kv *kv)
{
	size_t i;
	json_t *p;

	json_array_foreach(arr, i, p) {
		if (i >= MAXKV)
			CHECK_FAIL("too many pairs");
		kv[i].name = json_string_value(json_array_get(p, 0));
		kv[i].value = json_string_value(json_array_get(p, 1));
	}
	return json_array_size(arr);
}

static const char *field(json_t *c, const char *name)
{
	const char *s = json_string_value(json_object_get(c, name));

	if (!s)
		CHECK_FAIL("fixture case lacks '%s'", name);
	return s;
}

static int check_case(json_t *c)
{
	struct xfer_az_kv q[MAXKV], h[MAXKV];
	struct xfer_az_req r = {
		.method = field(c, "method"), .account = field(c, "account"), .path = field(c, "path"),
		.query = q, .nquery = pairs(json_object_get(c, "query"), q),
		.headers = h, .nheaders = pairs(json_object_get(c, "headers"), h),
		.key_b64 = field(c, "key"),
	};
	struct xfer_az_out o;
	int bad = 0;

	if (xfer_az_sign(&r, &o)) {
		fprintf(stderr, "  %s: xfer_az_sign failed\n", field(c, "name"));
		return 1;
	}
	if (strcmp(o.string_to_sign, field(c, "string_to_sign"))) {
		fprintf(stderr, "  %s: string to sign\n    got:      \"%s\"\n    expected: \"%s\"\n",
			field(c, "name"), o.string_to_sign, field(c, "string_to_sign"));
		bad = 1;
	}
	if (strcmp(o.signature, field(c, "signature")) || strcmp(o.authorization, field(c, "authorization"))) {
		fprintf(stderr, "  %s: signature got %s, expected %s\n", field(c, "name"), o.signature,
			field(c, "signature"));
		bad = 1;
	}
	if (strstr(o.string_to_sign, r.key_b64) || strstr(o.authorization, r.key_b64)) {
		fprintf(stderr, "  %s: the key leaked into an output\n", field(c, "name"));
		bad = 1;
	}
	xfer_az_out_free(&o);
	return bad;
}

static void test_fixture_cases(void)
{
	json_t *cases = load_cases(), *c;
	size_t i;
	int bad = 0;

	ASSERT_TRUE(json_array_size(cases) >= 10);
	json_array_foreach(cases, i, c)
		bad += check_case(c);
	json_decref(cases);
	ASSERT_EQ(bad, 0);
}

/* The same request signed twice gives the same answer, and the caller's
 * arrays are left in their order (the signer sorts through indexes). */
static void test_inputs_untouched(void)
{
	struct xfer_az_kv q[] = { { "restype", "container" }, { "comp", "list" } };
	struct xfer_az_kv h[] = { { "x-ms-version", "2021-08-06" }, { "x-ms-date", "x" } };
	struct xfer_az_req r = { "GET", "a", "/c", q, 2, h, 2, "a2V5" };
	struct xfer_az_out o1, o2;

	ASSERT_EQ(xfer_az_sign(&r, &o1), 0);
	ASSERT_EQ(xfer_az_sign(&r, &o2), 0);
	ASSERT_STR_EQ(o1.signature, o2.signature);
	ASSERT_STR_EQ(q[0].name, "restype");
	ASSERT_STR_EQ(h[0].name, "x-ms-version");
	ASSERT_STR_EQ(o1.string_to_sign, "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:x\nx-ms-version:2021-08-06\n"
			  "/a/c\ncomp:list\nrestype:container");
	xfer_az_out_free(&o1);
	xfer_az_out_free(&o2);
}

static void test_bad_inputs_fail(void)
{
	static const char *const keys[] = { "", "abc", "not base64!!", "a2V5=a2V5" };
	struct xfer_az_out o;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct xfer_az_req r = { "GET", "a", "/c", NULL, 0, NULL, 0, keys[i] };
		ASSERT_EQ(xfer_az_sign(&r, &o), -1);
		ASSERT_TRUE(o.authorization == NULL && o.string_to_sign == NULL);
	}
	struct xfer_az_req nop = { "GET", NULL, "/c", NULL, 0, NULL, 0, "a2V5" };
	ASSERT_EQ(xfer_az_sign(&nop, &o), -1);
}

static void test_rfc1123(void)
{
	static const struct { time_t t; const char *want; } cases[] = {
		{ 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
		{ 1255297753, "Sun, 11 Oct 2009 21:49:13 GMT" },
		{ 1796120430, "Tue, 01 Dec 2026 10:20:30 GMT" },
	};
	char buf[40];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xfer_az_rfc1123(cases[i].t, buf, sizeof(buf));
		ASSERT_STR_EQ(buf, cases[i].want);
	}
}

#define NUL_OR(s) ((s) ? (s) : "(none)")

static void test_connection_strings(void)
{
	static const struct {
		const char *in;
		int rc;
		const char *name, *key, *ep, *sas, *proto, *suffix;
	} cases[] = {
		{ "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5PT0=;EndpointSuffix=core.windows.net",
		  0, "acct", "a2V5PT0=", NULL, NULL, "https", "core.windows.net" },
		{ "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8==;"
		  "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
		  0, "devstoreaccount1", "Eby8==", "http://127.0.0.1:10000/devstoreaccount1", NULL, "http", NULL },
		{ "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2019-12-12&ss=b&sig=x%2By%3D",
		  0, NULL, NULL, "https://a.blob.core.windows.net/", "sv=2019-12-12&ss=b&sig=x%2By%3D", NULL, NULL },
		{ " accountname = spaced ; SharedAccessSignature=?sv=1&sig=z ;QueueEndpoint=http://q",
		  0, "spaced", NULL, NULL, "sv=1&sig=z", NULL, NULL },
		{ "AccountName=x;garbage", -1, NULL, NULL, NULL, NULL, NULL, NULL },
		{ "=value", -1, NULL, NULL, NULL, NULL, NULL, NULL },
		{ "", 0, NULL, NULL, NULL, NULL, NULL, NULL },
		{ "AccountName=first;AccountName=second", 0, "second", NULL, NULL, NULL, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xfer_az_connstr c;
		int rc = xfer_az_connstr_parse(cases[i].in, &c);
		ASSERT_EQ(rc, cases[i].rc);
		if (rc == 0) {
			ASSERT_STR_EQ(NUL_OR(c.account_name), NUL_OR(cases[i].name));
			ASSERT_STR_EQ(NUL_OR(c.account_key), NUL_OR(cases[i].key));
			ASSERT_STR_EQ(NUL_OR(c.blob_endpoint), NUL_OR(cases[i].ep));
			ASSERT_STR_EQ(NUL_OR(c.sas), NUL_OR(cases[i].sas));
			ASSERT_STR_EQ(NUL_OR(c.protocol), NUL_OR(cases[i].proto));
			ASSERT_STR_EQ(NUL_OR(c.suffix), NUL_OR(cases[i].suffix));
		}
		xfer_az_connstr_free(&c);
	}
}

static void test_redact_sas(void)
{
	static const char *const cases[][2] = {
		{ "sv=2019-12-12&ss=b&sig=abc%2B%3D&se=x", "sv=2019-12-12&ss=b&sig=REDACTED&se=x" },
		{ "sig=only", "sig=REDACTED" },
		{ "SIG=upper&a=1", "sig=REDACTED&a=1" },
		{ "a=1&&xsig=2&", "a=1&&xsig=2&" },
		{ "", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r = xfer_az_redact_sas(cases[i][0]);
		ASSERT_STR_EQ(r, cases[i][1]);
		free(r);
	}
}

CHECK_MAIN("unit/azkey",
	   CHECK_CASE(test_redact_sas),
	   CHECK_CASE(test_fixture_cases),
	   CHECK_CASE(test_inputs_untouched),
	   CHECK_CASE(test_bad_inputs_fail),
	   CHECK_CASE(test_rfc1123),
	   CHECK_CASE(test_connection_strings))
