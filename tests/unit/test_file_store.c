/*
 * test_file_store.c - the file:// backend: whole objects, ranges, sorted
 * recursive listing without temporary files, uploads that appear only on
 * finish, deletes that prune folders, and the create-only commit race:
 * of many processes (and threads) creating one key, exactly one wins.
 */
#include "check.h"

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>

#include "backend.h"
#include "xfer.h"

/* a strong reference, so the backend is linked from libspotrun.a */
__attribute__((used)) static const struct xfer_backend *const keep_backend = &xfer_file_backend;

static char root[256];

static struct xfer_store *open_store(void)
{
	struct xfer_store *st = NULL;
	char url[300];

	ASSERT_TRUE(keep_backend != NULL);
	snprintf(root, sizeof(root), "/tmp/sr-file-%d", (int)getpid());
	snprintf(url, sizeof(url), "file://%s", root);
	ASSERT_EQ(xfer_open(url, NULL, &st), 0);
	ASSERT_STR_EQ(xfer_kind(st), "file");
	ASSERT_STR_EQ(xfer_display(st), url);
	return st;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	ASSERT_EQ(nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* entries in dir whose name starts with prefix */
static int count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += !strncmp(de->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

static void put_get_head_range(void)
{
	struct xfer_store *st = open_store();
	char *buf = NULL, part[4];
	size_t len = 0;
	uint64_t size = 0;

	ASSERT_EQ(xfer_get(st, "j/a.json", &buf, &len, 100), XFER_NOTFOUND);
	ASSERT_EQ(xfer_head(st, "j/a.json", &size), XFER_NOTFOUND);
	ASSERT_EQ(xfer_get_range(st, "j/a.json", 0, part, 1), XFER_NOTFOUND);
	ASSERT_EQ(xfer_delete(st, "j/a.json"), XFER_NOTFOUND);
	ASSERT_EQ(xfer_put(st, "j/x/a.json", "hello world", 11, 0), 0);
	ASSERT_EQ(xfer_get(st, "j/x/a.json", &buf, &len, 100), 0);
	ASSERT_EQ(len, 11);
	ASSERT_STR_EQ(buf, "hello world");
	free(buf);
	ASSERT_EQ(xfer_get(st, "j/x/a.json", &buf, &len, 5), EX_DATAERR);
	ASSERT_EQ(xfer_head(st, "j/x/a.json", &size), 0);
	ASSERT_EQ(size, 11);
	ASSERT_EQ(xfer_get_range(st, "j/x/a.json", 6, part, 4), 0);
	ASSERT_EQ(memcmp(part, "worl", 4), 0);
	ASSERT_EQ(xfer_get_range(st, "j/x/a.json", 9, part, 4), EX_DATAERR);	/* past the end */
	ASSERT_EQ(xfer_put(st, "j/x/a.json", "again", 5, 0), 0);	/* plain put replaces */
	ASSERT_EQ(xfer_put(st, "../evil", "x", 1, 0), EX_USAGE);
	ASSERT_EQ(xfer_put(st, "j//x", "x", 1, 0), EX_USAGE);
	ASSERT_EQ(xfer_put(st, "j/.tmp-x", "x", 1, 0), EX_USAGE);
	xfer_close(st);
	cleanup();
}

static void list_sorted_recursive(void)
{
	struct xfer_store *st = open_store();
	const char *keys[] = { "b/ckpt/00000002/manifest.json", "a/job.json", "b/ckpt/00000001/data.tar.zst",
			       "b/ckpt/00000001/claim.json", "bb/x" };
	struct xfer_list l;
	char tmp[400];

	for (size_t i = 0; i < 5; i++)
		ASSERT_EQ(xfer_put(st, keys[i], "x", 1, 0), 0);
	snprintf(tmp, sizeof(tmp), "%s/b/ckpt/00000001/.tmp-1234-data.tar.zst", root);
	fclose(fopen(tmp, "w"));
	ASSERT_EQ(xfer_list(st, "", &l), 0);
	ASSERT_EQ(l.n, 5);
	ASSERT_STR_EQ(l.v[0].key, "a/job.json");
	ASSERT_STR_EQ(l.v[1].key, "b/ckpt/00000001/claim.json");
	ASSERT_STR_EQ(l.v[2].key, "b/ckpt/00000001/data.tar.zst");
	ASSERT_STR_EQ(l.v[3].key, "b/ckpt/00000002/manifest.json");
	ASSERT_STR_EQ(l.v[4].key, "bb/x");
	ASSERT_EQ(l.v[0].size, 1);
	ASSERT_TRUE(l.v[0].mtime > 1e9);
	xfer_list_free(&l);
	ASSERT_EQ(xfer_list(st, "b/", &l), 0);
	ASSERT_EQ(l.n, 3);
	xfer_list_free(&l);
	ASSERT_EQ(xfer_list(st, "b/ckpt/00000001/", &l), 0);
	ASSERT_EQ(l.n, 2);
	xfer_list_free(&l);
	ASSERT_EQ(xfer_list(st, "zzz/", &l), 0);
	ASSERT_EQ(l.n, 0);
	xfer_list_free(&l);
	/* deleting the last visible objects removes the folder and its orphans */
	ASSERT_EQ(xfer_delete(st, "b/ckpt/00000001/claim.json"), 0);
	ASSERT_EQ(xfer_delete(st, "b/ckpt/00000001/data.tar.zst"), 0);
	snprintf(tmp, sizeof(tmp), "%s/b/ckpt/00000001", root);
	ASSERT_EQ(access(tmp, F_OK), -1);
	snprintf(tmp, sizeof(tmp), "%s/b/ckpt", root);
	ASSERT_EQ(access(tmp, F_OK), 0);
	xfer_close(st);
	cleanup();
}

static void upload_finish_abort(void)
{
	struct xfer_store *st = open_store();
	struct xfer_upload *up;
	char dir[300], *buf;
	size_t len;
	static char big[3 << 20];

	memset(big, 'z', sizeof(big));
	ASSERT_EQ(xfer_upload_begin(st, "j/ckpt/1/data.tar.zst", &up), 0);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(xfer_upload_write(up, big, sizeof(big)), 0);
	ASSERT_EQ(xfer_head(st, "j/ckpt/1/data.tar.zst", NULL), XFER_NOTFOUND);	/* not yet */
	ASSERT_EQ(xfer_upload_finish(up), 0);
	ASSERT_EQ(xfer_get(st, "j/ckpt/1/data.tar.zst", &buf, &len, 1 << 30), 0);
	ASSERT_EQ(len, 8 * sizeof(big));
	free(buf);
	ASSERT_EQ(xfer_upload_begin(st, "j/ckpt/2/data.tar.zst", &up), 0);
	ASSERT_EQ(xfer_upload_write(up, "abc", 3), 0);
	xfer_upload_abort(up);
	ASSERT_EQ(xfer_head(st, "j/ckpt/2/data.tar.zst", NULL), XFER_NOTFOUND);
	snprintf(dir, sizeof(dir), "%s/j/ckpt/2", root);
	ASSERT_EQ(count_prefix(dir, ".tmp-"), 0);
	snprintf(dir, sizeof(dir), "%s/j/ckpt/1", root);
	ASSERT_EQ(count_prefix(dir, ".tmp-"), 0);
	xfer_close(st);
	cleanup();
}

static void create_only(void)
{
	struct xfer_store *st = open_store();
	char *buf;
	size_t len;

	ASSERT_EQ(xfer_put(st, "j/m.json", "first", 5, XFER_CREATE_ONLY), 0);
	ASSERT_EQ(xfer_put(st, "j/m.json", "second", 6, XFER_CREATE_ONLY), XFER_EXISTS);
	ASSERT_EQ(xfer_get(st, "j/m.json", &buf, &len, 100), 0);
	ASSERT_STR_EQ(buf, "first");
	free(buf);
	xfer_close(st);
	cleanup();
}

/* N processes create the same key at the same moment: one wins. */
static void create_only_race_processes(void)
{
	struct xfer_store *st = open_store();
	enum { N = 16 };
	int go[2], wins = 0;
	pid_t pids[N];
	char *buf, dir[300], want[32];
	size_t len;

	ASSERT_EQ(pipe(go), 0);
	for (int i = 0; i < N; i++) {
		if ((pids[i] = fork()) == 0) {
			char c, body[32];
			close(go[1]);
			if (read(go[0], &c, 1) < 0)
				_exit(3);
			snprintf(body, sizeof(body), "winner-%02d", i);
			int rc = xfer_put(st, "j/ckpt/00000001/manifest.json", body, strlen(body), XFER_CREATE_ONLY);
			_exit(rc == 0 ? 0 : rc == XFER_EXISTS ? 1 : 2);
		}
	}
	close(go[0]);
	close(go[1]);	/* EOF releases all of them at once */
	int winner = -1;
	for (int i = 0; i < N; i++) {
		int stt;
		waitpid(pids[i], &stt, 0);
		ASSERT_TRUE(WIFEXITED(stt) && WEXITSTATUS(stt) <= 1);
		if (WEXITSTATUS(stt) == 0) {
			wins++;
			winner = i;
		}
	}
	ASSERT_EQ(wins, 1);
	ASSERT_EQ(xfer_get(st, "j/ckpt/00000001/manifest.json", &buf, &len, 100), 0);

	snprintf(want, sizeof(want), "winner-%02d", winner);
	ASSERT_STR_EQ(buf, want);
	free(buf);
	snprintf(dir, sizeof(dir), "%s/j/ckpt/00000001", root);
	ASSERT_EQ(count_prefix(dir, ".tmp-"), 0);
	xfer_close(st);
	cleanup();
}

struct race_arg {
	struct xfer_store *st;
	pthread_barrier_t *bar;
	int rc;
};

static void *race_thread(void *p)
{
	struct race_arg *a = p;
	pthread_barrier_wait(a->bar);
	a->rc = xfer_put(a->st, "j/claim.json", "x", 1, XFER_CREATE_ONLY);
	return NULL;
}

static void create_only_race_threads(void)
{
	struct xfer_store *st = open_store();
	enum { N = 8 };
	pthread_t t[N];
	struct race_arg a[N];
	pthread_barrier_t bar;
	int wins = 0;

	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		a[i] = (struct race_arg){ st, &bar, -100 };
		ASSERT_EQ(pthread_create(&t[i], NULL, race_thread, &a[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		ASSERT_TRUE(a[i].rc == 0 || a[i].rc == XFER_EXISTS);
		wins += a[i].rc == 0;
	}
	ASSERT_EQ(wins, 1);
	xfer_close(st);
	cleanup();
}

static void bare_path_and_bad_urls(void)
{
	struct xfer_store *st = NULL;

	ASSERT_EQ(xfer_open("file://relative/x", NULL, &st), EX_USAGE);
	ASSERT_EQ(xfer_open("ftp://x", NULL, &st), EX_USAGE);
	ASSERT_EQ(xfer_open("rel/store", NULL, &st), 0);
	ASSERT_TRUE(strncmp(xfer_display(st), "file:///", 8) == 0);
	ASSERT_TRUE(strstr(xfer_display(st), "/rel/store") != NULL);
	xfer_close(st);
}

CHECK_MAIN("file_store", CHECK_CASE(put_get_head_range), CHECK_CASE(list_sorted_recursive),
	   CHECK_CASE(upload_finish_abort), CHECK_CASE(create_only), CHECK_CASE(create_only_race_processes),
	   CHECK_CASE(create_only_race_threads), CHECK_CASE(bare_path_and_bad_urls))
