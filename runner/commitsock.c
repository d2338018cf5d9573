/*
 * commitsock.c - `spotrun commit DIR` and the supervisor's end of
 * SPOTRUN_SOCKET.  One JSON line each way over a unix stream socket:
 *   -> {"op":"commit","dir":"/abs/ckpt/step-000500","step":500}
 *   <- {"ok":true} or {"ok":false,"error":"..."}
 * The supervisor validates the folder and writes its .spotrun-complete
 * marker; without a supervisor (no SPOTRUN_SOCKET) the command writes the
 * marker itself, so the protocol works under any runner.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SV_SOCK_TIMEOUT_MS 10000

static int sv_sock_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -1;
	strcpy(sa->sun_path, path);
	return 0;
}

int sv_sock_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	if (sv_sock_addr(path, &sa))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int sv_sock_parse(const char *line, struct sv_commit_req *req, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_loads(line, 0, &jerr), *dir, *step;
	int rc = -1;

	if (!o || !json_is_object(o)) {
		snprintf(err, errlen, "malformed request");
		goto out;
	}
	dir = json_object_get(o, "dir");
	step = json_object_get(o, "step");
	if (!json_is_string(dir) || json_string_length(dir) >= sizeof(req->dir)) {
		snprintf(err, errlen, "request without a folder");
		goto out;
	}
	strcpy(req->dir, json_string_value(dir));
	req->step = json_is_integer(step) ? json_integer_value(step) : -1;
	rc = 1;
out:
	json_decref(o);
	return rc;
}

int sv_sock_read(int fd, char *buf, size_t cap, size_t *len, struct sv_commit_req *req, char *err,
		 size_t errlen)
{
	for (;;) {
		if (*len + 1 >= cap) {
			snprintf(err, errlen, "request too long");
			return -1;
		}
		ssize_t r = read(fd, buf + *len, cap - 1 - *len);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		*len += (size_t)r;
		buf[*len] = 0;
		char *nl = strchr(buf, '\n');
		if (nl) {
			*nl = 0;
			return sv_sock_parse(buf, req, err, errlen);
		}
		if (r == 0) /* EOF without newline: take what came */
			return *len ? sv_sock_parse(buf, req, err, errlen) : -1;
	}
}

void sv_sock_reply(int fd, int ok, const char *msg)
{
	json_t *o = ok ? json_pack("{s:b}", "ok", 1) : json_pack("{s:b, s:s}", "ok", 0, "error", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s) {
		size_t n = strlen(s);
		s[n] = '\n'; /* json_dumps left room for the NUL: replace it, send n+1 */
		ssize_t w = send(fd, s, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
	}
	free(s);
	json_decref(o);
}

/* ---- client ----------------------------------------------------------- */

static int commit_roundtrip(const char *sock, const char *req, char *reply, size_t cap)
{
	struct sockaddr_un sa;
	struct pollfd p;
	size_t got = 0;
	int fd, rc = -1;

	if (sv_sock_addr(sock, &sa))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		goto out;
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (got + 1 < cap) {
		int r = poll(&p, 1, SV_SOCK_TIMEOUT_MS);
		if (r <= 0) {
			errno = r == 0 ? ETIMEDOUT : errno;
			goto out;
		}
		ssize_t n = read(fd, reply + got, cap - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		reply[got] = 0;
		if (strchr(reply, '\n'))
			break;
	}
	rc = got ? 0 : -1;
	if (!got)
		errno = ECONNRESET;
out:
	close(fd);
	return rc;
}

int cmd_commit(struct opts *o)
{
	const char *dir = o->nargs > 0 ? o->args[0] : ".";
	const char *sock = getenv("SPOTRUN_SOCKET");
	long long step = opt_is_set(o, OPT_STEP) ? opt_int(o, OPT_STEP) : -1;
	char abs[PATH_MAX], reply[1024] = "", *req = NULL;
	struct stat st;
	json_t *r = NULL, *msg;
	int rc = 0;

	if (o->nargs > 1)
		return log_fail(EX_USAGE, "commit takes one folder (see 'spotrun commit --help')");
	if (!realpath(dir, abs) || stat(abs, &st))
		return log_fail(EX_NOINPUT, "cannot commit '%s': %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return log_fail(EX_USAGE, "cannot commit '%s': not a folder", dir);
	if (step < 0)
		step = run_step_from_name(strrchr(abs, '/') + 1);
	if (!sock || !*sock) {
		log_info("no supervisor (SPOTRUN_SOCKET unset): marking '%s' finished", abs);
		return run_mark_complete(abs, step);
	}
	r = json_pack("{s:s, s:s, s:I}", "op", "commit", "dir", abs, "step", (json_int_t)step);
	req = r ? json_dumps(r, JSON_COMPACT) : NULL;
	json_decref(r);
	if (!req || (req = realloc(req, strlen(req) + 2)) == NULL)
		return log_fail(EX_OSERR, "out of memory");
	strcat(req, "\n");
	if (commit_roundtrip(sock, req, reply, sizeof(reply))) {
		rc = log_fail(EX_UNAVAILABLE, "cannot reach the supervisor at '%s': %s; marked '%s' "
					      "finished locally only", sock, strerror(errno), abs);
		run_mark_complete(abs, step);
		goto out;
	}
	r = json_loads(reply, JSON_DISABLE_EOF_CHECK, NULL);
	if (!r || !json_is_true(json_object_get(r, "ok"))) {
		msg = r ? json_object_get(r, "error") : NULL;
		rc = log_fail(EX_DATAERR, "commit of '%s' refused: %s", abs,
			      json_is_string(msg) ? json_string_value(msg) : "malformed reply");
	}
	json_decref(r);
out:
	free(req);
	return rc;
}
