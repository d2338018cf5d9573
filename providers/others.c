/*
 * others.c - the providers with little to say: Alibaba Cloud (one polled
 * item), Oracle OCI and IBM Cloud VPC (identity only: neither documents an
 * in-guest notice), RunPod and Vast.ai (identity from their environment
 * variables; RunPod's SIGTERM reaches spotrun as a signal notice).
 *
 * Alibaba: base SPOTRUN_ALIBABA_METADATA_ENDPOINT (default
 *   http://100.100.100.200).  Hardened mode token via PUT /latest/api/token
 *   (X-aliyun-ecs-metadata-token-ttl-seconds), plain GETs when refused.
 *   Identity: meta-data/instance-id, instance/instance-type, region-id,
 *   zone-id.  Notice: meta-data/instance/spot/termination-time, polled; 404
 *   or an empty answer is no notice, a UTC time is a preempt notice with
 *   that time as its deadline.
 * OCI: base SPOTRUN_OCI_METADATA_ENDPOINT (default http://169.254.169.254),
 *   GET /opc/v2/instance/ with "Authorization: Bearer Oracle".
 * IBM: base SPOTRUN_IBM_METADATA_ENDPOINT (default http://169.254.169.254,
 *   the link-local address of api.metadata.cloud.ibm.com, so that probing
 *   needs no DNS): PUT /identity/v1/token?version=2022-03-01 with
 *   "Metadata-Flavor: ibm", then GET /metadata/v1/instance?version=2022-03-01
 *   with the bearer token (availability.class spot/standard).
 */
#include "prov_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- Alibaba ------------------------------------------------------------ */

static void ali_token(struct prov_src *s)
{
	struct prov_http h = { .method = "PUT" };
	char url[700];

	snprintf(url, sizeof(url), "%.500s/latest/api/token", s->base);
	h.url = url;
	h.headers[0] = "X-aliyun-ecs-metadata-token-ttl-seconds: 21600";
	prov_http_timeouts(s, &h);
	s->token[0] = 0;
	s->token_exp = prov_mono() + 21600 * 0.9;
	if (prov_http(s, &h) == 0 && h.status == 200 && h.resp_len < sizeof(s->token) - 64)
		prov_copy_trim(s->token, sizeof(s->token), h.resp ? h.resp : "", h.resp_len);
	else
		s->token_exp = prov_mono() + 60;
	prov_http_free(&h);
}

static int ali_get(struct prov_src *s, const char *path, struct prov_http *h)
{
	char url[700], hdr[sizeof(s->token) + 40];
	int rc;

	if (prov_mono() >= s->token_exp)
		ali_token(s);
	snprintf(url, sizeof(url), "%.500s/latest/meta-data/%s", s->base, path);
	memset(h, 0, sizeof(*h));
	h->url = url;
	prov_http_timeouts(s, h);
	if (s->token[0]) {
		snprintf(hdr, sizeof(hdr), "X-aliyun-ecs-metadata-token: %s", s->token);
		h->headers[0] = hdr;
	}
	rc = prov_http(s, h);
	if (rc == 0 && (h->status == 401 || h->status == 403))
		s->token_exp = 0; /* expired: a new token next time */
	return rc;
}

static int ali_item(struct prov_src *s, const char *path, char *dst, size_t len)
{
	struct prov_http h;
	int ok = ali_get(s, path, &h) == 0 && h.status == 200 && h.resp_len;

	if (ok)
		prov_copy_trim(dst, len, h.resp, h.resp_len);
	prov_http_free(&h);
	return ok;
}

static int ali_identify(struct prov_src *s, struct prov_identity *id)
{
	prov_env_base(s->base, sizeof(s->base), "SPOTRUN_ALIBABA_METADATA_ENDPOINT",
		      "http://100.100.100.200");
	if (!ali_item(s, "instance-id", id->instance_id, sizeof(id->instance_id)))
		return prov_src_stopping(s) ? -1 : 0;
	prov_src_claim(s);
	ali_item(s, "instance/instance-type", id->instance_type, sizeof(id->instance_type));
	ali_item(s, "region-id", id->region, sizeof(id->region));
	ali_item(s, "zone-id", id->zone, sizeof(id->zone));
	return prov_src_stopping(s) ? -1 : 1;
}

static void ali_watch(struct prov_src *s)
{
	struct prov_http h;
	int fails = 0, rc;
	double t;

	for (;;) {
		if ((rc = ali_get(s, "instance/spot/termination-time", &h)) == -2)
			return;
		fails = rc || (h.status != 200 && h.status != 404) ? fails + 1 : 0;
		if (rc == 0 && h.status == 200 && prov_parse_termination_time(h.resp, h.resp_len, &t) &&
		    strcmp(s->last[0], h.resp)) {
			snprintf(s->last[0], sizeof(s->last[0]), "%.500s", h.resp);
			prov_src_notice(s, PROV_PREEMPT, prov_now(), t, h.resp, h.resp_len);
		}
		prov_http_free(&h);
		if (prov_src_wait(s, s->poll + (fails ? prov_backoff(s, fails, 0.5, 30) : 0)))
			return;
	}
}

const struct prov_ops prov_alibaba_ops = {
	.name = "alibaba",
	.how = "metadata instance/spot/termination-time polled every --poll-interval, deadline "
	       "= that time",
	.network = 1,
	.identify = ali_identify,
	.watch = ali_watch,
};

/* ---- OCI ------------------------------------------------------------------ */

static int oci_identify(struct prov_src *s, struct prov_identity *id)
{
	struct prov_http h = { 0 };
	char url[700];
	int rc, ok;

	prov_env_base(s->base, sizeof(s->base), "SPOTRUN_OCI_METADATA_ENDPOINT",
		      "http://169.254.169.254");
	snprintf(url, sizeof(url), "%.500s/opc/v2/instance/", s->base);
	h.url = url;
	h.headers[0] = "Authorization: Bearer Oracle";
	prov_http_timeouts(s, &h);
	if ((rc = prov_http(s, &h)))
		return rc == -2 ? -1 : 0;
	ok = h.status == 200 && !prov_oci_parse_instance(h.resp ? h.resp : "", h.resp_len, id);
	prov_http_free(&h);
	return ok;
}

const struct prov_ops prov_oci_ops = {
	.name = "oci",
	.how = "no in-guest notice exists (OCI announces preemption only through its Events "
	       "service); a SIGTERM to spotrun at shutdown still counts as a notice",
	.network = 1,
	.identify = oci_identify,
};

/* ---- IBM ------------------------------------------------------------------ */

static int ibm_identify(struct prov_src *s, struct prov_identity *id)
{
	struct prov_http h = { .method = "PUT", .body = "{\"expires_in\": 300}" };
	char url[700], auth[sizeof(s->token) + 40];
	int rc, ok;

	prov_env_base(s->base, sizeof(s->base), "SPOTRUN_IBM_METADATA_ENDPOINT",
		      "http://169.254.169.254");
	snprintf(url, sizeof(url), "%.500s/identity/v1/token?version=2022-03-01", s->base);
	h.url = url;
	h.headers[0] = "Metadata-Flavor: ibm";
	h.headers[1] = "Content-Type: application/json";
	prov_http_timeouts(s, &h);
	if ((rc = prov_http(s, &h)))
		return rc == -2 ? -1 : 0;
	ok = h.status == 200 &&
	     !prov_ibm_parse_token(h.resp ? h.resp : "", h.resp_len, s->token, sizeof(s->token));
	prov_http_free(&h);
	if (!ok)
		return 0;
	prov_src_claim(s);
	memset(&h, 0, sizeof(h));
	snprintf(url, sizeof(url), "%.500s/metadata/v1/instance?version=2022-03-01", s->base);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->token);
	h.url = url;
	h.headers[0] = auth;
	prov_http_timeouts(s, &h);
	if ((rc = prov_http(s, &h)))
		return rc == -2 ? -1 : 0;
	ok = h.status == 200 && !prov_ibm_parse_instance(h.resp ? h.resp : "", h.resp_len, id);
	prov_http_free(&h);
	return ok;
}

const struct prov_ops prov_ibm_ops = {
	.name = "ibm",
	.how = "no in-guest notice exists (IBM shuts the guest OS down after a best-effort 30 s: "
	       "the SIGTERM to spotrun counts as a notice)",
	.network = 1,
	.identify = ibm_identify,
};

/* ---- RunPod and Vast.ai: environment only ---------------------------------- */

static void env_copy(char *dst, size_t len, const char *var)
{
	const char *v = getenv(var);

	prov_copy_trim(dst, len, v ? v : "", v ? strlen(v) : 0);
}

static int runpod_identify(struct prov_src *s, struct prov_identity *id)
{
	const char *pod = getenv("RUNPOD_POD_ID");

	env_copy(id->instance_id, sizeof(id->instance_id), "RUNPOD_POD_ID");
	env_copy(id->region, sizeof(id->region), "RUNPOD_DC_ID");
	return pod && pod[0];
}

const struct prov_ops prov_runpod_ops = {
	.name = "runpod",
	.how = "no endpoint: RunPod sends SIGTERM 5 s before SIGKILL, which spotrun takes as a "
	       "notice",
	.identify = runpod_identify,
};

static int vast_identify(struct prov_src *s, struct prov_identity *id)
{
	const char *label = getenv("VAST_CONTAINERLABEL");

	env_copy(id->instance_id, sizeof(id->instance_id), "CONTAINER_ID");
	if (!id->instance_id[0])
		env_copy(id->instance_id, sizeof(id->instance_id), "VAST_CONTAINERLABEL");
	return label && label[0];
}

const struct prov_ops prov_vast_ops = {
	.name = "vast",
	.how = "no in-guest notice exists (an interruptible instance is stopped without warning)",
	.identify = vast_identify,
};
