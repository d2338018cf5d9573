/*
 * aws.c - AWS EC2 through the instance metadata service (IMDS), base URL
 * from AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254).
 *
 * IMDSv2 always: a session token from PUT /latest/api/token (TTL 6 h),
 * refreshed when 90% of its life has passed, and fetched anew when a GET
 * answers 401 (expired or revoked).  When the PUT is refused (403/404/405:
 * an IMDSv1-only mock or proxy) plain GETs are used.
 *
 * Identity: instance-id, instance-type, instance-life-cycle,
 * placement/region, placement/availability-zone.  Notices, polled every
 * poll interval (AWS advises 5 s; default 2 s):
 *   spot/instance-action          terminate -> terminate; stop, hibernate ->
 *                                 preempt; deadline = its "time" (hibernate:
 *                                 now), or now + 120 s
 *   events/recommendations/rebalance  -> rebalance (an early push, no exit)
 *   spot/termination-time (legacy)    -> terminate at that time, only while
 *                                 instance-action has not been seen; a
 *                                 value that is not a time is no notice
 * Each distinct payload is delivered once.  Errors and throttling back off
 * exponentially with jitter.
 */
#include "prov_int.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

#define AWS_TOKEN_TTL 21600

static void aws_url(const struct prov_src *s, const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%.500s/latest/%s", s->base, path);
}

/* 1 token held, 0 IMDSv1 fallback, -1 no answer, -2 stopped. */
static int aws_token(struct prov_src *s)
{
	struct prov_http h = { .method = "PUT" };
	char url[700];
	int rc;

	aws_url(s, "api/token", url, sizeof(url));
	h.url = url;
	h.headers[0] = "X-aws-ec2-metadata-token-ttl-seconds: 21600";
	prov_http_timeouts(s, &h);
	if ((rc = prov_http(s, &h)))
		return rc;
	s->token[0] = 0;
	if (h.status == 200 && h.resp_len && h.resp_len < sizeof(s->token) - 64) {
		prov_copy_trim(s->token, sizeof(s->token), h.resp, h.resp_len);
		s->token_exp = prov_mono() + AWS_TOKEN_TTL * 0.9;
		rc = 1;
	} else {
		rc = h.status == 403 || h.status == 404 || h.status == 405 ? 0 : -1;
		s->token_exp = prov_mono() + 60; /* ask again later */
	}
	prov_http_free(&h);
	return rc;
}

/* GET /latest/PATH with the session token: prov_http's result. */
static int aws_get(struct prov_src *s, const char *path, struct prov_http *h)
{
	char url[700], hdr[sizeof(s->token) + 40];
	int rc, tries = 0;

	aws_url(s, path, url, sizeof(url));
	for (;;) {
		if (prov_mono() >= s->token_exp && (rc = aws_token(s)) < 0)
			return rc;
		memset(h, 0, sizeof(*h));
		h->url = url;
		prov_http_timeouts(s, h);
		if (s->token[0]) {
			snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", s->token);
			h->headers[0] = hdr;
		}
		if ((rc = prov_http(s, h)) || h->status != 401 || tries++)
			return rc;
		log_debug("aws: token refused (401), getting a new one");
		prov_http_free(h);
		s->token_exp = 0;
	}
}

/* Copies a text item into dst; 1 when it answered 200. */
static int aws_item(struct prov_src *s, const char *path, char *dst, size_t len)
{
	struct prov_http h;
	int ok = aws_get(s, path, &h) == 0 && h.status == 200;

	if (ok)
		prov_copy_trim(dst, len, h.resp ? h.resp : "", h.resp_len);
	prov_http_free(&h);
	return ok;
}

static int aws_identify(struct prov_src *s, struct prov_identity *id)
{
	int rc;

	prov_env_base(s->base, sizeof(s->base), "AWS_EC2_METADATA_SERVICE_ENDPOINT",
		      "http://169.254.169.254");
	if ((rc = aws_token(s)) == -2)
		return -1;
	if (rc < 0)
		return 0;
	if (!aws_item(s, "meta-data/instance-id", id->instance_id, sizeof(id->instance_id)))
		return prov_src_stopping(s) ? -1 : 0;
	prov_src_claim(s);
	aws_item(s, "meta-data/instance-type", id->instance_type, sizeof(id->instance_type));
	aws_item(s, "meta-data/instance-life-cycle", id->lifecycle, sizeof(id->lifecycle));
	aws_item(s, "meta-data/placement/region", id->region, sizeof(id->region));
	aws_item(s, "meta-data/placement/availability-zone", id->zone, sizeof(id->zone));
	return prov_src_stopping(s) ? -1 : 1;
}

/* Remembers a delivered payload in slot; 1 when it is new. */
static int aws_new(struct prov_src *s, int slot, const struct prov_http *h)
{
	char *last = s->last[slot];
	size_t n = h->resp_len < sizeof(s->last[0]) - 1 ? h->resp_len : sizeof(s->last[0]) - 1;

	if (!strncmp(last, h->resp, n) && last[n] == 0)
		return 0;
	memcpy(last, h->resp, n);
	last[n] = 0;
	return 1;
}

/* One poll of the three items: 0 ok, -1 failed (back off), -2 stopped. */
static int aws_poll(struct prov_src *s, int *seen_action)
{
	struct prov_http h;
	double now, t;
	enum prov_kind kind;
	int rc;

	if ((rc = aws_get(s, "meta-data/spot/instance-action", &h)))
		return rc;
	now = prov_now();
	if (h.status == 200 && h.resp_len && aws_new(s, 0, &h)) {
		if (prov_aws_parse_action(h.resp, h.resp_len, now, &kind, &t) < 0)
			log_warn("aws: spot/instance-action is not JSON; taking it as a terminate notice");
		prov_src_notice(s, kind, now, t, h.resp, h.resp_len);
		*seen_action = 1;
	}
	rc = h.status == 200 || h.status == 404 ? 0 : -1;
	prov_http_free(&h);
	if (aws_get(s, "meta-data/events/recommendations/rebalance", &h) == -2)
		return -2;
	now = prov_now();
	if (h.status == 200 && h.resp_len && aws_new(s, 1, &h)) {
		if (!prov_aws_parse_rebalance(h.resp, h.resp_len, &t))
			log_warn("aws: rebalance recommendation without a noticeTime");
		prov_src_notice(s, PROV_REBALANCE, now, now + PROV_AWS_LEAD, h.resp, h.resp_len);
	}
	prov_http_free(&h);
	if (*seen_action)
		return rc;
	if (aws_get(s, "meta-data/spot/termination-time", &h) == -2)
		return -2;
	if (h.status == 200 && prov_parse_termination_time(h.resp, h.resp_len, &t) && aws_new(s, 2, &h))
		prov_src_notice(s, PROV_TERMINATE, prov_now(), t, h.resp, h.resp_len);
	prov_http_free(&h);
	return rc;
}

static void aws_watch(struct prov_src *s)
{
	int seen_action = 0, fails = 0, rc;

	for (;;) {
		double wait = s->poll;

		if ((rc = aws_poll(s, &seen_action)) == -2)
			return;
		fails = rc ? fails + 1 : 0;
		if (fails) /* throttled or unreachable: exponential backoff with jitter */
			wait += prov_backoff(s, fails, 0.5, 30);
		if (prov_src_wait(s, wait))
			return;
	}
}

const struct prov_ops prov_aws_ops = {
	.name = "aws",
	.how = "IMDS spot/instance-action (2 min notice), events/recommendations/rebalance "
	       "(early push) and legacy spot/termination-time, polled every --poll-interval",
	.network = 1,
	.identify = aws_identify,
	.watch = aws_watch,
};
