/*
 * creds.c - credential providers for the S3 backend (see creds.h for the
 * chain and its order): environment, STS web identity, the shared
 * credentials/config files (a small INI reader), EC2 IMDSv2 and the GCE
 * metadata token.  Network sources go through http.c with short timeouts
 * and few tries, so a machine outside any cloud falls through quickly.
 * Failures of one source are debug lines; only "none found" is an error.
 */
#include "creds.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "awsxml.h"
#include "http.h"
#include "log.h"
#include "sigv4.h"

#define CREDS_REFRESH_MARGIN 300	/* seconds before expiry */
#define CREDS_FOUND 0
#define CREDS_NONE (-1)			/* this source has nothing; try the next */

struct xfer_creds_src {
	enum xfer_creds_kind kind;
	char label[16];
	pthread_mutex_t lock;
	struct xfer_creds cur;
	int have;
	struct xfer_http *http;
};

static const char *creds_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static void creds_set(struct xfer_creds *c, const char *ak, const char *sk, const char *tok,
		      const char *source)
{
	snprintf(c->access_key, sizeof(c->access_key), "%s", ak);
	snprintf(c->secret_key, sizeof(c->secret_key), "%s", sk);
	snprintf(c->token, sizeof(c->token), "%s", tok ? tok : "");
	snprintf(c->source, sizeof(c->source), "%s", source);
}

void xfer_creds_wipe(struct xfer_creds *c)
{
	if (c)
		OPENSSL_cleanse(c, sizeof(*c));
}

/* "2024-05-17T15:30:05Z" (fractions ignored) -> epoch; 0 when unreadable. */
static time_t creds_iso8601(const char *s)
{
	struct tm tm = { 0 };

	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return timegm(&tm);
}

/* ---- shared files ---- */

static char *creds_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Path from an env override or ~/.aws/<name>; "" when neither is known. */
static void creds_file_path(const char *env, const char *name, char *buf, size_t n)
{
	const char *v = creds_env(env), *home = creds_env("HOME");

	if (v)
		snprintf(buf, n, "%s", v);
	else if (home)
		snprintf(buf, n, "%s/.aws/%s", home, name);
	else
		buf[0] = '\0';
}

/* Reads key from [section] of an INI file into val; 0 if found. */
static int creds_ini_get(const char *path, const char *section, const char *key, char *val, size_t n)
{
	FILE *f = path[0] ? fopen(path, "r") : NULL;
	char line[8192];
	int in = 0, rc = -1;

	if (!f)
		return -1;
	while (rc && fgets(line, sizeof(line), f)) {
		char *s = creds_trim(line), *eq;
		if (*s == '#' || *s == ';' || !*s)
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (end)
				*end = '\0';
			in = !strcmp(creds_trim(s + 1), section);
			continue;
		}
		if (!in || !(eq = strchr(s, '=')))
			continue;
		*eq = '\0';
		if (!strcmp(creds_trim(s), key)) {
			snprintf(val, n, "%s", creds_trim(eq + 1));
			rc = 0;
		}
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return rc;
}

static const char *creds_profile(void)
{
	const char *p = creds_env("AWS_PROFILE");

	return p ? p : "default";
}

/* key from the credentials file [profile], else the config file [profile X]/[default]. */
static int creds_profile_get(const char *key, char *val, size_t n)
{
	char cred[4096], conf[4096], section[300];
	const char *prof = creds_profile();

	creds_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", cred, sizeof(cred));
	creds_file_path("AWS_CONFIG_FILE", "config", conf, sizeof(conf));
	if (!creds_ini_get(cred, prof, key, val, n))
		return 0;
	if (!strcmp(prof, "default") && !creds_ini_get(conf, "default", key, val, n))
		return 0;
	snprintf(section, sizeof(section), "profile %s", prof);
	return creds_ini_get(conf, section, key, val, n);
}

static int creds_from_profile(struct xfer_creds *c)
{
	char ak[128], sk[256], tok[4096], src[64];
	int rc = CREDS_NONE;

	if (creds_profile_get("aws_access_key_id", ak, sizeof(ak)) ||
	    creds_profile_get("aws_secret_access_key", sk, sizeof(sk)))
		goto out;
	if (creds_profile_get("aws_session_token", tok, sizeof(tok)))
		tok[0] = '\0';
	snprintf(src, sizeof(src), "profile '%.40s'", creds_profile());
	creds_set(c, ak, sk, tok, src);
	rc = CREDS_FOUND;
out:
	OPENSSL_cleanse(sk, sizeof(sk));
	OPENSSL_cleanse(tok, sizeof(tok));
	return rc;
}

void xfer_creds_region(char *buf, size_t n)
{
	const char *r = creds_env("AWS_REGION");

	if (!r)
		r = creds_env("AWS_DEFAULT_REGION");
	if (r) {
		snprintf(buf, n, "%s", r);
		return;
	}
	if (creds_profile_get("region", buf, n) || !buf[0])
		snprintf(buf, n, "us-east-1");
}

/* ---- environment ---- */

static int creds_from_env(struct xfer_creds *c, const char *ak_name, const char *sk_name,
			  const char *tok_name)
{
	const char *ak = creds_env(ak_name), *sk = creds_env(sk_name);

	if (!ak || !sk)
		return CREDS_NONE;
	creds_set(c, ak, sk, tok_name ? creds_env(tok_name) : NULL, "environment");
	return CREDS_FOUND;
}

/* ---- HTTP helpers for the network sources ---- */

struct creds_hdrs {
	const char *h[3];
};

static int creds_prepare(struct xfer_http_req *req)
{
	const struct creds_hdrs *hd = req->user;

	for (int i = 0; hd && i < 3 && hd->h[i]; i++)
		req->headers = curl_slist_append(req->headers, hd->h[i]);
	return 0;
}

/* One metadata/STS call; returns the 2xx body (malloc'd) or NULL. */
static char *creds_fetch(struct xfer_creds_src *src, const char *method, const char *url,
			 const struct creds_hdrs *hd, const char *body, long connect_ms, int tries)
{
	struct xfer_http_req req = { 0 };
	char why[300];
	char *out = NULL;

	req.method = method;
	req.url = url;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.max_body = 256 * 1024;
	req.prepare = creds_prepare;
	req.user = (void *)hd;
	req.connect_ms = connect_ms;
	req.total_ms = 10000;
	req.tries = tries;
	if (xfer_http_perform(src->http, &req) == 0 && xfer_http_ok(&req)) {
		out = req.resp;
		req.resp = NULL;
	} else {
		log_debug("%s: credentials: %s %s: %s", src->label, method, url,
			  xfer_http_reason(&req, why, sizeof(why)));
	}
	if (req.resp)
		OPENSSL_cleanse(req.resp, req.resp_len);
	xfer_http_req_cleanup(&req);
	return out;
}

static void creds_free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* ---- IMDSv2 ---- */

static int creds_imds_json(struct xfer_creds *c, const char *body)
{
	json_t *j = json_loads(body, 0, NULL);
	const char *ak, *sk, *tok, *exp;
	int rc = CREDS_NONE;

	if (!j)
		return CREDS_NONE;
	ak = json_string_value(json_object_get(j, "AccessKeyId"));
	sk = json_string_value(json_object_get(j, "SecretAccessKey"));
	tok = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	if (ak && sk) {
		creds_set(c, ak, sk, tok, "instance metadata (IMDSv2)");
		c->expires = creds_iso8601(exp);
		rc = CREDS_FOUND;
	}
	json_decref(j);
	return rc;
}

static int creds_from_imds(struct xfer_creds_src *src, struct xfer_creds *c)
{
	const char *ep = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *off = creds_env("AWS_EC2_METADATA_DISABLED");
	char base[900], url[1100], hdr[512], *tok = NULL, *roles = NULL, *body = NULL;
	struct creds_hdrs ttl = { { "X-aws-ec2-metadata-token-ttl-seconds: 21600" } };
	size_t n;
	int rc = CREDS_NONE;

	if (off && !strcasecmp(off, "true"))
		return CREDS_NONE;
	snprintf(base, sizeof(base), "%s", ep ? ep : "http://169.254.169.254");
	while ((n = strlen(base)) && base[n - 1] == '/')
		base[n - 1] = '\0';
	ep = base;
	snprintf(url, sizeof(url), "%s/latest/api/token", ep);
	if (!(tok = creds_fetch(src, "PUT", url, &ttl, NULL, 1000, 2)))
		goto out;
	snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %.400s", creds_trim(tok));
	struct creds_hdrs auth = { { hdr } };
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", ep);
	if (!(roles = creds_fetch(src, "GET", url, &auth, NULL, 1000, 2)))
		goto out;
	roles[strcspn(roles, "\r\n")] = '\0';
	if (!*creds_trim(roles))
		goto out;
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%.100s", ep,
		 creds_trim(roles));
	if ((body = creds_fetch(src, "GET", url, &auth, NULL, 1000, 2)))
		rc = creds_imds_json(c, body);
out:
	OPENSSL_cleanse(hdr, sizeof(hdr));
	creds_free_secret(tok);
	free(roles);
	creds_free_secret(body);
	return rc;
}

/* ---- STS AssumeRoleWithWebIdentity ---- */

static int creds_sts_cb(void *ud, const char *path, const char *text)
{
	struct xfer_creds *c = ud;
	const char *p = "AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials/";
	size_t n = strlen(p);

	if (strncmp(path, p, n))
		return 0;
	if (!strcmp(path + n, "AccessKeyId"))
		snprintf(c->access_key, sizeof(c->access_key), "%s", text);
	else if (!strcmp(path + n, "SecretAccessKey"))
		snprintf(c->secret_key, sizeof(c->secret_key), "%s", text);
	else if (!strcmp(path + n, "SessionToken"))
		snprintf(c->token, sizeof(c->token), "%s", text);
	else if (!strcmp(path + n, "Expiration"))
		c->expires = creds_iso8601(text);
	return 0;
}

static char *creds_sts_body(const char *role, const char *session, const char *token)
{
	char *r = xfer_sigv4_uri_encode(role, 0), *s = xfer_sigv4_uri_encode(session, 0);
	char *t = xfer_sigv4_uri_encode(token, 0), *body = NULL;

	if (r && s && t &&
	    asprintf(&body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s"
			    "&RoleSessionName=%s&WebIdentityToken=%s", r, s, t) < 0)
		body = NULL;
	free(r);
	free(s);
	creds_free_secret(t);
	return body;
}

static int creds_from_web_identity(struct xfer_creds_src *src, struct xfer_creds *c)
{
	const char *file = creds_env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = creds_env("AWS_ROLE_ARN");
	const char *ep = creds_env("AWS_ENDPOINT_URL_STS");
	const char *session = creds_env("AWS_ROLE_SESSION_NAME");
	char url[1024], region[64], tok[16384], sname[64], *body = NULL, *resp = NULL;
	struct creds_hdrs ct = { { "Content-Type: application/x-www-form-urlencoded" } };
	size_t n = 0;
	int rc = CREDS_NONE;
	FILE *f;

	if (!file || !role)
		return CREDS_NONE;
	if (!(f = fopen(file, "r"))) {
		log_debug("%s: credentials: cannot read web identity token file '%s'", src->label, file);
		return CREDS_NONE;
	}
	n = fread(tok, 1, sizeof(tok) - 1, f);
	fclose(f);
	tok[n] = '\0';
	snprintf(sname, sizeof(sname), "spotrun-%ld", (long)getpid());
	xfer_creds_region(region, sizeof(region));
	if (ep)
		snprintf(url, sizeof(url), "%s", ep);
	else
		snprintf(url, sizeof(url), "https://sts.%.60s.amazonaws.com/", region);
	if (!(body = creds_sts_body(role, session ? session : sname, creds_trim(tok))))
		goto out;
	if (!(resp = creds_fetch(src, "POST", url, &ct, body, 5000, 3)))
		goto out;
	memset(c, 0, sizeof(*c));
	if (xfer_awsxml_parse(resp, strlen(resp), creds_sts_cb, c) == 0 && c->access_key[0] &&
	    c->secret_key[0]) {
		snprintf(c->source, sizeof(c->source), "web identity (STS)");
		rc = CREDS_FOUND;
	}
out:
	OPENSSL_cleanse(tok, sizeof(tok));
	creds_free_secret(body);
	creds_free_secret(resp);
	return rc;
}

/* ---- GCE metadata token ---- */

static int creds_from_gce(struct xfer_creds_src *src, struct xfer_creds *c)
{
	const char *host = creds_env("GCE_METADATA_HOST");
	struct creds_hdrs flavor = { { "Metadata-Flavor: Google" } };
	char url[512], *body;
	json_t *j;
	int rc = CREDS_NONE;

	snprintf(url, sizeof(url),
		 "http://%.200s/computeMetadata/v1/instance/service-accounts/default/token",
		 host ? host : "metadata.google.internal");
	if (!(body = creds_fetch(src, "GET", url, &flavor, NULL, 1000, 2)))
		return CREDS_NONE;
	if ((j = json_loads(body, 0, NULL))) {
		const char *at = json_string_value(json_object_get(j, "access_token"));
		json_int_t ttl = json_integer_value(json_object_get(j, "expires_in"));
		if (at && *at) {
			memset(c, 0, sizeof(*c));
			snprintf(c->bearer, sizeof(c->bearer), "%s", at);
			snprintf(c->source, sizeof(c->source), "GCE metadata token");
			c->expires = time(NULL) + (ttl > 0 ? (time_t)ttl : 60);
			rc = CREDS_FOUND;
		}
		json_decref(j);
	}
	creds_free_secret(body);
	return rc;
}

/* ---- the chains ---- */

static int creds_chain_aws(struct xfer_creds_src *src, struct xfer_creds *c)
{
	if (creds_from_env(c, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") == 0)
		return 0;
	if (creds_from_web_identity(src, c) == 0)
		return 0;
	if (creds_from_profile(c) == 0)
		return 0;
	if (creds_from_imds(src, c) == 0)
		return 0;
	return log_fail(EX_CONFIG, "%s: no AWS credentials found (tried environment, web identity, "
			"profile '%s' in the shared files, instance metadata)", src->label,
			creds_profile());
}

static int creds_chain_gcs(struct xfer_creds_src *src, struct xfer_creds *c)
{
	if (creds_from_env(c, "SPOTRUN_GCS_HMAC_ACCESS_ID", "SPOTRUN_GCS_HMAC_SECRET", NULL) == 0 ||
	    creds_from_env(c, "GS_ACCESS_KEY_ID", "GS_SECRET_ACCESS_KEY", NULL) == 0 ||
	    creds_from_env(c, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") == 0)
		return 0;
	if (creds_from_gce(src, c) == 0)
		return 0;
	return log_fail(EX_CONFIG, "%s: no GCS credentials found (tried HMAC keys in "
			"SPOTRUN_GCS_HMAC_ACCESS_ID, GS_ACCESS_KEY_ID, AWS_ACCESS_KEY_ID, and the GCE "
			"metadata server)", src->label);
}

struct xfer_creds_src *xfer_creds_new(enum xfer_creds_kind kind, const char *label)
{
	struct xfer_creds_src *src = calloc(1, sizeof(*src));

	if (!src)
		return NULL;
	src->kind = kind;
	snprintf(src->label, sizeof(src->label), "%s", label);
	pthread_mutex_init(&src->lock, NULL);
	if (!(src->http = xfer_http_new("credentials"))) {
		xfer_creds_free(src);
		return NULL;
	}
	return src;
}

void xfer_creds_free(struct xfer_creds_src *src)
{
	if (!src)
		return;
	xfer_http_free(src->http);
	pthread_mutex_destroy(&src->lock);
	OPENSSL_cleanse(&src->cur, sizeof(src->cur));
	free(src);
}

static int creds_fresh(const struct xfer_creds *c, time_t now)
{
	return !c->expires || now < c->expires - CREDS_REFRESH_MARGIN;
}

int xfer_creds_get(struct xfer_creds_src *src, struct xfer_creds *out)
{
	struct xfer_creds *next = calloc(1, sizeof(*next));
	time_t now = time(NULL);
	int rc = 0;

	if (!next)
		return log_fail(EX_OSERR, "%s: out of memory", src->label);
	pthread_mutex_lock(&src->lock);
	if (!src->have || !creds_fresh(&src->cur, now)) {
		rc = src->kind == XFER_CREDS_GCS ? creds_chain_gcs(src, next) : creds_chain_aws(src, next);
		if (rc == 0) {
			src->cur = *next;
			src->have = 1;
			log_debug("%s: using credentials from %s", src->label, src->cur.source);
		} else if (src->have && now < src->cur.expires) {
			log_warn("%s: could not refresh credentials from %s; using the current ones until "
				 "they expire", src->label, src->cur.source);
			rc = 0;
		}
	}
	if (rc == 0)
		*out = src->cur;
	pthread_mutex_unlock(&src->lock);
	xfer_creds_wipe(next);
	free(next);
	return rc;
}
