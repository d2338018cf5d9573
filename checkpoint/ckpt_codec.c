/*
 * ckpt_codec.c - the float-aware part codec "bp1" (docs/codec.md): a part of
 * the tar stream is cut into segments; a typed segment (elements of 2 or 4
 * bytes, from the safetensors header or a sample of the file) is rotated
 * left by one bit per element (sign next to the mantissa, exponent alone in
 * the top byte) and split into byte planes; every plane (and every untyped
 * segment) is stored raw or as one zstd frame, chosen by compressing a
 * sample of it.  Exponent planes compress to about a third; mantissa planes
 * are stored raw at memcpy speed.  The decoder trusts nothing: every length
 * is checked against the frame and the declared raw size before use.
 */
#define ZSTD_STATIC_LINKING_ONLY	/* ZSTD_c_literalCompressionMode */
#include "ckpt_int.h"

#include <string.h>
#include <zstd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define BP_HDR 16
#define BP_SEG_HDR 8
#define BP_PLANE_HDR 8
#define BP_SAMPLE (64u << 10)
#define BP_MIN_TYPED 4096	/* shorter typed regions are coded as plain bytes */

enum { BP_RAW = 0, BP_ZSTD = 1 };

size_t ckpt_codec_bound(size_t raw)
{
	return ZSTD_compressBound(raw) + BP_HDR +
	       (size_t)CKPT_BP_MAXSEG * (BP_SEG_HDR + 4 * (BP_PLANE_HDR + 32));
}

static void bp_put16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void bp_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t bp_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t bp_get64(const unsigned char *p)
{
	return (uint64_t)bp_get32(p) | (uint64_t)bp_get32(p + 4) << 32;
}

/* ---- byte planes ------------------------------------------------------- */

static void bp_split(const unsigned char *in, size_t n, int w, unsigned char *planes)
{
	size_t k = n / (size_t)w;

	if (w == 2) {
		unsigned char *p0 = planes, *p1 = planes + k;
		for (size_t i = 0; i < k; i++) {
			uint16_t v = (uint16_t)(in[2 * i] | in[2 * i + 1] << 8);
			v = (uint16_t)(v << 1 | v >> 15);
			p0[i] = (unsigned char)v;
			p1[i] = (unsigned char)(v >> 8);
		}
		return;
	}
	for (size_t i = 0; i < k; i++) {
		uint32_t v = bp_get32(in + 4 * i);
		v = v << 1 | v >> 31;
		planes[i] = (unsigned char)v;
		planes[k + i] = (unsigned char)(v >> 8);
		planes[2 * k + i] = (unsigned char)(v >> 16);
		planes[3 * k + i] = (unsigned char)(v >> 24);
	}
}

#ifdef __SSE2__
/* bp_join's first k - k % 16 elements, 16 at a time (SSE2 is in every
 * x86-64): on a pull the scalar loop was the largest cost after SHA-256. */
static size_t bp_join_sse2(unsigned char *out, size_t k, int w, const unsigned char *const *pl)
{
	size_t i = 0;

	for (; w == 2 && i + 16 <= k; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(pl[0] + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(pl[1] + i));
		__m128i lo = _mm_unpacklo_epi8(a, b), hi = _mm_unpackhi_epi8(a, b);
		lo = _mm_or_si128(_mm_srli_epi16(lo, 1), _mm_slli_epi16(lo, 15));
		hi = _mm_or_si128(_mm_srli_epi16(hi, 1), _mm_slli_epi16(hi, 15));
		_mm_storeu_si128((__m128i *)(out + 2 * i), lo);
		_mm_storeu_si128((__m128i *)(out + 2 * i + 16), hi);
	}
	for (; w == 4 && i + 16 <= k; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(pl[0] + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(pl[1] + i));
		__m128i c = _mm_loadu_si128((const __m128i *)(pl[2] + i));
		__m128i d = _mm_loadu_si128((const __m128i *)(pl[3] + i));
		__m128i ablo = _mm_unpacklo_epi8(a, b), abhi = _mm_unpackhi_epi8(a, b);
		__m128i cdlo = _mm_unpacklo_epi8(c, d), cdhi = _mm_unpackhi_epi8(c, d);
		__m128i v[4] = { _mm_unpacklo_epi16(ablo, cdlo), _mm_unpackhi_epi16(ablo, cdlo),
				 _mm_unpacklo_epi16(abhi, cdhi), _mm_unpackhi_epi16(abhi, cdhi) };
		for (int j = 0; j < 4; j++)
			_mm_storeu_si128((__m128i *)(out + 4 * i + 16 * (size_t)j),
					 _mm_or_si128(_mm_srli_epi32(v[j], 1), _mm_slli_epi32(v[j], 31)));
	}
	return i;
}
#endif

/* Undoes bp_split: interleaves the planes and rotates each element back. */
static void bp_join(unsigned char *out, size_t k, int w, const unsigned char *const *pl)
{
	size_t i = 0;

#ifdef __SSE2__
	i = bp_join_sse2(out, k, w, pl);
#endif
	if (w == 2) {
		const unsigned char *p0 = pl[0], *p1 = pl[1];
		for (; i < k; i++) {
			uint16_t v = (uint16_t)(p0[i] | p1[i] << 8);
			bp_put16(out + 2 * i, (uint16_t)(v >> 1 | v << 15));
		}
		return;
	}
	for (; i < k; i++) {
		uint32_t v = (uint32_t)pl[0][i] | (uint32_t)pl[1][i] << 8 | (uint32_t)pl[2][i] << 16 |
			     (uint32_t)pl[3][i] << 24;
		bp_put32(out + 4 * i, v >> 1 | v << 31);
	}
}

/* ---- encoder ------------------------------------------------------------ */

/* entropy: level 1's fast strategy with a 64-entry hash table and 7-byte
 * matches, so almost everything is Huffman-coded literals (measured: twice
 * level 1's speed on an exponent plane, and a better ratio). */
static size_t bp_zstd(ZSTD_CCtx *cc, int level, int entropy, unsigned char *out, size_t cap,
		      const unsigned char *in, size_t n)
{
	ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, entropy ? 1 : level);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	if (entropy) {
		ZSTD_CCtx_setParameter(cc, ZSTD_c_strategy, ZSTD_fast);
		ZSTD_CCtx_setParameter(cc, ZSTD_c_minMatch, 7);
		ZSTD_CCtx_setParameter(cc, ZSTD_c_hashLog, 6);
		ZSTD_CCtx_setParameter(cc, ZSTD_c_literalCompressionMode, ZSTD_ps_enable);
	}
	return ZSTD_compress2(cc, out, cap, in, n);
}

/* One plane record at out: raw, an entropy-coded frame or a level-`level`
 * frame (tried only above level 1), whichever a sample says is smallest;
 * raw when coding does not save 3%. */
static int bp_plane(ZSTD_CCtx *cc, int level, const unsigned char *in, size_t n, unsigned char *out,
		    size_t cap, size_t *used)
{
	size_t s = n < BP_SAMPLE ? n : BP_SAMPLE, ent, lvl, r = 0;
	int method = BP_RAW, entropy = 1;

	if (cap < BP_PLANE_HDR + n)
		return -1;
	if (n >= 64) {
		ent = bp_zstd(cc, level, 1, out + BP_PLANE_HDR, cap - BP_PLANE_HDR, in, s);
		if (!ZSTD_isError(ent) && ent < s - s / 32) {
			if (level > 1) {
				lvl = bp_zstd(cc, level, 0, out + BP_PLANE_HDR, cap - BP_PLANE_HDR, in, s);
				entropy = ZSTD_isError(lvl) || lvl >= ent - ent / 20;
			}
			r = bp_zstd(cc, level, entropy, out + BP_PLANE_HDR, cap - BP_PLANE_HDR, in, n);
			if (!ZSTD_isError(r) && r < n)
				method = BP_ZSTD;
		}
	}
	if (method == BP_RAW) {
		memcpy(out + BP_PLANE_HDR, in, n);
		r = n;
	}
	memset(out, 0, BP_PLANE_HDR);
	out[0] = (unsigned char)method;
	bp_put32(out + 4, (uint32_t)r);
	*used = BP_PLANE_HDR + r;
	return 0;
}

struct bp_out {
	unsigned char *p;
	size_t cap, len;
	unsigned nseg;
};

static int bp_segment(ZSTD_CCtx *cc, int level, const unsigned char *in, size_t n, int w,
		      unsigned char *scratch, struct bp_out *o)
{
	unsigned char *seg = o->p + o->len;
	const unsigned char *src = in;
	size_t k = n / (size_t)w, used, off = BP_SEG_HDR;

	if (!n)
		return 0;
	if (o->cap - o->len < BP_SEG_HDR)
		return -1;
	memset(seg, 0, BP_SEG_HDR);
	seg[0] = (unsigned char)w;
	seg[1] = w > 1;		/* flags: bit 0 = rotated left by one bit */
	bp_put32(seg + 4, (uint32_t)n);
	if (w > 1) {
		bp_split(in, n, w, scratch);
		src = scratch;
	}
	for (int j = 0; j < w; j++) {
		if (bp_plane(cc, level, src + (size_t)j * k, k, seg + off, o->cap - o->len - off, &used))
			return -1;
		off += used;
	}
	o->len += off;
	o->nseg++;
	return 0;
}

int ckpt_bp_encode(ZSTD_CCtx *cc, int level, const unsigned char *raw, size_t n,
		   const struct ckpt_region *rg, size_t nrg, unsigned char *scratch, unsigned char *out,
		   size_t cap, size_t *outlen)
{
	struct bp_out o = { out, cap, BP_HDR, 0 };
	size_t pos = 0;

	if (cap < BP_HDR)
		return -1;
	for (size_t i = 0; i < nrg && o.nseg + 3 < CKPT_BP_MAXSEG; i++) {
		size_t a = rg[i].off, len = rg[i].len, w = rg[i].width;
		if (a < pos || a + len > n || (w != 2 && w != 4) || len < BP_MIN_TYPED)
			continue;
		len -= len % w;
		if (bp_segment(cc, level, raw + pos, a - pos, 1, scratch, &o) ||
		    bp_segment(cc, level, raw + a, len, (int)w, scratch, &o))
			return -1;
		pos = a + len;
	}
	if (bp_segment(cc, level, raw + pos, n - pos, 1, scratch, &o))
		return -1;
	memcpy(out, "SRBP", 4);
	out[4] = 1;		/* version */
	out[5] = 0;		/* flags */
	bp_put16(out + 6, o.nseg);
	bp_put32(out + 8, (uint32_t)n);
	bp_put32(out + 12, (uint32_t)((uint64_t)n >> 32));
	*outlen = o.len;
	return 0;
}

/* ---- decoder ------------------------------------------------------------ */

static int bp_bad(const char **why, const char *msg)
{
	*why = msg;
	return -1;
}

/* Decodes one plane record of k bytes at in[*pos]: *src is the plane,
 * either in the frame itself (raw) or decompressed into dst. */
static int bp_unplane(ZSTD_DCtx *dc, const unsigned char *in, size_t n, size_t *pos, unsigned char *dst,
		      size_t k, const unsigned char **src, const char **why)
{
	size_t len, r;

	if (n - *pos < BP_PLANE_HDR)
		return bp_bad(why, "truncated plane header");
	len = bp_get32(in + *pos + 4);
	if (in[*pos + 1] || in[*pos + 2] || in[*pos + 3] || len > n - *pos - BP_PLANE_HDR)
		return bp_bad(why, "bad plane header");
	*pos += BP_PLANE_HDR;
	if (in[*pos - BP_PLANE_HDR] == BP_RAW) {
		if (len != k)
			return bp_bad(why, "raw plane of the wrong size");
		*src = in + *pos;
	} else if (in[*pos - BP_PLANE_HDR] == BP_ZSTD) {
		if (ZSTD_getFrameContentSize(in + *pos, len) != k ||
		    ZSTD_findFrameCompressedSize(in + *pos, len) != len)
			return bp_bad(why, "plane is not one zstd frame of its size");
		r = ZSTD_decompressDCtx(dc, dst, k, in + *pos, len);
		if (ZSTD_isError(r) || r != k)
			return bp_bad(why, "plane does not decompress");
		*src = dst;
	} else {
		return bp_bad(why, "unknown plane method");
	}
	*pos += len;
	return 0;
}

static int bp_unsegment(ZSTD_DCtx *dc, const unsigned char *in, size_t n, size_t *pos, unsigned char *raw,
			size_t rawn, size_t *rpos, unsigned char *scratch, const char **why)
{
	const unsigned char *h = in + *pos, *pl[4];
	size_t len, k;
	int w;

	if (n - *pos < BP_SEG_HDR)
		return bp_bad(why, "truncated segment header");
	w = h[0];
	len = bp_get32(h + 4);
	if ((w != 1 && w != 2 && w != 4) || h[1] != (w > 1) || h[2] || h[3] || len == 0 ||
	    len % (size_t)w || len > rawn - *rpos)
		return bp_bad(why, "bad segment header");
	*pos += BP_SEG_HDR;
	k = len / (size_t)w;
	for (int j = 0; j < w; j++) {
		unsigned char *dst = w == 1 ? raw + *rpos : scratch + (size_t)j * k;
		if (bp_unplane(dc, in, n, pos, dst, k, &pl[j], why))
			return -1;
	}
	if (w > 1)
		bp_join(raw + *rpos, k, w, pl);
	else if (pl[0] != raw + *rpos)
		memcpy(raw + *rpos, pl[0], k);
	*rpos += len;
	return 0;
}

int ckpt_bp_decode(ZSTD_DCtx *dc, const unsigned char *in, size_t n, unsigned char *raw, size_t rawn,
		   unsigned char *scratch, const char **why)
{
	size_t pos = BP_HDR, rpos = 0;
	unsigned nseg;

	if (n < BP_HDR || memcmp(in, "SRBP", 4) || in[4] != 1 || in[5])
		return bp_bad(why, "not a bp1 frame");
	nseg = (unsigned)in[6] | (unsigned)in[7] << 8;
	if (bp_get64(in + 8) != rawn || nseg > CKPT_BP_MAXSEG)
		return bp_bad(why, "frame header does not match the part");
	for (unsigned i = 0; i < nseg; i++)
		if (bp_unsegment(dc, in, n, &pos, raw, rawn, &rpos, scratch, why))
			return -1;
	if (rpos != rawn)
		return bp_bad(why, "segments do not add up to the part");
	if (pos != n)
		return bp_bad(why, "trailing bytes after the last segment");
	return 0;
}

const char *ckpt_codec_name(int codec)
{
	return codec == CKPT_CODEC_BP1 ? "bp1" : "zstd";
}

int ckpt_codec_parse(const char *name)
{
	return !strcmp(name, "zstd") ? CKPT_CODEC_ZSTD : !strcmp(name, "bp1") ? CKPT_CODEC_BP1 : -1;
}
