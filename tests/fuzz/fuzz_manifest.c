/*
 * fuzz_manifest.c - fuzz target for the strict manifest parser
 * (checkpoint/ckpt_manifest.c), which reads manifest.json from a store that
 * may be shared or tampered with.  A manifest that parses must encode and
 * parse again to the same totals.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_int.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	struct ckpt_manifest m, again;
	char *text;

	if (!quiet++)
		log_setup(-1, LOG_FMT_HUMAN);
	if (ckpt_manifest_parse((const char *)data, size, &m))
		return 0;
	if (!(text = ckpt_manifest_encode(&m)) || ckpt_manifest_parse(text, strlen(text), &again) ||
	    again.nfiles != m.nfiles || again.nparts != m.nparts || again.raw_bytes != m.raw_bytes ||
	    again.stored_bytes != m.stored_bytes)
		abort();
	free(text);
	ckpt_manifest_free(&again);
	ckpt_manifest_free(&m);
	return 0;
}
