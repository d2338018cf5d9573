/*
 * test_ckpt_write.c - the write side of a pull (checkpoint/ckpt_write.c):
 * files fed in blocks cut at unaligned offsets, with holes small and large
 * (tar sparse entries), blocks of zeros, sizes around the alignment, the
 * O_DIRECT threshold and the buffer size, on the disk (O_DIRECT) and in
 * /dev/shm, with SPOTRUN_PULL_DIRECT=0; contents, size, mode and mtime are
 * read back; an aborted file is closed and left alone.
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "ckpt_int.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t pick(size_t n)
{
	return (size_t)(next64() % n);
}

/* A temporary folder under base, or NULL when base is not usable. */
static char *tmpdir(const char *base)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/sr-wr.XXXXXX", base);
	return mkdtemp(path);
}

/* Writes want[0..size) as file name in dir through w, in random blocks:
 * runs of zeros in want may be left out as holes. */
static void put_file(struct ckpt_writer *w, int dirfd, const char *name, const unsigned char *want,
		     size_t size, mode_t mode, long nsec)
{
	struct ckpt_file f = { .path = (char *)name, .type = CKPT_REG, .size = size };
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1600000000 + (time_t)size, nsec } };
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t at = 0;

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(ckpt_writer_begin(w, fd, &f, mode, ts), 0);
	while (at < size) {
		size_t n = 1 + pick(pick(4) ? 70000 : 3u << 20);
		n = n < size - at ? n : size - at;
		int zero = 1;
		for (size_t i = 0; i < n && zero; i++)
			zero = !want[at + i];
		if (!zero || pick(2))	/* zeros: sometimes a hole */
			ASSERT_EQ(ckpt_writer_data(w, want + at, n, at), 0);
		at += n;
	}
	ASSERT_EQ(ckpt_writer_end(w, 1), 0);
}

static void check_file(int dirfd, const char *name, const unsigned char *want, size_t size, mode_t mode,
		       long nsec)
{
	unsigned char *got = malloc(size + 1);
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	size_t at = 0;

	ASSERT_TRUE(got && fd >= 0);
	ASSERT_EQ(fstat(fd, &sb), 0);
	ASSERT_EQ(sb.st_size, size);
	ASSERT_EQ(sb.st_mode & 07777, mode);
	ASSERT_EQ(sb.st_mtim.tv_sec, 1600000000 + (time_t)size);
	ASSERT_EQ(sb.st_mtim.tv_nsec, nsec);
	while (at < size) {
		ssize_t n = pread(fd, got + at, size - at, (off_t)at);
		ASSERT_TRUE(n > 0);
		at += (size_t)n;
	}
	if (size && memcmp(got, want, size)) {
		size_t i = 0;
		while (got[i] == want[i])
			i++;
		CHECK_FAIL("'%s' (%zu bytes) differs at byte %zu", name, size, i);
	}
	close(fd);
	free(got);
}

/* Random bytes with runs of zeros: short ones, whole blocks, megabytes. */
static void fill(unsigned char *p, size_t n)
{
	size_t at = 0;

	while (at < n) {
		size_t run = pick(3) == 0 ? pick(10000) : pick(4) == 0 ? pick(6u << 20) : pick(300000);
		run = run < n - at ? run : n - at;
		int zero = pick(3) == 0;
		for (size_t i = 0; i < run; i++)
			p[at + i] = zero ? 0 : (unsigned char)(next64() | 1);
		at += run;
	}
}

static const size_t sizes[] = { 0, 1, 4095, 4096, 4097, 12288, (256 << 10) - 1, 256 << 10, (256 << 10) + 1,
				(4 << 20) - 1, 4 << 20, (4 << 20) + 1, (8 << 20) + 3, (13 << 20) + 4099 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* Every size, several files in flight at once (no drain between), then
 * read back after one drain. */
static void roundtrip_in(const char *base)
{
	char *dir = tmpdir(base);
	unsigned char *want[NSIZES];
	struct ckpt_writer *w = NULL;
	char name[32];
	int dfd;

	if (!dir) {
		printf("  (skipped: no %s)\n", base);
		return;
	}
	ASSERT_TRUE((dfd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0);
	ASSERT_EQ(ckpt_writer_open(&w), 0);
	for (size_t i = 0; i < NSIZES; i++) {
		ASSERT_TRUE((want[i] = malloc(sizes[i] + 1)));
		fill(want[i], sizes[i]);
		snprintf(name, sizeof(name), "f%zu", i);
		put_file(w, dfd, name, want[i], sizes[i], i % 2 ? 0444 : 0750, (long)i * 1000 + 7);
	}
	ASSERT_EQ(ckpt_writer_drain(w), 0);
	ckpt_writer_close(w);
	for (size_t i = 0; i < NSIZES; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		check_file(dfd, name, want[i], sizes[i], i % 2 ? 0444 : 0750, (long)i * 1000 + 7);
		unlinkat(dfd, name, 0);
		free(want[i]);
	}
	close(dfd);
	rmdir(dir);
}

static void test_direct_on_disk(void)
{
	const char *t = getenv("TMPDIR");
	roundtrip_in(t && *t ? t : "/tmp");
}

static void test_page_cache_knob(void)
{
	const char *t = getenv("TMPDIR");
	setenv("SPOTRUN_PULL_DIRECT", "0", 1);
	roundtrip_in(t && *t ? t : "/tmp");
}

static void test_dev_shm(void)
{
	roundtrip_in("/dev/shm");
}

/* A large hole between two islands: the file stays sparse. */
static void test_big_hole_stays_sparse(void)
{
	const char *t = getenv("TMPDIR");
	char *dir = tmpdir(t && *t ? t : "/tmp");
	struct ckpt_file f = { .path = "sparse", .type = CKPT_REG, .size = (1ull << 30) + 5 };
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1600000000 + (time_t)f.size, 0 } };
	struct ckpt_writer *w = NULL;
	unsigned char a[10000], b[5];
	struct stat sb;
	int dfd, fd;

	ASSERT_TRUE(dir && (dfd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0);
	memset(a, 0xab, sizeof(a));
	memset(b, 0xcd, sizeof(b));
	ASSERT_TRUE((fd = openat(dfd, "sparse", O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	ASSERT_EQ(ckpt_writer_open(&w), 0);
	ASSERT_EQ(ckpt_writer_begin(w, fd, &f, 0640, ts), 0);
	ASSERT_EQ(ckpt_writer_data(w, a, sizeof(a), 3), 0);
	ASSERT_EQ(ckpt_writer_data(w, b, sizeof(b), 1ull << 30), 0);
	ASSERT_EQ(ckpt_writer_end(w, 1), 0);
	ASSERT_EQ(ckpt_writer_drain(w), 0);
	ckpt_writer_close(w);
	ASSERT_EQ(fstatat(dfd, "sparse", &sb, 0), 0);
	ASSERT_EQ(sb.st_size, f.size);
	ASSERT_TRUE(sb.st_blocks < 1024);
	ASSERT_TRUE((fd = openat(dfd, "sparse", O_RDONLY)) >= 0);
	unsigned char got[16];
	ASSERT_EQ(pread(fd, got, 16, 0), 16);
	ASSERT_TRUE(!got[0] && !got[1] && !got[2] && got[3] == 0xab && got[15] == 0xab);
	ASSERT_EQ(pread(fd, got, 16, (1ll << 30) - 8), 13);
	ASSERT_TRUE(!got[7] && got[8] == 0xcd && got[12] == 0xcd);
	close(fd);
	unlinkat(dfd, "sparse", 0);
	close(dfd);
	rmdir(dir);
}

/* end(w, 0): the descriptor is closed, nothing else happens; data out of
 * order is refused. */
static void test_abort_closes(void)
{
	const char *t = getenv("TMPDIR");
	char *dir = tmpdir(t && *t ? t : "/tmp");
	struct ckpt_file f = { .path = "x", .type = CKPT_REG, .size = 9u << 20 };
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
	struct ckpt_writer *w = NULL;
	static unsigned char buf[5u << 20];
	struct stat sb;
	int dfd, fd;

	ASSERT_TRUE(dir && (dfd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0);
	memset(buf, 1, sizeof(buf));
	ASSERT_TRUE((fd = openat(dfd, "x", O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	ASSERT_EQ(ckpt_writer_open(&w), 0);
	ASSERT_EQ(ckpt_writer_begin(w, fd, &f, 0644, ts), 0);
	ASSERT_EQ(ckpt_writer_data(w, buf, sizeof(buf), 0), 0);
	ASSERT_NE(ckpt_writer_data(w, buf, 10, 100), 0);
	ASSERT_EQ(ckpt_writer_end(w, 0), 0);
	ASSERT_EQ(ckpt_writer_drain(w), 0);
	errno = 0;
	ASSERT_EQ(fcntl(fd, F_GETFD), -1);
	ASSERT_EQ(errno, EBADF);
	ASSERT_EQ(fstatat(dfd, "x", &sb, 0), 0);
	ASSERT_EQ(sb.st_mode & 07777, 0600);
	ckpt_writer_close(w);
	unlinkat(dfd, "x", 0);
	close(dfd);
	rmdir(dir);
}

int main(void)
{
	static const struct check_case cases[] = {
		CHECK_CASE(test_direct_on_disk),
		CHECK_CASE(test_page_cache_knob),
		CHECK_CASE(test_dev_shm),
		CHECK_CASE(test_big_hole_stays_sparse),
		CHECK_CASE(test_abort_closes),
	};
	return check_run("ckpt_write", cases, sizeof(cases) / sizeof(cases[0]));
}
