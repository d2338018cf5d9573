/*
 * azure.c - Azure through the instance metadata service, base URL from
 * SPOTRUN_AZURE_METADATA_ENDPOINT (default http://169.254.169.254); every
 * request carries "Metadata: true".
 *
 * Identity: /metadata/instance/compute?api-version=2021-02-01 (location,
 * zone, vmSize, vmId, priority Spot/Regular, and name: the VM's name as
 * Scheduled Events list it in Resources).
 *
 * Notices: Scheduled Events (/metadata/scheduledevents?api-version=
 * 2020-07-01) polled every poll interval.  The document is examined when
 * its DocumentIncarnation changes; an event counts when its Resources list
 * this VM and its type is one of SPOTRUN_AZURE_ACT_ON (default
 * "Preempt,Terminate"; Freeze, Reboot, Redeploy may be added).  Preempt ->
 * preempt, Terminate -> terminate, the others -> maintenance; deadline =
 * NotBefore (blank once started: now).  Each EventId is delivered once.
 *
 * Acknowledgement: after prov_watch_committed() the thread POSTs
 * {"StartRequests": [{"EventId": ...}]} for every event delivered and not
 * yet acknowledged, letting Azure proceed at once instead of waiting out
 * NotBefore.  The POST is not cut short by prov_watch_stop (it has its own
 * 2 s limit), so a runner that commits and exits still acknowledges.
 */
#include "prov_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define AZ_EVENTS "/metadata/scheduledevents?api-version=2020-07-01"
#define AZ_MAX_EVENTS 16

static int azure_identify(struct prov_src *s, struct prov_identity *id)
{
	struct prov_http h = { 0 };
	char url[700];
	int rc, ok;

	prov_env_base(s->base, sizeof(s->base), "SPOTRUN_AZURE_METADATA_ENDPOINT",
		      "http://169.254.169.254");
	snprintf(url, sizeof(url), "%.500s/metadata/instance/compute?api-version=2021-02-01", s->base);
	h.url = url;
	h.headers[0] = "Metadata: true";
	prov_http_timeouts(s, &h);
	if ((rc = prov_http(s, &h)))
		return rc == -2 ? -1 : 0;
	ok = h.status == 200 &&
	     !prov_azure_parse_compute(h.resp ? h.resp : "", h.resp_len, id, s->name, sizeof(s->name));
	prov_http_free(&h);
	if (ok && !s->name[0])
		log_warn("azure: compute metadata has no VM name: no Scheduled Event will match");
	return ok;
}

struct az_state {
	long long incarnation;
	int seen_doc;
	unsigned mask;
	struct prov_azure_event delivered[AZ_MAX_EVENTS];
	int ndelivered, nacked;
};

static int az_delivered(const struct az_state *st, const char *id)
{
	for (int i = 0; i < st->ndelivered; i++)
		if (!strcmp(st->delivered[i].id, id))
			return 1;
	return 0;
}

/* Sends StartRequests for the delivered events not yet acknowledged. */
static void az_ack(struct prov_src *s, struct az_state *st)
{
	struct prov_http h = { .method = "POST", .no_abort = 1, .connect_ms = 1000, .total_ms = 2000 };
	char url[700], *body;
	int n = st->ndelivered - st->nacked;

	if (n <= 0)
		return;
	if (!(body = prov_azure_ack_body(st->delivered + st->nacked, n)))
		return;
	snprintf(url, sizeof(url), "%.500s" AZ_EVENTS, s->base);
	h.url = url;
	h.body = body;
	h.headers[0] = "Metadata: true";
	h.headers[1] = "Content-Type: application/json";
	if (prov_http(s, &h) == 0 && h.status == 200) {
		log_info("azure: acknowledged %d scheduled event(s)", n);
		st->nacked = st->ndelivered;
	} else {
		log_warn("azure: acknowledging scheduled events failed (HTTP %ld)", h.status);
	}
	prov_http_free(&h);
	free(body);
}

/* One poll: 0 ok, -1 failed, -2 stopped. */
static int az_poll(struct prov_src *s, struct az_state *st)
{
	struct prov_azure_event ev[AZ_MAX_EVENTS];
	struct prov_http h = { 0 };
	char url[700];
	long long inc = 0;
	double now;
	int rc, n;

	snprintf(url, sizeof(url), "%.500s" AZ_EVENTS, s->base);
	h.url = url;
	h.headers[0] = "Metadata: true";
	prov_http_timeouts(s, &h);
	if ((rc = prov_http(s, &h)))
		return rc;
	now = prov_now();
	n = h.status == 200 ? prov_azure_parse_events(h.resp ? h.resp : "", h.resp_len, s->name,
						      st->mask, now, &inc, ev, AZ_MAX_EVENTS)
			    : -1;
	if (n >= 0 && (!st->seen_doc || inc != st->incarnation)) {
		st->seen_doc = 1;
		st->incarnation = inc;
		for (int i = 0; i < n; i++) {
			if (az_delivered(st, ev[i].id) || st->ndelivered >= AZ_MAX_EVENTS)
				continue;
			st->delivered[st->ndelivered++] = ev[i];
			prov_src_notice(s, ev[i].kind, now, ev[i].deadline, h.resp, h.resp_len);
		}
	}
	prov_http_free(&h);
	return n >= 0 ? 0 : -1;
}

static void azure_watch(struct prov_src *s)
{
	const char *act = getenv("SPOTRUN_AZURE_ACT_ON");
	struct az_state st = { .mask = PROV_ACT_PREEMPT | PROV_ACT_TERMINATE };
	int fails = 0, rc;

	if (act && act[0])
		prov_azure_parse_act_on(act, &st.mask); /* validated by prov_config_check */
	for (;;) {
		rc = az_poll(s, &st);
		if (prov_src_ack_wanted(s) && prov_src_take_ack(s))
			az_ack(s, &st);
		if (rc == -2)
			return;
		fails = rc ? fails + 1 : 0;
		if (prov_src_wait(s, s->poll + (fails ? prov_backoff(s, fails, 0.5, 30) : 0))) {
			if (prov_src_ack_wanted(s) && prov_src_take_ack(s))
				az_ack(s, &st);
			return;
		}
	}
}

const struct prov_ops prov_azure_ops = {
	.name = "azure",
	.how = "Scheduled Events (Preempt, Terminate; more with SPOTRUN_AZURE_ACT_ON) polled every "
	       "--poll-interval, deadline NotBefore; acknowledged once the checkpoint is committed",
	.network = 1,
	.identify = azure_identify,
	.watch = azure_watch,
};
