/*
 * gcp.c - Google Compute Engine through its metadata server, host from
 * GCE_METADATA_HOST (host[:port], default metadata.google.internal), paths
 * under /computeMetadata/v1/.  Every request carries
 * "Metadata-Flavor: Google" and an answer counts only when it carries the
 * same header back (that is how a GCE metadata server is recognised).
 * HTTP 503 (the server is briefly away during maintenance) and transport
 * errors are retried with exponential backoff and jitter.
 *
 * Identity: instance/zone (region = zone minus its last "-x"),
 * instance/machine-type (text after the last '/'), instance/id,
 * instance/scheduling/provisioning-model (SPOT -> spot) or, for older
 * preemptible VMs, instance/scheduling/preemptible (TRUE -> preemptible).
 *
 * Notices: two hanging GETs, each in its own thread:
 *   instance/preempted         TRUE -> preempt, deadline now + 30 s
 *   instance/maintenance-event TERMINATE_ON_HOST_MAINTENANCE -> maintenance,
 *                              deadline now + 60 s (the value changes 60 s
 *                              before the maintenance)
 * The first GET reads the value and its ETag; then
 * ?wait_for_change=true&timeout_sec=60&last_etag=ETAG hangs until the value
 * changes or the timeout passes, and is re-armed with the newest ETag, so
 * no change is missed between two calls.  Without an ETag it polls.
 */
#include "prov_int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define GCP_WAIT_SEC 60

/* One GET with 503/transport retries: prov_http's result; the answer is
 * only kept when it carries Metadata-Flavor: Google. */
static int gcp_get(struct prov_src *s, const char *path, const char *query, long total_ms,
		   struct prov_http *h)
{
	char url[1400];
	int rc, tries = s->quick ? 3 : 6;

	snprintf(url, sizeof(url), "%.500s/computeMetadata/v1/%.200s%s%.600s", s->base, path,
		 query ? "?" : "", query ? query : "");
	for (int attempt = 0;; attempt++) {
		memset(h, 0, sizeof(*h));
		h->url = url;
		h->headers[0] = "Metadata-Flavor: Google";
		prov_http_timeouts(s, h);
		if (total_ms)
			h->total_ms = total_ms;
		rc = prov_http(s, h);
		if (rc == -2 || (rc == 0 && h->status != 503) || attempt + 1 >= tries)
			break;
		prov_http_free(h);
		log_debug("gcp: %s: %s, retrying", path, rc ? "no answer" : "503");
		if (prov_src_wait(s, s->quick ? prov_backoff(s, attempt, 0.02, 0.05)
					      : prov_backoff(s, attempt, 0.2, 5)))
			return -2;
	}
	if (rc == 0 && h->status == 200 && strcmp(h->flavor, "Google")) {
		log_debug("gcp: %s answered without Metadata-Flavor: Google", path);
		h->status = 0;
	}
	return rc;
}

/* Copies a 200 answer's text into dst (last path segment when seg). */
static int gcp_item(struct prov_src *s, const char *path, char *dst, size_t len, int seg)
{
	struct prov_http h;
	int ok = gcp_get(s, path, NULL, 0, &h) == 0 && h.status == 200;

	if (ok && seg)
		prov_last_segment(h.resp ? h.resp : "", h.resp_len, dst, len);
	else if (ok)
		prov_copy_trim(dst, len, h.resp ? h.resp : "", h.resp_len);
	prov_http_free(&h);
	return ok;
}

static void gcp_lifecycle(struct prov_src *s, struct prov_identity *id)
{
	char v[32] = "";

	if (gcp_item(s, "instance/scheduling/provisioning-model", v, sizeof(v), 0) && v[0]) {
		snprintf(id->lifecycle, sizeof(id->lifecycle), "%s",
			 !strcmp(v, "SPOT") ? "spot" : "on-demand");
		return;
	}
	if (gcp_item(s, "instance/scheduling/preemptible", v, sizeof(v), 0))
		snprintf(id->lifecycle, sizeof(id->lifecycle), "%s",
			 prov_gcp_parse_bool(v, strlen(v)) == 1 ? "preemptible" : "on-demand");
}

static int gcp_identify(struct prov_src *s, struct prov_identity *id)
{
	const char *host = getenv("GCE_METADATA_HOST");

	snprintf(s->base, sizeof(s->base), "http://%.400s",
		 host && host[0] ? host : "metadata.google.internal");
	if (!gcp_item(s, "instance/zone", id->zone, sizeof(id->zone), 1))
		return prov_src_stopping(s) ? -1 : 0;
	prov_src_claim(s);
	prov_region_from_zone(id->zone, id->region, sizeof(id->region));
	gcp_item(s, "instance/machine-type", id->instance_type, sizeof(id->instance_type), 1);
	gcp_item(s, "instance/id", id->instance_id, sizeof(id->instance_id), 0);
	gcp_lifecycle(s, id);
	return prov_src_stopping(s) ? -1 : 1;
}

/* Evaluates one answer of key; *fired keeps a value from firing twice. */
static void gcp_eval(struct prov_src *s, int maint, const struct prov_http *h, int *fired)
{
	int on = maint ? prov_gcp_parse_maintenance(h->resp, h->resp_len)
		       : prov_gcp_parse_bool(h->resp, h->resp_len) == 1;
	double now = prov_now();

	if (on && !*fired)
		prov_src_notice(s, maint ? PROV_MAINTENANCE : PROV_PREEMPT, now,
				now + (maint ? PROV_GCP_MAINT_LEAD : PROV_GCP_LEAD), h->resp, h->resp_len);
	*fired = on;
}

static void gcp_watch_key(struct prov_src *s, const char *key, int maint)
{
	char etag[128] = "", query[600];
	int fired = 0, fails = 0, rc;
	struct prov_http h;

	for (;;) {
		char *esc = etag[0] ? curl_easy_escape(NULL, etag, 0) : NULL;

		snprintf(query, sizeof(query), "wait_for_change=true&timeout_sec=%d&last_etag=%.400s",
			 GCP_WAIT_SEC, esc ? esc : "");
		curl_free(esc);
		rc = gcp_get(s, key, etag[0] ? query : NULL, etag[0] ? (GCP_WAIT_SEC + 15) * 1000L : 0, &h);
		if (rc == -2)
			return;
		if (rc == 0 && h.status == 200) {
			fails = 0;
			gcp_eval(s, maint, &h, &fired);
			snprintf(etag, sizeof(etag), "%s", h.etag);
		} else {
			fails++;
			etag[0] = 0; /* start over with a plain GET */
		}
		prov_http_free(&h);
		if (fails && prov_src_wait(s, s->poll + prov_backoff(s, fails, 0.5, 30)))
			return;
		if (!fails && !etag[0] && prov_src_wait(s, s->poll)) /* no ETag: poll */
			return;
	}
}

static void gcp_watch_maintenance(struct prov_src *s)
{
	gcp_watch_key(s, "instance/maintenance-event", 1);
}

static void gcp_watch(struct prov_src *s)
{
	if (prov_src_spawn(s, gcp_watch_maintenance))
		log_warn("gcp: cannot watch instance/maintenance-event");
	gcp_watch_key(s, "instance/preempted", 0);
}

const struct prov_ops prov_gcp_ops = {
	.name = "gcp",
	.how = "metadata instance/preempted (deadline +30 s) and instance/maintenance-event "
	       "(+60 s), hanging GETs with wait_for_change and last_etag",
	.network = 1,
	.identify = gcp_identify,
	.watch = gcp_watch,
};
