/*
 * driver.c - runs a fuzz target without libFuzzer: replays every file of
 * the corpus folder given as argv[1], then a fixed number of deterministic
 * mutations of them (bit flips, truncations, byte insertions, splices), so
 * `make check` fuzzes every parser a little on every run, under ASan and
 * UBSan in the sanitizer build.  With clang, `make fuzz-libfuzzer` links the
 * same targets against libFuzzer for open-ended runs.
 *
 * Prints "PASS fuzz/<target>/replay" and ".../mutations"; a crash is a
 * failure of the whole program, which tests/run.sh reports.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A target whose every input costs a system call or two may run fewer. */
extern const long fuzz_default_iterations __attribute__((weak));

#define FUZZ_MAX_INPUT (1 << 20)

static uint64_t fuzz_rng = 0x9e3779b97f4a7c15ull;

static uint64_t fuzz_next(void)
{
	fuzz_rng ^= fuzz_rng << 13;
	fuzz_rng ^= fuzz_rng >> 7;
	fuzz_rng ^= fuzz_rng << 17;
	return fuzz_rng;
}

static size_t fuzz_mutate(uint8_t *buf, size_t n, size_t cap)
{
	switch (fuzz_next() % 5) {
	case 0: /* flip bits */
		for (int i = 0; n && i < 1 + (int)(fuzz_next() % 4); i++)
			buf[fuzz_next() % n] ^= (uint8_t)(1u << (fuzz_next() % 8));
		return n;
	case 1: /* truncate */
		return n ? fuzz_next() % n : 0;
	case 2: /* insert interesting bytes */
		if (n + 8 < cap) {
			static const char *const ins[] = { "\"", "{", "}", "[", "]", ":", ",", "\\u0000",
							   "-1", "1e999", "null", "..", "/", "\n", "\xff" };
			const char *s = ins[fuzz_next() % (sizeof(ins) / sizeof(ins[0]))];
			size_t at = n ? fuzz_next() % n : 0, k = strlen(s);
			memmove(buf + at + k, buf + at, n - at);
			memcpy(buf + at, s, k);
			return n + k;
		}
		return n;
	case 3: /* duplicate a span */
		if (n && n * 2 < cap) {
			size_t a = fuzz_next() % n, len = fuzz_next() % (n - a) + 1;
			memmove(buf + a + len, buf + a, n - a);
			return n + len;
		}
		return n;
	default: /* random byte */
		if (n)
			buf[fuzz_next() % n] = (uint8_t)fuzz_next();
		return n;
	}
}

int main(int argc, char **argv)
{
	static uint8_t inputs[64][4096];
	static size_t lens[64];
	static uint8_t work[3 * FUZZ_MAX_INPUT];
	const char *dir = argc > 1 ? argv[1] : ".";
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	long iters = getenv("FUZZ_ITERATIONS") ? atol(getenv("FUZZ_ITERATIONS"))
		     : &fuzz_default_iterations ? fuzz_default_iterations : 20000;
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)) && n < 64) {
		char path[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		lens[n] = fread(inputs[n], 1, sizeof(inputs[n]), f);
		fclose(f);
		LLVMFuzzerTestOneInput(inputs[n], lens[n]);
		n++;
	}
	if (d)
		closedir(d);
	if (!n) {
		printf("FAIL fuzz/%s/replay: empty corpus '%s'\n", name, dir);
		return 1;
	}
	printf("PASS fuzz/%s/replay (%zu inputs)\n", name, n);
	for (long i = 0; i < iters; i++) {
		size_t k = fuzz_next() % n, len = lens[k];
		memcpy(work, inputs[k], len);
		for (int m = 0; m < 1 + (int)(fuzz_next() % 3); m++)
			len = fuzz_mutate(work, len, sizeof(work) / 2);
		LLVMFuzzerTestOneInput(work, len);
	}
	printf("PASS fuzz/%s/mutations (%ld)\n", name, iters);
	return 0;
}
