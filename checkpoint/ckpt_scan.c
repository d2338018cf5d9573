/*
 * ckpt_scan.c - the folder scan of a push: walks a checkpoint folder depth
 * first with each folder's names sorted bytewise, so the same folder always
 * gives the same archive.  Keeps regular files, folders (empty ones too) and
 * symlinks (as links, never followed); skips sockets, fifos and devices with
 * a warning.  Names must be valid UTF-8 (the manifest is JSON).  Hashes are
 * not computed here but on the read path of the push.
 */
#include "ckpt_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

struct scan_names {
	char **v;
	size_t n, cap;
};

static void scan_names_free(struct scan_names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static int scan_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads and sorts the names in folder dfd (not consumed). */
static int scan_read_names(int dfd, const char *rel, struct scan_names *s)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	if (!d) {
		if (fd >= 0)
			close(fd);
		return log_fail(EX_IOERR, "cannot list '%s': %s", *rel ? rel : ".", strerror(errno));
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (s->n == s->cap) {
			size_t nc = s->cap ? 2 * s->cap : 32;
			char **nv = realloc(s->v, nc * sizeof(*nv));
			if (!nv) {
				rc = log_fail(EX_OSERR, "out of memory");
				break;
			}
			s->v = nv;
			s->cap = nc;
		}
		if (!(s->v[s->n] = strdup(de->d_name))) {
			rc = log_fail(EX_OSERR, "out of memory");
			break;
		}
		s->n++;
	}
	closedir(d);
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(s->v[0]), scan_cmp);
	return rc;
}

static int scan_utf8_ok(const char *s)
{
	json_t *j = json_string(s);
	int ok = j != NULL;

	json_decref(j);
	return ok;
}

static int scan_symlink(int dfd, const char *name, const char *rel, struct ckpt_file *f)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);

	if (n <= 0)
		return log_fail(EX_IOERR, "cannot read link '%s': %s", rel, strerror(errno));
	buf[n] = 0;
	if (!scan_utf8_ok(buf))
		return log_fail(EX_DATAERR, "link target of '%s' is not valid UTF-8", rel);
	return (f->target = strdup(buf)) ? 0 : log_fail(EX_OSERR, "out of memory");
}

static int scan_dir(int dfd, char *rel, size_t rlen, struct ckpt_manifest *m);

static int scan_one(int dfd, const char *name, char *rel, size_t rlen, struct ckpt_manifest *m)
{
	size_t n = strlen(name);
	struct stat sb;
	struct ckpt_file *f;
	int rc = 0;

	if (rlen + n + 2 >= PATH_MAX)
		return log_fail(EX_DATAERR, "path too long in '%s'", rel);
	memcpy(rel + rlen, name, n + 1);
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW))
		return log_fail(EX_IOERR, "cannot stat '%s': %s", rel, strerror(errno));
	if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
		log_warn("skipping '%s': not a file, folder or symlink", rel);
		return 0;
	}
	if (!scan_utf8_ok(rel))
		return log_fail(EX_DATAERR, "file name '%s' is not valid UTF-8", rel);
	if (!(f = ckpt_manifest_add_file(m)) || !(f->path = strdup(rel)))
		return log_fail(EX_OSERR, "out of memory");
	f->type = S_ISREG(sb.st_mode) ? CKPT_REG : S_ISDIR(sb.st_mode) ? CKPT_DIR : CKPT_LNK;
	f->mode = sb.st_mode & 07777;
	f->size = f->type == CKPT_REG ? (uint64_t)sb.st_size : 0;
	f->mtime = sb.st_mtim.tv_sec;
	f->mtime_nsec = sb.st_mtim.tv_nsec;
	if (f->type == CKPT_LNK)
		rc = scan_symlink(dfd, name, rel, f);
	if (f->type == CKPT_DIR) {
		int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return log_fail(EX_IOERR, "cannot open '%s': %s", rel, strerror(errno));
		rel[rlen + n] = '/';
		rel[rlen + n + 1] = 0;
		rc = scan_dir(sub, rel, rlen + n + 1, m);
		close(sub);
	}
	return rc;
}

static int scan_dir(int dfd, char *rel, size_t rlen, struct ckpt_manifest *m)
{
	struct scan_names s;
	int rc = scan_read_names(dfd, rel, &s);

	for (size_t i = 0; rc == 0 && i < s.n; i++)
		rc = scan_one(dfd, s.v[i], rel, rlen, m);
	rel[rlen] = 0;
	scan_names_free(&s);
	return rc;
}

int ckpt_scan(const char *dir, struct ckpt_manifest *m)
{
	char rel[PATH_MAX] = "";
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return log_fail(errno == ENOENT || errno == ENOTDIR ? EX_NOINPUT : EX_IOERR,
				"cannot open folder '%s': %s", dir, strerror(errno));
	rc = scan_dir(fd, rel, 0, m);
	close(fd);
	return rc;
}
