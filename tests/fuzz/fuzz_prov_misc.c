/*
 * fuzz_prov_misc.c - fuzz target for the identity-only parsers
 * (providers/parse.c): OCI /opc/v2/instance/, the IBM token and instance
 * documents, and SPOTRUN_AZURE_ACT_ON lists.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct prov_identity id;
	char *buf = malloc(size + 1), tok[256];
	unsigned mask;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(&id, 0, sizeof(id));
	prov_oci_parse_instance(buf, size, &id);
	prov_ibm_parse_token(buf, size, tok, sizeof(tok));
	prov_ibm_parse_instance(buf, size, &id);
	buf[size] = 0;
	prov_azure_parse_act_on(buf, &mask);
	free(buf);
	return 0;
}
