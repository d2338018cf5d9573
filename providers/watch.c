/*
 * watch.c - runs the interruption sources in background threads and hands
 * their results to the supervise loop through one pipe: identity once it
 * settles, notices as they arrive.  Each source waits only in poll() on the
 * watch's stop pipe with a timeout, so prov_watch_stop() returns promptly.
 *
 * Sources built in here: the simulator (--simulate KIND@SECS) and the
 * trigger file (--notice-file PATH).  Cloud metadata sources register in
 * prov_sources[] (providers issue); with none registered, auto-detection
 * settles on "none" at once.
 */
#include "provider.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define PROV_MAX_THREADS 8
#define PROV_QUEUE 16

struct prov_watch {
	struct prov_config cfg;
	int ready[2];		/* sources -> loop */
	int stop[2];		/* loop -> sources: closed write end = stop */
	pthread_mutex_t lock;
	struct prov_notice queue[PROV_QUEUE];
	size_t qlen;
	struct prov_identity id;
	int settled;
	pthread_t threads[PROV_MAX_THREADS];
	int nthreads;
	/* simulator */
	enum prov_kind sim_kind;
	double sim_at;
};

static void prov_wake(struct prov_watch *w)
{
	char c = 1;
	ssize_t r = write(w->ready[1], &c, 1); /* non-blocking; a full pipe is awake already */
	(void)r;
}

static void prov_push(struct prov_watch *w, struct prov_notice *n)
{
	pthread_mutex_lock(&w->lock);
	if (w->qlen < PROV_QUEUE) {
		w->queue[w->qlen++] = *n;
		n->raw = NULL;
	} else {
		prov_notice_clear(n);
	}
	pthread_mutex_unlock(&w->lock);
	prov_wake(w);
}

static void prov_settle(struct prov_watch *w, const struct prov_identity *id)
{
	pthread_mutex_lock(&w->lock);
	if (!w->settled) {
		w->id = *id;
		w->settled = 1;
	}
	pthread_mutex_unlock(&w->lock);
	prov_wake(w);
}

/* Waits until deadline (CLOCK_REALTIME seconds) or stop: 1 = stop requested. */
static int prov_wait_until(struct prov_watch *w, double deadline)
{
	for (;;) {
		double left = deadline - prov_now();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = w->stop[0], .events = POLLIN };
		int ms = left > 3600 ? 3600000 : (int)(left * 1000) + 1;
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;
	}
}

static void *prov_simulate_thread(void *arg)
{
	struct prov_watch *w = arg;
	struct prov_notice n;
	char raw[160];

	if (prov_wait_until(w, w->sim_at))
		return NULL;
	prov_notice_make(&n, "simulate", w->sim_kind, w->cfg.signal_grace);
	snprintf(raw, sizeof(raw), "{\"simulated\": \"%s\"}", w->cfg.simulate);
	n.raw = strdup(raw);
	prov_push(w, &n);
	return NULL;
}

static char *prov_read_small(const char *path)
{
	char *buf = calloc(1, 65537);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && buf) {
		ssize_t r = read(fd, buf, 65536);
		if (r < 0)
			buf[0] = 0;
	}
	if (fd >= 0)
		close(fd);
	return buf;
}

static void *prov_trigger_thread(void *arg)
{
	struct prov_watch *w = arg;
	struct prov_notice n;
	struct stat st;

	while (stat(w->cfg.trigger_file, &st) != 0) {
		if (prov_wait_until(w, prov_now() + 0.1))
			return NULL;
	}
	prov_notice_make(&n, "file", PROV_PREEMPT, w->cfg.signal_grace);
	n.raw = prov_read_small(w->cfg.trigger_file);
	if (n.raw && !n.raw[0]) {
		free(n.raw);
		n.raw = NULL;
	}
	prov_push(w, &n);
	return NULL;
}

/* Parses "KIND@SECS" into kind and delay; -1 on error. */
static int prov_parse_simulate(const char *spec, enum prov_kind *kind, double *delay)
{
	char kname[32];
	const char *at = strchr(spec, '@');
	char *end;

	if (!at || (size_t)(at - spec) >= sizeof(kname) || at == spec)
		return -1;
	memcpy(kname, spec, (size_t)(at - spec));
	kname[at - spec] = 0;
	if (prov_kind_parse(kname, kind))
		return -1;
	*delay = strtod(at + 1, &end);
	return end == at + 1 || *end || *delay < 0 ? -1 : 0;
}

static const char *const prov_names[] = { "auto", "none" };

int prov_config_check(const struct prov_config *cfg)
{
	enum prov_kind k;
	double d;
	int known = 0;

	for (size_t i = 0; i < sizeof(prov_names) / sizeof(prov_names[0]); i++)
		known |= !strcmp(cfg->force, prov_names[i]);
	if (!known)
		return log_fail(EX_USAGE, "unknown provider '%s' (known: auto, none)", cfg->force);
	if (cfg->simulate && prov_parse_simulate(cfg->simulate, &k, &d))
		return log_fail(EX_USAGE, "invalid --simulate '%s': expected KIND@SECONDS, KIND one of "
					  "preempt, terminate, rebalance, maintenance", cfg->simulate);
	return 0;
}

static int prov_spawn(struct prov_watch *w, void *(*fn)(void *))
{
	if (w->nthreads >= PROV_MAX_THREADS)
		return -1;
	if (pthread_create(&w->threads[w->nthreads], NULL, fn, w))
		return -1;
	w->nthreads++;
	return 0;
}

int prov_watch_start(const struct prov_config *cfg, struct prov_watch **out)
{
	struct prov_watch *w = calloc(1, sizeof(*w));
	struct prov_identity none = { .provider = "none" };
	double delay = 0;
	int rc;

	*out = NULL;
	if (!w)
		return EX_OSERR;
	w->cfg = *cfg;
	pthread_mutex_init(&w->lock, NULL);
	if (pipe2(w->ready, O_CLOEXEC | O_NONBLOCK) || pipe2(w->stop, O_CLOEXEC)) {
		free(w);
		return log_fail(EX_OSERR, "cannot create pipe: %s", strerror(errno));
	}
	if ((rc = prov_config_check(cfg)))
		goto fail;
	if (cfg->simulate) {
		prov_parse_simulate(cfg->simulate, &w->sim_kind, &delay);
		w->sim_at = prov_now() + delay;
		if (prov_spawn(w, prov_simulate_thread))
			goto fail_thread;
	}
	if (cfg->trigger_file && prov_spawn(w, prov_trigger_thread))
		goto fail_thread;
	/* No cloud probe registered yet: "auto" and "none" settle at once. */
	prov_settle(w, &none);
	*out = w;
	return 0;
fail_thread:
	rc = log_fail(EX_OSERR, "cannot start a watcher thread");
fail:
	*out = w;
	prov_watch_stop(w);
	*out = NULL;
	return rc;
}

int prov_watch_fd(const struct prov_watch *w) { return w->ready[0]; }

int prov_watch_take(struct prov_watch *w, struct prov_notice *n)
{
	int got = 0;
	char buf[64];

	pthread_mutex_lock(&w->lock);
	if (w->qlen) {
		*n = w->queue[0];
		memmove(w->queue, w->queue + 1, (w->qlen - 1) * sizeof(w->queue[0]));
		w->qlen--;
		got = 1;
	} else {
		while (read(w->ready[0], buf, sizeof(buf)) > 0)
			;
	}
	pthread_mutex_unlock(&w->lock);
	return got;
}

int prov_watch_identity(struct prov_watch *w, struct prov_identity *id)
{
	int s;
	pthread_mutex_lock(&w->lock);
	s = w->settled;
	if (s)
		*id = w->id;
	pthread_mutex_unlock(&w->lock);
	return s;
}

void prov_watch_stop(struct prov_watch *w)
{
	if (!w)
		return;
	close(w->stop[1]); /* every source's poll() sees POLLHUP */
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	for (size_t i = 0; i < w->qlen; i++)
		prov_notice_clear(&w->queue[i]);
	close(w->stop[0]);
	close(w->ready[0]);
	close(w->ready[1]);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
