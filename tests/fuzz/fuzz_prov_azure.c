/*
 * fuzz_prov_azure.c - fuzz target for the Azure parsers (providers/parse.c):
 * the Scheduled Events document (every type acted on, matched against the
 * documented VM name), the compute metadata, RFC 1123 times, and the
 * acknowledgement body built from whatever events were found.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct prov_azure_event ev[8];
	struct prov_identity id;
	char *buf = malloc(size + 1), name[64], *ack;
	long long inc;
	double t;
	int n;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	n = prov_azure_parse_events(buf, size, "WestNO_0", 0x1f, 1000, &inc, ev, 8);
	if (n > 0 && (ack = prov_azure_ack_body(ev, n)))
		free(ack);
	memset(&id, 0, sizeof(id));
	prov_azure_parse_compute(buf, size, &id, name, sizeof(name));
	prov_parse_rfc1123(buf, size, &t);
	free(buf);
	return 0;
}
