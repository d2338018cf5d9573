/*
 * fuzz_prov_gcp.c - fuzz target for the GCP metadata value parsers
 * (providers/parse.c): instance/preempted, instance/maintenance-event, and
 * the zone / machine-type path values (last segment, region from zone).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), seg[64], region[64];

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	prov_gcp_parse_bool(buf, size);
	prov_gcp_parse_maintenance(buf, size);
	prov_last_segment(buf, size, seg, sizeof(seg));
	prov_region_from_zone(seg, region, sizeof(region));
	free(buf);
	return 0;
}
