/*
 * parse.c - the payload parsers of every provider: pure functions from the
 * bytes a metadata service answered to a notice kind, a deadline or an
 * identity.  No I/O, no allocation that outlives a call (except the ack
 * body), JSON through jansson only.  Each is table-tested in
 * tests/unit/test_prov_parse.c and fuzzed by tests/fuzz/fuzz_prov_*.c:
 * any bytes must give an answer, never a crash.
 *
 * Times: AWS and Alibaba send ISO-8601 UTC ("2017-09-18T08:22:00Z"), Azure
 * RFC 1123 ("Mon, 11 Apr 2022 22:26:58 GMT").  Both are parsed by hand
 * (no strptime: locale-free) and converted with timegm().
 */
#include "prov_int.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void prov_trim(const char **s, size_t *len)
{
	while (*len && isspace((unsigned char)**s))
		(*s)++, (*len)--;
	while (*len && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

void prov_copy_trim(char *dst, size_t dstlen, const char *s, size_t len)
{
	if (!dstlen)
		return;
	prov_trim(&s, &len);
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, s, len);
	dst[len] = 0;
	for (size_t i = 0; i < len; i++) /* identity fields are printable text */
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

/* Reads exactly n digits at *p into *v. */
static int prov_digits(const char **p, const char *end, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (*p >= end || !isdigit((unsigned char)**p))
			return -1;
		*v = *v * 10 + (**p - '0');
	}
	return 0;
}

static int prov_tm_ok(const struct tm *tm)
{
	return tm->tm_mon >= 0 && tm->tm_mon < 12 && tm->tm_mday >= 1 && tm->tm_mday <= 31 &&
	       tm->tm_hour <= 23 && tm->tm_min <= 59 && tm->tm_sec <= 60 && tm->tm_year >= 70 &&
	       tm->tm_year < 8100;
}

int prov_parse_iso8601(const char *s, size_t len, double *t)
{
	struct tm tm = { 0 };
	const char *p, *end;
	int y, mo, d, h, mi, se;
	double frac = 0, scale = 0.1;

	prov_trim(&s, &len);
	p = s, end = s + len;
	if (prov_digits(&p, end, 4, &y) || p >= end || *p++ != '-' || prov_digits(&p, end, 2, &mo) ||
	    p >= end || *p++ != '-' || prov_digits(&p, end, 2, &d) || p >= end ||
	    (*p != 'T' && *p != 't') || ++p >= end || prov_digits(&p, end, 2, &h) || p >= end ||
	    *p++ != ':' || prov_digits(&p, end, 2, &mi) || p >= end || *p++ != ':' ||
	    prov_digits(&p, end, 2, &se))
		return -1;
	if (p < end && *p == '.') {
		for (p++; p < end && isdigit((unsigned char)*p); p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	if (p >= end || (*p != 'Z' && *p != 'z') || p + 1 != end)
		return -1;
	tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
	tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = se;
	if (!prov_tm_ok(&tm))
		return -1;
	*t = (double)timegm(&tm) + frac;
	return 0;
}

int prov_parse_rfc1123(const char *s, size_t len, double *t)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm = { 0 };
	const char *p, *end, *comma;
	int d, y, h, mi, se, mo = -1;

	prov_trim(&s, &len);
	p = s, end = s + len;
	comma = memchr(s, ',', len);
	if (comma)
		p = comma + 1;
	while (p < end && *p == ' ')
		p++;
	if (p >= end || !isdigit((unsigned char)*p))
		return -1;
	for (d = 0; p < end && isdigit((unsigned char)*p) && d < 100; p++)
		d = d * 10 + (*p - '0');
	if (p + 5 > end || *p++ != ' ')
		return -1;
	for (int i = 0; i < 12; i++)
		if (!strncasecmp(p, months + 3 * i, 3))
			mo = i;
	p += 3;
	if (mo < 0 || p >= end || *p++ != ' ' || prov_digits(&p, end, 4, &y) || p >= end ||
	    *p++ != ' ' || prov_digits(&p, end, 2, &h) || p >= end || *p++ != ':' ||
	    prov_digits(&p, end, 2, &mi) || p >= end || *p++ != ':' || prov_digits(&p, end, 2, &se))
		return -1;
	while (p < end && *p == ' ')
		p++;
	if ((size_t)(end - p) != 3 || (strncmp(p, "GMT", 3) && strncmp(p, "UTC", 3)))
		return -1;
	tm.tm_year = y - 1900, tm.tm_mon = mo, tm.tm_mday = d;
	tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = se;
	if (!prov_tm_ok(&tm))
		return -1;
	*t = (double)timegm(&tm);
	return 0;
}

int prov_aws_parse_action(const char *body, size_t len, double received, enum prov_kind *kind,
			  double *deadline)
{
	json_t *o = json_loadb(body, len, 0, NULL);
	const char *action = json_string_value(json_object_get(o, "action"));
	const char *when = json_string_value(json_object_get(o, "time"));
	int rc = json_is_object(o) ? 1 : -1;

	*kind = PROV_TERMINATE;
	*deadline = received + PROV_AWS_LEAD;
	if (when && prov_parse_iso8601(when, strlen(when), deadline))
		*deadline = received + PROV_AWS_LEAD;
	if (action && (!strcmp(action, "stop") || !strcmp(action, "hibernate")))
		*kind = PROV_PREEMPT; /* the instance comes back: a retry may resume here */
	if (action && !strcmp(action, "hibernate"))
		*deadline = received; /* hibernation begins at once (S-AWS-ITN) */
	json_decref(o);
	return rc;
}

int prov_aws_parse_rebalance(const char *body, size_t len, double *notice_time)
{
	json_t *o = json_loadb(body, len, 0, NULL);
	const char *when = json_string_value(json_object_get(o, "noticeTime"));
	int rc = when && !prov_parse_iso8601(when, strlen(when), notice_time);

	json_decref(o);
	return rc;
}

int prov_parse_termination_time(const char *body, size_t len, double *t)
{
	return prov_parse_iso8601(body, len, t) == 0;
}

int prov_gcp_parse_bool(const char *body, size_t len)
{
	prov_trim(&body, &len);
	if (len == 4 && !strncmp(body, "TRUE", 4))
		return 1;
	if (len == 5 && !strncmp(body, "FALSE", 5))
		return 0;
	return -1;
}

int prov_gcp_parse_maintenance(const char *body, size_t len)
{
	static const char term[] = "TERMINATE_ON_HOST_MAINTENANCE";

	prov_trim(&body, &len);
	return len == sizeof(term) - 1 && !memcmp(body, term, len);
}

void prov_last_segment(const char *s, size_t len, char *out, size_t outlen)
{
	const char *slash;

	prov_trim(&s, &len);
	while ((slash = memchr(s, '/', len)))
		len -= (size_t)(slash + 1 - s), s = slash + 1;
	prov_copy_trim(out, outlen, s, len);
}

void prov_region_from_zone(const char *zone, char *out, size_t outlen)
{
	const char *dash = strrchr(zone, '-');
	size_t n = dash && dash != zone ? (size_t)(dash - zone) : strlen(zone);

	prov_copy_trim(out, outlen, zone, n);
}

static const struct {
	const char *name;
	unsigned bit;
	enum prov_kind kind;
} prov_azure_types[] = {
	{ "Preempt", PROV_ACT_PREEMPT, PROV_PREEMPT },
	{ "Terminate", PROV_ACT_TERMINATE, PROV_TERMINATE },
	{ "Freeze", PROV_ACT_FREEZE, PROV_MAINTENANCE },
	{ "Reboot", PROV_ACT_REBOOT, PROV_MAINTENANCE },
	{ "Redeploy", PROV_ACT_REDEPLOY, PROV_MAINTENANCE },
};
#define PROV_AZURE_NTYPES (sizeof(prov_azure_types) / sizeof(prov_azure_types[0]))

int prov_azure_parse_act_on(const char *spec, unsigned *mask)
{
	char buf[256], *save = NULL, *tok;

	*mask = 0;
	if (strlen(spec) >= sizeof(buf))
		return -1;
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		size_t i;
		for (i = 0; i < PROV_AZURE_NTYPES; i++)
			if (!strcasecmp(tok, prov_azure_types[i].name))
				break;
		if (i == PROV_AZURE_NTYPES)
			return -1;
		*mask |= prov_azure_types[i].bit;
	}
	return *mask ? 0 : -1;
}

static int prov_azure_lists(json_t *resources, const char *vm)
{
	size_t i;
	json_t *r;

	json_array_foreach(resources, i, r)
		if (json_is_string(r) && vm[0] && !strcasecmp(json_string_value(r), vm))
			return 1;
	return 0;
}

static int prov_azure_event(json_t *e, const char *vm, unsigned mask, double received,
			    struct prov_azure_event *out)
{
	const char *type = json_string_value(json_object_get(e, "EventType"));
	const char *id = json_string_value(json_object_get(e, "EventId"));
	const char *nb = json_string_value(json_object_get(e, "NotBefore"));
	size_t i;

	if (!type || !id || !prov_azure_lists(json_object_get(e, "Resources"), vm))
		return 0;
	for (i = 0; i < PROV_AZURE_NTYPES; i++)
		if (!strcmp(type, prov_azure_types[i].name))
			break;
	if (i == PROV_AZURE_NTYPES || !(mask & prov_azure_types[i].bit))
		return 0;
	memset(out, 0, sizeof(*out));
	prov_copy_trim(out->id, sizeof(out->id), id, strlen(id));
	out->kind = prov_azure_types[i].kind;
	/* NotBefore is blank once the event has started: the deadline is now */
	if (!nb || prov_parse_rfc1123(nb, strlen(nb), &out->deadline))
		out->deadline = nb && nb[0] ? received + PROV_AZURE_LEAD : received;
	return 1;
}

int prov_azure_parse_events(const char *body, size_t len, const char *vm, unsigned mask,
			    double received, long long *incarnation, struct prov_azure_event *ev,
			    int max)
{
	json_t *o = json_loadb(body, len, 0, NULL), *e;
	json_t *events = json_object_get(o, "Events");
	json_t *inc = json_object_get(o, "DocumentIncarnation");
	int n = 0;
	size_t i;

	if (!json_is_object(o) || !json_is_array(events) || !json_is_integer(inc)) {
		json_decref(o);
		return -1;
	}
	*incarnation = json_integer_value(inc);
	json_array_foreach(events, i, e)
		if (n < max && prov_azure_event(e, vm, mask, received, &ev[n]))
			n++;
	json_decref(o);
	return n;
}

/* Copies the string member key of o into dst; "" when absent. */
static void prov_json_field(json_t *o, const char *key, char *dst, size_t dstlen)
{
	const char *v = json_string_value(json_object_get(o, key));

	prov_copy_trim(dst, dstlen, v ? v : "", v ? strlen(v) : 0);
}

int prov_azure_parse_compute(const char *body, size_t len, struct prov_identity *id, char *name,
			     size_t namelen)
{
	json_t *o = json_loadb(body, len, 0, NULL);
	char prio[32];

	if (!json_is_object(o) || !json_object_get(o, "vmId")) {
		json_decref(o);
		return -1;
	}
	prov_json_field(o, "location", id->region, sizeof(id->region));
	prov_json_field(o, "zone", id->zone, sizeof(id->zone));
	prov_json_field(o, "vmSize", id->instance_type, sizeof(id->instance_type));
	prov_json_field(o, "vmId", id->instance_id, sizeof(id->instance_id));
	prov_json_field(o, "name", name, namelen);
	prov_json_field(o, "priority", prio, sizeof(prio));
	/* priority: "Spot", "Low" (older), "Regular" or "" (on-demand) */
	snprintf(id->lifecycle, sizeof(id->lifecycle), "%s",
		 !strcasecmp(prio, "Spot") || !strcasecmp(prio, "Low") ? "spot" : "on-demand");
	json_decref(o);
	return 0;
}

char *prov_azure_ack_body(const struct prov_azure_event *ev, int n)
{
	json_t *arr = json_array(), *o;
	char *s;

	for (int i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s}", "EventId", ev[i].id));
	o = json_pack("{s:o}", "StartRequests", arr);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

int prov_oci_parse_instance(const char *body, size_t len, struct prov_identity *id)
{
	json_t *o = json_loadb(body, len, 0, NULL);

	if (!json_is_object(o) || !json_object_get(o, "shape")) {
		json_decref(o);
		return -1;
	}
	prov_json_field(o, "canonicalRegionName", id->region, sizeof(id->region));
	if (!id->region[0])
		prov_json_field(o, "region", id->region, sizeof(id->region));
	prov_json_field(o, "availabilityDomain", id->zone, sizeof(id->zone));
	prov_json_field(o, "shape", id->instance_type, sizeof(id->instance_type));
	prov_json_field(o, "id", id->instance_id, sizeof(id->instance_id));
	/* inference: a preemptible instance carries preemptibleInstanceConfig */
	if (json_is_object(json_object_get(o, "preemptibleInstanceConfig")))
		snprintf(id->lifecycle, sizeof(id->lifecycle), "preemptible");
	json_decref(o);
	return 0;
}

int prov_ibm_parse_token(const char *body, size_t len, char *tok, size_t toklen)
{
	json_t *o = json_loadb(body, len, 0, NULL);
	const char *t = json_string_value(json_object_get(o, "access_token"));
	int rc = -1;

	if (t && t[0] && strlen(t) < toklen && !strpbrk(t, "\r\n")) {
		strcpy(tok, t);
		rc = 0;
	}
	json_decref(o);
	return rc;
}

int prov_ibm_parse_instance(const char *body, size_t len, struct prov_identity *id)
{
	json_t *o = json_loadb(body, len, 0, NULL);
	const char *cls;

	if (!json_is_object(o) || !json_object_get(o, "id")) {
		json_decref(o);
		return -1;
	}
	prov_json_field(o, "id", id->instance_id, sizeof(id->instance_id));
	prov_json_field(json_object_get(o, "profile"), "name", id->instance_type,
			sizeof(id->instance_type));
	prov_json_field(json_object_get(o, "zone"), "name", id->zone, sizeof(id->zone));
	prov_region_from_zone(id->zone, id->region, sizeof(id->region));
	cls = json_string_value(json_object_get(json_object_get(o, "availability"), "class"));
	if (cls)
		snprintf(id->lifecycle, sizeof(id->lifecycle), "%s",
			 !strcmp(cls, "spot") ? "spot" : "on-demand");
	json_decref(o);
	return 0;
}
