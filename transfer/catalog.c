/*
 * catalog.c - the price catalog: a versioned JSON document (format 1, see
 * docs/migration.md and examples/catalog.json) with, per provider and
 * region, the hourly spot and on-demand prices of GPU machine types, the
 * egress price per GB (internet, cross-region, same region), the typical
 * store throughput and an interruption rate, plus named free or discounted
 * paths between places.  Every figure points at an entry of "sources" that
 * carries the page it came from and the date ("as_of").
 *
 * The catalog comes from outside (a user's --catalog), so it is read
 * strictly: unknown keys, wrong types, negative or non-finite numbers, a
 * duplicate region, a source id that does not exist: all EX_CONFIG with
 * the file name and a reason naming the field.  Nothing here is a price:
 * figures are data, never code.
 */
#include "xfer.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define CAT_MAX_BYTES (8u << 20)

struct cat_ctx {
	const char *name;
	json_t *sources;
	char err[300];
};

static int cat_fail(struct cat_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cat_fail(struct cat_ctx *x, const char *fmt, ...)
{
	va_list ap;

	if (x->err[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* Every key of o must be in the NULL-terminated list. */
static int cat_keys(struct cat_ctx *x, json_t *o, const char *where, const char *const *allowed)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return cat_fail(x, "%s: expected an object", where);
	json_object_foreach(o, k, v) {
		int ok = 0;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = !strcmp(*a, k);
		if (!ok)
			return cat_fail(x, "%s: unknown key '%s'", where, k);
	}
	return 0;
}

static int cat_num(struct cat_ctx *x, json_t *o, const char *key, const char *where, int need,
		   double *out)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		if (need)
			return cat_fail(x, "%s: missing '%s'", where, key);
		return 0;
	}
	if (!json_is_number(v))
		return cat_fail(x, "%s.%s: expected a number", where, key);
	double d = json_number_value(v);
	if (!isfinite(d) || d < 0 || d > 1e7)
		return cat_fail(x, "%s.%s: %g is not a number in [0, 1e7]", where, key, d);
	*out = d;
	return 0;
}

static int cat_str(struct cat_ctx *x, json_t *o, const char *key, const char *where, int need,
		   char *out, size_t n)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		if (need)
			return cat_fail(x, "%s: missing '%s'", where, key);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) >= n || strlen(json_string_value(v)) !=
	    json_string_length(v))
		return cat_fail(x, "%s.%s: expected a string shorter than %zu bytes", where, key, n);
	if (need && !json_string_length(v))
		return cat_fail(x, "%s.%s: must not be empty", where, key);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* "YYYY-MM" or "YYYY-MM-DD" */
static int cat_date_ok(const char *s)
{
	size_t n = strlen(s);

	if (n != 7 && n != 10)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return 0;
	return 1;
}

static int cat_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

static int cat_source(struct cat_ctx *x, json_t *o, const char *where, char *out, size_t n)
{
	if (cat_str(x, o, "source", where, 1, out, n))
		return -1;
	if (!json_object_get(x->sources, out))
		return cat_fail(x, "%s.source: no source '%s' in \"sources\"", where, out);
	return 0;
}

static int cat_sources(struct cat_ctx *x, json_t *s)
{
	static const char *const keys[] = { "url", "as_of", "note", NULL };
	const char *k;
	json_t *v;
	char url[512], date[32], note[512], where[120];

	if (!json_is_object(s) || !json_object_size(s))
		return cat_fail(x, "\"sources\": expected a non-empty object");
	json_object_foreach(s, k, v) {
		snprintf(where, sizeof(where), "sources.%.60s", k);
		if (cat_keys(x, v, where, keys) || cat_str(x, v, "url", where, 1, url, sizeof(url)) ||
		    cat_str(x, v, "as_of", where, 1, date, sizeof(date)) ||
		    cat_str(x, v, "note", where, 0, note, sizeof(note)))
			return -1;
		if (!cat_date_ok(date))
			return cat_fail(x, "%s.as_of: '%s' is not YYYY-MM or YYYY-MM-DD", where, date);
	}
	return 0;
}

static int cat_machine(struct cat_ctx *x, json_t *o, const char *where, struct xfer_cat_machine *m)
{
	static const char *const keys[] = { "type", "gpu", "gpus", "spot", "on_demand", "estimate",
					    "source", "note", NULL };
	double gpus = 0;
	json_t *e;

	m->spot = -1;
	if (cat_keys(x, o, where, keys) || cat_str(x, o, "type", where, 1, m->type, sizeof(m->type)) ||
	    cat_str(x, o, "gpu", where, 0, m->gpu, sizeof(m->gpu)) ||
	    cat_num(x, o, "gpus", where, 1, &gpus) || cat_num(x, o, "spot", where, 0, &m->spot) ||
	    cat_num(x, o, "on_demand", where, 1, &m->on_demand) ||
	    cat_source(x, o, where, m->source, sizeof(m->source)))
		return -1;
	if (gpus != floor(gpus) || gpus > 64)
		return cat_fail(x, "%s.gpus: expected a whole number up to 64", where);
	m->gpus = (int)gpus;
	if ((e = json_object_get(o, "estimate")) && !json_is_boolean(e))
		return cat_fail(x, "%s.estimate: expected true or false", where);
	m->estimate = json_is_true(e);
	return 0;
}

static int cat_egress(struct cat_ctx *x, json_t *o, const char *where, struct xfer_cat_region *r)
{
	static const char *const keys[] = { "internet", "cross_region", "same_region", NULL };
	char w[160];

	snprintf(w, sizeof(w), "%s.egress_per_gb", where);
	if (!o)
		return cat_fail(x, "%s: missing 'egress_per_gb'", where);
	return cat_keys(x, o, w, keys) || cat_num(x, o, "internet", w, 1, &r->internet_per_gb) ||
	       cat_num(x, o, "cross_region", w, 1, &r->cross_region_per_gb) ||
	       cat_num(x, o, "same_region", w, 1, &r->same_region_per_gb) ? -1 : 0;
}

static int cat_region(struct cat_ctx *x, json_t *o, size_t i, struct xfer_cat_region *r)
{
	static const char *const keys[] = { "provider", "region", "egress_per_gb", "store_mb_s",
					    "interruptions_per_hour", "machines", "source", "note", NULL };
	char where[120];
	json_t *ms, *m;
	size_t j;

	snprintf(where, sizeof(where), "regions[%zu]", i);
	if (cat_keys(x, o, where, keys) ||
	    cat_str(x, o, "provider", where, 1, r->place.provider, sizeof(r->place.provider)) ||
	    cat_str(x, o, "region", where, 1, r->place.region, sizeof(r->place.region)) ||
	    cat_egress(x, json_object_get(o, "egress_per_gb"), where, r) ||
	    cat_num(x, o, "store_mb_s", where, 1, &r->store_mb_s) ||
	    cat_num(x, o, "interruptions_per_hour", where, 1, &r->interrupt_per_h) ||
	    cat_source(x, o, where, r->source, sizeof(r->source)))
		return -1;
	if (!cat_name_ok(r->place.provider) || !strcmp(r->place.provider, "none"))
		return cat_fail(x, "%s.provider: '%s' is not a provider name", where, r->place.provider);
	if (r->store_mb_s <= 0)
		return cat_fail(x, "%s.store_mb_s: must be above 0", where);
	if (r->interrupt_per_h > 10)
		return cat_fail(x, "%s.interruptions_per_hour: %g is not plausible (at most 10)", where,
				r->interrupt_per_h);
	ms = json_object_get(o, "machines");
	if (!json_is_array(ms))
		return cat_fail(x, "%s.machines: expected an array", where);
	if (!(r->m = calloc(json_array_size(ms) + 1, sizeof(*r->m))))
		return cat_fail(x, "out of memory");
	json_array_foreach(ms, j, m) {
		char w[160];
		snprintf(w, sizeof(w), "%s.machines[%zu]", where, j);
		if (cat_machine(x, m, w, &r->m[j]))
			return -1;
		for (size_t k = 0; k < j; k++)
			if (!strcmp(r->m[k].type, r->m[j].type))
				return cat_fail(x, "%s.type: '%s' listed twice", w, r->m[j].type);
		r->nm = j + 1;
	}
	return 0;
}

static int cat_place(struct cat_ctx *x, json_t *o, const char *key, const char *where,
		     struct xfer_place *p)
{
	char s[128], type[8];

	if (cat_str(x, o, key, where, 1, s, sizeof(s)))
		return -1;
	if (xfer_place_parse(s, p, type, sizeof(type)) || type[0])
		return cat_fail(x, "%s.%s: '%s' is not PROVIDER or PROVIDER:REGION", where, key, s);
	return 0;
}

static int cat_paths(struct cat_ctx *x, json_t *a, struct xfer_catalog *c)
{
	static const char *const keys[] = { "from", "to", "per_gb", "note", "source", NULL };
	char where[64], src[64];
	json_t *o;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return cat_fail(x, "\"paths\": expected an array");
	if (!(c->p = calloc(json_array_size(a) + 1, sizeof(*c->p))))
		return cat_fail(x, "out of memory");
	json_array_foreach(a, i, o) {
		struct xfer_cat_path *p = &c->p[i];
		snprintf(where, sizeof(where), "paths[%zu]", i);
		if (cat_keys(x, o, where, keys) || cat_place(x, o, "from", where, &p->from) ||
		    cat_place(x, o, "to", where, &p->to) || cat_num(x, o, "per_gb", where, 1, &p->per_gb) ||
		    cat_str(x, o, "note", where, 0, p->note, sizeof(p->note)) ||
		    cat_source(x, o, where, src, sizeof(src)))
			return -1;
		c->np = i + 1;
	}
	return 0;
}

static int cat_regions(struct cat_ctx *x, json_t *a, struct xfer_catalog *c)
{
	json_t *o;
	size_t i;

	if (!json_is_array(a) || !json_array_size(a))
		return cat_fail(x, "\"regions\": expected a non-empty array");
	if (!(c->r = calloc(json_array_size(a), sizeof(*c->r))))
		return cat_fail(x, "out of memory");
	json_array_foreach(a, i, o) {
		c->nr = i + 1;
		if (cat_region(x, o, i, &c->r[i]))
			return -1;
		for (size_t k = 0; k < i; k++)
			if (xfer_place_same(&c->r[k].place, &c->r[i].place))
				return cat_fail(x, "regions[%zu]: %s:%s listed twice", i, c->r[i].place.provider,
						c->r[i].place.region);
	}
	return 0;
}

static int cat_top(struct cat_ctx *x, json_t *root, struct xfer_catalog *c)
{
	static const char *const keys[] = { "format", "currency", "as_of", "note", "sources",
					    "lost_hours_per_interruption", "regions", "paths", NULL };
	json_t *f = json_object_get(root, "format");
	char cur[8];

	if (cat_keys(x, root, "catalog", keys))
		return -1;
	if (!json_is_integer(f) || json_integer_value(f) != 1)
		return cat_fail(x, "\"format\": expected 1 (this spotrun reads catalog format 1)");
	if (cat_str(x, root, "currency", "catalog", 1, cur, sizeof(cur)) ||
	    cat_str(x, root, "as_of", "catalog", 1, c->as_of, sizeof(c->as_of)))
		return -1;
	if (strcmp(cur, "USD"))
		return cat_fail(x, "\"currency\": only USD is supported, not '%s'", cur);
	if (!cat_date_ok(c->as_of))
		return cat_fail(x, "\"as_of\": '%s' is not YYYY-MM or YYYY-MM-DD", c->as_of);
	c->restore_lost_hours = 0.25;
	if (cat_num(x, root, "lost_hours_per_interruption", "catalog", 0, &c->restore_lost_hours))
		return -1;
	x->sources = json_object_get(root, "sources");
	if (cat_sources(x, x->sources) || cat_regions(x, json_object_get(root, "regions"), c) ||
	    cat_paths(x, json_object_get(root, "paths"), c))
		return -1;
	return 0;
}

int xfer_catalog_parse(const char *text, size_t len, const char *name, struct xfer_catalog **out)
{
	struct cat_ctx x = { .name = name };
	struct xfer_catalog *c = calloc(1, sizeof(*c));
	json_error_t je;
	json_t *root = NULL;
	int rc = EX_CONFIG;

	*out = NULL;
	if (!c)
		return log_fail(EX_OSERR, "out of memory");
	snprintf(c->file, sizeof(c->file), "%s", name);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		cat_fail(&x, "not valid JSON: %s (line %d)", je.text, je.line);
		goto out;
	}
	if (cat_top(&x, root, c))
		goto out;
	rc = 0;
	*out = c;
	c = NULL;
out:
	if (rc)
		log_error("price catalog '%s': %s", name, x.err);
	json_decref(root);
	xfer_catalog_free(c);
	return rc;
}

const char *xfer_catalog_default_path(char *buf, size_t n)
{
	char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (k > 0) {
		exe[k] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			snprintf(buf, n, "%s/examples/catalog.json", exe);
			if (!access(buf, R_OK))
				return buf;
		}
	}
	snprintf(buf, n, "/usr/share/spotrun/catalog.json");
	return access(buf, R_OK) ? NULL : buf;
}

int xfer_catalog_load(const char *path, struct xfer_catalog **out)
{
	char def[PATH_MAX + 32], *text = NULL;
	FILE *f;
	size_t len;
	int rc;

	*out = NULL;
	if (!path && !(path = xfer_catalog_default_path(def, sizeof(def))))
		return log_fail(EX_CONFIG, "no price catalog: none next to the binary "
				"(examples/catalog.json) or in /usr/share/spotrun; use --catalog FILE");
	if (!(f = fopen(path, "rb")))
		return log_fail(EX_CONFIG, "price catalog '%s': cannot open: %m", path);
	text = malloc(CAT_MAX_BYTES + 1);
	len = text ? fread(text, 1, CAT_MAX_BYTES + 1, f) : 0;
	fclose(f);
	if (!text)
		return log_fail(EX_OSERR, "out of memory");
	if (len > CAT_MAX_BYTES)
		rc = log_fail(EX_CONFIG, "price catalog '%s': larger than %u bytes", path, CAT_MAX_BYTES);
	else
		rc = xfer_catalog_parse(text, len, path, out);
	free(text);
	return rc;
}

void xfer_catalog_free(struct xfer_catalog *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nr; i++)
		free(c->r[i].m);
	free(c->r);
	free(c->p);
	free(c);
}

const struct xfer_cat_region *xfer_catalog_region(const struct xfer_catalog *c, const struct xfer_place *p)
{
	for (size_t i = 0; i < c->nr; i++)
		if (!strcmp(c->r[i].place.provider, p->provider) &&
		    (!p->region[0] || !strcmp(c->r[i].place.region, p->region)))
			return &c->r[i];
	return NULL;
}
