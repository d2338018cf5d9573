/*
 * test_ckpt_manifest.c - the manifest codec: round trip, and a strict
 * parser that refuses truncated text, wrong types, bad hashes, unsafe
 * paths, gaps between parts and formats it does not know.
 */
#include "check.h"

#include <fcntl.h>
#include <jansson.h>

#include "ckpt_int.h"

static const char *const SHA_A = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void add_file(struct ckpt_manifest *m, const char *path, enum ckpt_type t, uint64_t size,
		     const char *target)
{
	struct ckpt_file *f = ckpt_manifest_add_file(m);
	f->path = strdup(path);
	f->type = t;
	f->size = size;
	f->mode = t == CKPT_DIR ? 0755 : 0640;
	f->mtime = 1732960000;
	f->mtime_nsec = 123456789;
	f->target = target ? strdup(target) : NULL;
	ckpt_unhex(SHA_A, f->sha);
	f->sha[0] = (unsigned char)m->nfiles;
}

static void sample(struct ckpt_manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->format = 1;
	m->job = strdup("ft-7b");
	m->name = strdup("step-000500");
	m->created = strdup("2026-11-30T10:00:00Z");
	m->host = strdup("node1");
	m->provider = strdup("aws");
	m->region = strdup("us-east-1");
	m->instance = strdup("p5.48xlarge");
	m->gpu = strdup("{\"count\":1,\"devices\":[{\"name\":\"H100\",\"cc\":\"9.0\"}]}");
	m->seq = 7;
	m->step = 500;
	m->level = 3;
	m->part_size = 1 << 20;
	add_file(m, "model", CKPT_DIR, 0, NULL);
	add_file(m, "model/w.safetensors", CKPT_REG, 3000000, NULL);
	add_file(m, "latest", CKPT_LNK, 0, "model/w.safetensors");
	add_file(m, "h\xc3\xa9llo \xc3\xb1.json", CKPT_REG, 0, NULL);
	for (int i = 0; i < 3; i++) {
		struct ckpt_part *p = ckpt_manifest_add_part(m);
		p->raw_offset = m->raw_bytes;
		p->raw_size = i < 2 ? m->part_size : 1000;
		p->offset = m->stored_bytes;
		p->size = p->raw_size / 2;
		ckpt_unhex(SHA_A, p->sha);
		p->sha[31] = (unsigned char)i;
		m->raw_bytes += p->raw_size;
		m->stored_bytes += p->size;
	}
}

static int parse(const char *text)
{
	struct ckpt_manifest m;
	int rc = ckpt_manifest_parse(text, strlen(text), &m);
	ckpt_manifest_free(&m);
	return rc;
}

static void round_trip(void)
{
	struct ckpt_manifest a, b;
	char *text, *again;

	sample(&a);
	text = ckpt_manifest_encode(&a);
	ASSERT_TRUE(text != NULL);
	ASSERT_EQ(ckpt_manifest_parse(text, strlen(text), &b), 0);
	ASSERT_STR_EQ(b.job, "ft-7b");
	ASSERT_STR_EQ(b.name, "step-000500");
	ASSERT_STR_EQ(b.instance, "p5.48xlarge");
	ASSERT_EQ(b.seq, 7);
	ASSERT_EQ(b.step, 500);
	ASSERT_EQ(b.level, 3);
	ASSERT_EQ(b.nfiles, 4);
	ASSERT_EQ(b.nparts, 3);
	ASSERT_EQ(b.raw_bytes, a.raw_bytes);
	ASSERT_EQ(b.stored_bytes, a.stored_bytes);
	for (size_t i = 0; i < a.nfiles; i++) {
		ASSERT_STR_EQ(b.files[i].path, a.files[i].path);
		ASSERT_EQ(b.files[i].type, a.files[i].type);
		ASSERT_EQ(b.files[i].size, a.files[i].size);
		ASSERT_EQ(b.files[i].mode, a.files[i].mode);
		ASSERT_EQ(b.files[i].mtime_nsec, 123456789);
		if (a.files[i].type == CKPT_REG)
			ASSERT_EQ(memcmp(b.files[i].sha, a.files[i].sha, 32), 0);
	}
	ASSERT_STR_EQ(b.files[2].target, "model/w.safetensors");
	for (size_t i = 0; i < a.nparts; i++)
		ASSERT_EQ(memcmp(&b.parts[i], &a.parts[i], sizeof(a.parts[i])), 0);
	ASSERT_TRUE(b.gpu && strstr(b.gpu, "H100"));
	again = ckpt_manifest_encode(&b);
	ASSERT_STR_EQ(again, text);	/* stable */
	free(text);
	free(again);
	ckpt_manifest_free(&a);
	ckpt_manifest_free(&b);
}

static void null_step_and_gpu(void)
{
	struct ckpt_manifest a, b;
	char *text;

	sample(&a);
	a.step = -1;
	free(a.gpu);
	a.gpu = NULL;
	text = ckpt_manifest_encode(&a);
	ASSERT_TRUE(strstr(text, "\"step\": null") != NULL);
	ASSERT_TRUE(strstr(text, "\"gpu\": null") != NULL);
	ASSERT_EQ(ckpt_manifest_parse(text, strlen(text), &b), 0);
	ASSERT_EQ(b.step, -1);
	ASSERT_TRUE(b.gpu == NULL);
	free(text);
	ckpt_manifest_free(&a);
	ckpt_manifest_free(&b);
}

static void truncated(void)
{
	struct ckpt_manifest a;
	char *text;
	size_t len;

	sample(&a);
	text = ckpt_manifest_encode(&a);
	len = strlen(text);
	dup2(open("/dev/null", O_WRONLY), 2);	/* one error line per prefix */
	for (size_t n = 0; n < len; n += 7) {
		struct ckpt_manifest b;
		int rc = ckpt_manifest_parse(text, n, &b);
		if (rc != EX_DATAERR)
			CHECK_FAIL("prefix of %zu/%zu bytes: rc %d", n, len, rc);
	}
	free(text);
	ckpt_manifest_free(&a);
}

/* Encodes the sample, applies one edit with jansson, parses. */
static int edited(const char *container, int index, const char *key, json_t *val)
{
	struct ckpt_manifest a;
	json_t *root, *obj;
	char *text;
	int rc;

	sample(&a);
	text = ckpt_manifest_encode(&a);
	root = json_loads(text, 0, NULL);
	obj = root;
	if (container)
		obj = json_object_get(root, container);
	if (index >= 0)
		obj = json_array_get(obj, (size_t)index);
	if (val)
		json_object_set_new(obj, key, val);
	else
		json_object_del(obj, key);
	free(text);
	text = json_dumps(root, 0);
	rc = parse(text);
	free(text);
	json_decref(root);
	ckpt_manifest_free(&a);
	return rc;
}

static void wrong_types(void)
{
	ASSERT_EQ(edited(NULL, -1, "zzz", json_string("extra fields are fine")), 0);
	ASSERT_EQ(edited(NULL, -1, "seq", json_string("7")), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "seq", json_real(7.0)), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "seq", NULL), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "step", json_string("500")), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "step", json_integer(-5)), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "job", json_integer(1)), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "job", json_string("../x")), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "name", json_string("..")), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "name", json_string("a/b")), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "gpu", json_string("H100")), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "files", json_object()), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "parts", json_array()), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "format", json_integer(CKPT_FORMAT + 1)), EX_DATAERR);
	ASSERT_EQ(edited(NULL, -1, "format", json_string("1")), EX_DATAERR);
	/* per-part codecs: bp1 needs format 2; unknown codecs are refused */
	ASSERT_EQ(edited("parts", 1, "codec", json_string("bp1")), EX_DATAERR);
	ASSERT_EQ(edited("parts", 1, "codec", json_string("lz4")), EX_DATAERR);
	ASSERT_EQ(edited("parts", 1, "codec", json_integer(1)), EX_DATAERR);
	ASSERT_EQ(edited("parts", 1, "codec", NULL), 0);	/* absent: zstd (format 1 readers) */
	ASSERT_EQ(edited("files", 1, "size", json_string("3000000")), EX_DATAERR);
	ASSERT_EQ(edited("files", 1, "size", json_integer(-1)), EX_DATAERR);
	ASSERT_EQ(edited("files", 1, "mode", json_integer(010000)), EX_DATAERR);
	ASSERT_EQ(edited("files", 1, "type", json_string("fifo")), EX_DATAERR);
	ASSERT_EQ(edited("files", 2, "target", NULL), EX_DATAERR);
	ASSERT_EQ(edited("files", 0, "size", json_integer(5)), EX_DATAERR);
	ASSERT_EQ(edited("parts", 1, "raw_size", json_integer(3 << 20)), EX_DATAERR);
	ASSERT_EQ(edited("parts", 1, "offset", json_integer(1)), EX_DATAERR);
	ASSERT_EQ(edited("parts", 2, "raw_offset", json_integer(0)), EX_DATAERR);
	ASSERT_EQ(edited("totals", -1, "files", json_integer(3)), EX_DATAERR);
	ASSERT_EQ(edited("totals", -1, "raw_bytes", json_integer(5)), EX_DATAERR);
	ASSERT_EQ(edited("compression", -1, "codec", json_string("gzip")), EX_DATAERR);
	ASSERT_EQ(edited("compression", -1, "part_size", json_integer(1)), EX_DATAERR);
}

static void unsafe_paths(void)
{
	const char *bad[] = { "../x", "/etc/x", "a/../../x", "a//b", "./a", "a/", "", "a/.." };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (edited("files", 1, "path", json_string(bad[i])) != EX_DATAERR)
			CHECK_FAIL("path '%s' accepted", bad[i]);
	ASSERT_EQ(edited("files", 1, "path", json_string("a/b.c/d")), 0);
}

static void wrong_hashes(void)
{
	const char *bad[] = { "0123", "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
			      "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (edited("files", 1, "sha256", json_string(bad[i])) != EX_DATAERR)
			CHECK_FAIL("file hash '%s' accepted", bad[i]);
		if (edited("parts", 0, "sha256", json_string(bad[i])) != EX_DATAERR)
			CHECK_FAIL("part hash '%s' accepted", bad[i]);
	}
	ASSERT_EQ(edited("files", 1, "sha256", NULL), EX_DATAERR);
	ASSERT_EQ(edited("parts", 0, "sha256", json_integer(0)), EX_DATAERR);
}

static void not_json(void)
{
	ASSERT_EQ(parse(""), EX_DATAERR);
	ASSERT_EQ(parse("[]"), EX_DATAERR);
	ASSERT_EQ(parse("{\"format\":1}"), EX_DATAERR);
	ASSERT_EQ(parse("{\"format\":1,\"format\":1}"), EX_DATAERR);
	ASSERT_EQ(parse("\xff\xfe"), EX_DATAERR);
}

static void step_from_name(void)
{
	ASSERT_EQ(ckpt_step_from_name("step-000500"), 500);
	ASSERT_EQ(ckpt_step_from_name("checkpoint-1200"), 1200);
	ASSERT_EQ(ckpt_step_from_name("epoch3-step0042"), 42);
	ASSERT_EQ(ckpt_step_from_name("latest"), -1);
	ASSERT_EQ(ckpt_step_from_name("s99999999999999999999999"), -1);
	ASSERT_TRUE(ckpt_job_ok("ft-7b_v1.2"));
	ASSERT_TRUE(!ckpt_job_ok("a/b") && !ckpt_job_ok(".x") && !ckpt_job_ok("") && !ckpt_job_ok("a b"));
}

/* A bp1 part makes the manifest format 2 and round-trips its codec. */
static void codec_per_part(void)
{
	struct ckpt_manifest a, b;
	char *text;

	sample(&a);
	a.parts[1].codec = CKPT_CODEC_BP1;
	text = ckpt_manifest_encode(&a);
	ASSERT_TRUE(strstr(text, "\"format\": 2") != NULL);
	ASSERT_EQ(ckpt_manifest_parse(text, strlen(text), &b), 0);
	ASSERT_EQ(b.format, 2);
	ASSERT_EQ(b.parts[0].codec, CKPT_CODEC_ZSTD);
	ASSERT_EQ(b.parts[1].codec, CKPT_CODEC_BP1);
	free(text);
	ckpt_manifest_free(&a);
	ckpt_manifest_free(&b);
}

CHECK_MAIN("ckpt_manifest", CHECK_CASE(round_trip), CHECK_CASE(codec_per_part), CHECK_CASE(null_step_and_gpu), CHECK_CASE(truncated),
	   CHECK_CASE(wrong_types), CHECK_CASE(unsafe_paths), CHECK_CASE(wrong_hashes), CHECK_CASE(not_json),
	   CHECK_CASE(step_from_name))
