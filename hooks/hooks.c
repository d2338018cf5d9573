/*
 * hooks.c - running user hooks without ever blocking the supervise loop
 * (see hooks.h for the contract).  A fired event becomes one temp file
 * holding its JSON (every hook of that event reads it as stdin and through
 * SPOTRUN_EVENT_FILE) and one queue item per hook.  One hook runs at a time,
 * in its own process group, with one pipe for stdout+stderr that the loop
 * polls; its status arrives through hook_reaped() because the loop owns
 * waitpid(-1).  Known limit: a slow hook delays the ones queued after it,
 * at most by its timeout (ordering is worth more: notice before commit
 * before exit).
 */
#include "hooks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

extern char **environ;

const char *const hook_events[] = { "start", "notice", "checkpoint-committed", "push-failed",
				    "resume", "migration", "hardware-change", "exit", NULL };

struct hook_ev {		/* one fired event, shared by its hooks */
	char event[32];
	char file[PATH_MAX];
	char **env;		/* extra NAME=VALUE, owned */
	int refs;
};

struct hook_item {
	struct hook_ev *ev;
	char *exe;
};

struct hook_run {
	pid_t pid;		/* 0 when nothing runs */
	int fd;			/* output pipe, -1 once closed */
	double started, deadline;
	int term_sent, timed_out;
	char name[128];
	size_t len;
	char line[1024];
};

struct hook_set {
	char **specs;		/* validated EVENT=PATH, copies */
	size_t nspecs;
	char *dir, *tmpdir;
	double timeout;
	sigset_t mask;
	unsigned seq;
	struct hook_item q[HOOK_QUEUE_MAX];
	size_t qhead, qlen;
	struct hook_run run;
	struct hook_ev *run_ev;
	char record[PATH_MAX + 32];	/* the running hook's SPOTRUN_RECORD_FILE */
	void (*recorded)(void *, const char *, const char *, int, const char *);
	void *arg;
	int failures;
};

static double hook_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- pure parts ------------------------------------------------------ */

int hook_event_ok(const char *name)
{
	for (int i = 0; name && hook_events[i]; i++)
		if (!strcmp(name, hook_events[i]))
			return 1;
	return 0;
}

int hook_spec_parse(const char *spec, char *event, size_t eventlen, const char **path, char *err,
		    size_t errlen)
{
	const char *eq = spec ? strchr(spec, '=') : NULL;
	size_t n = eq ? (size_t)(eq - spec) : 0;

	if (!eq || n == 0 || !eq[1]) {
		snprintf(err, errlen, "invalid hook '%s': expected EVENT=PATH", spec ? spec : "");
		return -1;
	}
	if (n >= eventlen) {
		snprintf(err, errlen, "unknown hook event '%.*s'", (int)(n > 64 ? 64 : n), spec);
		return -1;
	}
	memcpy(event, spec, n);
	event[n] = 0;
	if (!hook_event_ok(event)) {
		snprintf(err, errlen, "unknown hook event '%s' (one of start, notice, "
			 "checkpoint-committed, push-failed, resume, migration, hardware-change, exit)", event);
		return -1;
	}
	*path = eq + 1;
	return 0;
}

/* ---- the set --------------------------------------------------------- */

int hook_set_new(const struct hook_config *cfg, struct hook_set **out)
{
	struct hook_set *h = calloc(1, sizeof(*h));
	size_t n = 0;
	char ev[32], err[256];
	const char *path;

	*out = NULL;
	if (!h)
		return log_fail(EX_OSERR, "out of memory");
	for (char **s = cfg->specs; s && *s; s++)
		n++;
	h->specs = calloc(n + 1, sizeof(*h->specs));
	h->run.fd = -1;
	h->timeout = cfg->timeout > 0 ? cfg->timeout : 30;
	h->tmpdir = strdup(cfg->tmpdir ? cfg->tmpdir : "/tmp");
	h->dir = cfg->dir && *cfg->dir ? strdup(cfg->dir) : NULL;
	h->recorded = cfg->recorded;
	h->arg = cfg->arg;
	if (cfg->mask)
		h->mask = *cfg->mask;
	else
		sigemptyset(&h->mask);
	for (size_t i = 0; h->specs && i < n; i++) {
		if (hook_spec_parse(cfg->specs[i], ev, sizeof(ev), &path, err, sizeof(err))) {
			hook_set_free(h);
			return log_fail(EX_USAGE, "%s", err);
		}
		h->specs[h->nspecs++] = strdup(cfg->specs[i]);
	}
	if (h->dir) {
		struct stat st;
		if (stat(h->dir, &st) || !S_ISDIR(st.st_mode))
			log_warn("hooks folder '%s': %s", h->dir, errno ? strerror(errno) : "not a folder");
	}
	*out = h;
	return 0;
}

static void hook_ev_unref(struct hook_ev *ev)
{
	if (!ev || --ev->refs > 0)
		return;
	unlink(ev->file);
	for (char **e = ev->env; e && *e; e++)
		free(*e);
	free(ev->env);
	free(ev);
}

static void hook_close_run(struct hook_set *h)
{
	if (h->run.fd >= 0)
		close(h->run.fd);
	h->run.fd = -1;
	h->run.pid = 0;
	hook_ev_unref(h->run_ev);
	h->run_ev = NULL;
}

void hook_set_free(struct hook_set *h)
{
	int status;

	if (!h)
		return;
	if (h->run.pid > 0) {
		kill(-h->run.pid, SIGKILL);
		waitpid(h->run.pid, &status, 0);
	}
	hook_close_run(h);
	for (; h->qlen; h->qlen--, h->qhead = (h->qhead + 1) % HOOK_QUEUE_MAX) {
		free(h->q[h->qhead].exe);
		hook_ev_unref(h->q[h->qhead].ev);
	}
	for (size_t i = 0; i < h->nspecs; i++)
		free(h->specs[i]);
	free(h->specs);
	free(h->dir);
	free(h->tmpdir);
	free(h);
}

int hook_failures(const struct hook_set *h) { return h ? h->failures : 0; }
int hook_busy(const struct hook_set *h) { return h && (h->run.pid > 0 || h->qlen > 0); }

int hook_pgids(const struct hook_set *h, pid_t *out, int max)
{
	if (!h || h->run.pid <= 0 || max < 1)
		return 0;
	out[0] = h->run.pid;
	return 1;
}

double hook_deadline(const struct hook_set *h)
{
	return h && h->run.pid > 0 ? h->run.deadline : HUGE_VAL;
}

int hook_pollfds(const struct hook_set *h, struct pollfd *pfd)
{
	pfd[0] = (struct pollfd){ .fd = h && h->run.pid > 0 ? h->run.fd : -1, .events = POLLIN };
	return HOOK_MAX_FDS;
}

/* ---- finding the executables of an event ----------------------------- */

static int hook_is_exe(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int hook_enqueue(struct hook_set *h, struct hook_ev *ev, const char *exe)
{
	if (h->qlen >= HOOK_QUEUE_MAX) {
		log_warn("hook '%s' for %s dropped: %d hooks already waiting", exe, ev->event,
			 HOOK_QUEUE_MAX);
		return 0;
	}
	struct hook_item *it = &h->q[(h->qhead + h->qlen) % HOOK_QUEUE_MAX];
	if (!(it->exe = strdup(exe)))
		return 0;
	it->ev = ev;
	ev->refs++;
	h->qlen++;
	return 1;
}

static int hook_dot_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && d->d_name[n - 1] != '~';
}

/* DIR/EVENT, then the entries of DIR/EVENT.d in name order. */
static int hook_enqueue_dir(struct hook_set *h, struct hook_ev *ev)
{
	char path[PATH_MAX];
	struct dirent **names = NULL;
	int n, queued = 0;

	snprintf(path, sizeof(path), "%s/%s", h->dir, ev->event);
	if (hook_is_exe(path))
		queued += hook_enqueue(h, ev, path);
	snprintf(path, sizeof(path), "%s/%s.d", h->dir, ev->event);
	n = scandir(path, &names, hook_dot_filter, alphasort);
	for (int i = 0; i < n; i++) {
		char exe[PATH_MAX + 256];
		snprintf(exe, sizeof(exe), "%s/%s", path, names[i]->d_name);
		if (hook_is_exe(exe))
			queued += hook_enqueue(h, ev, exe);
		else
			log_debug("hooks: skipping '%s' (not an executable file)", exe);
		free(names[i]);
	}
	free(names);
	return queued;
}

int hook_count(const struct hook_set *h, const char *event)
{
	char ev[32], err[8], path[PATH_MAX];
	const char *p;
	int n = 0;

	if (!h)
		return 0;
	for (size_t i = 0; i < h->nspecs; i++)
		if (!hook_spec_parse(h->specs[i], ev, sizeof(ev), &p, err, sizeof(err)) && !strcmp(ev, event))
			n++;
	if (h->dir) {
		snprintf(path, sizeof(path), "%s/%s", h->dir, event);
		n += access(path, F_OK) == 0;
		snprintf(path, sizeof(path), "%s/%s.d", h->dir, event);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static struct hook_ev *hook_ev_new(struct hook_set *h, const char *event, const char *json,
				   char *const *env)
{
	struct hook_ev *ev = calloc(1, sizeof(*ev));
	size_t n = 0, len = strlen(json);
	int fd;

	if (!ev)
		return NULL;
	snprintf(ev->event, sizeof(ev->event), "%s", event);
	snprintf(ev->file, sizeof(ev->file), "%s/hook-%u-%s.json", h->tmpdir, ++h->seq, event);
	fd = open(ev->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, json, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		log_warn("hooks: cannot write '%s': %s", ev->file, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(ev->file);
		free(ev);
		return NULL;
	}
	close(fd);
	for (char *const *e = env; e && *e; e++)
		n++;
	ev->env = calloc(n + 1, sizeof(*ev->env));
	for (size_t i = 0; ev->env && i < n; i++)
		ev->env[i] = strdup(env[i]);
	ev->refs = 1; /* ours until the hooks are queued */
	return ev;
}

static void hook_start_next(struct hook_set *h);

int hook_fire(struct hook_set *h, const char *event, const char *json, char *const *env)
{
	struct hook_ev *ev;
	char e[32], err[8];
	const char *path;
	int queued = 0;

	if (!h || !hook_count(h, event))
		return 0;
	if (!(ev = hook_ev_new(h, event, json ? json : "{}", env)))
		return 0;
	for (size_t i = 0; i < h->nspecs; i++)
		if (!hook_spec_parse(h->specs[i], e, sizeof(e), &path, err, sizeof(err)) && !strcmp(e, event))
			queued += hook_enqueue(h, ev, path);
	if (h->dir)
		queued += hook_enqueue_dir(h, ev);
	hook_ev_unref(ev);
	hook_start_next(h);
	return queued;
}

/* ---- starting one hook ------------------------------------------------ */

static int hook_env_skip(const char *kv, char **extra)
{
	static const char *const ours[] = { "SPOTRUN_EVENT=", "SPOTRUN_EVENT_FILE=", "SPOTRUN_HOOK=",
					    "SPOTRUN_RECORD_FILE=", NULL };
	for (int i = 0; ours[i]; i++)
		if (!strncmp(kv, ours[i], strlen(ours[i])))
			return 1;
	for (char **e = extra; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t n = eq ? (size_t)(eq - *e) + 1 : strlen(*e);
		if (!strncmp(kv, *e, n))
			return 1;
	}
	return 0;
}

/* environ minus what we set, plus the event's variables; free with
 * hook_env_free (strings from index *first are owned). */
static char **hook_env(const struct hook_ev *ev, const char *name, const char *record, size_t *first)
{
	size_t n = 0, k = 0;
	char **v;

	for (char **e = environ; *e; e++)
		n++;
	for (char **e = ev->env; e && *e; e++)
		n++;
	if (!(v = calloc(n + 5, sizeof(*v))))
		return NULL;
	for (char **e = environ; *e; e++)
		if (!hook_env_skip(*e, ev->env))
			v[k++] = *e;
	for (char **e = ev->env; e && *e; e++)
		v[k++] = *e;
	*first = k;
	if (asprintf(&v[k++], "SPOTRUN_EVENT=%s", ev->event) < 0 ||
	    asprintf(&v[k++], "SPOTRUN_EVENT_FILE=%s", ev->file) < 0 ||
	    asprintf(&v[k++], "SPOTRUN_HOOK=%s", name) < 0 ||
	    asprintf(&v[k++], "SPOTRUN_RECORD_FILE=%s", record) < 0)
		v[k - 1] = NULL;
	return v;
}

static void hook_env_free(char **v, size_t first)
{
	for (size_t i = first; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* After fork(), in the hook: only async-signal-safe calls. */
static void hook_child(const char *exe, char **envp, int in, int out, const sigset_t *mask)
{
	static const char msg[] = "cannot execute: ";
	char *argv[] = { (char *)exe, NULL };
	const char *es;
	int err;

	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	execve(exe, argv, envp);
	err = errno;
	es = strerrordesc_np(err);
	if (write(2, msg, sizeof(msg) - 1) < 0 || write(2, es, strlen(es)) < 0 || write(2, "\n", 1) < 0)
		_exit(127);
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

static int hook_spawn(struct hook_set *h, struct hook_item *it)
{
	const char *base = strrchr(it->exe, '/') ? strrchr(it->exe, '/') + 1 : it->exe;
	int pfd[2] = { -1, -1 }, in = -1;
	size_t first = 0;
	char **envp = NULL;
	pid_t pid = -1;

	snprintf(h->run.name, sizeof(h->run.name), "%s", base);
	snprintf(h->record, sizeof(h->record), "%.*s.record-%u", PATH_MAX - 32, it->ev->file, ++h->seq);
	unlink(h->record);
	if ((in = open(it->ev->file, O_RDONLY | O_CLOEXEC)) < 0 || pipe2(pfd, O_CLOEXEC) ||
	    !(envp = hook_env(it->ev, base, h->record, &first)))
		goto out;
	pid = fork();
	if (pid == 0)
		hook_child(it->exe, envp, in, pfd[1], &h->mask);
	if (pid > 0) {
		setpgid(pid, pid);
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		h->run.pid = pid;
		h->run.fd = pfd[0];
		pfd[0] = -1;
		h->run.started = hook_mono();
		h->run.deadline = h->run.started + h->timeout;
		h->run.term_sent = h->run.timed_out = 0;
		h->run.len = 0;
		log_info("hook '%s' started for %s (pid %d)", h->run.name, it->ev->event, (int)pid);
	}
out:
	if (pid < 0)
		log_warn("hook '%s' for %s not started: %s", it->exe, it->ev->event, strerror(errno));
	hook_env_free(envp, first);
	if (in >= 0)
		close(in);
	for (int i = 0; i < 2; i++)
		if (pfd[i] >= 0)
			close(pfd[i]);
	return pid > 0 ? 0 : -1;
}

static void hook_start_next(struct hook_set *h)
{
	while (h->run.pid <= 0 && h->qlen) {
		struct hook_item it = h->q[h->qhead];
		h->qhead = (h->qhead + 1) % HOOK_QUEUE_MAX;
		h->qlen--;
		if (hook_spawn(h, &it) == 0) {
			h->run_ev = it.ev;
		} else {
			h->failures++;
			hook_ev_unref(it.ev);
		}
		free(it.exe);
	}
}

/* ---- output, timeouts, exits ------------------------------------------- */

static void hook_flush_line(struct hook_set *h)
{
	if (h->run.len == 0)
		return;
	h->run.line[h->run.len] = 0;
	log_note("hook %s: %s", h->run.name, h->run.line);
	h->run.len = 0;
}

/* Reads what the hook wrote; returns 0 at EOF/error (fd closed). */
static int hook_read_output(struct hook_set *h)
{
	char buf[4096];
	ssize_t r;

	while ((r = read(h->run.fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] == '\n' || h->run.len >= sizeof(h->run.line) - 1)
				hook_flush_line(h);
			if (buf[i] != '\n')
				h->run.line[h->run.len++] = buf[i];
		}
	}
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		hook_flush_line(h);
		close(h->run.fd);
		h->run.fd = -1;
		return 0;
	}
	return 1;
}

static void hook_check_timeout(struct hook_set *h, double now)
{
	if (h->run.pid <= 0 || now < h->run.deadline)
		return;
	if (!h->run.term_sent) {
		log_warn("hook '%s' still running after %.1f s: sending SIGTERM", h->run.name, h->timeout);
		kill(-h->run.pid, SIGTERM);
		h->run.term_sent = h->run.timed_out = 1;
		h->run.deadline = now + 2;
	} else {
		log_warn("hook '%s' ignored SIGTERM: sending SIGKILL", h->run.name);
		kill(-h->run.pid, SIGKILL);
		h->run.deadline = now + 3600;
	}
}

void hook_service(struct hook_set *h, const struct pollfd *pfd, int n)
{
	if (!h)
		return;
	if (h->run.pid > 0 && h->run.fd >= 0 && n > 0 && pfd[0].fd == h->run.fd && pfd[0].revents)
		hook_read_output(h);
	hook_check_timeout(h, hook_mono());
	hook_start_next(h);
}

int hook_reaped(struct hook_set *h, pid_t pid, int status)
{
	double secs;

	if (!h || pid <= 0 || pid != h->run.pid)
		return 0;
	if (h->run.fd >= 0)
		hook_read_output(h); /* what is left in the pipe */
	hook_flush_line(h);
	secs = hook_mono() - h->run.started;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !h->run.timed_out) {
		log_info("hook '%s' for %s done in %.2f s", h->run.name, h->run_ev->event, secs);
	} else {
		h->failures++;
		if (h->run.timed_out)
			log_warn("hook '%s' for %s timed out after %.1f s", h->run.name, h->run_ev->event, h->timeout);
		else if (WIFEXITED(status))
			log_warn("hook '%s' for %s failed with status %d", h->run.name, h->run_ev->event,
				 WEXITSTATUS(status));
		else
			log_warn("hook '%s' for %s killed by signal %d", h->run.name, h->run_ev->event,
				 WTERMSIG(status));
	}
	if (h->recorded && access(h->record, F_OK) == 0)
		h->recorded(h->arg, h->run_ev->event, h->run.name,
			    WIFEXITED(status) && WEXITSTATUS(status) == 0 && !h->run.timed_out, h->record);
	unlink(h->record);
	hook_close_run(h);
	hook_start_next(h);
	return 1;
}

void hook_drain(struct hook_set *h)
{
	int status;

	while (hook_busy(h)) {
		struct pollfd pfd[HOOK_MAX_FDS];
		double left = hook_deadline(h) - hook_mono();
		int ms = left <= 0 ? 0 : left > 0.02 ? 20 : (int)(left * 1000) + 1;
		int n = hook_pollfds(h, pfd);
		pid_t pid = h->run.pid;

		if (poll(pfd, (nfds_t)n, ms) < 0 && errno != EINTR)
			break;
		hook_service(h, pfd, n);
		if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid)
			hook_reaped(h, pid, status);
	}
}
