/*
 * ckpt_pull.c - pull and verify: the parts from ckpt_fetch.c feed
 * libarchive's tar reader in order; every entry is checked against the
 * manifest before anything touches the disk, then written into a hidden
 * temporary sibling of the destination, which is renamed into place only
 * when every part and file hash matched.
 *
 * What an archive may not do (each is EX_DATAERR, and the temporary folder
 * is removed): hold an entry that is not in the manifest (same path, same
 * type, same size, same link target) or that appears twice; use an absolute
 * path or a ".." component; put anything under a path whose parents are not
 * folders of the manifest extracted before it (so nothing is written
 * through a symlink); hold a symlink whose target is absolute, climbs above
 * the checkpoint folder, or passes through another symlink of the archive;
 * leave a manifest entry out.
 *
 * Folders and symlinks are created by archive_write_disk, whose
 * SECURE_NODOTDOT, SECURE_SYMLINKS and (when the path can be relative)
 * SECURE_NOABSOLUTEPATHS flags stand behind these checks, and which sets
 * folder modes and times last (archive_write_close).  archive_write_disk
 * needs paths relative to the working folder for the last flag; this file
 * never changes the working folder (other threads share it), so a
 * destination outside it is written by absolute, symlink-free (realpath'd)
 * paths instead.
 *
 * Regular files are created here and their contents written by
 * ckpt_write.c (aligned buffers, O_DIRECT, a writer thread: see there for
 * why), which archive_write_disk cannot do.  Created safely: openat()
 * relative to a descriptor of the temporary folder (opened O_NOFOLLOW),
 * through each parent folder opened with O_DIRECTORY | O_NOFOLLOW (so a
 * symlink anywhere on the way fails instead of being followed, even if the
 * lexical checks above had a hole), the file itself O_CREAT | O_EXCL |
 * O_NOFOLLOW (never an existing entry), mode 0600 until its data is
 * written; then ftruncate, fchmod and futimens on the same descriptor, so
 * the mode and mtime are the archive's and set after the data.  Creating
 * the entry with archive_write_disk and reopening it would need a second
 * path walk and fails for read-only files without privileges.
 */
#include "ckpt_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "xfer.h"

/* Hashes one data block on a second thread while this one writes it to
 * disk: the two are the largest serial costs of a pull. */
struct pull_hasher {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	EVP_MD_CTX *md;
	const void *buf;
	size_t len;
	int pending, stop, running;
};

#define PULL_HASH_ASYNC_MIN (256u << 10)	/* smaller blocks are hashed inline */

struct pull {
	const struct ckpt_manifest *m;
	struct pull_hasher hs;
	struct ckpt_fetch *fetch;
	int rc;			/* error from the part pipeline */
	size_t *order;		/* m->files indices sorted by path */
	unsigned char *seen;
	const char *wpath;	/* temp folder as given to archive_write_disk, NULL: verify */
	int root_seen;
	mode_t root_mode;
	struct timespec root_mtime;
	EVP_MD_CTX *md;
	EVP_MD *sha256;
	const unsigned char *key;	/* user key, for referenced encrypted checkpoints */
	struct ckpt_writer *wr;	/* regular files' contents, NULL: verify */
	int rootfd;		/* the temporary folder */
	int dfd;		/* the folder of the last file created, cached */
	char dpath[PATH_MAX];	/* its path, relative to rootfd */
};

static int pull_bad(const char *path, const char *why)
{
	return log_fail(EX_DATAERR, "refusing archive entry '%s': %s", path, why);
}

/* libarchive's read callback: the next raw part, in order. */
static la_ssize_t pull_read(struct archive *a, void *ctx, const void **buf)
{
	struct pull *pl = ctx;
	size_t len = 0;
	int rc = ckpt_fetch_next(pl->fetch, buf, &len);

	if (rc == 1)
		return 0;
	if (rc) {
		pl->rc = rc;
		archive_set_error(a, EIO, "part pipeline failed");
		return -1;
	}
	return (la_ssize_t)len;
}

/* ---- the manifest index -------------------------------------------------- */

static int pull_cmp_idx(const void *a, const void *b, void *m)
{
	const struct ckpt_manifest *mm = m;
	return strcmp(mm->files[*(const size_t *)a].path, mm->files[*(const size_t *)b].path);
}

static int pull_index(struct pull *pl)
{
	const struct ckpt_manifest *m = pl->m;

	pl->order = malloc((m->nfiles + 1) * sizeof(*pl->order));
	pl->seen = calloc(m->nfiles + 1, 1);
	if (!pl->order || !pl->seen)
		return log_fail(EX_OSERR, "out of memory");
	for (size_t i = 0; i < m->nfiles; i++)
		pl->order[i] = i;
	qsort_r(pl->order, m->nfiles, sizeof(*pl->order), pull_cmp_idx, (void *)m);
	for (size_t i = 1; i < m->nfiles; i++)
		if (!strcmp(m->files[pl->order[i]].path, m->files[pl->order[i - 1]].path))
			return log_fail(EX_DATAERR, "malformed manifest: '%s' is listed twice",
					m->files[pl->order[i]].path);
	return 0;
}

/* The manifest entry of path[0..n), or -1. */
static long pull_lookup(const struct pull *pl, const char *path, size_t n)
{
	size_t lo = 0, hi = pl->m->nfiles;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *p = pl->m->files[pl->order[mid]].path;
		int c = strncmp(p, path, n);
		if (c == 0)
			c = p[n] ? 1 : 0;
		if (c == 0)
			return (long)pl->order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Every parent of rel is a folder of the manifest, already extracted. */
static int pull_parents_ok(const struct pull *pl, const char *rel)
{
	for (const char *p = strchr(rel, '/'); p; p = strchr(p + 1, '/')) {
		long i = pull_lookup(pl, rel, (size_t)(p - rel));
		if (i < 0 || pl->m->files[i].type != CKPT_DIR || !pl->seen[i])
			return 0;
	}
	return 1;
}

/* A symlink target must stay inside the folder, lexically, without passing
 * through another symlink of the archive. */
static int pull_target_ok(const struct pull *pl, const char *rel, const char *target)
{
	char walk[PATH_MAX];
	size_t wlen = 0;
	const char *slash = strrchr(rel, '/'), *p = target;

	if (*target == '/' || strlen(rel) + strlen(target) + 2 >= sizeof(walk))
		return 0;
	if (slash) {
		wlen = (size_t)(slash - rel);
		memcpy(walk, rel, wlen);
	}
	walk[wlen] = 0;
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (wlen == 0)
				return 0;	/* above the checkpoint folder */
			char *up = strrchr(walk, '/');
			wlen = up ? (size_t)(up - walk) : 0;
			walk[wlen] = 0;
		} else if (n && !(n == 1 && p[0] == '.')) {
			if (wlen)
				walk[wlen++] = '/';
			memcpy(walk + wlen, p, n);
			wlen += n;
			walk[wlen] = 0;
			long i = pull_lookup(pl, walk, wlen);
			if (*e && i >= 0 && pl->m->files[i].type == CKPT_LNK)
				return 0;	/* a chain of links */
		}
		p = *e ? e + 1 : e;
	}
	return 1;
}

/* Checks one archive entry against the manifest; *fi gets its index, or
 * -1 for the checkpoint folder itself. */
static int pull_check_entry(struct pull *pl, struct archive_entry *e, const char *path, long *fi)
{
	const struct ckpt_manifest *m = pl->m;
	size_t nl = strlen(m->name);
	char rel[PATH_MAX];
	const struct ckpt_file *f;
	const char *tgt;
	mode_t t = archive_entry_filetype(e);

	if (strncmp(path, m->name, nl) || (path[nl] && path[nl] != '/'))
		return pull_bad(path, "outside the checkpoint folder");
	snprintf(rel, sizeof(rel), "%s", path[nl] ? path + nl + 1 : "");
	for (size_t n = strlen(rel); n && rel[n - 1] == '/';)
		rel[--n] = 0;
	if (!*rel) {
		if (t != AE_IFDIR || pl->root_seen)
			return pull_bad(path, "not the checkpoint folder");
		*fi = -1;
		pl->root_seen = 1;
		return 0;
	}
	if (!ckpt_path_safe(rel))
		return pull_bad(path, "unsafe path");
	if ((*fi = pull_lookup(pl, rel, strlen(rel))) < 0)
		return pull_bad(path, "not in the manifest");
	f = &m->files[*fi];
	if (pl->seen[*fi])
		return pull_bad(path, "appears twice");
	if (f->ref_seq)
		return pull_bad(path, "the manifest says it lives in an earlier checkpoint");
	if (archive_entry_hardlink(e) ||
	    t != (f->type == CKPT_REG ? AE_IFREG : f->type == CKPT_DIR ? AE_IFDIR : AE_IFLNK))
		return pull_bad(path, "its type differs from the manifest");
	if (f->type == CKPT_REG && (uint64_t)archive_entry_size(e) != f->size)
		return pull_bad(path, "its size differs from the manifest");
	if (!pull_parents_ok(pl, rel))
		return pull_bad(path, "a parent is not a folder of the checkpoint");
	tgt = archive_entry_symlink_utf8(e);
	if (f->type == CKPT_LNK && (!tgt || strcmp(tgt, f->target) || !pull_target_ok(pl, rel, tgt)))
		return pull_bad(path, "symlink target differs from the manifest or leaves the folder");
	pl->seen[*fi] = 1;
	return 0;
}

static void *pull_hash_thread(void *arg)
{
	struct pull_hasher *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->pending && !h->stop)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->stop)
			break;
		pthread_mutex_unlock(&h->mu);
		EVP_DigestUpdate(h->md, h->buf, h->len);
		pthread_mutex_lock(&h->mu);
		h->pending = 0;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void pull_hash_begin(struct pull_hasher *h, const void *buf, size_t len)
{
	pthread_mutex_lock(&h->mu);
	h->buf = buf;
	h->len = len;
	h->pending = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void pull_hash_wait(struct pull_hasher *h)
{
	pthread_mutex_lock(&h->mu);
	while (h->pending)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

static void pull_hasher_start(struct pull_hasher *h, EVP_MD_CTX *md)
{
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->md = md;
	h->running = pthread_create(&h->th, NULL, pull_hash_thread, h) == 0;
}

static void pull_hasher_stop(struct pull_hasher *h)
{
	if (h->running) {
		pthread_mutex_lock(&h->mu);
		h->stop = 1;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->th, NULL);
	}
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
}

/* Streams one regular file's data to the writer (or nowhere), hashing it
 * on the second thread while the writer copies it. */
static int pull_data(struct pull *pl, struct archive *ar, const struct ckpt_file *f)
{
	static const unsigned char zeros[4096];
	unsigned char sha[CKPT_SHA_LEN];
	uint64_t at = 0;
	const void *buf;
	size_t len;
	la_int64_t off;
	int r, rc = 0;

	EVP_DigestInit_ex(pl->md, pl->sha256, NULL);
	while ((r = archive_read_data_block(ar, &buf, &len, &off)) == ARCHIVE_OK) {
		if ((uint64_t)off < at)
			return pull_bad(f->path, "overlapping data blocks");
		while (at < (uint64_t)off) {	/* a hole: it reads as zeros */
			size_t z = (uint64_t)off - at < sizeof(zeros) ? (size_t)((uint64_t)off - at) : sizeof(zeros);
			EVP_DigestUpdate(pl->md, zeros, z);
			at += z;
		}
		int async = pl->wr && pl->hs.running && len >= PULL_HASH_ASYNC_MIN;
		if (async)
			pull_hash_begin(&pl->hs, buf, len);
		else
			EVP_DigestUpdate(pl->md, buf, len);
		at += len;
		if (pl->wr)
			rc = ckpt_writer_data(pl->wr, buf, len, (uint64_t)off);
		if (async)
			pull_hash_wait(&pl->hs);	/* buf is only valid until the next read */
		if (rc)
			return rc;
	}
	if (r != ARCHIVE_EOF)
		return pl->rc ? pl->rc : log_fail(EX_DATAERR, "archive: %s", archive_error_string(ar));
	EVP_DigestFinal_ex(pl->md, sha, NULL);
	if (at != f->size || memcmp(sha, f->sha, CKPT_SHA_LEN))
		return log_fail(EX_DATAERR, "file '%s' of checkpoint %" PRIu64 " does not match its sha256",
				f->path, pl->m->seq);
	return 0;
}

/* The folder that will hold rel, as a descriptor: the temporary folder, or
 * its subfolder reached one component at a time with O_NOFOLLOW (cached:
 * files arrive folder by folder). */
static int pull_parent(struct pull *pl, const char *rel, int *dfd)
{
	const char *slash = strrchr(rel, '/'), *p = rel;
	size_t n = slash ? (size_t)(slash - rel) : 0;
	int fd = pl->rootfd;

	*dfd = pl->rootfd;
	if (!n)
		return 0;
	if (pl->dfd >= 0 && strlen(pl->dpath) == n && !memcmp(pl->dpath, rel, n)) {
		*dfd = pl->dfd;
		return 0;
	}
	if (pl->dfd >= 0)
		close(pl->dfd);
	pl->dfd = -1;
	while (p < rel + n) {
		const char *e = memchr(p, '/', (size_t)(rel + n - p));
		char name[NAME_MAX + 1];
		size_t l = (size_t)((e ? e : rel + n) - p);
		int nfd = -1;
		if (l < sizeof(name)) {
			memcpy(name, p, l);
			name[l] = 0;
			nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		} else {
			errno = ENAMETOOLONG;
		}
		if (fd != pl->rootfd)
			close(fd);
		if (nfd < 0)
			return log_fail(EX_IOERR, "cannot open the folder of '%s': %s", rel, strerror(errno));
		fd = nfd;
		p += l + 1;
	}
	memcpy(pl->dpath, rel, n);
	pl->dpath[n] = 0;
	*dfd = pl->dfd = fd;
	return 0;
}

/* Creates regular file rel in the temporary folder: a fresh file (never an
 * existing entry, never through a symlink), empty, mode 0600 for now. */
static int pull_create(struct pull *pl, const char *rel, int *fd)
{
	const char *slash = strrchr(rel, '/');
	int dfd, rc;

	if (!pull_parents_ok(pl, rel))
		return pull_bad(rel, "a parent is not a folder of the checkpoint");
	if ((rc = pull_parent(pl, rel, &dfd)))
		return rc;
	*fd = openat(dfd, slash ? slash + 1 : rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0)
		return log_fail(EX_IOERR, "cannot create '%s': %s", rel, strerror(errno));
	return 0;
}

/* Permission bits as archive_write_disk restores them without owners: set
 * user/group ID only where the owner would be right (uid/gid 0 in the
 * archive, as pull writes them). */
static mode_t pull_mode(mode_t mode)
{
	mode &= 07777;
	if (geteuid() != 0)
		mode &= ~(mode_t)S_ISUID;
	if (getegid() != 0)
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

/* One regular file: created here, written by ckpt_write.c, checked.  Its
 * atime is left at the time of creation (push records no atime). */
static int pull_file(struct pull *pl, struct archive *ar, struct archive_entry *e, const struct ckpt_file *f)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { archive_entry_mtime(e), archive_entry_mtime_nsec(e) } };
	int fd, rc, wrc;

	if (!pl->wr)
		return pull_data(pl, ar, f);
	if ((rc = pull_create(pl, f->path, &fd)))
		return rc;
	if (!(rc = ckpt_writer_begin(pl->wr, fd, f, pull_mode(archive_entry_perm(e)), ts)))
		rc = pull_data(pl, ar, f);
	wrc = ckpt_writer_end(pl->wr, rc == 0);
	return rc ? rc : wrc;
}

/* Folders and symlinks go through archive_write_disk, regular files
 * through pull_file. */
static int pull_write_entry(struct pull *pl, struct archive *ar, struct archive *aw,
			    struct archive_entry *e, long fi)
{
	const struct ckpt_file *f = &pl->m->files[fi];
	char path[PATH_MAX * 2];

	if (f->type == CKPT_REG)
		return pull_file(pl, ar, e, f);
	if (!aw)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", pl->wpath, f->path);
	archive_entry_copy_pathname(e, path);
	if (f->type == CKPT_LNK)
		archive_entry_copy_symlink(e, f->target);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (archive_write_header(aw, e) < ARCHIVE_WARN)
		return log_fail(EX_IOERR, "cannot create '%s': %s", f->path, archive_error_string(aw));
	if (archive_write_finish_entry(aw) < ARCHIVE_WARN)
		return log_fail(EX_IOERR, "cannot finish '%s': %s", f->path, archive_error_string(aw));
	return 0;
}

static int pull_entries(struct pull *pl, struct archive *ar, struct archive *aw)
{
	struct archive_entry *e;
	const void *buf;
	size_t len;
	int r, rc;

	while ((r = archive_read_next_header(ar, &e)) != ARCHIVE_EOF) {
		const char *path;
		long fi = -1;
		if (r < ARCHIVE_WARN)
			return pl->rc ? pl->rc : log_fail(EX_DATAERR, "archive: %s", archive_error_string(ar));
		path = archive_entry_pathname_utf8(e);
		if (!path)
			path = archive_entry_pathname(e);
		if (!path)
			return pull_bad("?", "no path");
		if ((rc = pull_check_entry(pl, e, path, &fi)))
			return rc;
		if (fi < 0) {
			pl->root_mode = archive_entry_perm(e);
			pl->root_mtime.tv_sec = archive_entry_mtime(e);
			pl->root_mtime.tv_nsec = archive_entry_mtime_nsec(e);
			continue;
		}
		if ((rc = pull_write_entry(pl, ar, aw, e, fi)))
			return rc;
	}
	for (size_t i = 0; i < pl->m->nfiles; i++)
		if (!pl->seen[i] && !pl->m->files[i].ref_seq)
			return log_fail(EX_DATAERR, "'%s' of the manifest is missing from the archive",
					pl->m->files[i].path);
	/* read (and so verify) every part, even what follows the end of the tar */
	while ((rc = ckpt_fetch_next(pl->fetch, &buf, &len)) == 0)
		;
	return rc == 1 ? 0 : rc;
}

/* Writes (or only checks) one referenced file: its parents are folders of
 * the manifest, already extracted; the file itself is created fresh. */
static int pull_ref_one(struct pull *pl, struct ckpt_refs *r, const struct ckpt_file *f)
{
	struct timespec ts[2] = { { f->mtime, f->mtime_nsec }, { f->mtime, f->mtime_nsec } };
	int fd, rc, wrc;

	if (!pl->wr)
		return ckpt_refs_read(r, f, NULL);
	if ((rc = pull_create(pl, f->path, &fd)))
		return rc;
	if (!(rc = ckpt_writer_begin(pl->wr, fd, f, pull_mode(f->mode), ts)))
		rc = ckpt_refs_read(r, f, pl->wr);
	wrc = ckpt_writer_end(pl->wr, rc == 0);
	return rc ? rc : wrc;
}

/* Files of an incremental checkpoint that live in earlier data objects. */
static int pull_refs(struct pull *pl, struct xfer_store *st)
{
	struct ckpt_refs *r = NULL;
	int rc = 0;

	for (size_t i = 0; i < pl->m->nfiles && !rc; i++) {
		const struct ckpt_file *f = &pl->m->files[i];
		if (!f->ref_seq)
			continue;
		if (!r && (rc = ckpt_refs_open(&r, st, pl->m, pl->key)))
			break;
		rc = pull_ref_one(pl, r, f);
	}
	ckpt_refs_close(r);
	return rc;
}

static int pull_run(struct pull *pl, struct archive *aw, int workers, int progress, struct xfer_store *st)
{
	struct archive *ar = archive_read_new();
	struct ckpt_progress pg;
	int rc;

	ckpt_progress_init(&pg, progress, pl->wpath ? "pull" : "verify", pl->m->raw_bytes);
	pl->md = EVP_MD_CTX_new();
	pl->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!ar || !pl->md || !pl->sha256) {
		rc = log_fail(EX_OSERR, "out of memory");
		goto out;
	}
	if ((rc = pull_index(pl)) || (rc = ckpt_fetch_start(&pl->fetch, st, pl->m, workers, &pg)))
		goto out;
	if (aw)
		pull_hasher_start(&pl->hs, pl->md);
	archive_read_support_format_tar(ar);
	if (archive_read_open(ar, pl, NULL, pull_read, NULL) < ARCHIVE_WARN) {
		rc = pl->rc ? pl->rc : log_fail(EX_DATAERR, "archive: %s", archive_error_string(ar));
		goto out;
	}
	rc = pull_entries(pl, ar, aw);
	if (!rc)
		rc = pull_refs(pl, st);
	ckpt_progress_end(&pg);
out:
	archive_read_free(ar);
	if (aw)
		pull_hasher_stop(&pl->hs);
	ckpt_fetch_stop(pl->fetch);
	EVP_MD_CTX_free(pl->md);
	EVP_MD_free(pl->sha256);
	free(pl->order);
	free(pl->seen);
	return rc;
}

int ckpt_extract(struct xfer_store *st, const struct ckpt_manifest *m, const char *wpath,
		 const struct ckpt_pull_opts *o)
{
	struct pull pl = { .m = m, .wpath = wpath, .key = o ? o->key : NULL, .rootfd = -1, .dfd = -1 };
	struct archive *aw = NULL;
	struct ckpt_locale loc;
	int rc, wrc, flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
			     ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_NO_OVERWRITE;

	loc = ckpt_utf8_begin();
	if (wpath) {
		if (*wpath != '/')
			flags |= ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
		if ((pl.rootfd = open(wpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			rc = log_fail(EX_IOERR, "cannot open '%s': %s", wpath, strerror(errno));
			goto out;
		}
		if ((rc = ckpt_writer_open(&pl.wr)))
			goto out;
		if (!(aw = archive_write_disk_new()) || archive_write_disk_set_options(aw, flags)) {
			rc = log_fail(EX_OSERR, "out of memory");
			goto out;
		}
	}
	rc = pull_run(&pl, aw, o ? o->workers : 0, o ? o->progress : 0, st);
	if (pl.wr && (wrc = ckpt_writer_drain(pl.wr)) && !rc)	/* every file written and closed */
		rc = wrc;
	if (aw && archive_write_close(aw) < ARCHIVE_WARN && !rc)	/* folder modes and times */
		rc = log_fail(EX_IOERR, "cannot finish extraction: %s", archive_error_string(aw));
out:
	ckpt_writer_close(pl.wr);
	if (pl.dfd >= 0)
		close(pl.dfd);
	if (pl.rootfd >= 0)
		close(pl.rootfd);
	archive_write_free(aw);
	ckpt_utf8_end(loc);
	if (!rc && wpath && pl.root_seen) {
		struct timespec ts[2] = { pl.root_mtime, pl.root_mtime };
		if (chmod(wpath, pl.root_mode & 07777) || utimensat(AT_FDCWD, wpath, ts, 0))
			rc = log_fail(EX_IOERR, "cannot set the mode of '%s': %s", wpath, strerror(errno));
	}
	return rc;
}
