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
 * Write path: uploads (the data object of a push) and whole objects of at
 * least FILE_DIRECT_MIN_PUT bytes bypass the page cache, whose first-touch
 * cost was most of a push's system time.  The temporary file gets
 * O_DIRECT; the stream (appended in pieces of any length, so never aligned)
 * is copied into aligned FILE_DIRECT_BLOCK staging blocks, and a writer
 * thread writes each full block at its aligned offset while the caller
 * fills the next one.  At finish the thread is joined, the tail's whole
 * 4 KiB blocks are written direct, O_DIRECT is cleared and the last partial
 * block is written buffered: every direct write has completed by then and
 * no 4 KiB page is written both ways, so the page cache never holds a stale
 * copy; the fsync then covers both.  Where direct I/O is refused (fcntl or
 * a write fails with EINVAL) or pointless (tmpfs, ramfs), or with
 * SPOTRUN_FILE_DIRECT=0, the file is written buffered, and sync_file_range
 * starts writeback every 16 MiB so the final fsync waits only for the
 * tail.  Small objects are always written buffered.
 *
 * Temporary files are invisible to list.  A process killed mid-write leaves
 * its temporary file behind; deleting the last visible object of a folder
 * removes such orphans with the folder (the checkpoint engine deletes a
 * checkpoint only once it is garbage), which is how gc cleans up.
 *
 * The store struct is read-only after open, so every call is thread-safe;
 * an upload's writer thread is private to that upload.
 */
#include "backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "log.h"

#define FILE_TMP_PREFIX ".tmp-"
#define FILE_WRITEBACK_STEP (16u << 20)	/* start writeback every 16 MiB */
#define FILE_DIRECT_ALIGN 4096u		/* buffer, offset and length unit of O_DIRECT */
/* Direct writes of FILE_DIRECT_BLOCK bytes, FILE_DIRECT_THREADS of them in
 * flight while the caller fills one more block.  On the development VM (a
 * virtio disk, ~450 MB/s) 1, 2 or 3 writes in flight and 1-8 MiB blocks
 * all ran at the disk's speed; real disks split a large write into
 * max_sectors_kb requests that run in parallel anyway. */
#define FILE_DIRECT_BLOCK (4u << 20)
#define FILE_DIRECT_THREADS 1
#define FILE_DIRECT_NBUF (FILE_DIRECT_THREADS + 1)	/* staging blocks per file: 8 MiB */
#define FILE_DIRECT_MIN_PUT (1u << 20)	/* smaller whole objects are written buffered */

struct file_store {
	struct xfer_store base;
	int direct;		/* O_DIRECT allowed (SPOTRUN_FILE_DIRECT is not "0") */
	char root[PATH_MAX];	/* absolute, no trailing slash (except "/") */
};

/* One temporary file written as a stream (see the header comment). */
struct file_writer {
	int fd;
	int direct;		/* staging through buf[]: the fd was given O_DIRECT */
	const char *path;	/* for messages */
	uint64_t off;		/* direct: file offset of the block being filled; else bytes written */
	uint64_t flushed;	/* buffered: writeback started up to here */
	unsigned char *buf[FILE_DIRECT_NBUF];	/* FILE_DIRECT_BLOCK each, aligned, on use */
	size_t fill;		/* bytes staged in the block being filled, buf[seq % NBUF] */
	/* the writer threads; seq, taken, busy, boff, quit, err: under mu */
	int nth;
	pthread_t th[FILE_DIRECT_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t seq;		/* full blocks handed over */
	uint64_t taken;		/* blocks a thread has started on */
	int busy[FILE_DIRECT_NBUF];	/* handed over, not yet written */
	uint64_t boff[FILE_DIRECT_NBUF];	/* file offset of each handed-over block */
	int inflight;		/* blocks handed over and not yet written */
	int quit, err;		/* err: the first failed write (EX_*, logged) */
	int refused;		/* a direct write was refused: buffered from then on */
};

struct file_upload {
	struct xfer_upload base;
	struct file_writer w;
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

/* ---- the writer of a temporary file ------------------------------------ */

/* pwrite of all of buf at off: 0 or an errno value. */
static int file_pwrite_raw(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno;
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Sets or clears O_DIRECT on fd: 0 or -1 (errno set; EINVAL: not supported). */
static int file_set_direct(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = on ? fl | O_DIRECT : fl & ~O_DIRECT;
	return fcntl(fd, F_SETFL, fl) ? -1 : 0;
}

/* Writes len bytes (a multiple of FILE_DIRECT_ALIGN, from an aligned buffer)
 * at the aligned offset off.  When the file system refuses the direct write
 * (EINVAL: e.g. a larger logical block size), O_DIRECT is cleared for this
 * and every later write and the block is written again, buffered: the direct
 * write did not complete, so no page is left in flight. */
static int file_write_block(struct file_writer *w, const void *buf, size_t len, uint64_t off)
{
	int err = file_pwrite_raw(w->fd, buf, len, off);

	if (err == EINVAL && file_set_direct(w->fd, 0) == 0) {
		log_debug("file store: O_DIRECT write refused on '%s', writing buffered", w->path);
		__atomic_store_n(&w->refused, 1, __ATOMIC_RELAXED);	/* read after the join */
		err = file_pwrite_raw(w->fd, buf, len, off);
	}
	return err ? file_fail(err, "write", w->path) : 0;
}

static int file_write_buffered(struct file_writer *w, const void *buf, size_t len)
{
	int rc = file_write_all(w->fd, buf, len, w->path);

	if (rc)
		return rc;
	w->off += len;
	if (w->off - w->flushed >= FILE_WRITEBACK_STEP) {
		/* best effort: start writeback now so fsync at the end is short */
		sync_file_range(w->fd, (off_t)w->flushed, (off_t)(w->off - w->flushed),
				SYNC_FILE_RANGE_WRITE);
		w->flushed = w->off;
	}
	return 0;
}

static void *file_writer_main(void *arg)
{
	struct file_writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->taken >= w->seq && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->taken >= w->seq)
			break;
		int i = (int)(w->taken++ % FILE_DIRECT_NBUF), rc = 0;
		uint64_t off = w->boff[i];
		if (!w->err) {	/* after a failure the rest is only discarded */
			pthread_mutex_unlock(&w->mu);
			rc = file_write_block(w, w->buf[i], FILE_DIRECT_BLOCK, off);
			pthread_mutex_lock(&w->mu);
		}
		if (rc && !w->err)
			w->err = rc;
		w->busy[i] = 0;
		w->inflight--;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Waits until block i is written (i < 0: every block handed over): 0 or the
 * first write error. */
static int file_writer_wait(struct file_writer *w, int i)
{
	int rc;

	if (!w->nth)
		return 0;
	pthread_mutex_lock(&w->mu);
	while (i >= 0 ? w->busy[i] : w->inflight > 0)
		pthread_cond_wait(&w->cv, &w->mu);
	rc = w->err;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Ends the writer threads once every block handed over is written. */
static void file_writer_stop(struct file_writer *w)
{
	if (!w->nth)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int t = 0; t < w->nth; t++)
		pthread_join(w->th[t], NULL);
	w->nth = 0;
}

/* Hands the full block being filled to the writer threads (started on the
 * first block; without any the block is written here), then makes the next
 * block ready: written and allocated. */
static int file_writer_submit(struct file_writer *w)
{
	int i = (int)(w->seq % FILE_DIRECT_NBUF), rc;

	while (w->seq == 0 && w->nth < FILE_DIRECT_THREADS &&
	       !pthread_create(&w->th[w->nth], NULL, file_writer_main, w))
		w->nth++;
	if (w->nth) {
		pthread_mutex_lock(&w->mu);
		w->busy[i] = 1;
		w->boff[i] = w->off;
		w->inflight++;
		w->seq++;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	} else if ((rc = file_write_block(w, w->buf[i], FILE_DIRECT_BLOCK, w->off))) {
		return rc;
	} else {
		w->seq++;
	}
	w->off += FILE_DIRECT_BLOCK;
	w->fill = 0;
	i = (int)(w->seq % FILE_DIRECT_NBUF);
	if ((rc = file_writer_wait(w, i)))
		return rc;
	if (!w->buf[i] && posix_memalign((void **)&w->buf[i], FILE_DIRECT_ALIGN, FILE_DIRECT_BLOCK))
		return log_fail(EX_OSERR, "out of memory");
	return 0;
}

static int file_writer_write(struct file_writer *w, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int rc;

	if (!w->direct)
		return file_write_buffered(w, buf, len);
	while (len) {
		size_t n = FILE_DIRECT_BLOCK - w->fill;

		if (n > len)
			n = len;
		memcpy(w->buf[w->seq % FILE_DIRECT_NBUF] + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
		if (w->fill == FILE_DIRECT_BLOCK && (rc = file_writer_submit(w)))
			return rc;
	}
	return 0;
}

/* Writes the staged tail (no block in flight): its whole 4 KiB blocks
 * direct, then O_DIRECT cleared and the last partial block buffered, on a
 * page no direct write touches. */
static int file_writer_tail(struct file_writer *w)
{
	const unsigned char *b = w->buf[w->seq % FILE_DIRECT_NBUF];
	size_t whole = w->fill & ~(size_t)(FILE_DIRECT_ALIGN - 1);
	int rc, err;

	if (whole && (rc = file_write_block(w, b, whole, w->off)))
		return rc;
	if (whole == w->fill)
		return 0;
	if (file_set_direct(w->fd, 0))
		return file_fail(errno, "clear O_DIRECT on", w->path);
	err = file_pwrite_raw(w->fd, b + whole, w->fill - whole, w->off + whole);
	return err ? file_fail(err, "write", w->path) : 0;
}

/* Creates path (O_EXCL).  direct: stage through aligned blocks and write
 * with O_DIRECT, unless the file system is memory (tmpfs, ramfs: direct I/O
 * would only add a copy) or refuses it. */
static int file_writer_open(struct file_writer *w, const char *path, int direct)
{
	struct statfs sf;

	memset(w, 0, sizeof(*w));
	w->path = path;
	w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (w->fd < 0)
		return file_fail(errno, "create", path);
	if (direct && fstatfs(w->fd, &sf) == 0 &&
	    (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)) {
		log_debug("file store: '%s' is in memory (tmpfs, ramfs), writing buffered", path);
		direct = 0;
	}
	if (direct && file_set_direct(w->fd, 1)) {
		log_debug("file store: no O_DIRECT on '%s' (%s), writing buffered", path, strerror(errno));
		direct = 0;
	}
	if (direct && posix_memalign((void **)&w->buf[0], FILE_DIRECT_ALIGN, FILE_DIRECT_BLOCK)) {
		close(w->fd);
		unlink(path);
		return log_fail(EX_OSERR, "out of memory");
	}
	if (direct) {
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
	}
	w->direct = direct;
	return 0;
}

/* Closes the writer; keep: write the tail and fsync first (the first error
 * is returned); else the file is being dropped.  Frees what it holds. */
static int file_writer_close(struct file_writer *w, int keep)
{
	int rc = keep ? file_writer_wait(w, -1) : 0;

	file_writer_stop(w);
	if (keep && rc == 0 && w->direct)
		rc = file_writer_tail(w);
	if (keep && rc == 0 && fsync(w->fd))
		rc = file_fail(errno, "fsync", w->path);
	if (close(w->fd) && keep && rc == 0)
		rc = file_fail(errno, "close", w->path);
	w->fd = -1;
	if (w->direct && keep && rc == 0)
		log_debug("file store: wrote '%s' (%llu bytes, %s)", w->path,
			  (unsigned long long)(w->off + w->fill),
			  w->refused ? "buffered: O_DIRECT refused" : "O_DIRECT");
	if (w->direct) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
	}
	for (int i = 0; i < FILE_DIRECT_NBUF; i++) {
		free(w->buf[i]);
		w->buf[i] = NULL;
	}
	return rc;
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
	fs->direct = !(getenv("SPOTRUN_FILE_DIRECT") && !strcmp(getenv("SPOTRUN_FILE_DIRECT"), "0"));
	*out = &fs->base;
	return 0;
}

static void file_close(struct xfer_store *st)
{
	free(st);
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

/* ---- ranged reads ------------------------------------------------------ */

/* Ranges of FILE_DIRECT_MIN_READ bytes or more (a pull's parts) are read
 * with O_DIRECT into a per-thread aligned buffer and copied out: reading
 * through the page cache costs this kind of VM ~3 CPU-s per GB once the
 * cache grows into memory it never touched (8 GiB pulls spent 60% of their
 * CPU copying out of fresh page-cache pages).  Each worker thread keeps one
 * buffer of its largest range (bounded by the part size), freed when the
 * thread ends. */
#define FILE_DIRECT_MIN_READ (1u << 20)

struct file_rbuf {
	void *p;
	size_t cap;
};
static pthread_key_t file_rkey;
static pthread_once_t file_ronce = PTHREAD_ONCE_INIT;

static void file_rbuf_free(void *v)
{
	struct file_rbuf *b = v;

	free(b->p);
	free(b);
}

static void file_rkey_make(void) { pthread_key_create(&file_rkey, file_rbuf_free); }

static struct file_rbuf *file_rbuf_get(size_t n)
{
	struct file_rbuf *b;

	pthread_once(&file_ronce, file_rkey_make);
	if (!(b = pthread_getspecific(file_rkey))) {
		if (!(b = calloc(1, sizeof(*b))) || pthread_setspecific(file_rkey, b)) {
			free(b);
			return NULL;
		}
	}
	if (b->cap < n) {
		free(b->p);
		b->cap = 0;
		if (posix_memalign(&b->p, FILE_DIRECT_ALIGN, n)) {
			b->p = NULL;
			return NULL;
		}
		b->cap = n;
	}
	return b;
}

/* 0 read, 1 direct I/O not possible here (read buffered instead), or an
 * error. */
static int file_read_direct(const char *path, void *buf, size_t len, uint64_t off)
{
	uint64_t a = off & ~(uint64_t)(FILE_DIRECT_ALIGN - 1);
	size_t span = (size_t)(((off + len + FILE_DIRECT_ALIGN - 1) & ~(uint64_t)(FILE_DIRECT_ALIGN - 1)) - a);
	size_t got = 0;
	struct file_rbuf *b = file_rbuf_get(span);
	int fd, rc = 0;

	if (!b)
		return 1;
	if ((fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC)) < 0)
		return errno == EINVAL ? 1 : errno == ENOENT || errno == ENOTDIR ? XFER_NOTFOUND
		       : file_fail(errno, "open", path);
	while (got < span) {
		ssize_t r = pread(fd, (char *)b->p + got, span - got, (off_t)(a + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errno == EINVAL ? 1 : file_fail(errno, "read", path);
			goto out;
		}
		got += (size_t)r;
		if (r == 0 || r % FILE_DIRECT_ALIGN)
			break; /* end of file */
	}
	if (got < off - a + len) {
		rc = log_fail(EX_DATAERR, "'%s' is shorter than expected", path);
		goto out;
	}
	memcpy(buf, (char *)b->p + (off - a), len);
out:
	close(fd);
	return rc;
}

static int file_get_range(struct xfer_store *st, const char *key, uint64_t off, void *buf, size_t len)
{
	struct file_store *fs = (struct file_store *)st;
	char path[PATH_MAX];
	int fd, rc;

	if (fs->direct && len >= FILE_DIRECT_MIN_READ) {
		if ((rc = file_path(fs, key, path, sizeof(path))))
			return rc;
		if ((rc = file_read_direct(path, buf, len, off)) != 1)
			return rc;
		log_debug("%s: reading buffered (no O_DIRECT here)", path);
	}
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

/* A temporary file for key, written direct when allowed (see the header). */
static int file_upload_start(struct xfer_store *st, const char *key, int direct,
			     struct file_upload **out)
{
	struct file_upload *up = calloc(1, sizeof(*up));
	int rc;

	if (!up)
		return log_fail(EX_OSERR, "out of memory");
	if ((rc = file_path((struct file_store *)st, key, up->final, sizeof(up->final))) ||
	    (rc = file_tmpname(up->final, up->tmp, sizeof(up->tmp))) ||
	    (rc = file_mkparents(up->final)) || (rc = file_writer_open(&up->w, up->tmp, direct))) {
		free(up);
		return rc;
	}
	*out = up;
	return 0;
}

/* Finishes the temporary file (tail, fsync) and commits it; frees up. */
static int file_upload_end(struct file_upload *up, int flags)
{
	int rc = file_writer_close(&up->w, 1);

	if (rc == 0)
		rc = file_commit(up->tmp, up->final, flags);
	else
		unlink(up->tmp);
	free(up);
	return rc;
}

static int file_upload_begin(struct xfer_store *st, const char *key, struct xfer_upload **out)
{
	struct file_upload *up;
	int rc = file_upload_start(st, key, ((struct file_store *)st)->direct, &up);

	if (rc == 0)
		*out = &up->base;
	return rc;
}

static int file_upload_write(struct xfer_upload *xu, const void *buf, size_t len)
{
	return file_writer_write(&((struct file_upload *)xu)->w, buf, len);
}

static void file_upload_abort(struct xfer_upload *xu)
{
	struct file_upload *up = (struct file_upload *)xu;

	file_writer_close(&up->w, 0);
	unlink(up->tmp);
	free(up);
}

static int file_upload_finish(struct xfer_upload *xu)
{
	return file_upload_end((struct file_upload *)xu, 0);
}

/* A whole object through the same writer: direct from FILE_DIRECT_MIN_PUT bytes. */
static int file_put(struct xfer_store *st, const char *key, const void *buf, size_t len, int flags)
{
	struct file_upload *up;
	int rc = file_upload_start(st, key, ((struct file_store *)st)->direct &&
				   len >= FILE_DIRECT_MIN_PUT, &up);

	if (rc)
		return rc;
	if ((rc = file_writer_write(&up->w, buf, len))) {
		file_upload_abort(&up->base);
		return rc;
	}
	return file_upload_end(up, flags);
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
