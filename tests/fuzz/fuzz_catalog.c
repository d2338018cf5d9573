/*
 * fuzz_catalog.c - fuzz target for the price catalog parser
 * (transfer/catalog.c), which reads a user's --catalog file: any bytes
 * must give 0 or EX_CONFIG, never a crash or a leak; a catalog that parses
 * is then queried (region lookups, egress between its places).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xfer_catalog *c = NULL;
	static int quiet;
	int rc;

	if (!quiet) {
		log_setup(-1, LOG_FMT_HUMAN);
		quiet = 1;
	}
	rc = xfer_catalog_parse((const char *)data, size, "fuzz.json", &c);
	if (rc != 0 && rc != EX_CONFIG)
		abort();
	if (rc == 0) {
		for (size_t i = 0; i < c->nr; i++)
			for (size_t j = 0; j < c->nr; j++) {
				double g;
				char why[200];
				if (!xfer_catalog_region(c, &c->r[i].place))
					abort();
				if (xfer_plan_egress(c, &c->r[i].place, &c->r[j].place, &g, why, sizeof(why)) || g < 0)
					abort();
			}
	}
	xfer_catalog_free(c);
	return 0;
}
