/*
 * test_codec.c - the bp1 part codec (checkpoint/ckpt_codec.c): round trips
 * on bf16, fp16, fp32 and int8 data, incompressible and all-zero data,
 * mixed typed/untyped parts with misaligned regions; the exponent plane
 * really compresses; corrupted planes, headers and truncations are refused
 * by the decoder; the safetensors hints find each tensor.
 */
#include "check.h"

#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <zstd.h>

#include "ckpt_int.h"

static uint64_t rng = 88172645463325252ull;

static uint32_t next32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static float gauss(float sd)
{
	double u1 = (next32() + 1.0) / 4294967297.0, u2 = next32() / 4294967296.0;
	return (float)(sd * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

enum kind { K_BF16, K_F16, K_F32, K_I8, K_RANDOM, K_ZERO };

static void fill(unsigned char *p, size_t n, enum kind k)
{
	for (size_t i = 0; i + 4 <= n || (i < n && k >= K_I8); ) {
		float f = gauss(0.02f);
		uint32_t u;
		memcpy(&u, &f, 4);
		if (k == K_BF16 || k == K_F16) {
			uint16_t h = k == K_BF16 ? (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16)
						 : (uint16_t)(((u >> 16) & 0x8000) | ((((u >> 23) & 0xff) - 112) & 0x1f) << 10 |
							      ((u >> 13) & 0x3ff));
			memcpy(p + i, &h, 2);
			i += 2;
		} else if (k == K_F32) {
			memcpy(p + i, &u, 4);
			i += 4;
		} else {
			p[i++] = k == K_ZERO ? 0 : k == K_I8 ? (unsigned char)(int8_t)lrintf(f * 3000) : (unsigned char)next32();
		}
	}
}

/* Encodes and decodes; returns the encoded size. */
static size_t round_trip(const unsigned char *raw, size_t n, const struct ckpt_region *rg, size_t nrg)
{
	size_t cap = ckpt_codec_bound(n), len = 0;
	unsigned char *out = malloc(cap), *scratch = malloc(n + 1), *back = malloc(n + 1), *s2 = malloc(n + 1);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	const char *why = "";

	ASSERT_EQ(ckpt_bp_encode(cc, 1, raw, n, rg, nrg, scratch, out, cap, &len), 0);
	ASSERT_TRUE(len <= cap);
	if (ckpt_bp_decode(dc, out, len, back, n, s2, &why))
		CHECK_FAIL("decode: %s", why);
	ASSERT_TRUE(memcmp(raw, back, n) == 0);
	free(out);
	free(scratch);
	free(back);
	free(s2);
	ZSTD_freeCCtx(cc);
	ZSTD_freeDCtx(dc);
	return len;
}

static size_t kind_trip(enum kind k, unsigned w, size_t n)
{
	unsigned char *raw = malloc(n);
	struct ckpt_region r = { 0, n, w };
	size_t len;

	fill(raw, n, k);
	len = round_trip(raw, n, &r, w ? 1 : 0);
	free(raw);
	return len;
}

static void test_bf16(void)
{
	size_t n = 1 << 20, len = kind_trip(K_BF16, 2, n);
	ASSERT_TRUE(len < n * 10 / 14);	/* ratio > 1.4 (zstd -1: 1.28) */
}

static void test_fp16(void)
{
	size_t n = 1 << 20, len = kind_trip(K_F16, 2, n);
	ASSERT_TRUE(len < n);
}

static void test_fp32(void)
{
	size_t n = 1 << 20, len = kind_trip(K_F32, 4, n);
	ASSERT_TRUE(len < n * 10 / 11);
}

static void test_int8_untyped(void)
{
	kind_trip(K_I8, 0, 1 << 20);
}

static void test_random_stays_raw(void)
{
	size_t n = 1 << 20, len = kind_trip(K_RANDOM, 4, n);
	ASSERT_TRUE(len <= n + 64);
}

static void test_zeros(void)
{
	size_t n = 1 << 20, len = kind_trip(K_ZERO, 2, n);
	ASSERT_TRUE(len < 4096);
	kind_trip(K_ZERO, 0, 7);
	kind_trip(K_ZERO, 0, 1);
}

/* Odd regions: misaligned starts, lengths not a multiple of the width,
 * overlapping, out of range, too short; all still decode exactly. */
static void test_mixed_regions(void)
{
	size_t n = (1 << 20) + 333;
	unsigned char *raw = malloc(n);
	struct ckpt_region rg[] = {
		{ 1, 5000, 2 }, { 3, 100000, 4 }, { 200001, 300003, 4 }, { 500004, 100, 2 },
		{ 600001, 200001, 2 }, { n - 5000, 9000, 4 }, { n - 4099, 4099, 4 },
	};

	fill(raw, n, K_F32);
	memset(raw + 300000, 'x', 1000);
	round_trip(raw, n, rg, sizeof(rg) / sizeof(rg[0]));
	free(raw);
}

static void test_many_regions_capped(void)
{
	size_t n = 4 << 20, k = 0;
	unsigned char *raw = malloc(n);
	struct ckpt_region *rg = calloc(2000, sizeof(*rg));

	fill(raw, n, K_BF16);
	for (size_t off = 0; off + 4200 < n && k < 2000; off += 4200)
		rg[k++] = (struct ckpt_region){ off, 4100, k % 2 ? 2 : 4 };
	round_trip(raw, n, rg, k);
	free(raw);
	free(rg);
}

static unsigned char *encode(size_t n, size_t *len, unsigned char **raw)
{
	size_t cap = ckpt_codec_bound(n);
	unsigned char *out = malloc(cap), *scratch = malloc(n);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	struct ckpt_region r = { 0, n, 2 };

	*raw = malloc(n);
	fill(*raw, n, K_BF16);
	ASSERT_EQ(ckpt_bp_encode(cc, 1, *raw, n, &r, 1, scratch, out, cap, len), 0);
	free(scratch);
	ZSTD_freeCCtx(cc);
	return out;
}

/* A flipped byte in the coded (exponent) plane fails the decoder (zstd's
 * checksum); one in a raw plane decodes to different bytes, which the
 * part's SHA-256 in the manifest catches first (tested in codec.sh). */
static void test_corrupt_planes(void)
{
	size_t n = 1 << 18, len, bad = 0;
	unsigned char *raw, *out = encode(n, &len, &raw), *back = malloc(n), *s2 = malloc(n + 1);
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	const char *why;

	for (size_t at = 16; at < len; at += len / 97 + 1) {
		out[at] ^= 0x20;
		if (ckpt_bp_decode(dc, out, len, back, n, s2, &why) || memcmp(back, raw, n))
			bad++;
		out[at] ^= 0x20;
	}
	ASSERT_TRUE(bad > 90);
	/* inside the zstd-coded exponent plane (it follows the raw mantissa plane) */
	out[16 + 8 + 8 + n / 2 + 8 + 40] ^= 1;
	ASSERT_NE(ckpt_bp_decode(dc, out, len, back, n, s2, &why), 0);
	free(out);
	free(raw);
	free(back);
	free(s2);
	ZSTD_freeDCtx(dc);
}

static void test_truncated_and_headers(void)
{
	size_t n = 1 << 16, len;
	unsigned char *raw, *out = encode(n, &len, &raw), *back = malloc(n + 8), *s2 = malloc(n);
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	const char *why;

	for (size_t l = 0; l < len; l += 1 + l / 3)
		ASSERT_NE(ckpt_bp_decode(dc, out, l, back, n, s2, &why), 0);
	ASSERT_NE(ckpt_bp_decode(dc, out, len, back, n - 1, s2, &why), 0);	/* wrong raw size */
	out[4] = 2;
	ASSERT_NE(ckpt_bp_decode(dc, out, len, back, n, s2, &why), 0);	/* unknown version */
	out[4] = 1;
	ASSERT_EQ(ckpt_bp_decode(dc, out, len, back, n, s2, &why), 0);
	out[16] = 3;
	ASSERT_NE(ckpt_bp_decode(dc, out, len, back, n, s2, &why), 0);	/* width 3 */
	free(out);
	free(raw);
	free(back);
	free(s2);
	ZSTD_freeDCtx(dc);
}

static void test_codec_names(void)
{
	ASSERT_STR_EQ(ckpt_codec_name(CKPT_CODEC_BP1), "bp1");
	ASSERT_EQ(ckpt_codec_parse("zstd"), CKPT_CODEC_ZSTD);
	ASSERT_EQ(ckpt_codec_parse("bp1"), CKPT_CODEC_BP1);
	ASSERT_EQ(ckpt_codec_parse("lz4"), -1);
}

static void test_safetensors_hints(void)
{
	char dir[] = "/tmp/test_codec.XXXXXX";
	const char *hdr = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]},"
			  "\"__metadata__\":{\"x\":\"y\"},"
			  "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]},"
			  "\"c\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[32,36]}}";
	uint64_t hl = strlen(hdr);
	unsigned char zero[64] = { 0 };
	struct ckpt_file f = { .path = "m.safetensors", .type = CKPT_REG };
	struct ckpt_region *v;
	size_t n;
	int fd, root;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	root = open(dir, O_RDONLY | O_DIRECTORY);
	fd = openat(root, f.path, O_WRONLY | O_CREAT, 0600);
	ASSERT_EQ(write(fd, &hl, 8), 8);	/* little-endian host */
	ASSERT_EQ(write(fd, hdr, hl), (ssize_t)hl);
	ASSERT_EQ(write(fd, zero, 36), 36);
	close(fd);
	f.size = 8 + hl + 36;
	ASSERT_EQ(ckpt_hints(root, &f, &v, &n), 0);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(v[0].off, 8 + hl);
	ASSERT_EQ(v[0].width, 2);
	ASSERT_EQ(v[1].off, 8 + hl + 16);
	ASSERT_EQ(v[1].width, 4);
	ASSERT_EQ(v[1].len, 16);
	free(v);
	unlinkat(root, f.path, 0);
	close(root);
	rmdir(dir);
}

int main(void)
{
	static const struct check_case cases[] = {
		CHECK_CASE(test_bf16), CHECK_CASE(test_fp16), CHECK_CASE(test_fp32),
		CHECK_CASE(test_int8_untyped), CHECK_CASE(test_random_stays_raw), CHECK_CASE(test_zeros),
		CHECK_CASE(test_mixed_regions), CHECK_CASE(test_many_regions_capped),
		CHECK_CASE(test_corrupt_planes), CHECK_CASE(test_truncated_and_headers),
		CHECK_CASE(test_codec_names), CHECK_CASE(test_safetensors_hints),
	};
	return check_run("codec", cases, sizeof(cases) / sizeof(cases[0]));
}
