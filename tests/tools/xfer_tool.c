/*
 * xfer_tool.c - a small command-line driver of the store interface
 * (transfer/xfer.h) for shell tests: one store call per run, data through
 * files or stdin/stdout, the result as the exit status.
 *
 *   xfer_tool [-e ENDPOINT] [-w WORKERS] [-p PART_SIZE] [-v] URL COMMAND [ARG...]
 *     put KEY FILE         whole object from FILE ('-': stdin)
 *     create KEY FILE      the same with XFER_CREATE_ONLY
 *     get KEY [MAX]        whole object to stdout
 *     range KEY OFF LEN    LEN bytes at OFF to stdout
 *     pread KEY THREADS    whole object to stdout, read by THREADS threads
 *                          calling xfer_get_range on one store at once
 *     head KEY             prints the size
 *     list [PREFIX]        prints "KEY SIZE" lines
 *     delete KEY
 *     upload KEY           stdin as a streamed (multipart) upload
 *     upload-abort KEY N   streams N bytes of stdin, then aborts
 *
 * Exit status: 0; 2 for XFER_NOTFOUND; 3 for XFER_EXISTS; otherwise the
 * store's EX_* code (69 unreachable, 77 refused, 78 no configuration...).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "xfer.h"

/* store.c names the backends through weak references, which do not pull
 * an object out of a static library: a strong reference makes sure the
 * S3 backend is linked into this tool. */
const struct xfer_backend *const xfer_tool_backends[] = { &xfer_s3_backend };

#define TOOL_CHUNK 100003	/* odd on purpose: writes straddle part boundaries */

static int tool_code(int rc)
{
	if (rc == XFER_NOTFOUND)
		return 2;
	if (rc == XFER_EXISTS)
		return 3;
	return rc;
}

static int tool_read_all(const char *path, char **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 0, r;

	*buf = NULL;
	*len = 0;
	if (!f)
		return log_fail(EX_NOINPUT, "cannot open '%s': %s", path, strerror(errno));
	do {
		if (cap - *len < 65536) {
			cap = cap ? 2 * cap : 1 << 20;
			char *nb = realloc(*buf, cap);
			if (!nb)
				return log_fail(EX_OSERR, "out of memory");
			*buf = nb;
		}
		r = fread(*buf + *len, 1, cap - *len, f);
		*len += r;
	} while (r > 0);
	if (f != stdin)
		fclose(f);
	return 0;
}

static int tool_write_out(const void *buf, size_t len)
{
	if (len && fwrite(buf, 1, len, stdout) != len)
		return log_fail(EX_IOERR, "cannot write stdout");
	return 0;
}

static int tool_put(struct xfer_store *st, const char *key, const char *path, int flags)
{
	char *buf;
	size_t len;
	int rc = tool_read_all(path, &buf, &len);

	if (!rc)
		rc = xfer_put(st, key, buf, len, flags);
	free(buf);
	return rc;
}

static int tool_get(struct xfer_store *st, const char *key, const char *max)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = xfer_get(st, key, &buf, &len, max ? strtoull(max, NULL, 10) : (64u << 20));

	if (!rc)
		rc = tool_write_out(buf, len);
	free(buf);
	return rc;
}

static int tool_range(struct xfer_store *st, const char *key, const char *off, const char *len)
{
	size_t n = strtoull(len, NULL, 10);
	char *buf = malloc(n ? n : 1);
	int rc;

	if (!buf)
		return log_fail(EX_OSERR, "out of memory");
	rc = xfer_get_range(st, key, strtoull(off, NULL, 10), buf, n);
	if (!rc)
		rc = tool_write_out(buf, n);
	free(buf);
	return rc;
}

struct tool_slice {
	pthread_t tid;
	struct xfer_store *st;
	const char *key;
	uint64_t off;
	size_t len;
	char *buf;
	int rc;
};

static void *tool_slice_run(void *arg)
{
	struct tool_slice *s = arg;

	s->rc = xfer_get_range(s->st, s->key, s->off, s->buf, s->len);
	return NULL;
}

/* The store handle is shared by the threads, as checkpoint workers share it. */
static int tool_pread(struct xfer_store *st, const char *key, int n)
{
	struct tool_slice *v;
	uint64_t size;
	char *buf;
	int rc;

	if (n < 1 || (rc = xfer_head(st, key, &size)))
		return n < 1 ? EX_USAGE : rc;
	v = calloc((size_t)n, sizeof(*v));
	buf = malloc(size ? size : 1);
	if (!v || !buf) {
		free(v);
		free(buf);
		return log_fail(EX_OSERR, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		uint64_t a = size * (uint64_t)i / (uint64_t)n, b = size * (uint64_t)(i + 1) / (uint64_t)n;
		v[i] = (struct tool_slice){ .st = st, .key = key, .off = a, .len = (size_t)(b - a), .buf = buf + a };
		pthread_create(&v[i].tid, NULL, tool_slice_run, &v[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(v[i].tid, NULL);
		if (v[i].rc && !rc)
			rc = v[i].rc;
	}
	if (!rc)
		rc = tool_write_out(buf, (size_t)size);
	free(v);
	free(buf);
	return rc;
}

static int tool_list(struct xfer_store *st, const char *prefix)
{
	struct xfer_list l;
	int rc = xfer_list(st, prefix ? prefix : "", &l);

	for (size_t i = 0; !rc && i < l.n; i++)
		printf("%s %llu\n", l.v[i].key, (unsigned long long)l.v[i].size);
	xfer_list_free(&l);
	return rc;
}

/* Streams stdin (at most limit bytes; 0 = all) into an upload; aborts when abort_after. */
static int tool_upload(struct xfer_store *st, const char *key, unsigned long long limit, int abort_after)
{
	struct xfer_upload *up;
	char *buf = malloc(TOOL_CHUNK);
	unsigned long long total = 0;
	size_t r;
	int rc;

	if (!buf)
		return log_fail(EX_OSERR, "out of memory");
	if ((rc = xfer_upload_begin(st, key, &up))) {
		free(buf);
		return rc;
	}
	while (!rc && (!limit || total < limit) && (r = fread(buf, 1, TOOL_CHUNK, stdin)) > 0) {
		if (limit && total + r > limit)
			r = (size_t)(limit - total);
		rc = xfer_upload_write(up, buf, r);
		total += r;
	}
	free(buf);
	if (rc || abort_after) {
		xfer_upload_abort(up);
		return rc;
	}
	return xfer_upload_finish(up);
}

static int tool_run(struct xfer_store *st, int argc, char **argv)
{
	const char *cmd = argv[0], *a1 = argc > 1 ? argv[1] : NULL, *a2 = argc > 2 ? argv[2] : NULL;
	uint64_t size;
	int rc;

	if (!strcmp(cmd, "put") && a2)
		return tool_put(st, a1, a2, 0);
	if (!strcmp(cmd, "create") && a2)
		return tool_put(st, a1, a2, XFER_CREATE_ONLY);
	if (!strcmp(cmd, "get") && a1)
		return tool_get(st, a1, a2);
	if (!strcmp(cmd, "range") && argc > 3)
		return tool_range(st, a1, a2, argv[3]);
	if (!strcmp(cmd, "pread") && a2)
		return tool_pread(st, a1, atoi(a2));
	if (!strcmp(cmd, "head") && a1) {
		if (!(rc = xfer_head(st, a1, &size)))
			printf("%llu\n", (unsigned long long)size);
		return rc;
	}
	if (!strcmp(cmd, "list"))
		return tool_list(st, a1);
	if (!strcmp(cmd, "delete") && a1)
		return xfer_delete(st, a1);
	if (!strcmp(cmd, "upload") && a1)
		return tool_upload(st, a1, 0, 0);
	if (!strcmp(cmd, "upload-abort") && a2)
		return tool_upload(st, a1, strtoull(a2, NULL, 10), 1);
	return log_fail(EX_USAGE, "unknown command or missing arguments: '%s'", cmd);
}

int main(int argc, char **argv)
{
	struct xfer_opts o = { .endpoint = NULL, .workers = 4, .part_size = 5u << 20 };
	struct xfer_store *st = NULL;
	int c, verbose = 0, rc;

	while ((c = getopt(argc, argv, "+e:w:p:v")) != -1) {
		switch (c) {
		case 'e': o.endpoint = optarg; break;
		case 'w': o.workers = atoi(optarg); break;
		case 'p': o.part_size = strtoull(optarg, NULL, 10); break;
		case 'v': verbose = 1; break;
		default: return EX_USAGE;
		}
	}
	log_setup(verbose ? 3 : 1, LOG_FMT_HUMAN);
	if (argc - optind < 2) {
		fprintf(stderr, "usage: xfer_tool [-e ENDPOINT] [-w N] [-p BYTES] [-v] URL COMMAND [ARG...]\n");
		return EX_USAGE;
	}
	if ((rc = xfer_open(argv[optind], &o, &st)))
		return tool_code(rc);
	rc = tool_run(st, argc - optind - 1, argv + optind + 1);
	xfer_close(st);
	if (fflush(stdout))
		rc = rc ? rc : EX_IOERR;
	return tool_code(rc);
}
