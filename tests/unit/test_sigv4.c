/*
 * test_sigv4.c - table-driven tests of transfer/sigv4.c.  Every folder in
 * tests/fixtures/aws-sigv4 (AWS's own SigV4 suite, the cases that apply to
 * S3) is signed twice, as header signing and as query (presigned) signing,
 * and the canonical request, string to sign and signature are compared
 * with AWS's expected files; a mismatch prints both values.  A second
 * oracle, tests/fixtures/s3-botocore, checks an S3 PUT with UNSIGNED-PAYLOAD
 * and a session token against botocore's output.
 */
#include "check.h"

#include <ctype.h>
#include <dirent.h>
#include <strings.h>
#include <jansson.h>

#include "sigv4.h"

#define MAXKV 64

struct tcase {
	char method[16];
	char *uri;			/* encoded path */
	struct xfer_sigv4_kv q[MAXKV];	/* decoded query */
	size_t nq;
	struct xfer_sigv4_kv h[MAXKV];
	size_t nh;
	char *body;
	size_t body_len;
	/* context.json */
	char akid[64], secret[128], region[32], service[32], *token;
	long expires;
	int sign_body, omit_token;
	time_t when;
	char strs[MAXKV * 2][2048];	/* storage for names/values */
	size_t nstrs;
};

static const char *fixture_dir(void)
{
	static char dir[2048];
	const char *top = getenv("SPOTRUN_TOP");

	snprintf(dir, sizeof(dir), "%s/tests/fixtures", top ? top : ".");
	return dir;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f)
		return NULL;
	do {
		if (cap - n < 4096) {
			cap = cap ? 2 * cap : 8192;
			buf = realloc(buf, cap + 1);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char *keep(struct tcase *c, const char *s, size_t n)
{
	char *d = c->strs[c->nstrs++];

	if (n >= sizeof(c->strs[0]))
		n = sizeof(c->strs[0]) - 1;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static void pct_decode(char *s)
{
	char *d = s;

	for (; *s; s++) {
		unsigned int v;
		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
			*d++ = (char)v;
			s += 2;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

static void parse_query(struct tcase *c, char *qs)
{
	for (char *save = NULL, *p = strtok_r(qs, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(p, '=');
		char *name = keep(c, p, eq ? (size_t)(eq - p) : strlen(p));
		char *value = keep(c, eq ? eq + 1 : "", eq ? strlen(eq + 1) : 0);
		pct_decode(name);
		pct_decode(value);
		c->q[c->nq].name = name;
		c->q[c->nq++].value = value;
	}
}

/* request.txt: request line, headers (continuations fold with a space), blank line, body. */
static void parse_request(struct tcase *c, char *txt)
{
	char *line = txt, *next, *path, *sp, *qm;

	next = strchr(line, '\n');
	*next = '\0';
	sp = strchr(line, ' ');
	snprintf(c->method, sizeof(c->method), "%.*s", (int)(sp - line), line);
	path = sp + 1;
	*strrchr(path, ' ') = '\0';
	if ((qm = strchr(path, '?'))) {
		*qm = '\0';
		parse_query(c, qm + 1);
	}
	c->uri = xfer_sigv4_uri_encode(path, 1);
	for (line = next + 1; *line && *line != '\n'; line = next + 1) {
		next = strchr(line, '\n');
		if (!next)
			next = line + strlen(line) - 1;
		else
			*next = '\0';
		if (*line == ' ' || *line == '\t') {
			char *prev = (char *)c->h[c->nh - 1].value;
			snprintf(prev + strlen(prev), 2048 - strlen(prev), " %s", line);
			continue;
		}
		char *colon = strchr(line, ':');
		c->h[c->nh].name = keep(c, line, (size_t)(colon - line));
		c->h[c->nh++].value = keep(c, colon + 1, strlen(colon + 1));
	}
	c->body = *line == '\n' ? line + 1 : line;
	c->body_len = strlen(c->body);
}

static void parse_context(struct tcase *c, const char *path)
{
	json_error_t err;
	json_t *j = json_load_file(path, 0, &err), *cr;
	struct tm tm = { 0 };

	ASSERT_TRUE(j != NULL);
	cr = json_object_get(j, "credentials");
	snprintf(c->akid, sizeof(c->akid), "%s", json_string_value(json_object_get(cr, "access_key_id")));
	snprintf(c->secret, sizeof(c->secret), "%s",
		 json_string_value(json_object_get(cr, "secret_access_key")));
	if (json_object_get(cr, "token"))
		c->token = strdup(json_string_value(json_object_get(cr, "token")));
	snprintf(c->region, sizeof(c->region), "%s", json_string_value(json_object_get(j, "region")));
	snprintf(c->service, sizeof(c->service), "%s", json_string_value(json_object_get(j, "service")));
	c->expires = (long)json_integer_value(json_object_get(j, "expiration_in_seconds"));
	c->sign_body = json_is_true(json_object_get(j, "sign_body"));
	c->omit_token = json_is_true(json_object_get(j, "omit_session_token"));
	strptime(json_string_value(json_object_get(j, "timestamp")), "%Y-%m-%dT%H:%M:%SZ", &tm);
	c->when = timegm(&tm);
	json_decref(j);
}

/* Trailing newlines in the expected files are not part of the value. */
static char *expected(const char *dir, const char *name)
{
	char path[4096];
	char *s;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	s = slurp(path, &n);
	while (s && n && s[n - 1] == '\n')
		s[--n] = '\0';
	return s;
}

static int compare(const char *caseid, const char *what, const char *got, const char *want)
{
	if (got && want && !strcmp(got, want))
		return 0;
	fprintf(stderr, "  %s: %s differs\n    got:\n%s\n    expected:\n%s\n", caseid, what,
		got ? got : "(null)", want ? want : "(null)");
	return 1;
}

static int check_outputs(const char *dir, const char *caseid, const char *mode,
			 const struct xfer_sigv4_out *o)
{
	char name[64];
	char *cr, *sts, *sig;
	int bad = 0;

	snprintf(name, sizeof(name), "%s-canonical-request.txt", mode);
	cr = expected(dir, name);
	snprintf(name, sizeof(name), "%s-string-to-sign.txt", mode);
	sts = expected(dir, name);
	snprintf(name, sizeof(name), "%s-signature.txt", mode);
	sig = expected(dir, name);
	bad |= compare(caseid, "canonical request", o->canonical_request, cr);
	bad |= compare(caseid, "string to sign", o->string_to_sign, sts);
	bad |= compare(caseid, "signature", o->signature, sig);
	free(cr);
	free(sts);
	free(sig);
	return bad;
}

static int sign_header_mode(struct tcase *c, const char *dir, const char *caseid)
{
	struct xfer_sigv4_kv h[MAXKV];
	struct xfer_sigv4_out o;
	char amz[20], hash[65];
	size_t n = c->nh;
	int bad;

	memcpy(h, c->h, n * sizeof(h[0]));
	xfer_sigv4_amz_date(c->when, amz, sizeof(amz));
	xfer_sigv4_sha256_hex(c->body, c->body_len, hash);
	h[n++] = (struct xfer_sigv4_kv){ "X-Amz-Date", amz };
	if (c->token && !c->omit_token)
		h[n++] = (struct xfer_sigv4_kv){ "X-Amz-Security-Token", c->token };
	if (c->sign_body)
		h[n++] = (struct xfer_sigv4_kv){ "X-Amz-Content-Sha256", hash };
	struct xfer_sigv4_req r = { c->method, c->uri, c->q, c->nq, h, n, hash, c->akid, c->secret,
				    c->region, c->service, c->when };
	if (xfer_sigv4_sign(&r, &o))
		return fprintf(stderr, "  %s: sign failed\n", caseid), 1;
	bad = check_outputs(dir, caseid, "header", &o);
	xfer_sigv4_out_free(&o);
	return bad;
}

static int name_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* X-Amz-SignedHeaders for query signing: the lowercased, sorted, unique names. */
static void signed_list(const struct tcase *c, char *out, size_t cap)
{
	const char *names[MAXKV];

	for (size_t i = 0; i < c->nh; i++)
		names[i] = c->h[i].name;
	qsort(names, c->nh, sizeof(names[0]), name_cmp);
	out[0] = '\0';
	for (size_t i = 0; i < c->nh; i++) {
		if (i && !strcasecmp(names[i], names[i - 1]))
			continue;
		size_t k = strlen(out);
		snprintf(out + k, cap - k, "%s%s", k ? ";" : "", names[i]);
		for (char *p = out + k; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
}

static int sign_query_mode(struct tcase *c, const char *dir, const char *caseid)
{
	struct xfer_sigv4_kv q[MAXKV];
	struct xfer_sigv4_out o;
	char amz[20], hash[65], cred[256], exp[32], sh[1024];
	size_t n = c->nq;
	int bad;

	memcpy(q, c->q, n * sizeof(q[0]));
	xfer_sigv4_amz_date(c->when, amz, sizeof(amz));
	xfer_sigv4_sha256_hex(c->body, c->body_len, hash);
	snprintf(cred, sizeof(cred), "%s/%.8s/%s/%s/aws4_request", c->akid, amz, c->region, c->service);
	snprintf(exp, sizeof(exp), "%ld", c->expires);
	signed_list(c, sh, sizeof(sh));
	q[n++] = (struct xfer_sigv4_kv){ "X-Amz-Algorithm", "AWS4-HMAC-SHA256" };
	q[n++] = (struct xfer_sigv4_kv){ "X-Amz-Credential", cred };
	q[n++] = (struct xfer_sigv4_kv){ "X-Amz-Date", amz };
	q[n++] = (struct xfer_sigv4_kv){ "X-Amz-Expires", exp };
	q[n++] = (struct xfer_sigv4_kv){ "X-Amz-SignedHeaders", sh };
	if (c->token && !c->omit_token)
		q[n++] = (struct xfer_sigv4_kv){ "X-Amz-Security-Token", c->token };
	struct xfer_sigv4_req r = { c->method, c->uri, q, n, c->h, c->nh, hash, c->akid, c->secret,
				    c->region, c->service, c->when };
	if (xfer_sigv4_sign(&r, &o))
		return fprintf(stderr, "  %s: sign failed\n", caseid), 1;
	bad = check_outputs(dir, caseid, "query", &o);
	xfer_sigv4_out_free(&o);
	return bad;
}

static int run_case(const char *name)
{
	static struct tcase c;
	char dir[4096], path[4200], caseid[300];
	char *txt;
	int bad = 0;

	memset(&c, 0, sizeof(c));
	snprintf(dir, sizeof(dir), "%s/aws-sigv4/%s", fixture_dir(), name);
	snprintf(path, sizeof(path), "%s/request.txt", dir);
	if (!(txt = slurp(path, NULL)))
		return fprintf(stderr, "  cannot read '%s'\n", path), 1;
	snprintf(path, sizeof(path), "%s/context.json", dir);
	parse_context(&c, path);
	parse_request(&c, txt);
	snprintf(caseid, sizeof(caseid), "%s (header)", name);
	bad |= sign_header_mode(&c, dir, caseid);
	snprintf(caseid, sizeof(caseid), "%s (query)", name);
	bad |= sign_query_mode(&c, dir, caseid);
	free(c.uri);
	free(c.token);
	free(txt);
	return bad;
}

static int name_sort(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One PASS/FAIL line per AWS case; returns the number of failures. */
static int run_aws_suite(void)
{
	char dir[4096], *names[256];
	size_t n = 0;
	int failed = 0;
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof(dir), "%s/aws-sigv4", fixture_dir());
	if (!(d = opendir(dir))) {
		printf("FAIL sigv4/aws-suite: cannot open '%s' (set SPOTRUN_TOP)\n", dir);
		return 1;
	}
	while ((e = readdir(d)) && n < 256)
		if (e->d_name[0] != '.' && e->d_type == DT_DIR)
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_sort);
	if (n < 30)
		failed++, printf("FAIL sigv4/aws-suite: only %zu cases in '%s'\n", n, dir);
	for (size_t i = 0; i < n; i++) {
		fflush(stdout);
		if (run_case(names[i]))
			failed++, printf("FAIL sigv4/aws/%s\n", names[i]);
		else
			printf("PASS sigv4/aws/%s\n", names[i]);
		free(names[i]);
	}
	return failed;
}

/* The botocore oracle: expected.txt holds time, Authorization, canonical request, string to sign. */
static void test_botocore_s3_put_unsigned_payload(void)
{
	char path[4200], *txt, *cr, *sts, *auth, *epoch;
	struct xfer_sigv4_out o;
	char amz[20];
	const char *token = "FQoGZXIvYXdzEXAMPLE//token+with/slashes==";

	snprintf(path, sizeof(path), "%s/s3-botocore/expected.txt", fixture_dir());
	ASSERT_TRUE((txt = slurp(path, NULL)) != NULL);
	epoch = strstr(txt, "epoch=") + 6;
	auth = strstr(txt, "authorization=") + 14;
	*strchr(auth, '\n') = '\0';
	cr = strstr(auth + strlen(auth) + 1, "--- canonical request\n") + 22;
	sts = strstr(cr, "\n--- string to sign\n");
	*sts = '\0';
	sts += 20;
	sts[strcspn(sts, "\0")] = '\0';
	if (sts[strlen(sts) - 1] == '\n')
		sts[strlen(sts) - 1] = '\0';

	time_t when = (time_t)strtoll(epoch, NULL, 10);
	xfer_sigv4_amz_date(when, amz, sizeof(amz));
	struct xfer_sigv4_kv q[] = { { "uploadId", "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA--" },
				     { "partNumber", "7" } };
	struct xfer_sigv4_kv h[] = { { "Host", "examplebucket.s3.eu-west-1.amazonaws.com" },
				     { "Content-Length", "1000" },
				     { "Content-Type", "application/octet-stream" },
				     { "x-amz-content-sha256", XFER_SIGV4_UNSIGNED },
				     { "x-amz-date", amz },
				     { "x-amz-security-token", token } };
	char *uri = xfer_sigv4_uri_encode("/ckpts/job 1/data.tar.zst", 1);
	struct xfer_sigv4_req r = { "PUT", uri, q, 2, h, 6, XFER_SIGV4_UNSIGNED, "AKIDEXAMPLE",
				    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1", "s3", when };
	ASSERT_EQ(xfer_sigv4_sign(&r, &o), 0);
	ASSERT_STR_EQ(o.canonical_request, cr);
	ASSERT_STR_EQ(o.string_to_sign, sts);
	ASSERT_STR_EQ(o.authorization, auth);
	xfer_sigv4_out_free(&o);
	free(uri);
	free(txt);
}

static void test_uri_encode(void)
{
	char *a = xfer_sigv4_uri_encode("a b/c+d=e&f~g.h_i-j/\xe1\x88\xb4", 1);
	char *b = xfer_sigv4_uri_encode("a/b c", 0);

	ASSERT_STR_EQ(a, "a%20b/c%2Bd%3De%26f~g.h_i-j/%E1%88%B4");
	ASSERT_STR_EQ(b, "a%2Fb%20c");
	free(a);
	free(b);
}

static void test_query_sorted_and_encoded(void)
{
	struct xfer_sigv4_kv q[] = { { "prefix", "a b/" }, { "list-type", "2" },
				     { "continuation-token", "1/x+y=" }, { "uploads", "" } };
	char *s = xfer_sigv4_query(q, 4);

	ASSERT_STR_EQ(s, "continuation-token=1%2Fx%2By%3D&list-type=2&prefix=a%20b%2F&uploads=");
	free(s);
	s = xfer_sigv4_query(NULL, 0);
	ASSERT_STR_EQ(s, "");
	free(s);
}

static void test_secret_not_in_outputs(void)
{
	struct xfer_sigv4_kv h[] = { { "host", "h" }, { "x-amz-date", "20150830T123600Z" } };
	struct xfer_sigv4_req r = { "GET", "/", NULL, 0, h, 2, XFER_SIGV4_EMPTY_SHA256, "AKID",
				    "SeCrEtVaLuE123", "us-east-1", "s3", 1440938160 };
	struct xfer_sigv4_out o;

	ASSERT_EQ(xfer_sigv4_sign(&r, &o), 0);
	ASSERT_TRUE(!strstr(o.canonical_request, "SeCrEt"));
	ASSERT_TRUE(!strstr(o.string_to_sign, "SeCrEt"));
	ASSERT_TRUE(!strstr(o.authorization, "SeCrEt"));
	xfer_sigv4_out_free(&o);
	r.secret_key = NULL;
	ASSERT_EQ(xfer_sigv4_sign(&r, &o), -1);
}

static const struct check_case cases[] = {
	CHECK_CASE(test_botocore_s3_put_unsigned_payload),
	CHECK_CASE(test_uri_encode),
	CHECK_CASE(test_query_sorted_and_encoded),
	CHECK_CASE(test_secret_not_in_outputs),
};

int main(void)
{
	int failed = run_aws_suite();

	failed |= check_run("sigv4", cases, sizeof(cases) / sizeof(cases[0]));
	return failed ? 1 : 0;
}
