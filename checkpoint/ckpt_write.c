/*
 * ckpt_write.c - the write side of a pull: the contents of each regular
 * file go through a few aligned buffers of CKPT_WR_BUF bytes and reach the
 * disk with O_DIRECT when the file has CKPT_WR_DIRECT_MIN bytes or more.
 *
 * Why: on the VMs spotrun runs on, a buffered write costs more CPU than
 * decoding and hashing together (fresh page-cache pages, ~13 us per 4 KiB),
 * while an O_DIRECT write of the same bytes costs a twentieth of it.
 * O_DIRECT needs the buffer address, the file offset and the length
 * aligned (CKPT_WR_ALIGN): data is copied into aligned buffers at aligned
 * file offsets; full buffers are written direct; the last partial block of
 * a file is written after clearing O_DIRECT on the same descriptor (so the
 * kernel keeps the page cache coherent), and ftruncate sets the size.
 *
 * Large files are written by one writer thread, buffers handed over in
 * order, so the disk works while the caller parses, hashes and copies the
 * next bytes; the writer also sets the size, mode and times (after the
 * data, so the mtime sticks) and closes the descriptor.  Small files are
 * written by the caller directly (a thread hand-off costs more than it
 * saves).  Blocks of zeros are not written (holes, as ARCHIVE_EXTRACT_SPARSE
 * did), so a sparse file stays sparse.
 *
 * Fallbacks: SPOTRUN_PULL_DIRECT=0, or a file system that refuses O_DIRECT
 * (fcntl or the write says EINVAL; tmpfs on older kernels, some network and
 * FUSE file systems): the same buffers written through the page cache.
 * The first error is kept (and logged, naming the file); every descriptor
 * handed over is closed whatever happens.
 */
#include "ckpt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define WR_NBUF 4

enum { WR_FIN_NONE, WR_FIN_OK, WR_FIN_ABORT };

/* What the writer needs to know about a file, copied into each job. */
struct wr_file {
	int fd;
	const char *path;
	uint64_t size;
	mode_t mode;
	struct timespec ts[2];
};

/* One buffer and what to do with it: write data[0..len) at file offset
 * off (aligned), then, if fin says so, finish the file. */
struct wr_job {
	unsigned char *data;
	uint64_t off;
	size_t len;
	int fin, queued;
	struct wr_file f;
};

struct ckpt_writer {
	struct wr_job job[WR_NBUF];
	unsigned cur;		/* the buffer the caller fills */
	unsigned wnext;		/* the next buffer the writer thread takes */
	struct wr_file file;	/* the current file */
	int async;		/* it goes to the writer thread */
	int open;		/* a file is between begin and end */
	uint64_t pos;		/* end of the current file's bytes so far */
	uint64_t end[2];	/* written end of the current file: [0] caller, [1] writer */
	int nodirect;		/* O_DIRECT off: knob, or the file system said no */
	int rc;			/* first error */
	pthread_t th;
	int running, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static int wr_zero(const unsigned char *p, size_t n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

static int wr_nodirect(struct ckpt_writer *w)
{
	return __atomic_load_n(&w->nodirect, __ATOMIC_RELAXED);
}

/* pwrite all of p; an O_DIRECT descriptor that says EINVAL is switched to
 * buffered writes for the rest of this pull. */
static int wr_pwrite(struct ckpt_writer *w, int fd, const unsigned char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL) {
			int fl = fcntl(fd, F_GETFL);
			if (fl < 0 || !(fl & O_DIRECT) || fcntl(fd, F_SETFL, fl & ~O_DIRECT))
				return -1;
			if (!wr_nodirect(w))
				log_debug("pull: O_DIRECT writes refused here, writing through the page cache");
			__atomic_store_n(&w->nodirect, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			return -1;
		}
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Writes one run of non-zero blocks; a direct run's unaligned tail (the
 * file's last bytes) is written after clearing O_DIRECT. */
static int wr_run(struct ckpt_writer *w, int fd, const unsigned char *p, size_t n, uint64_t off)
{
	size_t head = n & ~(size_t)(CKPT_WR_ALIGN - 1);
	int fl;

	if (head == n || (fl = fcntl(fd, F_GETFL)) < 0 || !(fl & O_DIRECT))
		return wr_pwrite(w, fd, p, n, off);
	if (head && wr_pwrite(w, fd, p, head, off))
		return -1;
	if (fcntl(fd, F_SETFL, fl & ~O_DIRECT))
		return -1;
	return wr_pwrite(w, fd, p + head, n - head, off + head);
}

/* Writes a job's data, skipping blocks of zeros; *end: the written end. */
static int wr_data(struct ckpt_writer *w, const struct wr_job *j, uint64_t *end)
{
	size_t at = 0;

	while (at < j->len) {
		size_t bl = j->len - at < CKPT_WR_ALIGN ? j->len - at : CKPT_WR_ALIGN;
		if (wr_zero(j->data + at, bl)) {
			at += bl;
			continue;
		}
		size_t to = at + bl;
		while (to < j->len) {
			size_t nl = j->len - to < CKPT_WR_ALIGN ? j->len - to : CKPT_WR_ALIGN;
			if (wr_zero(j->data + to, nl))
				break;
			to += nl;
		}
		if (wr_run(w, j->f.fd, j->data + at, to - at, j->off + at))
			return -1;
		*end = j->off + to > *end ? j->off + to : *end;
		at = to;
	}
	return 0;
}

/* Runs one job (on the writer thread, or inline for small files). */
static void wr_exec(struct ckpt_writer *w, struct wr_job *j, uint64_t *end)
{
	int rc = __atomic_load_n(&w->rc, __ATOMIC_ACQUIRE), fail = 0;
	const char *what = "write";

	if (!rc && j->fin != WR_FIN_ABORT && j->len && wr_data(w, j, end))
		fail = 1;
	if (!rc && !fail && j->fin == WR_FIN_OK) {
		what = "finish";
		fail = (*end != j->f.size && ftruncate(j->f.fd, (off_t)j->f.size)) || fchmod(j->f.fd, j->f.mode) ||
		       futimens(j->f.fd, j->f.ts);
	}
	if (j->fin != WR_FIN_NONE) {
		if (close(j->f.fd) && !rc && !fail && j->fin == WR_FIN_OK)
			fail = 1;
		*end = 0;
	}
	if (fail) {
		rc = log_fail(EX_IOERR, "cannot %s '%s': %s", what, j->f.path, strerror(errno));
		int zero = 0;
		__atomic_compare_exchange_n(&w->rc, &zero, rc, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
}

static void *wr_thread(void *arg)
{
	struct ckpt_writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct wr_job *j = &w->job[w->wnext];
		while (!j->queued && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!j->queued)
			break;
		pthread_mutex_unlock(&w->mu);
		wr_exec(w, j, &w->end[1]);
		pthread_mutex_lock(&w->mu);
		j->queued = 0;
		w->wnext = (w->wnext + 1) % WR_NBUF;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Makes sure job j has its buffer. */
static int wr_alloc(struct wr_job *j)
{
	void *p;

	if (j->data)
		return 0;
	if (!(p = ckpt_big_alloc(CKPT_WR_BUF)))	/* 2 MiB-aligned, so CKPT_WR_ALIGN too */
		return log_fail(EX_OSERR, "out of memory");
	j->data = p;
	return 0;
}

/* Hands the current buffer over (or runs it inline) with fin; the next
 * buffer continues at off + CKPT_WR_BUF. */
static int wr_put(struct ckpt_writer *w, int fin)
{
	struct wr_job *j = &w->job[w->cur];
	uint64_t next = j->off + CKPT_WR_BUF;

	j->fin = fin;
	j->f = w->file;
	if (!w->async) {
		wr_exec(w, j, &w->end[0]);
	} else {
		pthread_mutex_lock(&w->mu);
		j->queued = 1;
		pthread_cond_broadcast(&w->cv);
		w->cur = (w->cur + 1) % WR_NBUF;
		j = &w->job[w->cur];
		while (j->queued)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
	}
	j->off = next;
	j->len = 0;
	return __atomic_load_n(&w->rc, __ATOMIC_ACQUIRE);
}

/* A gap before off reads as zeros: zeros in the buffer when it fits,
 * else the buffer goes out padded to a block and the next one starts at
 * the block holding off. */
static int wr_hole(struct ckpt_writer *w, uint64_t off)
{
	struct wr_job *j = &w->job[w->cur];
	uint64_t rel = off - j->off;
	int rc;

	if (wr_alloc(j))
		return EX_OSERR;
	if (rel <= CKPT_WR_BUF) {
		memset(j->data + j->len, 0, (size_t)rel - j->len);
		j->len = (size_t)rel;
		w->pos = off;
		return j->len == CKPT_WR_BUF ? wr_put(w, WR_FIN_NONE) : 0;
	}
	if (j->len) {
		size_t pad = (CKPT_WR_ALIGN - j->len % CKPT_WR_ALIGN) % CKPT_WR_ALIGN;
		memset(j->data + j->len, 0, pad);
		j->len += pad;
		if ((rc = wr_put(w, WR_FIN_NONE)))
			return rc;
		j = &w->job[w->cur];
		if (wr_alloc(j))
			return EX_OSERR;
	}
	j->off = off & ~(uint64_t)(CKPT_WR_ALIGN - 1);
	j->len = (size_t)(off - j->off);
	memset(j->data, 0, j->len);
	w->pos = off;
	return 0;
}

int ckpt_writer_data(struct ckpt_writer *w, const void *buf, size_t len, uint64_t off)
{
	const unsigned char *p = buf;
	int rc;

	if (off < w->pos)
		return log_fail(EX_SOFTWARE, "'%s': data out of order", w->file.path);
	if (off > w->pos && (rc = wr_hole(w, off)))
		return rc;
	while (len) {
		struct wr_job *j = &w->job[w->cur];
		if (wr_alloc(j))
			return EX_OSERR;
		size_t n = CKPT_WR_BUF - j->len < len ? CKPT_WR_BUF - j->len : len;
		memcpy(j->data + j->len, p, n);
		j->len += n;
		p += n;
		len -= n;
		w->pos += n;
		if (j->len == CKPT_WR_BUF && (rc = wr_put(w, WR_FIN_NONE)))
			return rc;
	}
	return __atomic_load_n(&w->rc, __ATOMIC_ACQUIRE);
}

int ckpt_writer_begin(struct ckpt_writer *w, int fd, const struct ckpt_file *f, mode_t mode,
		      const struct timespec ts[2])
{
	struct wr_job *j = &w->job[w->cur];
	int fl;

	w->file = (struct wr_file){ .fd = fd, .path = f->path, .size = f->size, .mode = mode,
				    .ts = { ts[0], ts[1] } };
	w->open = 1;
	w->pos = 0;
	j->off = 0;
	j->len = 0;
	w->async = f->size >= CKPT_WR_DIRECT_MIN;
	if (w->async && !wr_nodirect(w) &&
	    ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT))) {
		log_debug("pull: no O_DIRECT for '%s' (%s): writing through the page cache", f->path,
			  strerror(errno));
		if (errno == EINVAL)
			__atomic_store_n(&w->nodirect, 1, __ATOMIC_RELAXED);
	}
	return __atomic_load_n(&w->rc, __ATOMIC_ACQUIRE);
}

int ckpt_writer_end(struct ckpt_writer *w, int ok)
{
	if (!w->open)
		return __atomic_load_n(&w->rc, __ATOMIC_ACQUIRE);
	w->open = 0;
	if (!ok)
		w->job[w->cur].len = 0;
	return wr_put(w, ok ? WR_FIN_OK : WR_FIN_ABORT);
}

int ckpt_writer_drain(struct ckpt_writer *w)
{
	pthread_mutex_lock(&w->mu);
	for (unsigned i = 0; i < WR_NBUF; i++)
		while (w->job[i].queued)
			pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	return __atomic_load_n(&w->rc, __ATOMIC_ACQUIRE);
}

int ckpt_writer_open(struct ckpt_writer **out)
{
	struct ckpt_writer *w = calloc(1, sizeof(*w));
	const char *knob = getenv("SPOTRUN_PULL_DIRECT");

	*out = NULL;
	if (!w)
		return log_fail(EX_OSERR, "out of memory");
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->nodirect = knob && !strcmp(knob, "0");
	if (pthread_create(&w->th, NULL, wr_thread, w)) {
		ckpt_writer_close(w);
		return log_fail(EX_OSERR, "cannot start the writer thread");
	}
	w->running = 1;
	*out = w;
	return 0;
}

void ckpt_writer_close(struct ckpt_writer *w)
{
	if (!w)
		return;
	ckpt_writer_end(w, 0);
	if (w->running) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
	}
	for (unsigned i = 0; i < WR_NBUF; i++)
		free(w->job[i].data);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
