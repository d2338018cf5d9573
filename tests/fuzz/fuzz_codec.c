/*
 * fuzz_codec.c - fuzz target for the bp1 frame decoder
 * (checkpoint/ckpt_codec.c), which decodes bytes read from a store.  The
 * input's first 4 bytes (little-endian, capped at 1 MiB) give the expected
 * raw size, the rest is the frame.  Whatever decodes must round-trip
 * through the encoder to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "ckpt_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ZSTD_DCtx *dc;
	static ZSTD_CCtx *cc;
	size_t rawn, len, cap;
	unsigned char *raw, *scratch, *enc, *back;
	const char *why;

	if (size < 4)
		return 0;
	if (!dc && (!(dc = ZSTD_createDCtx()) || !(cc = ZSTD_createCCtx())))
		abort();
	rawn = ((size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24) % (1u << 20);
	raw = malloc(rawn + 1);
	scratch = malloc(rawn + 1);
	if (!raw || !scratch)
		abort();
	if (ckpt_bp_decode(dc, data + 4, size - 4, raw, rawn, scratch, &why) == 0) {
		struct ckpt_region r = { 0, rawn, 2 };
		cap = ckpt_codec_bound(rawn);
		enc = malloc(cap);
		back = malloc(rawn + 1);
		if (!enc || !back || ckpt_bp_encode(cc, 1, raw, rawn, &r, 1, scratch, enc, cap, &len) ||
		    ckpt_bp_decode(dc, enc, len, back, rawn, scratch, &why) || memcmp(raw, back, rawn))
			abort();
		free(enc);
		free(back);
	}
	free(raw);
	free(scratch);
	return 0;
}
