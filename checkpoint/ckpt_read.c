/*
 * ckpt_read.c - the read side of a push: streams the contents of every
 * regular file of a scanned folder, in manifest order, as chunks of up to
 * CKPT_READ_BUF bytes.  With io_uring (the default) up to CKPT_READ_DEPTH
 * reads are in flight at once, running ahead across file boundaries, so the
 * disk keeps working while the caller hashes and archives the previous
 * chunk on the same thread.  Each request carries its own buffer; short
 * reads are requeued for the rest; completions are matched by user data
 * and consumed strictly in submission order; close drains the queue.
 * Without io_uring (or SPOTRUN_CKPT_IO=read) the same interface does plain
 * pread() calls, which is what io_uring is measured against.
 *
 * A file that is shorter than the scan said (changed while pushing) is an
 * error; a longer one is read up to its scanned size.
 */
#include "ckpt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct read_req {
	unsigned char *buf;
	size_t file;		/* index into m->files */
	int fd;
	int last;		/* final chunk of this file: close fd once consumed */
	int done;
	uint64_t off;
	size_t len, got;
};

struct ckpt_reader {
	const struct ckpt_manifest *m;
	int rootfd;
	int uring;		/* io_uring in use */
	struct io_uring ring;
	struct read_req req[CKPT_READ_DEPTH];
	unsigned head, count;	/* FIFO of requests in submission order */
	unsigned inflight;	/* submitted to the kernel, not yet completed */
	int consumed;		/* req[head] was handed out by the last next() */
	size_t cur;		/* submission cursor: file index */
	uint64_t cur_off;
	int cur_fd;
	unsigned char *bufs;
};

/* Advances the cursor to the next regular file with data; opens it. */
static int read_cursor(struct ckpt_reader *r)
{
	const struct ckpt_manifest *m = r->m;

	while (r->cur < m->nfiles) {
		const struct ckpt_file *f = &m->files[r->cur];
		if (f->type == CKPT_REG && f->size > 0 && !f->ref_seq && r->cur_off < f->size) {
			if (r->cur_fd >= 0)
				return 0;
			r->cur_fd = openat(r->rootfd, f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
			if (r->cur_fd < 0 && errno == EPERM)
				r->cur_fd = openat(r->rootfd, f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (r->cur_fd < 0)
				return log_fail(EX_IOERR, "cannot open '%s': %s", f->path, strerror(errno));
			return 0;
		}
		r->cur++;
		r->cur_off = 0;
	}
	return 1;
}

static void read_sqe(struct ckpt_reader *r, struct read_req *q, unsigned idx)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	/* the ring has CKPT_READ_DEPTH entries and at most that many are in flight */
	io_uring_prep_read(sqe, q->fd, q->buf + q->got, (unsigned)(q->len - q->got), q->off + q->got);
	io_uring_sqe_set_data64(sqe, idx);
	r->inflight++;
}

static int read_sync(struct ckpt_reader *r, struct read_req *q)
{
	while (q->got < q->len) {
		ssize_t n = pread(q->fd, q->buf + q->got, q->len - q->got, (off_t)(q->off + q->got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_fail(EX_IOERR, "cannot read '%s': %s", r->m->files[q->file].path,
					strerror(errno));
		if (n == 0)
			return log_fail(EX_DATAERR, "'%s' shrank while being pushed",
					r->m->files[q->file].path);
		q->got += (size_t)n;
	}
	q->done = 1;
	return 0;
}

/* Queues reads until the FIFO is full or every file is queued. */
static int read_fill(struct ckpt_reader *r)
{
	int rc = 0, queued = 0;

	while (r->count < CKPT_READ_DEPTH && (rc = read_cursor(r)) == 0) {
		const struct ckpt_file *f = &r->m->files[r->cur];
		unsigned idx = (r->head + r->count) % CKPT_READ_DEPTH;
		struct read_req *q = &r->req[idx];
		uint64_t left = f->size - r->cur_off;

		q->file = r->cur;
		q->fd = r->cur_fd;
		q->off = r->cur_off;
		q->len = left < CKPT_READ_BUF ? (size_t)left : CKPT_READ_BUF;
		q->got = 0;
		q->done = 0;
		r->cur_off += q->len;
		q->last = r->cur_off == f->size;
		if (q->last)
			r->cur_fd = -1;	/* now owned by the request */
		r->count++;
		if (!r->uring)
			return read_sync(r, q);
		read_sqe(r, q, idx);
		queued = 1;
	}
	if (rc > 1)
		return rc;
	if (queued && (rc = io_uring_submit(&r->ring)) < 0)
		return log_fail(EX_IOERR, "io_uring submit: %s", strerror(-rc));
	return 0;
}

/* Waits for one completion and books it. */
static int read_reap(struct ckpt_reader *r)
{
	struct io_uring_cqe *cqe;
	struct read_req *q;
	int rc = io_uring_wait_cqe(&r->ring, &cqe), res;

	if (rc < 0)
		return rc == -EINTR ? 0 : log_fail(EX_IOERR, "io_uring wait: %s", strerror(-rc));
	q = &r->req[io_uring_cqe_get_data64(cqe) % CKPT_READ_DEPTH];
	res = cqe->res;
	io_uring_cqe_seen(&r->ring, cqe);
	r->inflight--;
	if (res == -EINTR || res == -EAGAIN)
		res = 0;	/* requeued below */
	else if (res < 0)
		return log_fail(EX_IOERR, "cannot read '%s': %s", r->m->files[q->file].path, strerror(-res));
	else if (res == 0)
		return log_fail(EX_DATAERR, "'%s' shrank while being pushed", r->m->files[q->file].path);
	q->got += (size_t)res;
	if (q->got == q->len) {
		q->done = 1;
		return 0;
	}
	read_sqe(r, q, (unsigned)(q - r->req));	/* short read: requeue the rest */
	rc = io_uring_submit(&r->ring);
	return rc < 0 ? log_fail(EX_IOERR, "io_uring submit: %s", strerror(-rc)) : 0;
}

static void read_release_head(struct ckpt_reader *r)
{
	struct read_req *q = &r->req[r->head];

	if (q->last && q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	r->head = (r->head + 1) % CKPT_READ_DEPTH;
	r->count--;
	r->consumed = 0;
}

int ckpt_reader_next(struct ckpt_reader *r, size_t *file, const void **data, size_t *len)
{
	struct read_req *q;
	int rc;

	if (r->consumed)
		read_release_head(r);
	if ((rc = read_fill(r)))
		return rc;
	if (r->count == 0)
		return 1;
	q = &r->req[r->head];
	while (!q->done)
		if ((rc = read_reap(r)))
			return rc;
	r->consumed = 1;
	*file = q->file;
	*data = q->buf;
	*len = q->len;
	return 0;
}

int ckpt_reader_open(struct ckpt_reader **out, int rootfd, const struct ckpt_manifest *m)
{
	struct ckpt_reader *r = calloc(1, sizeof(*r));
	const char *mode = getenv("SPOTRUN_CKPT_IO");

	*out = NULL;
	if (!r || !(r->bufs = malloc((size_t)CKPT_READ_DEPTH * CKPT_READ_BUF))) {
		free(r);
		return log_fail(EX_OSERR, "out of memory");
	}
	r->m = m;
	r->rootfd = rootfd;
	r->cur_fd = -1;
	for (unsigned i = 0; i < CKPT_READ_DEPTH; i++) {
		r->req[i].buf = r->bufs + (size_t)i * CKPT_READ_BUF;
		r->req[i].fd = -1;
	}
	if (!mode || strcmp(mode, "read")) {
		int rc = io_uring_queue_init(CKPT_READ_DEPTH, &r->ring, 0);
		r->uring = rc == 0;
		if (rc)
			log_debug("io_uring unavailable (%s): using pread", strerror(-rc));
	}
	*out = r;
	return 0;
}

void ckpt_reader_close(struct ckpt_reader *r)
{
	if (!r)
		return;
	while (r->uring && r->inflight) {	/* drain: buffers must outlive the kernel's use */
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&r->ring, &cqe) < 0)
			break;
		io_uring_cqe_seen(&r->ring, cqe);
		r->inflight--;
	}
	for (unsigned i = 0; i < r->count; i++) {
		struct read_req *q = &r->req[(r->head + i) % CKPT_READ_DEPTH];
		if (q->last && q->fd >= 0)
			close(q->fd);
	}
	if (r->cur_fd >= 0)
		close(r->cur_fd);
	if (r->uring)
		io_uring_queue_exit(&r->ring);
	free(r->bufs);
	free(r);
}

int ckpt_reader_uring(const struct ckpt_reader *r)
{
	return r->uring;
}
