/*
 * fuzz_prov_aws.c - fuzz target for the AWS IMDS payload parsers
 * (providers/parse.c): spot/instance-action, the rebalance recommendation
 * and spot/termination-time (shared with Alibaba).  Any bytes must give an
 * answer, never a crash or a read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1); /* exact-size copy: ASan sees any overread */
	enum prov_kind k;
	double d;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	prov_aws_parse_action(buf, size, 1000, &k, &d);
	prov_aws_parse_rebalance(buf, size, &d);
	prov_parse_termination_time(buf, size, &d);
	prov_parse_iso8601(buf, size, &d);
	free(buf);
	return 0;
}
