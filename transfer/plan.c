/*
 * plan.c - the transfer planner's arithmetic: egress price between two
 * places, the cost model of resuming a job on a target (docs/migration.md)
 * and the remaining run time from progress.  Pure functions: no I/O, no
 * logging, no global state, so tests/unit/test_plan.c checks them from
 * tables.
 */
#include "xfer.h"

#include <stdio.h>
#include <string.h>

int xfer_place_parse(const char *s, struct xfer_place *p, char *type, size_t tn)
{
	const char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	size_t pl = c1 ? (size_t)(c1 - s) : strlen(s);
	size_t rl = c1 ? (c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1)) : 0;
	size_t tl = c2 ? strlen(c2 + 1) : 0;

	memset(p, 0, sizeof(*p));
	if (type && tn)
		type[0] = 0;
	if (!pl || pl >= sizeof(p->provider) || rl >= sizeof(p->region) || (c1 && !rl) ||
	    (c2 && (!tl || !type || tl >= tn || strchr(c2 + 1, ':'))))
		return -1;
	memcpy(p->provider, s, pl);
	if (c1)
		memcpy(p->region, c1 + 1, rl);
	if (c2)
		memcpy(type, c2 + 1, tl + 1);
	return 0;
}

const char *xfer_url_provider(const char *url)
{
	if (!strncmp(url, "s3://", 5))
		return "aws";
	if (!strncmp(url, "gs://", 5))
		return "gcp";
	if (!strncmp(url, "az://", 5))
		return "azure";
	return "none";
}

int xfer_place_same(const struct xfer_place *a, const struct xfer_place *b)
{
	return !strcmp(a->provider, b->provider) &&
	       (!a->region[0] || !b->region[0] || !strcmp(a->region, b->region));
}

/* Does path end e (region "" = any) match place p? */
static int plan_path_end(const struct xfer_place *e, const struct xfer_place *p)
{
	return !strcmp(e->provider, p->provider) && (!e->region[0] || !strcmp(e->region, p->region));
}

int xfer_plan_egress(const struct xfer_catalog *c, const struct xfer_place *from,
		     const struct xfer_place *to, double *per_gb, char *why, size_t wn)
{
	const struct xfer_cat_region *r;

	*per_gb = 0;
	if (!from->provider[0] || !strcmp(from->provider, "none")) {
		snprintf(why, wn, "no egress: the checkpoint is not in a cloud (ingress is free)");
		return 0;
	}
	for (size_t i = 0; i < c->np; i++)
		if (plan_path_end(&c->p[i].from, from) && plan_path_end(&c->p[i].to, to)) {
			*per_gb = c->p[i].per_gb;
			snprintf(why, wn, "%s", c->p[i].note[0] ? c->p[i].note : "named path in the catalog");
			return 0;
		}
	if (!(r = xfer_catalog_region(c, from))) {
		snprintf(why, wn, "the catalog has no entry for %s%s%s", from->provider,
			 from->region[0] ? ":" : "", from->region);
		return EX_CONFIG;
	}
	if (xfer_place_same(from, to)) {
		*per_gb = r->same_region_per_gb;
		snprintf(why, wn, "same region");
	} else if (!strcmp(from->provider, to->provider)) {
		*per_gb = r->cross_region_per_gb;
		snprintf(why, wn, "cross-region within %s", from->provider);
	} else {
		*per_gb = r->internet_per_gb;
		snprintf(why, wn, "internet egress from %s", from->provider);
	}
	return 0;
}

void xfer_plan_compute(const struct xfer_plan_in *in, struct xfer_plan_out *out)
{
	double rate = in->mb_s > 0 ? in->mb_s * 1e6 : 1e6;

	memset(out, 0, sizeof(*out));
	out->move_bytes = in->same_place ? 0 : in->bytes;
	out->transfer_s = (double)out->move_bytes / rate;
	out->egress_usd = (double)out->move_bytes / 1e9 * in->egress_per_gb;
	out->restore_s = (double)in->bytes / rate;
	out->interruptions = in->interrupt_per_h * in->hours;
	out->overhead_h = out->interruptions * (out->restore_s / 3600 + in->lost_hours);
	out->overhead_usd = in->hourly * out->overhead_h;
	out->compute_usd = in->hourly * (in->hours + out->transfer_s / 3600);
	out->total_usd = out->egress_usd + out->compute_usd + out->overhead_usd;
}

double xfer_plan_hours_left(long long first_step, double first_t, long long last_step, double last_t,
			    long long total_steps)
{
	double dt = (last_t - first_t) / 3600;

	if (first_step < 0 || last_step <= first_step || dt <= 0 || total_steps <= 0)
		return -1;
	if (total_steps <= last_step)
		return 0;
	return (double)(total_steps - last_step) / ((double)(last_step - first_step) / dt);
}
