/*
 * ckpt_hint.c - tells the push where a file's floating-point elements are,
 * so that the bp1 codec (ckpt_codec.c) can split them into byte planes at
 * the right phase.  A safetensors file (8-byte little-endian header length,
 * a JSON header giving each tensor's dtype and data_offsets, then the data)
 * yields one region per tensor of a 2- or 4-byte dtype.  Any other file of
 * 1 MiB or more is sampled (64 KiB from its middle): when splitting the
 * sample into 2- or 4-byte planes lowers its order-0 entropy by 5% or more
 * and the bytes look like numbers (over 6 bits per byte), the whole file
 * is one region of that width.  Hints only steer compression: a wrong hint
 * costs ratio, never correctness.
 */
#include "ckpt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define HINT_HEADER_MAX (16u << 20)
#define HINT_SAMPLE (64u << 10)
#define HINT_MIN_FILE (1u << 20)

static unsigned hint_width(const char *dtype)
{
	static const char *const w4[] = { "F32", "I32", "U32" };
	static const char *const w2[] = { "BF16", "F16", "I16", "U16" };

	for (size_t i = 0; i < 3; i++)
		if (!strcmp(dtype, w4[i]))
			return 4;
	for (size_t i = 0; i < 4; i++)
		if (!strcmp(dtype, w2[i]))
			return 2;
	return 0;
}

static int hint_cmp(const void *a, const void *b)
{
	const struct ckpt_region *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Regions of a parsed safetensors header whose data starts at base. */
static int hint_tensors(json_t *root, uint64_t base, uint64_t size, struct ckpt_region **v, size_t *n)
{
	const char *key;
	json_t *t;
	size_t cap = json_object_size(root), k = 0;
	struct ckpt_region *r = cap ? calloc(cap, sizeof(*r)) : NULL;

	if (!r)
		return 0;
	json_object_foreach(root, key, t) {
		const char *dtype;
		json_int_t a, b;
		unsigned w;
		if (!strcmp(key, "__metadata__") ||
		    json_unpack(t, "{s:s, s:[I, I]}", "dtype", &dtype, "data_offsets", &a, &b) ||
		    !(w = hint_width(dtype)) || a < 0 || b <= a || base + (uint64_t)b > size)
			continue;
		r[k++] = (struct ckpt_region){ base + (uint64_t)a, (uint64_t)(b - a), w };
	}
	qsort(r, k, sizeof(*r), hint_cmp);
	for (size_t i = 1; i < k; i++)	/* overlapping tensors: drop the later ones' hints */
		if (r[i].off < r[i - 1].off + r[i - 1].len)
			r[i].len = 0;
	*v = r;
	*n = k;
	return 0;
}

static int hint_safetensors(int fd, uint64_t size, struct ckpt_region **v, size_t *n)
{
	unsigned char len8[8];
	uint64_t hl = 0;
	char *text;
	json_t *root;

	if (pread(fd, len8, 8, 0) != 8)
		return 0;
	for (int i = 7; i >= 0; i--)
		hl = hl << 8 | len8[i];
	if (hl < 2 || hl > HINT_HEADER_MAX || 8 + hl > size || !(text = malloc(hl)))
		return 0;
	if (pread(fd, text, hl, 8) == (ssize_t)hl && text[0] == '{' &&
	    (root = json_loadb(text, hl, 0, NULL))) {
		if (json_is_object(root))
			hint_tensors(root, 8 + hl, size, v, n);
		json_decref(root);
	}
	free(text);
	return 0;
}

/* Order-0 entropy, bits per byte, of every stride-th byte from phase. */
static double hint_entropy(const unsigned char *p, size_t n, size_t stride, size_t phase)
{
	unsigned cnt[256] = { 0 };
	size_t k = 0;
	double h = 0;

	for (size_t i = phase; i < n; i += stride, k++)
		cnt[p[i]]++;
	for (int i = 0; i < 256 && k; i++)
		if (cnt[i])
			h -= cnt[i] / (double)k * log2(cnt[i] / (double)k);
	return h;
}

static int hint_sample(int fd, uint64_t size, struct ckpt_region **v, size_t *n)
{
	unsigned char *buf = malloc(HINT_SAMPLE);
	uint64_t at = (size / 2) & ~(uint64_t)15;
	double h1, best = 0;
	unsigned bw = 0;

	if (!buf)
		return 0;
	if (pread(fd, buf, HINT_SAMPLE, (off_t)at) != (ssize_t)HINT_SAMPLE)
		goto out;
	h1 = hint_entropy(buf, HINT_SAMPLE, 1, 0);
	if (h1 < 6.0)
		goto out;
	for (unsigned w = 2; w <= 4; w += 2) {
		double h = 0;
		for (unsigned j = 0; j < w; j++)
			h += hint_entropy(buf, HINT_SAMPLE, w, j) / w;
		if (h < h1 * 0.95 && (!bw || h < best)) {
			best = h;
			bw = w;
		}
	}
	if (bw && (*v = calloc(1, sizeof(**v)))) {
		**v = (struct ckpt_region){ 0, size, bw };
		*n = 1;
	}
out:
	free(buf);
	return 0;
}

int ckpt_hints(int rootfd, const struct ckpt_file *f, struct ckpt_region **v, size_t *n)
{
	size_t pl = strlen(f->path);
	int fd;

	*v = NULL;
	*n = 0;
	if (f->type != CKPT_REG || f->size < 16)
		return 0;
	if ((fd = openat(rootfd, f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;	/* the reader reports unreadable files */
	if (pl > 12 && !strcmp(f->path + pl - 12, ".safetensors"))
		hint_safetensors(fd, f->size, v, n);
	else if (f->size >= HINT_MIN_FILE)
		hint_sample(fd, f->size, v, n);
	close(fd);
	return 0;
}
