/*
 * ckpt_util.c - small helpers of the checkpoint engine: hex digests, time
 * stamps, store key names, worker counts, path safety, removing a tree and
 * the progress line.  All of them are reentrant.
 */
#include "ckpt_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

void ckpt_hex(const unsigned char *sha, char out[2 * CKPT_SHA_LEN + 1])
{
	static const char dig[] = "0123456789abcdef";

	for (int i = 0; i < CKPT_SHA_LEN; i++) {
		out[2 * i] = dig[sha[i] >> 4];
		out[2 * i + 1] = dig[sha[i] & 15];
	}
	out[2 * CKPT_SHA_LEN] = 0;
}

static int ckpt_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int ckpt_unhex(const char *hex, unsigned char *sha)
{
	if (strlen(hex) != 2 * CKPT_SHA_LEN)
		return -1;
	for (int i = 0; i < CKPT_SHA_LEN; i++) {
		int hi = ckpt_hexval(hex[2 * i]), lo = ckpt_hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		sha[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void ckpt_rfc3339(time_t t, char out[40])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

double ckpt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int ckpt_nworkers(int workers)
{
	if (workers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		workers = n > 0 ? (int)n : 1;
	}
	return workers > CKPT_MAX_WORKERS ? CKPT_MAX_WORKERS : workers;
}

void ckpt_key(char *out, size_t n, const char *job, uint64_t seq, const char *leaf)
{
	snprintf(out, n, "%s/ckpt/%08" PRIu64 "/%s", job, seq, leaf);
}

int ckpt_path_safe(const char *rel)
{
	const char *p = rel;

	if (!*rel || *rel == '/')
		return 0;
	for (;;) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!*e)
			return 1;
		p = e + 1;
	}
}

long long ckpt_step_from_name(const char *name)
{
	const char *end = NULL, *beg;
	long long v = 0;

	for (const char *p = name; *p; p++)
		if (*p >= '0' && *p <= '9' && (p[1] < '0' || p[1] > '9'))
			end = p;
	if (!end)
		return -1;
	for (beg = end; beg > name && beg[-1] >= '0' && beg[-1] <= '9'; beg--)
		;
	for (const char *p = beg; p <= end; p++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

int ckpt_job_ok(const char *job)
{
	if (!job || !*job || *job == '.' || strlen(job) > 200)
		return 0;
	for (const char *p = job; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

/* Empties folder fd (consumed), making read-only subfolders writable first. */
static int ckpt_rm_contents(int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d))) {
		struct stat sb;
		int sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(sb.st_mode)) {
			fchmodat(fd, de->d_name, 0700, 0);
			sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || ckpt_rm_contents(sub) || unlinkat(fd, de->d_name, AT_REMOVEDIR))
				rc = -1;
		} else if (unlinkat(fd, de->d_name, 0)) {
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

int ckpt_rmtree(const char *path)
{
	struct stat sb;
	int fd;

	if (lstat(path, &sb))
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(sb.st_mode))
		return unlink(path);
	chmod(path, 0700);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || ckpt_rm_contents(fd))
		return -1;
	return rmdir(path);
}

void ckpt_progress_init(struct ckpt_progress *p, int want, const char *what, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->on = want && isatty(2);
	p->what = what;
	p->total = total;
	p->start = p->last = ckpt_now();
}

static void ckpt_progress_draw(struct ckpt_progress *p, double now)
{
	double el = now - p->start, mbs = el > 0 ? p->done / el / 1e6 : 0;
	double eta = mbs > 0 && p->total > p->done ? (p->total - p->done) / 1e6 / mbs : 0;
	char line[160];
	int n;

	n = snprintf(line, sizeof(line), "\r%s %8.1f / %.1f MB  %7.1f MB/s  ETA %4.0fs ", p->what,
		     p->done / 1e6, p->total / 1e6, mbs, eta);
	if (n > 0 && write(2, line, (size_t)n) < 0)
		p->on = 0;
}

void ckpt_progress_update(struct ckpt_progress *p, uint64_t done)
{
	double now;

	if (!p->on)
		return;
	p->done = done;
	now = ckpt_now();
	if (now - p->last < 0.2)
		return;
	p->last = now;
	ckpt_progress_draw(p, now);
}

void ckpt_progress_end(struct ckpt_progress *p)
{
	if (!p->on)
		return;
	ckpt_progress_draw(p, ckpt_now());
	if (write(2, "\n", 1) < 0)
		p->on = 0;
	p->on = 0;
}

/* libarchive converts names through the locale, and under the C locale a
 * pax writer falls back to "hdrcharset=BINARY" (which GNU tar warns about).
 * Switching only this thread to C.UTF-8 (uselocale) keeps names as plain
 * UTF-8 in the archive without touching the process's locale. */
struct ckpt_locale ckpt_utf8_begin(void)
{
	struct ckpt_locale l = { (locale_t)0, (locale_t)0 };

	l.utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (l.utf8)
		l.old = uselocale(l.utf8);
	return l;
}

void ckpt_utf8_end(struct ckpt_locale l)
{
	if (!l.utf8)
		return;
	uselocale(l.old);
	freelocale(l.utf8);
}

void ckpt_result_fill(struct ckpt_result *r, const struct ckpt_manifest *m, double t0)
{
	memset(r, 0, sizeof(*r));
	r->seq = m->seq;
	r->step = m->step;
	r->raw_bytes = m->raw_bytes;
	r->stored_bytes = m->stored_bytes;
	r->files = m->nfiles;
	r->seconds = ckpt_now() - t0;
	snprintf(r->name, sizeof(r->name), "%s", m->name);
}
