/*
 * test_file_direct.c - the file:// backend's O_DIRECT write path: uploads
 * and large puts of every awkward size (empty, under one page, one page
 * +- 1, one staging block +- 1, several blocks and a partial page),
 * streamed in odd pieces from unaligned buffers, read back byte for byte
 * with direct I/O on, off (SPOTRUN_FILE_DIRECT=0) and on tmpfs (buffered);
 * that a direct upload leaves the page cache empty (mincore) and a buffered
 * one does not; aborts that leave nothing behind; create-only large puts.
 */
#include "check.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "backend.h"
#include "xfer.h"

/* a strong reference, so the backend is linked from libspotrun.a */
__attribute__((used)) static const struct xfer_backend *const keep_backend = &xfer_file_backend;

#define MIB (1u << 20)
#define BIG (13 * MIB + 4099)	/* more than three 4 MiB staging blocks */

static char root[256];
static unsigned char *src;	/* BIG + 1 bytes of a fixed pseudo-random pattern */

static void make_src(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	src = malloc(BIG + 1);
	ASSERT_TRUE(src != NULL);
	for (size_t i = 0; i <= BIG; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		src[i] = (unsigned char)x;
	}
}

/* Opens a store in a fresh folder below base; direct: SPOTRUN_FILE_DIRECT unset or "0". */
static struct xfer_store *open_store(const char *base, int direct)
{
	struct xfer_store *st = NULL;
	char url[300];

	ASSERT_TRUE(keep_backend != NULL);
	if (direct)
		unsetenv("SPOTRUN_FILE_DIRECT");
	else
		setenv("SPOTRUN_FILE_DIRECT", "0", 1);
	snprintf(root, sizeof(root), "%s/sr-fdirect-%d", base, (int)getpid());
	snprintf(url, sizeof(url), "file://%s", root);
	ASSERT_EQ(xfer_open(url, NULL, &st), 0);
	if (!src)
		make_src();
	return st;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(struct xfer_store *st)
{
	xfer_close(st);
	ASSERT_EQ(nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Reads key back and compares it with src[off, off + len). */
static void check_object(struct xfer_store *st, const char *key, size_t off, size_t len)
{
	char *buf = NULL;
	size_t got = 0;
	uint64_t size = 0;

	ASSERT_EQ(xfer_head(st, key, &size), 0);
	ASSERT_EQ(size, len);
	ASSERT_EQ(xfer_get(st, key, &buf, &got, BIG + 1), 0);
	ASSERT_EQ(got, len);
	ASSERT_TRUE(memcmp(buf, src + off, len) == 0);
	free(buf);
}

/* Uploads src[1, 1 + len) in pieces of odd, varying lengths (1 byte up to
 * more than a staging block), from an unaligned start. */
static void upload_pieces(struct xfer_store *st, const char *key, size_t len)
{
	static const size_t piece[] = { 1, 100003, 4096, 3 * MIB + 5, 4095, 6 * MIB + 1, 7 };
	struct xfer_upload *up;
	size_t done = 0;

	ASSERT_EQ(xfer_upload_begin(st, key, &up), 0);
	for (int i = 0; done < len; i++) {
		size_t n = piece[i % 7] < len - done ? piece[i % 7] : len - done;
		ASSERT_EQ(xfer_upload_write(up, src + 1 + done, n), 0);
		done += n;
	}
	ASSERT_EQ(xfer_upload_finish(up), 0);
}

static const size_t sizes[] = { 0, 1, 4095, 4096, 4097, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1,
				8 * MIB + 4096, BIG };

static void uploads_all_sizes(const char *base, int direct)
{
	struct xfer_store *st = open_store(base, direct);
	char key[64];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(key, sizeof(key), "j/ckpt/%zu/data.tar.zst", i);
		upload_pieces(st, key, sizes[i]);
		check_object(st, key, 1, sizes[i]);
	}
	cleanup(st);
}

static void uploads_direct(void) { uploads_all_sizes("/tmp", 1); }
static void uploads_buffered(void) { uploads_all_sizes("/tmp", 0); }

static void uploads_tmpfs(void)
{
	struct statfs sf;

	if (statfs("/dev/shm", &sf) || sf.f_type != TMPFS_MAGIC) {
		fprintf(stderr, "  no tmpfs at /dev/shm: nothing to check\n");
		return;
	}
	uploads_all_sizes("/dev/shm", 1);
}

/* Pages of path held in the page cache. */
static size_t resident_pages(const char *path)
{
	struct stat sb;
	unsigned char *vec;
	size_t n, res = 0;
	void *m;
	int fd = open(path, O_RDONLY);

	ASSERT_TRUE(fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size > 0);
	n = ((size_t)sb.st_size + 4095) / 4096;
	m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_TRUE(m != MAP_FAILED);
	ASSERT_TRUE((vec = malloc(n)) != NULL);
	ASSERT_EQ(mincore(m, (size_t)sb.st_size, vec), 0);
	for (size_t i = 0; i < n; i++)
		res += vec[i] & 1;
	free(vec);
	munmap(m, (size_t)sb.st_size);
	close(fd);
	return res;
}

/* On a disk file system a direct upload leaves at most the buffered tail
 * page in the page cache; a buffered one leaves (nearly) all of it. */
static void direct_skips_page_cache(void)
{
	struct statfs sf;
	struct xfer_store *st;
	char path[400];

	if (statfs("/tmp", &sf) || (sf.f_type != EXT4_SUPER_MAGIC && sf.f_type != XFS_SUPER_MAGIC &&
				    sf.f_type != BTRFS_SUPER_MAGIC)) {
		fprintf(stderr, "  /tmp is not ext4, xfs or btrfs: nothing to check\n");
		return;
	}
	st = open_store("/tmp", 1);
	upload_pieces(st, "j/d", BIG);
	snprintf(path, sizeof(path), "%s/j/d", root);
	ASSERT_TRUE(resident_pages(path) <= 1);
	cleanup(st);
	st = open_store("/tmp", 0);
	upload_pieces(st, "j/b", BIG);
	snprintf(path, sizeof(path), "%s/j/b", root);
	ASSERT_TRUE(resident_pages(path) > BIG / 4096 / 2);
	cleanup(st);
}

/* Puts of 1 MiB and more go direct, smaller ones buffered: both exact;
 * create-only still refuses an existing key and keeps the first object. */
static void puts_large_and_create_only(void)
{
	struct xfer_store *st = open_store("/tmp", 1);

	ASSERT_EQ(xfer_put(st, "j/small", src + 3, MIB - 1, 0), 0);
	check_object(st, "j/small", 3, MIB - 1);
	ASSERT_EQ(xfer_put(st, "j/large", src + 5, 9 * MIB + 3, 0), 0);
	check_object(st, "j/large", 5, 9 * MIB + 3);
	ASSERT_EQ(xfer_put(st, "j/large", src + 7, 4 * MIB, 0), 0);	/* replaces */
	check_object(st, "j/large", 7, 4 * MIB);
	ASSERT_EQ(xfer_put(st, "j/m", src, 5 * MIB + 1, XFER_CREATE_ONLY), 0);
	ASSERT_EQ(xfer_put(st, "j/m", src + 1, 5 * MIB + 1, XFER_CREATE_ONLY), XFER_EXISTS);
	check_object(st, "j/m", 0, 5 * MIB + 1);
	cleanup(st);
}

static int count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += !strncmp(de->d_name, ".tmp-", 5);
	closedir(d);
	return n;
}

/* Aborts with blocks in flight and with a partial block leave nothing. */
static void abort_leaves_nothing(void)
{
	struct xfer_store *st = open_store("/tmp", 1);
	struct xfer_upload *up;
	char dir[300];

	ASSERT_EQ(xfer_upload_begin(st, "j/a/data", &up), 0);
	ASSERT_EQ(xfer_upload_write(up, src + 1, BIG), 0);
	xfer_upload_abort(up);
	ASSERT_EQ(xfer_upload_begin(st, "j/a/data", &up), 0);
	ASSERT_EQ(xfer_upload_write(up, src, 4097), 0);
	xfer_upload_abort(up);
	ASSERT_EQ(xfer_head(st, "j/a/data", NULL), XFER_NOTFOUND);
	snprintf(dir, sizeof(dir), "%s/j/a", root);
	ASSERT_EQ(count_tmp(dir), 0);
	cleanup(st);
}

/* Ranged reads of 1 MiB or more go through O_DIRECT and a per-thread
 * aligned buffer: unaligned offsets, a range ending in the last partial
 * block, the whole object, and a range past the end refused. */
static void ranged_reads(const char *base, int direct)
{
	struct xfer_store *st = open_store(base, direct);
	static const size_t at[][2] = { { 0, MIB }, { 1, MIB }, { 4095, 2 * MIB + 3 },
					{ 3 * MIB + 7, BIG - 3 * MIB - 7 }, { 0, BIG } };
	unsigned char *buf = malloc(BIG);

	ASSERT_TRUE(buf != NULL);
	upload_pieces(st, "j/r/data", BIG);	/* holds src[1, 1 + BIG) */
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		memset(buf, 0, BIG);
		ASSERT_EQ(xfer_get_range(st, "j/r/data", at[i][0], buf, at[i][1]), 0);
		ASSERT_TRUE(memcmp(buf, src + 1 + at[i][0], at[i][1]) == 0);
	}
	ASSERT_EQ(xfer_get_range(st, "j/r/data", BIG - MIB + 1, buf, MIB), EX_DATAERR);
	ASSERT_EQ(xfer_get_range(st, "j/none", 0, buf, MIB), XFER_NOTFOUND);
	free(buf);
	cleanup(st);
}

static void ranged_reads_direct(void) { ranged_reads("/tmp", 1); }
static void ranged_reads_buffered(void) { ranged_reads("/tmp", 0); }

CHECK_MAIN("file_direct", CHECK_CASE(uploads_direct), CHECK_CASE(uploads_buffered),
	   CHECK_CASE(uploads_tmpfs), CHECK_CASE(direct_skips_page_cache),
	   CHECK_CASE(puts_large_and_create_only), CHECK_CASE(abort_leaves_nothing),
	   CHECK_CASE(ranged_reads_direct), CHECK_CASE(ranged_reads_buffered))
