/*
 * test_catalog.c - the price catalog parser (transfer/catalog.c): the
 * shipped examples/catalog.json loads and every figure has a source; a
 * table of broken catalogs each fails with EX_CONFIG.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "xfer.h"

#include <stdlib.h>

#define HEAD "{\"format\":1,\"currency\":\"USD\",\"as_of\":\"2026-11\"," \
	"\"sources\":{\"t\":{\"url\":\"u\",\"as_of\":\"2026-11-30\"}},"
#define EG "\"egress_per_gb\":{\"internet\":0.09,\"cross_region\":0.02,\"same_region\":0}"
#define REG(extra) "\"regions\":[{\"provider\":\"aws\",\"region\":\"r\",\"source\":\"t\",\"store_mb_s\":100," \
	"\"interruptions_per_hour\":0.1," EG ",\"machines\":[" extra "]}]"
#define M(extra) "{\"type\":\"a\",\"gpus\":1,\"on_demand\":3,\"source\":\"t\"" extra "}"

static int parse(const char *s)
{
	struct xfer_catalog *c = NULL;
	int rc = xfer_catalog_parse(s, strlen(s), "t.json", &c);
	if (rc == 0 && !c)
		CHECK_FAIL("no catalog returned");
	xfer_catalog_free(c);
	return rc;
}

static void shipped(void)
{
	struct xfer_catalog *c;
	struct xfer_place p = { "aws", "us-east-1" };

	const char *top = getenv("SPOTRUN_TOP");
	char path[4096];

	snprintf(path, sizeof(path), "%s/examples/catalog.json", top ? top : ".");
	ASSERT_EQ(xfer_catalog_load(path, &c), 0);
	ASSERT_TRUE(c->nr >= 4);
	const struct xfer_cat_region *r = xfer_catalog_region(c, &p);
	ASSERT_TRUE(r != NULL);
	ASSERT_TRUE(r->nm > 0 && r->m[0].source[0]);
	ASSERT_NEAR(r->internet_per_gb, 0.09, 1e-9);
	xfer_catalog_free(c);
}

static void minimal_ok(void)
{
	ASSERT_EQ(parse(HEAD REG(M("")) "}"), 0);
	ASSERT_EQ(parse(HEAD REG(M(",\"spot\":1.5,\"estimate\":true,\"gpu\":\"A100\"")) "}"), 0);
	ASSERT_EQ(parse(HEAD REG("") ",\"paths\":[{\"from\":\"aws\",\"to\":\"gcp:x\",\"per_gb\":0,\"source\":\"t\"}]}"), 0);
}

static void broken(void)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"format\":1}",
		"{\"format\":2,\"currency\":\"USD\",\"as_of\":\"2026-11\"}",
		HEAD REG(M("")) ",\"extra\":1}",					/* unknown key */
		HEAD REG(M(",\"spot\":-1")) "}",					/* negative */
		HEAD REG(M(",\"spot\":\"1\"")) "}",					/* string price */
		HEAD REG(M(",\"spot\":1e9")) "}",					/* implausible */
		HEAD REG(M(",\"source\":\"nope\"")) "}",
		HEAD REG(M(",\"estimate\":1")) "}",
		HEAD REG(M("") "," M("")) "}",					/* type twice */
		HEAD "\"regions\":[]}",
		HEAD "\"regions\":[{\"provider\":\"none\",\"region\":\"r\",\"source\":\"t\",\"store_mb_s\":1,"
		"\"interruptions_per_hour\":0," EG ",\"machines\":[]}]}",
		HEAD "\"regions\":[{\"provider\":\"aws\",\"region\":\"r\",\"source\":\"t\",\"store_mb_s\":0,"
		"\"interruptions_per_hour\":0," EG ",\"machines\":[]}]}",
		HEAD "\"regions\":[{\"provider\":\"aws\",\"region\":\"r\",\"source\":\"t\",\"store_mb_s\":1,"
		"\"interruptions_per_hour\":0,\"machines\":[]}]}",			/* no egress */
		HEAD REG("") ",\"paths\":[{\"from\":\"aws:r:t\",\"to\":\"gcp\",\"per_gb\":0,\"source\":\"t\"}]}",
		HEAD REG("") ",\"paths\":{}}",
		"{\"format\":1,\"currency\":\"EUR\",\"as_of\":\"2026-11\",\"sources\":{\"t\":{\"url\":\"u\",\"as_of\":\"2026\"}}," REG("") "}",
		"{\"format\":1,\"currency\":\"USD\",\"as_of\":\"2026-11\",\"sources\":{\"t\":{\"url\":\"u\",\"as_of\":\"2026\"}}," REG("") "}",
		"{\"format\":1,\"currency\":\"USD\",\"as_of\":\"yesterday\",\"sources\":{\"t\":{\"url\":\"u\",\"as_of\":\"2026-11\"}}," REG("") "}",
		"{\"format\":1,\"currency\":\"USD\",\"as_of\":\"2026-11\",\"sources\":{}," REG("") "}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != EX_CONFIG)
			CHECK_FAIL("case %zu was accepted: %s", i, bad[i]);
	/* two regions with the same place */
	ASSERT_EQ(parse(HEAD "\"regions\":[{\"provider\":\"aws\",\"region\":\"r\",\"source\":\"t\",\"store_mb_s\":1,"
			"\"interruptions_per_hour\":0," EG ",\"machines\":[]},{\"provider\":\"aws\",\"region\":\"r\","
			"\"source\":\"t\",\"store_mb_s\":1,\"interruptions_per_hour\":0," EG ",\"machines\":[]}]}"),
		  EX_CONFIG);
	ASSERT_EQ(parse(HEAD REG(M(",\"gpus\":2")) "}"), EX_CONFIG); /* duplicate key */
}

static void missing_file(void)
{
	struct xfer_catalog *c = NULL;
	ASSERT_EQ(xfer_catalog_load("/nonexistent/catalog.json", &c), EX_CONFIG);
	ASSERT_TRUE(c == NULL);
}

CHECK_MAIN("catalog", CHECK_CASE(shipped), CHECK_CASE(minimal_ok), CHECK_CASE(broken), CHECK_CASE(missing_file))
