/*
 * notice.c - the normalized interruption event: construction, kind names,
 * and its JSON form (written to SPOTRUN_NOTICE_FILE, the log and the
 * store).  One schema for every provider and scheduler.  "raw" is the
 * payload parsed as JSON when it is JSON (else a string); "raw_text" is the
 * payload exactly as received, byte for byte.
 */
#include "provider.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const prov_kinds[] = { "preempt", "terminate", "rebalance", "maintenance",
					  "scheduler" };

double prov_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *prov_kind_name(enum prov_kind k)
{
	return (unsigned)k < sizeof(prov_kinds) / sizeof(prov_kinds[0]) ? prov_kinds[k] : "unknown";
}

int prov_kind_parse(const char *s, enum prov_kind *out)
{
	for (size_t i = 0; i < sizeof(prov_kinds) / sizeof(prov_kinds[0]); i++) {
		if (!strcmp(s, prov_kinds[i])) {
			*out = (enum prov_kind)i;
			return 0;
		}
	}
	return -1;
}

void prov_notice_make(struct prov_notice *n, const char *source, enum prov_kind kind, double budget)
{
	memset(n, 0, sizeof(*n));
	strncpy(n->source, source, sizeof(n->source) - 1);
	n->kind = kind;
	n->received = prov_now();
	n->deadline = n->received + budget;
}

void prov_notice_clear(struct prov_notice *n)
{
	free(n->raw);
	n->raw = NULL;
}

static void prov_iso_time(double t, char *buf, size_t len)
{
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t k = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, len - k, ".%03dZ", (int)((t - (double)s) * 1000) % 1000);
}

static json_t *prov_identity_json(const struct prov_identity *id)
{
	if (!id || !id->provider[0])
		return json_null();
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "provider", id->provider, "region",
			 id->region, "zone", id->zone, "instance_type", id->instance_type,
			 "instance_id", id->instance_id, "lifecycle", id->lifecycle, "scheduler",
			 id->scheduler);
}

static char *prov_notice_dump(const struct prov_notice *n, const struct prov_identity *id,
			      size_t flags)
{
	char recv[40], dl[40];
	json_t *o, *raw;
	char *s;

	prov_iso_time(n->received, recv, sizeof(recv));
	prov_iso_time(n->deadline, dl, sizeof(dl));
	raw = n->raw ? json_loads(n->raw, JSON_DECODE_ANY, NULL) : json_null();
	if (!raw) /* not JSON: keep it as text */
		raw = json_string(n->raw);
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:o, s:o}", "version", 1, "source",
		      n->source, "kind", prov_kind_name(n->kind), "received", recv, "deadline", dl,
		      "received_unix", n->received, "deadline_unix", n->deadline, "lead_seconds",
		      n->deadline - n->received, "identity", prov_identity_json(id), "raw",
		      raw ? raw : json_null());
	if (o && id && id->provider[0]) /* flat copies for readers that want one field */
		json_object_set_new(o, "provider", json_string(id->provider));
	if (o && n->raw) /* byte for byte; not valid UTF-8: left out */
		json_object_set_new(o, "raw_text", json_string(n->raw));
	s = o ? json_dumps(o, flags | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

char *prov_notice_json(const struct prov_notice *n, const struct prov_identity *id)
{
	return prov_notice_dump(n, id, JSON_INDENT(2));
}

char *prov_notice_json_line(const struct prov_notice *n, const struct prov_identity *id)
{
	return prov_notice_dump(n, id, JSON_COMPACT);
}
