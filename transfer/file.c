/*
 * file.c - the file:// store backend: a store is a local (or NFS) folder,
 * and a key is a path below it.  "file:///abs/path" and a bare path (made
 * absolute at open) both name the folder; it is created on the first write.
 *
 * Atomicity: every write goes to a temporary name in the key's own folder
 * (".tmp-<random>-<name>"), is fsync'd and only then renamed into place, so
 * a reader never sees half an object.  XFER_CREATE_ONLY links the temporary
 * file to the final name instead of renaming it: link(2) fails with EEXIST
 * when the name exists, so of two processes committing the same key at once
 * exactly one wins, on local file systems and on NFS alike.  The folder is
 * fsync'd after every rename/link so the commit itself is durable.
 *
 * Large uploads write the temporary file sequentially and start writeback
 * every few MiB (sync_file_range), so the final fsync waits only for the
 * tail instead of the whole object.
 *
 * Temporary files are invisible to list.  A process killed mid-write leaves
 * its temporary file behind; deleting the last visible object of a folder
 * removes such orphans with the folder (the checkpoint engine deletes a
 * checkpoint only once it is garbage), which is how gc cleans up.
 *
 * The store struct is read-only after open, so every call is thread-safe.
 */
#include "backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define FILE_TMP_PREFIX ".tmp-"
#define FILE_WRITEBACK_STEP (16u << 20)	/* start writeback every 16 MiB */

struct file_store {
	struct xfer_store base;
	char root[PATH_MAX];	/* absolute, no trailing slash (except "/") */
};

struct file_upload {
	struct xfer_upload base;
	int fd;
	uint64_t written, flushed;
	char tmp[PATH_MAX];
	char final[PATH_MAX];
};

static int file_errno_code(int err)
{
	return err == EACCES || err == EPERM || err == EROFS ? EX_NOPERM : EX_IOERR;
}

static int file_fail(int err, const char *what, const char *path)
{
	return log_fail(file_errno_code(err), "cannot %s '%s': %s", what, path, strerror(err));
}

/* A key is a relative '/'-separated path without empty, ".", ".." or
 * temporary-name components. */
static int file_key_ok(const char *key)
{
	const char *p = key;

	if (!*key || *key == '/')
		return 0;
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') ||
		    !strncmp(p, FILE_TMP_PREFIX, strlen(FILE_TMP_PREFIX)))
			return 0;
		p = *e ? e + 1 : e;
		if (*e && !*p)
			return 0;	/* trailing slash */
	}
	return 1;
}

static int file_path(const struct file_store *fs, const char *key, char *out, size_t n)
{
	if (!file_key_ok(key))
		return log_fail(EX_USAGE, "invalid store key '%s'", key);
	if ((size_t)snprintf(out, n, "%s/%s", strcmp(fs->root, "/") ? fs->root : "", key) >= n)
		return log_fail(EX_USAGE, "store key too long '%s'", key);
	return 0;
}

/* mkdir -p of path's parent folder. */
static int file_mkparents(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	p = strrchr(buf, '/');
	if (!p || p == buf)
		return 0;
	*p = 0;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return file_fail(errno, "create folder", buf);
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return file_fail(errno, "create folder", buf);
	return 0;
}

static void file_sync_dir(const char *path)
{
	char buf[PATH_MAX];
	char *p;
	int fd;

	snprintf(buf, sizeof(buf), "%s", path);
	p = strrchr(buf, '/');
	if (!p)
		return;
	p[p == buf] = 0;
	fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* tmp = "<dir of final>/.tmp-<16 hex>-<base of final>" */
static int file_tmpname(const char *final, char *tmp, size_t n)
{
	unsigned char rnd[8];
	const char *base = strrchr(final, '/') + 1;
	char hex[17];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return log_fail(EX_OSERR, "getrandom: %s", strerror(errno));
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	if ((size_t)snprintf(tmp, n, "%.*s%s%s-%s", (int)(base - final), final, FILE_TMP_PREFIX,
			     hex, base) >= n)
		return log_fail(EX_USAGE, "store path too long '%s'", final);
	return 0;
}

static int file_write_all(int fd, const void *buf, size_t len, const char *path)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return file_fail(errno, "write", path);
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Moves a finished, fsync'd temporary file into place. */
static int file_commit(const char *tmp, const char *final, int flags)
{
	int rc = 0;

	if (flags & XFER_CREATE_ONLY) {
		if (link(tmp, final))
			rc = errno == EEXIST ? XFER_EXISTS : file_fail(errno, "create", final);
		unlink(tmp);
	} else if (rename(tmp, final)) {
		rc = file_fail(errno, "rename into", final);
		unlink(tmp);
	}
	if (rc == 0)
		file_sync_dir(final);
	return rc;
}

static int file_open(const char *url, const struct xfer_opts *opts, struct xfer_store **out)
{
	struct file_store *fs;
	const char *path = url;
	size_t n;

	if (!strncmp(url, "file://", 7)) {
		path = url + 7;
		if (!strncmp(path, "localhost/", 10))
			path += 9;
		if (*path != '/')
			return log_fail(EX_USAGE, "store URL '%s' must be file:///absolute/path", url);
	}
	if (!*path)
		return log_fail(EX_USAGE, "empty store path");
	if (!(fs = calloc(1, sizeof(*fs))))
		return log_fail(EX_OSERR, "out of memory");
	if (*path == '/') {
		snprintf(fs->root, sizeof(fs->root), "%s", path);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd))) {
			free(fs);
			return log_fail(EX_IOERR, "cannot get the current folder: %s", strerror(errno));
		}
		if ((size_t)snprintf(fs->root, sizeof(fs->root), "%s/%s", cwd, path) >= sizeof(fs->root)) {
			free(fs);
			return log_fail(EX_USAGE, "store path too long '%s'", path);
		}
	}
	n = strlen(fs->root);
	while (n > 1 && fs->root[n - 1] == '/')
		fs->root[--n] = 0;
	snprintf(fs->base.display, sizeof(fs->base.display), "file://%.490s", fs->root);
	if (opts)
		fs->base.opts = *opts;
	*out = &fs->base;
	return 0;
}

static void file_close(struct xfer_store *st)
{
	free(st);
}

static int file_put(struct xfer_store *st, const char *key, const void *buf, size_t len, int flags)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	int fd, rc;

	if ((rc = file_path((struct file_store *)st, key, final, sizeof(final))) ||
	    (rc = file_tmpname(final, tmp, sizeof(tmp))) || (rc = file_mkparents(final)))
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return file_fail(errno, "create", tmp);
	rc = file_write_all(fd, buf, len, tmp);
	if (rc == 0 && fsync(fd))
		rc = file_fail(errno, "fsync", tmp);
	close(fd);
	if (rc) {
		unlink(tmp);
		return rc;
	}
	return file_commit(tmp, final, flags);
}

static int file_open_key(struct xfer_store *st, const char *key, int *fd, char *path, size_t n)
{
	int rc = file_path((struct file_store *)st, key, path, n);

	if (rc)
		return rc;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? XFER_NOTFOUND : file_fail(errno, "open", path);
	return 0;
}

static int file_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path)
{
	char *p = buf;

	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return file_fail(errno, "read", path);
		if (r == 0)
			return log_fail(EX_DATAERR, "'%s' is shorter than expected", path);
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int file_get(struct xfer_store *st, const char *key, char **buf, size_t *len, size_t max)
{
	char path[PATH_MAX];
	struct stat sb;
	char *b = NULL;
	int fd, rc;

	*buf = NULL;
	if ((rc = file_open_key(st, key, &fd, path, sizeof(path))))
		return rc;
	if (fstat(fd, &sb)) {
		rc = file_fail(errno, "stat", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > max) {
		rc = log_fail(EX_DATAERR, "'%s' is larger than %zu bytes", path, max);
		goto out;
	}
	if (!(b = malloc((size_t)sb.st_size + 1))) {
		rc = log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	if ((rc = file_pread_all(fd, b, (size_t)sb.st_size, 0, path)))
		goto out;
	b[sb.st_size] = 0;
	*buf = b;
	if (len)
		*len = (size_t)sb.st_size;
	b = NULL;
out:
	free(b);
	close(fd);
	return rc;
}

static int file_get_range(struct xfer_store *st, const char *key, uint64_t off, void *buf, size_t len)
{
	char path[PATH_MAX];
	int fd, rc;

	if ((rc = file_open_key(st, key, &fd, path, sizeof(path))))
		return rc;
	rc = file_pread_all(fd, buf, len, off, path);
	close(fd);
	return rc;
}

static int file_head(struct xfer_store *st, const char *key, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat sb;
	int rc = file_path((struct file_store *)st, key, path, sizeof(path));

	if (rc)
		return rc;
	if (stat(path, &sb))
		return errno == ENOENT || errno == ENOTDIR ? XFER_NOTFOUND : file_fail(errno, "stat", path);
	if (!S_ISREG(sb.st_mode))
		return XFER_NOTFOUND;
	if (size)
		*size = (uint64_t)sb.st_size;
	return 0;
}

/* Adds every regular file below dirfd (key prefix rel) that starts with
 * prefix; skips temporary files.  Consumes dirfd. */
static int file_walk(int dirfd, char *rel, size_t rlen, const char *prefix, struct xfer_list *out)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(dirfd);
		return file_fail(errno, "list", rel);
	}
	while (rc == 0 && (de = readdir(d))) {
		const char *nm = de->d_name;
		struct stat sb;
		size_t n = strlen(nm);

		if (!strcmp(nm, ".") || !strcmp(nm, "..") ||
		    !strncmp(nm, FILE_TMP_PREFIX, strlen(FILE_TMP_PREFIX)))
			continue;
		if (rlen + n + 2 >= PATH_MAX || fstatat(dirfd, nm, &sb, AT_SYMLINK_NOFOLLOW))
			continue;
		memcpy(rel + rlen, nm, n + 1);
		/* prune subtrees that cannot match the prefix */
		if (strncmp(rel, prefix, rlen + n < strlen(prefix) ? rlen + n : strlen(prefix)))
			continue;
		if (S_ISDIR(sb.st_mode)) {
			int sub = openat(dirfd, nm, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (sub < 0)
				continue;
			rel[rlen + n] = '/';
			rel[rlen + n + 1] = 0;
			rc = file_walk(sub, rel, rlen + n + 1, prefix, out);
		} else if (S_ISREG(sb.st_mode) && !strncmp(rel, prefix, strlen(prefix))) {
			rc = xfer_list_add(out, rel, (uint64_t)sb.st_size,
					   (double)sb.st_mtim.tv_sec + sb.st_mtim.tv_nsec / 1e9);
		}
		rel[rlen] = 0;
	}
	closedir(d);
	return rc;
}

static int file_list(struct xfer_store *st, const char *prefix, struct xfer_list *out)
{
	struct file_store *fs = (struct file_store *)st;
	char rel[PATH_MAX] = "";
	int fd, rc;

	fd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : file_fail(errno, "list", fs->root);
	rc = file_walk(fd, rel, 0, prefix ? prefix : "", out);
	if (rc == 0)
		xfer_list_sort(out);
	return rc;
}

/* Removes dir if it holds nothing but orphaned temporary files. */
static int file_prune_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int other = 0;

	if (!d)
		return -1;
	while (!other && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strncmp(de->d_name, FILE_TMP_PREFIX, strlen(FILE_TMP_PREFIX)))
			other = 1;
	if (!other) {
		rewinddir(d);
		while ((de = readdir(d)))
			if (!strncmp(de->d_name, FILE_TMP_PREFIX, strlen(FILE_TMP_PREFIX)))
				unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	return other ? -1 : rmdir(dir);
}

static int file_del(struct xfer_store *st, const char *key)
{
	struct file_store *fs = (struct file_store *)st;
	char path[PATH_MAX];
	size_t rootlen = strlen(fs->root);
	int rc = file_path(fs, key, path, sizeof(path));
	char *p;

	if (rc)
		return rc;
	if (unlink(path))
		return errno == ENOENT || errno == ENOTDIR ? XFER_NOTFOUND : file_fail(errno, "delete", path);
	/* drop folders left empty, up to (not including) the store root */
	while ((p = strrchr(path, '/')) && (size_t)(p - path) > rootlen) {
		*p = 0;
		if (file_prune_dir(path))
			break;
	}
	file_sync_dir(path);
	return 0;
}

static int file_upload_begin(struct xfer_store *st, const char *key, struct xfer_upload **out)
{
	struct file_upload *up = calloc(1, sizeof(*up));
	int rc;

	if (!up)
		return log_fail(EX_OSERR, "out of memory");
	if ((rc = file_path((struct file_store *)st, key, up->final, sizeof(up->final))) ||
	    (rc = file_tmpname(up->final, up->tmp, sizeof(up->tmp))) ||
	    (rc = file_mkparents(up->final)))
		goto fail;
	up->fd = open(up->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (up->fd < 0) {
		rc = file_fail(errno, "create", up->tmp);
		goto fail;
	}
	*out = &up->base;
	return 0;
fail:
	free(up);
	return rc;
}

static int file_upload_write(struct xfer_upload *xu, const void *buf, size_t len)
{
	struct file_upload *up = (struct file_upload *)xu;
	int rc = file_write_all(up->fd, buf, len, up->tmp);

	if (rc)
		return rc;
	up->written += len;
	if (up->written - up->flushed >= FILE_WRITEBACK_STEP) {
		/* best effort: start writeback now so fsync at the end is short */
		sync_file_range(up->fd, (off_t)up->flushed, (off_t)(up->written - up->flushed),
				SYNC_FILE_RANGE_WRITE);
		up->flushed = up->written;
	}
	return 0;
}

static void file_upload_abort(struct xfer_upload *xu)
{
	struct file_upload *up = (struct file_upload *)xu;

	if (up->fd >= 0)
		close(up->fd);
	unlink(up->tmp);
	free(up);
}

static int file_upload_finish(struct xfer_upload *xu)
{
	struct file_upload *up = (struct file_upload *)xu;
	int rc = 0;

	if (fsync(up->fd))
		rc = file_fail(errno, "fsync", up->tmp);
	if (close(up->fd) && rc == 0)
		rc = file_fail(errno, "close", up->tmp);
	up->fd = -1;
	if (rc == 0)
		rc = file_commit(up->tmp, up->final, 0);
	if (rc)
		unlink(up->tmp);
	free(up);
	return rc;
}

const struct xfer_backend xfer_file_backend = {
	.scheme = "file",
	.open = file_open,
	.close = file_close,
	.put = file_put,
	.get = file_get,
	.get_range = file_get_range,
	.head = file_head,
	.list = file_list,
	.del = file_del,
	.upload_begin = file_upload_begin,
	.upload_write = file_upload_write,
	.upload_finish = file_upload_finish,
	.upload_abort = file_upload_abort,
};
