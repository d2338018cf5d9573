/*
 * ckpt_restore.c - the public pull and verify calls: reads the manifest,
 * prepares the hidden temporary sibling of the destination, runs the read
 * pipeline of ckpt_pull.c and moves the result into place with one rename
 * (RENAME_NOREPLACE, or RENAME_EXCHANGE when replacing), so the destination
 * either does not exist or holds the whole verified checkpoint.
 */
#include "ckpt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "xfer.h"

struct restore_paths {
	char final[PATH_MAX];	/* realpath(parent)/base */
	char tmp[PATH_MAX];	/* realpath(parent)/.base.spotrun-tmp-XXXXXX */
	const char *wpath;	/* tmp, relative to the working folder when inside it */
};

static int restore_paths(const char *dest, struct restore_paths *rp)
{
	char parent[PATH_MAX], rparent[PATH_MAX], cwd[PATH_MAX], base[NAME_MAX + 1];
	char *slash;
	size_t n;

	snprintf(parent, sizeof(parent), "%s", dest);
	for (n = strlen(parent); n > 1 && parent[n - 1] == '/';)
		parent[--n] = 0;
	slash = strrchr(parent, '/');
	{
		const char *b = slash ? slash + 1 : parent;
		size_t bl = strlen(b);
		if (bl >= sizeof(base))
			return log_fail(EX_USAGE, "'%s': name too long", dest);
		memcpy(base, b, bl + 1);
	}
	if (!slash)
		strcpy(parent, ".");
	else
		slash[slash == parent] = 0;	/* "/x" -> "/", "a/b" -> "a" */
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return log_fail(EX_USAGE, "'%s' cannot be a pull destination", dest);
	if (!realpath(parent, rparent))
		return log_fail(EX_IOERR, "cannot use the folder of '%s': %s", dest, strerror(errno));
	if ((size_t)snprintf(rp->final, sizeof(rp->final), "%s/%s", strcmp(rparent, "/") ? rparent : "",
			     base) >= sizeof(rp->final) ||
	    (size_t)snprintf(rp->tmp, sizeof(rp->tmp), "%s/.%s.spotrun-tmp-XXXXXX",
			     strcmp(rparent, "/") ? rparent : "", base) >= sizeof(rp->tmp))
		return log_fail(EX_USAGE, "destination path too long");
	rp->wpath = rp->tmp;
	if (getcwd(cwd, sizeof(cwd)) && (n = strlen(cwd)) > 1 && !strncmp(rp->tmp, cwd, n) &&
	    rp->tmp[n] == '/')
		rp->wpath = rp->tmp + n + 1;
	return 0;
}

static int restore_move(const struct restore_paths *rp, int replace)
{
	struct stat sb;

	if (renameat2(AT_FDCWD, rp->tmp, AT_FDCWD, rp->final, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST && replace) {
		if (renameat2(AT_FDCWD, rp->tmp, AT_FDCWD, rp->final, RENAME_EXCHANGE) == 0) {
			ckpt_rmtree(rp->tmp);	/* the old contents */
			return 0;
		}
	} else if (errno == EINVAL && (replace || lstat(rp->final, &sb))) {
		/* a file system without RENAME_NOREPLACE */
		if (rename(rp->tmp, rp->final) == 0)
			return 0;
	}
	if (errno == EEXIST || errno == ENOTEMPTY || errno == EINVAL)
		return log_fail(EX_CANTCREAT, "'%s' already exists", rp->final);
	return log_fail(EX_IOERR, "cannot rename into '%s': %s", rp->final, strerror(errno));
}

int ckpt_pull(struct xfer_store *st, uint64_t seq, const char *dest, const struct ckpt_pull_opts *o,
	      struct ckpt_result *r)
{
	struct ckpt_manifest m;
	struct restore_paths rp;
	struct stat sb;
	double t0 = ckpt_now();
	int rc;

	if (!o || !ckpt_job_ok(o->job))
		return log_fail(EX_USAGE, "invalid job id '%s'", o && o->job ? o->job : "");
	if (!dest || !*dest)
		return log_fail(EX_USAGE, "no destination folder");
	if ((rc = restore_paths(dest, &rp)))
		return rc;
	if (!o->replace && lstat(rp.final, &sb) == 0)
		return log_fail(EX_CANTCREAT, "'%s' already exists", dest);
	if ((rc = ckpt_read_manifest(st, o->job, seq, &m)))
		return rc;
	if ((rc = ckpt_unlock(st, &m, o->key)))
		goto out;
	if (!mkdtemp(rp.tmp)) {
		rc = log_fail(EX_IOERR, "cannot create a folder next to '%s': %s", dest, strerror(errno));
		goto out;
	}
	rc = ckpt_extract(st, &m, rp.wpath, o);
	if (!rc)
		rc = restore_move(&rp, o->replace);
	if (rc)
		ckpt_rmtree(rp.tmp);
	if (!rc && r) {
		ckpt_result_fill(r, &m, t0);
	}
out:
	ckpt_manifest_free(&m);
	return rc;
}

/* Without the key: every part's SHA-256 over its stored (encrypted) bytes. */
static int restore_parts_only(struct xfer_store *st, const struct ckpt_manifest *m)
{
	unsigned char *buf = NULL, sha[CKPT_SHA_LEN];
	uint64_t max = 0;
	char key[512];
	int rc = 0;

	for (size_t i = 0; i < m->nparts; i++)
		max = m->parts[i].size > max ? m->parts[i].size : max;
	if (!(buf = malloc(max ? max : 1)))
		return log_fail(EX_OSERR, "out of memory");
	ckpt_key(key, sizeof(key), m->job, m->seq, "data.tar.zst");
	for (size_t i = 0; i < m->nparts && !rc; i++) {
		const struct ckpt_part *p = &m->parts[i];
		if ((rc = xfer_get_range(st, key, p->offset, buf, p->size)))
			rc = rc == XFER_NOTFOUND ? log_fail(EX_DATAERR, "checkpoint data '%s' is missing", key) : rc;
		else if (!EVP_Digest(buf, p->size, sha, NULL, EVP_sha256(), NULL) || memcmp(sha, p->sha, CKPT_SHA_LEN))
			rc = log_fail(EX_DATAERR, "part %zu of checkpoint %" PRIu64 " is corrupt: sha256 mismatch", i,
				      m->seq);
	}
	free(buf);
	return rc;
}

int ckpt_verify(struct xfer_store *st, const char *job, uint64_t seq, const struct ckpt_pull_opts *o)
{
	struct ckpt_manifest m;
	int rc;

	if (!ckpt_job_ok(job))
		return log_fail(EX_USAGE, "invalid job id '%s'", job ? job : "");
	if ((rc = ckpt_read_manifest(st, job, seq, &m)))
		return rc;
	if (m.enc.on && !(o && o->key)) {
		log_note("checkpoint %" PRIu64 " is encrypted and no key was given: checking the stored parts "
			 "only", seq);
		rc = restore_parts_only(st, &m);
	} else if (!(rc = ckpt_unlock(st, &m, o ? o->key : NULL))) {
		rc = ckpt_extract(st, &m, NULL, o);
	}
	ckpt_manifest_free(&m);
	return rc;
}
