/*
 * localckpt.c - bookkeeping of checkpoint folders in SPOTRUN_CKPT_DIR: the
 * .spotrun-complete marker that says a folder is finished, and the search
 * for the newest finished folder (the one to resume from).  The marker is
 * the single local source of truth: `spotrun commit` writes it, so does a
 * child that creates it itself, and it survives spotrun restarts.
 */
#include "runner.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUN_MARKER ".spotrun-complete"

long long run_step_from_name(const char *name)
{
	const char *p = name + strlen(name);
	while (p > name && isdigit((unsigned char)p[-1]))
		p--;
	if (!*p || strlen(p) > 18)
		return -1;
	return strtoll(p, NULL, 10);
}

int run_mark_complete(const char *dir, long long step)
{
	char path[4200], tmp[4300];
	json_t *o = json_pack("{s:I, s:I}", "step", (json_int_t)step, "committed",
			      (json_int_t)time(NULL));
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, RUN_MARKER);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp%d", dir, RUN_MARKER, (int)getpid());
	if (!o || json_dump_file(o, tmp, JSON_COMPACT) || rename(tmp, path)) {
		rc = log_fail(EX_IOERR, "cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
	}
	json_decref(o);
	return rc;
}

/* Reads a folder's marker: 1 finished (fills out), 0 not finished. */
static int run_read_marker(const char *dir, struct run_local_ckpt *out)
{
	char path[4200];
	struct stat st;
	json_t *o, *step;

	snprintf(path, sizeof(path), "%s/%s", dir, RUN_MARKER);
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return 0;
	snprintf(out->path, sizeof(out->path), "%s", dir);
	out->committed_at = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
	out->step = -1;
	o = json_load_file(path, 0, NULL);
	step = o ? json_object_get(o, "step") : NULL;
	if (json_is_integer(step) && json_integer_value(step) >= 0)
		out->step = json_integer_value(step);
	json_decref(o);
	if (out->step < 0)
		out->step = run_step_from_name(strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir);
	return 1;
}

/* Newer: later commit; equal times (same clock tick) fall back to the step. */
static int run_newer(const struct run_local_ckpt *a, const struct run_local_ckpt *b)
{
	if (a->committed_at != b->committed_at)
		return a->committed_at > b->committed_at;
	return a->step > b->step;
}

int run_newest_local(const char *ckpt_dir, struct run_local_ckpt *out)
{
	DIR *d = opendir(ckpt_dir);
	struct dirent *e;
	struct run_local_ckpt cur;
	int found = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char sub[4200];
		if (e->d_name[0] == '.')
			continue; /* temp folders and our own files */
		snprintf(sub, sizeof(sub), "%s/%s", ckpt_dir, e->d_name);
		if (run_read_marker(sub, &cur) && (!found || run_newer(&cur, out))) {
			*out = cur;
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* The newest unmarked folder modified after `after`, for a child that exits
 * right after writing its final checkpoint: 1 found. */
int run_newest_unmarked(const char *ckpt_dir, double after, char *out, size_t outlen)
{
	DIR *d = opendir(ckpt_dir);
	struct dirent *e;
	struct run_local_ckpt cur;
	double best = after;
	int found = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char sub[4200];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", ckpt_dir, e->d_name);
		if (lstat(sub, &st) || !S_ISDIR(st.st_mode) || run_read_marker(sub, &cur))
			continue;
		double t = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
		if (t > best) {
			best = t;
			snprintf(out, outlen, "%s", sub);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* mkdir -p */
int run_mkdirs(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return log_fail(EX_USAGE, "path too long: '%s'", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0777) && errno != EEXIST)
			return log_fail(EX_CANTCREAT, "cannot create '%s': %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0777) && errno != EEXIST)
		return log_fail(EX_CANTCREAT, "cannot create '%s': %s", buf, strerror(errno));
	return 0;
}
