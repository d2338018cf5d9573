/*
 * test_plan.c - table-driven tests of the planner's pure arithmetic
 * (transfer/plan.c): the cost model, egress rules between places (named
 * paths, same region, cross-region, internet, free ingress, missing
 * catalog entries), remaining hours from progress and target parsing.
 */
#include <string.h>

#include "check.h"
#include "xfer.h"

static const char *cat_text =
	"{\"format\":1,\"currency\":\"USD\",\"as_of\":\"2026-11\","
	"\"sources\":{\"t\":{\"url\":\"https://example.com/p\",\"as_of\":\"2026-11-30\"}},"
	"\"regions\":["
	"{\"provider\":\"aws\",\"region\":\"us-east-1\",\"source\":\"t\",\"store_mb_s\":100,"
	"\"interruptions_per_hour\":0.1,\"egress_per_gb\":{\"internet\":0.09,\"cross_region\":0.02,\"same_region\":0},"
	"\"machines\":[{\"type\":\"a\",\"gpus\":1,\"on_demand\":3,\"spot\":1,\"source\":\"t\"}]},"
	"{\"provider\":\"gcp\",\"region\":\"us-central1\",\"source\":\"t\",\"store_mb_s\":50,"
	"\"interruptions_per_hour\":0,\"egress_per_gb\":{\"internet\":0.12,\"cross_region\":0.01,\"same_region\":0.001},"
	"\"machines\":[]}],"
	"\"paths\":[{\"from\":\"aws:us-east-1\",\"to\":\"aws:us-east-2\",\"per_gb\":0.01,\"note\":\"pair\",\"source\":\"t\"},"
	"{\"from\":\"gcp\",\"to\":\"aws\",\"per_gb\":0.05,\"source\":\"t\"}]}";

static struct xfer_place pl(const char *s)
{
	struct xfer_place p;
	char t[8];
	ASSERT_EQ(xfer_place_parse(s, &p, t, sizeof(t)), 0);
	return p;
}

static void compute_table(void)
{
	static const struct {
		struct xfer_plan_in in;
		double move, transfer, egress, inter, overhead_h, total;
	} cases[] = {
		/* 10 GB moved at 100 MB/s, $0.09/GB, $1/h for 10 h, no interruptions */
		{ { 10000000000ULL, 0, 0.09, 100, 1.0, 10, 0, 0.25 }, 1e10, 100, 0.9, 0, 0, 0.9 + 10 + 100.0 / 3600 },
		/* same place: nothing moves, restore time still counts in the overhead */
		{ { 3600000000ULL, 1, 0.09, 100, 2.0, 5, 0.2, 0.5 }, 0, 0, 0, 1.0, 0.51, 10 + 2 * 0.51 },
		/* zero-size checkpoint, free egress */
		{ { 0, 0, 0, 100, 1.5, 2, 0.1, 0.25 }, 0, 0, 0, 0.2, 0.05, 3 + 1.5 * 0.05 },
		/* zero hours left: only the move */
		{ { 1000000000ULL, 0, 0.12, 50, 4.0, 0, 0.1, 0.25 }, 1e9, 20, 0.12, 0, 0, 0.12 + 4.0 * 20 / 3600 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xfer_plan_out o;
		xfer_plan_compute(&cases[i].in, &o);
		ASSERT_NEAR((double)o.move_bytes, cases[i].move, 0.5);
		ASSERT_NEAR(o.transfer_s, cases[i].transfer, 1e-6);
		ASSERT_NEAR(o.egress_usd, cases[i].egress, 1e-9);
		ASSERT_NEAR(o.interruptions, cases[i].inter, 1e-9);
		ASSERT_NEAR(o.overhead_h, cases[i].overhead_h, 1e-9);
		ASSERT_NEAR(o.total_usd, cases[i].total, 1e-9);
	}
}

static void egress_table(void)
{
	static const struct {
		const char *from, *to;
		int rc;
		double per_gb;
		const char *why;
	} cases[] = {
		{ "aws:us-east-1", "aws:us-east-1", 0, 0, "same region" },
		{ "aws:us-east-1", "aws:us-west-2", 0, 0.02, "cross-region" },
		{ "aws:us-east-1", "aws:us-east-2", 0, 0.01, "pair" },
		{ "aws:us-east-1", "gcp:us-central1", 0, 0.09, "internet" },
		{ "aws:us-east-1", "none", 0, 0.09, "internet" },
		{ "aws", "aws:us-west-2", 0, 0, "same region" },	/* unknown region: same place */
		{ "gcp:us-central1", "gcp:us-central1", 0, 0.001, "same region" },
		{ "gcp:us-central1", "aws:eu-west-1", 0, 0.05, "named path" },
		{ "none", "aws:us-east-1", 0, 0, "ingress is free" },
		{ "azure:eastus", "aws:us-east-1", EX_CONFIG, 0, "no entry for azure:eastus" },
		{ "aws:ap-south-1", "aws:us-east-1", EX_CONFIG, 0, "no entry for aws:ap-south-1" },
	};
	struct xfer_catalog *c;

	ASSERT_EQ(xfer_catalog_parse(cat_text, strlen(cat_text), "t.json", &c), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xfer_place f = pl(cases[i].from), t = pl(cases[i].to);
		double g = -1;
		char why[200];
		ASSERT_EQ(xfer_plan_egress(c, &f, &t, &g, why, sizeof(why)), cases[i].rc);
		ASSERT_NEAR(g, cases[i].per_gb, 1e-12);
		if (!strstr(why, cases[i].why))
			CHECK_FAIL("case %zu: '%s' lacks '%s'", i, why, cases[i].why);
	}
	xfer_catalog_free(c);
}

static void hours_left_table(void)
{
	static const struct {
		long long s0;
		double t0;
		long long s1;
		double t1;
		long long total;
		double want;
	} cases[] = {
		{ 0, 0, 1000, 3600, 5000, 4 },		/* 1000 steps/h, 4000 left */
		{ 100, 0, 300, 7200, 1300, 10 },	/* 100 steps/h */
		{ 0, 0, 1000, 3600, 1000, 0 },		/* done */
		{ 0, 0, 1000, 3600, -1, -1 },		/* total unknown */
		{ 500, 0, 500, 3600, 1000, -1 },	/* no progress */
		{ -1, 0, 500, 3600, 1000, -1 },		/* step unknown */
		{ 0, 3600, 100, 3600, 1000, -1 },	/* no time passed */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ASSERT_NEAR(xfer_plan_hours_left(cases[i].s0, cases[i].t0, cases[i].s1, cases[i].t1, cases[i].total),
			    cases[i].want, 1e-9);
}

static void place_parse(void)
{
	struct xfer_place p;
	char t[32];

	ASSERT_EQ(xfer_place_parse("aws:us-east-1:p4d.24xlarge", &p, t, sizeof(t)), 0);
	ASSERT_STR_EQ(p.provider, "aws");
	ASSERT_STR_EQ(p.region, "us-east-1");
	ASSERT_STR_EQ(t, "p4d.24xlarge");
	ASSERT_EQ(xfer_place_parse("gcp", &p, t, sizeof(t)), 0);
	ASSERT_STR_EQ(p.region, "");
	ASSERT_STR_EQ(t, "");
	ASSERT_EQ(xfer_place_parse("", &p, t, sizeof(t)), -1);
	ASSERT_EQ(xfer_place_parse("aws:", &p, t, sizeof(t)), -1);
	ASSERT_EQ(xfer_place_parse(":r", &p, t, sizeof(t)), -1);
	ASSERT_EQ(xfer_place_parse("a:b:", &p, t, sizeof(t)), -1);
	ASSERT_EQ(xfer_place_parse("a:b:c:d", &p, t, sizeof(t)), -1);
	ASSERT_STR_EQ(xfer_url_provider("s3://b/p"), "aws");
	ASSERT_STR_EQ(xfer_url_provider("gs://b"), "gcp");
	ASSERT_STR_EQ(xfer_url_provider("az://a/c"), "azure");
	ASSERT_STR_EQ(xfer_url_provider("file:///x"), "none");
	ASSERT_STR_EQ(xfer_url_provider("/x"), "none");
}

CHECK_MAIN("plan", CHECK_CASE(compute_table), CHECK_CASE(egress_table), CHECK_CASE(hours_left_table),
	   CHECK_CASE(place_parse))
