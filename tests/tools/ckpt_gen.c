/*
 * ckpt_gen.c - writes the synthetic checkpoint of PERF.md for `make bench`:
 * a llama-like folder of real safetensors files, one fifth bf16 weights
 * drawn from N(0, 0.02), four fifths fp32 Adam moments (exp_avg ~
 * N(0, (1e-3 s)^2), exp_avg_sq ~ (1e-3 s)^2 chi2(4)/4, s log-uniform in
 * [0.5, 2] per tensor), plus small config / trainer state / rng files.
 * No exact zeros.  Deterministic for a given seed; one thread per core.
 *
 *   ckpt_gen DIR SIZE [SEED]     (SIZE like 2G, 512M; DIR must not exist)
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GEN_TENSOR (16u << 20)	/* bytes per tensor */
#define GEN_SHARD (1ull << 30)	/* bytes per file at most */

enum gen_kind { GEN_WEIGHT, GEN_AVG, GEN_AVG_SQ };

struct gen_file {
	char path[512];
	enum gen_kind kind;
	uint64_t bytes;
	uint64_t seed;
};

struct gen_rng {
	uint64_t s[4];
};

static uint64_t gen_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t gen_next(struct gen_rng *r)	/* xoshiro256** */
{
	uint64_t *s = r->s, res = gen_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = gen_rotl(s[3], 45);
	return res;
}

static void gen_seed(struct gen_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {	/* splitmix64 */
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		r->s[i] = z ^ (z >> 31);
	}
}

static double gen_unif(struct gen_rng *r)	/* (0, 1) */
{
	return ((gen_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void gen_normals(struct gen_rng *r, double *a, double *b)	/* Box-Muller */
{
	double rad = sqrt(-2.0 * log(gen_unif(r))), th = 2 * M_PI * gen_unif(r);
	*a = rad * cos(th);
	*b = rad * sin(th);
}

static uint16_t gen_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	u += 0x7fff + ((u >> 16) & 1);	/* round to nearest even */
	return (uint16_t)(u >> 16);
}

static float gen_nonzero(float f)
{
	return f != 0.0f ? f : 1e-30f;
}

/* Fills one tensor of n bytes. */
static void gen_tensor(struct gen_rng *r, enum gen_kind k, unsigned char *buf, size_t n)
{
	double s = exp(log(0.5) + gen_unif(r) * (log(2.0) - log(0.5))), a, b;

	if (k == GEN_WEIGHT) {
		uint16_t *v = (uint16_t *)buf;
		for (size_t i = 0; i + 1 < n / 2; i += 2) {
			gen_normals(r, &a, &b);
			v[i] = gen_bf16(gen_nonzero((float)(0.02 * a)));
			v[i + 1] = gen_bf16(gen_nonzero((float)(0.02 * b)));
		}
	} else if (k == GEN_AVG) {
		float *v = (float *)buf;
		for (size_t i = 0; i + 1 < n / 4; i += 2) {
			gen_normals(r, &a, &b);
			v[i] = gen_nonzero((float)(1e-3 * s * a));
			v[i + 1] = gen_nonzero((float)(1e-3 * s * b));
		}
	} else {
		float *v = (float *)buf;
		double sc = 1e-6 * s * s;
		for (size_t i = 0; i < n / 4; i++)	/* chi2(4)/4 = -(ln u1 + ln u2) / 2 */
			v[i] = gen_nonzero((float)(sc * -(log(gen_unif(r)) + log(gen_unif(r))) / 2));
	}
}

static int gen_write(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* safetensors: u64 header length, JSON header, tensor data. */
static int gen_safetensors(const struct gen_file *f)
{
	const char *dt = f->kind == GEN_WEIGHT ? "BF16" : "F32";
	unsigned esz = f->kind == GEN_WEIGHT ? 2 : 4;
	size_t nt = (size_t)((f->bytes + GEN_TENSOR - 1) / GEN_TENSOR), hlen;
	json_t *h = json_object();
	unsigned char *buf = malloc(GEN_TENSOR);
	struct gen_rng r;
	char *text;
	uint64_t off = 0, len8;
	int fd, rc = 0;

	for (size_t i = 0; i < nt; i++) {
		uint64_t n = f->bytes - off < GEN_TENSOR ? f->bytes - off : GEN_TENSOR;
		char name[96];
		n -= n % (4096 * esz) ? n % (4096 * esz) : 0;
		if (!n)
			break;
		snprintf(name, sizeof(name), "model.layers.%zu.%s.weight", i,
			 i % 3 == 0 ? "self_attn.q_proj" : i % 3 == 1 ? "mlp.up_proj" : "mlp.down_proj");
		json_object_set_new(h, name, json_pack("{s:s, s:[I, I], s:[I, I]}", "dtype", dt, "shape",
						       (json_int_t)(n / esz / 4096), (json_int_t)4096,
						       "data_offsets", (json_int_t)off, (json_int_t)(off + n)));
		off += n;
	}
	json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
	text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
	hlen = strlen(text);
	len8 = hlen;
	fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || !buf || gen_write(fd, &len8, 8) || gen_write(fd, text, hlen))
		rc = -1;
	gen_seed(&r, f->seed);
	for (uint64_t done = 0; !rc && done < off;) {
		size_t n = off - done < GEN_TENSOR ? (size_t)(off - done) : GEN_TENSOR;
		gen_tensor(&r, f->kind, buf, n);
		rc = gen_write(fd, buf, n);
		done += n;
	}
	if (fd >= 0)
		close(fd);
	free(text);
	free(buf);
	json_decref(h);
	return rc;
}

struct gen_pool {
	pthread_mutex_t mu;
	struct gen_file *files;
	size_t n, next;
	int failed;
};

static void *gen_worker(void *arg)
{
	struct gen_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i >= p->n)
			return NULL;
		if (gen_safetensors(&p->files[i])) {
			fprintf(stderr, "ckpt_gen: cannot write '%s': %s\n", p->files[i].path, strerror(errno));
			p->failed = 1;
		}
	}
}

static int gen_small(const char *dir, const char *name, json_t *j)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int rc = json_dump_file(j, path, JSON_INDENT(2));
	json_decref(j);
	return rc;
}

static size_t gen_plan(const char *dir, uint64_t total, uint64_t seed, struct gen_file *v, size_t cap)
{
	const struct { enum gen_kind k; const char *stem; uint64_t bytes; } parts[] = {
		{ GEN_WEIGHT, "model", total / 5 },
		{ GEN_AVG, "optimizer/exp_avg", total * 2 / 5 },
		{ GEN_AVG_SQ, "optimizer/exp_avg_sq", total * 2 / 5 },
	};
	size_t n = 0;

	for (size_t k = 0; k < 3; k++)
		for (uint64_t left = parts[k].bytes, i = 1; left && n < cap; i++, n++) {
			v[n].kind = parts[k].k;
			v[n].bytes = left < GEN_SHARD ? left : GEN_SHARD;
			v[n].seed = seed * 1000 + n;
			snprintf(v[n].path, sizeof(v[n].path), "%s/%s-%05zu.safetensors", dir, parts[k].stem, (size_t)i);
			left -= v[n].bytes;
		}
	return n;
}

int main(int argc, char **argv)
{
	static struct gen_file files[4096];
	struct gen_pool pool = { .files = files };
	char sub[512], *end;
	unsigned long long size;
	long nth = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t th[64];

	if (argc < 3) {
		fprintf(stderr, "usage: ckpt_gen DIR SIZE [SEED]\n");
		return 64;
	}
	size = strtoull(argv[2], &end, 10);
	size <<= *end == 'G' || *end == 'g' ? 30 : *end == 'M' || *end == 'm' ? 20 : *end == 'K' || *end == 'k' ? 10 : 0;
	snprintf(sub, sizeof(sub), "%s/optimizer", argv[1]);
	if (mkdir(argv[1], 0755) || mkdir(sub, 0755)) {
		fprintf(stderr, "ckpt_gen: cannot create '%s': %s\n", argv[1], strerror(errno));
		return 73;
	}
	pool.n = gen_plan(argv[1], size, argc > 3 ? strtoull(argv[3], NULL, 10) : 1, files, 4096);
	pthread_mutex_init(&pool.mu, NULL);
	nth = nth < 1 ? 1 : nth > 64 ? 64 : nth;
	for (long i = 0; i < nth; i++)
		pthread_create(&th[i], NULL, gen_worker, &pool);
	for (long i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	gen_small(argv[1], "config.json", json_pack("{s:s, s:i, s:i, s:i, s:s}", "architectures", "LlamaForCausalLM",
						     "hidden_size", 4096, "num_hidden_layers", 32,
						     "vocab_size", 32000, "torch_dtype", "bfloat16"));
	gen_small(argv[1], "trainer_state.json", json_pack("{s:i, s:f, s:[{s:i, s:f}]}", "global_step", 100,
							    "epoch", 0.25, "log_history", "step", 100,
							    "loss", 1.875));
	gen_small(argv[1], "rng_state.json", json_pack("{s:I, s:s}", "seed", (json_int_t)1234, "cuda", "none"));
	return pool.failed ? 74 : 0;
}
