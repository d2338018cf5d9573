/*
 * creds.h - private to transfer/: where the S3 backend gets credentials.
 *
 * AWS chain (the order of botocore's default chain, first hit wins):
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (+ AWS_ROLE_SESSION_NAME) through STS AssumeRoleWithWebIdentity at
 *      AWS_ENDPOINT_URL_STS, default https://sts.<region>.amazonaws.com
 *   3. shared files: profile AWS_PROFILE (default "default") in
 *      AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), then
 *      AWS_CONFIG_FILE (~/.aws/config, section "profile NAME")
 *   4. EC2 instance role through IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT
 *      (default http://169.254.169.254; 1 s connect timeout; skipped when
 *      AWS_EC2_METADATA_DISABLED=true)
 * GCS chain: HMAC keys from SPOTRUN_GCS_HMAC_ACCESS_ID/SPOTRUN_GCS_HMAC_SECRET,
 * then GS_ACCESS_KEY_ID/GS_SECRET_ACCESS_KEY (boto's names), then
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; else an OAuth access token from
 * the GCE metadata server at GCE_METADATA_HOST (default
 * metadata.google.internal), sent as a Bearer token.
 *
 * Credentials that expire (STS, IMDS, GCE token) are cached and fetched
 * again 5 minutes before they expire.  A source is thread-safe.  Secrets
 * stay in struct xfer_creds and are never logged; wipe copies after use.
 */
#ifndef SPOTRUN_XFER_CREDS_H
#define SPOTRUN_XFER_CREDS_H

#include <stddef.h>
#include <time.h>

enum xfer_creds_kind { XFER_CREDS_AWS, XFER_CREDS_GCS };

struct xfer_creds {
	char access_key[128];
	char secret_key[256];
	char token[4096];	/* session token, "" if none */
	char bearer[4096];	/* OAuth access token (GCS), "" when keys are used */
	time_t expires;		/* 0: does not expire */
	char source[64];	/* where they came from, for messages: "environment", ... */
};

struct xfer_creds_src;

/* label prefixes messages ("s3", "gs").  NULL when out of memory. */
struct xfer_creds_src *xfer_creds_new(enum xfer_creds_kind kind, const char *label);
void xfer_creds_free(struct xfer_creds_src *src);
/* Copies current credentials into *out, fetching or refreshing as needed.
 * 0, or an EX_* code already logged (EX_CONFIG: none found). */
int xfer_creds_get(struct xfer_creds_src *src, struct xfer_creds *out);
/* Zeroes a copy. */
void xfer_creds_wipe(struct xfer_creds *c);
/* AWS region: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, us-east-1. */
void xfer_creds_region(char *buf, size_t n);

#endif
