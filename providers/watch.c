/*
 * watch.c - runs the interruption sources in background threads and hands
 * their results to the supervise loop through one pipe: identity once it
 * settles, notices as they arrive.  Each source waits only in poll() on the
 * watch's stop pipe (or in a curl multi poll that includes it), so
 * prov_watch_stop() returns promptly.
 *
 * Detection: with --provider auto every metadata provider probes in its own
 * thread at once, with short timeouts; the first that recognises its
 * service wins and goes on watching, the others end.  When all said "not
 * me", or when settle_timeout (0.3 s) passes, identity settles on "none".
 * Providers known from the environment (RunPod, Vast) settle at once and
 * skip the network.  --provider NAME runs only NAME, with patient
 * timeouts; --provider none probes nothing.  Kubernetes and Slurm are
 * recorded in identity.scheduler (their notices are signals to spotrun).
 *
 * Also here: the simulator (--simulate KIND@SECS) and the trigger file
 * (--notice-file PATH).
 */
#include "prov_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"

#define PROV_MAX_THREADS 16
#define PROV_QUEUE 16

struct prov_sim_style;

struct prov_watch {
	struct prov_config cfg;
	int ready[2];		/* sources -> loop */
	int stop[2];		/* loop -> sources: closed write end = stop */
	int kick;		/* eventfd: prov_watch_committed -> sources */
	int gate;		/* eventfd: readable once probes may start */
	double held_until;	/* cfg.hold: the gate opens by itself then */
	double settle_after;	/* seconds from the gate to settling on "none" */
	atomic_int stopping;
	atomic_int ack_wanted;
	pthread_mutex_t lock;
	struct prov_notice queue[PROV_QUEUE];
	size_t qlen;
	struct prov_identity id;
	int settled;
	char scheduler[32];
	int probes_total, probes_done;
	int claimed;		/* probes that got a first answer and fetch identity */
	double settle_at;	/* CLOCK_REALTIME */
	pthread_t threads[PROV_MAX_THREADS];
	struct prov_src *srcs[PROV_MAX_THREADS];
	int nthreads;
	/* simulator */
	enum prov_kind sim_kind;
	double sim_at;
	const struct prov_sim_style *sim_style;	/* NULL: generic simulated notice */
};

/* Detection order: metadata services first, then the environment. */
static const struct prov_ops *const prov_all[] = {
	&prov_aws_ops, &prov_gcp_ops, &prov_azure_ops, &prov_alibaba_ops,
	&prov_oci_ops, &prov_ibm_ops, &prov_runpod_ops, &prov_vast_ops,
};
#define PROV_NALL (sizeof(prov_all) / sizeof(prov_all[0]))

const char *const prov_known_names[] = { "auto", "none", "aws", "gcp", "azure", "alibaba", "oci",
					 "ibm", "runpod", "vast", NULL };

static const struct prov_ops *prov_find(const char *name)
{
	for (size_t i = 0; i < PROV_NALL; i++)
		if (!strcmp(prov_all[i]->name, name))
			return prov_all[i];
	return NULL;
}

const char *prov_notice_method(const char *provider)
{
	const struct prov_ops *ops = prov_find(provider ? provider : "none");

	return ops ? ops->how
		   : "no provider detected: notices come only from signals to spotrun "
		     "(SIGTERM, SIGUSR1), --notice-file and --simulate";
}

int prov_has_notices(const char *provider)
{
	const struct prov_ops *ops = prov_find(provider ? provider : "none");

	return ops && ops->watch;
}

double prov_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void prov_env_base(char *buf, size_t len, const char *var, const char *def)
{
	const char *v = getenv(var);
	size_t n;

	snprintf(buf, len, "%s", v && v[0] ? v : def);
	n = strlen(buf);
	while (n && buf[n - 1] == '/')
		buf[--n] = 0;
}

/* ---- queue and identity ------------------------------------------------ */

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

/* Settles identity (lock held); returns 1 when this call settled it. */
static int prov_settle_locked(struct prov_watch *w, const struct prov_identity *id)
{
	if (w->settled)
		return 0;
	w->id = *id;
	snprintf(w->id.scheduler, sizeof(w->id.scheduler), "%s", w->scheduler);
	w->settled = 1;
	return 1;
}

static void prov_settle(struct prov_watch *w, const struct prov_identity *id)
{
	pthread_mutex_lock(&w->lock);
	prov_settle_locked(w, id);
	pthread_mutex_unlock(&w->lock);
	prov_wake(w);
}

void prov_src_notice(struct prov_src *s, enum prov_kind kind, double received, double deadline,
		     const char *body, size_t len)
{
	struct prov_notice n;

	prov_notice_make(&n, s->ops->name, kind, 0);
	n.received = received;
	n.deadline = deadline;
	if (body && (n.raw = malloc(len + 1))) {
		memcpy(n.raw, body, len);
		n.raw[len] = 0;
	}
	log_info("%s: %s notice, deadline in %.1f s", s->ops->name, prov_kind_name(kind),
		 deadline - prov_now());
	prov_push(s->w, &n);
}

/* ---- waiting ----------------------------------------------------------- */

int prov_src_stopping(const struct prov_src *s) { return atomic_load(&s->w->stopping); }
int prov_src_stopfd(const struct prov_src *s) { return s->w->stop[0]; }
int prov_src_ack_wanted(const struct prov_src *s) { return atomic_load(&s->w->ack_wanted); }

int prov_src_take_ack(struct prov_src *s)
{
	uint64_t v;
	ssize_t r = read(s->w->kick, &v, sizeof(v));

	(void)r;
	return atomic_exchange(&s->w->ack_wanted, 0);
}

/* Waits until deadline (CLOCK_REALTIME seconds) or stop: 1 = stop requested.
 * With kick, a prov_watch_committed() call ends the wait too (returns 0). */
static int prov_wait_fds(struct prov_watch *w, double deadline, int kick)
{
	for (;;) {
		double left = deadline - prov_now();
		struct pollfd p[2] = { { .fd = w->stop[0], .events = POLLIN },
				       { .fd = kick ? w->kick : -1, .events = POLLIN } };
		int ms, r;

		if (kick && atomic_load(&w->ack_wanted))
			return 0;
		if (atomic_load(&w->stopping))
			return 1;
		if (left <= 0)
			return 0;
		ms = left > 3600 ? 3600000 : (int)(left * 1000) + 1;
		r = poll(p, 2, ms);
		if (r > 0 && p[1].revents)
			continue; /* ack_wanted is checked first */
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;
	}
}

static int prov_wait_until(struct prov_watch *w, double deadline)
{
	return prov_wait_fds(w, deadline, 0);
}

/* Held probes wait here for prov_watch_release() or held_until: 1 = stop. */
static int prov_wait_gate(struct prov_watch *w)
{
	for (;;) {
		double left = w->held_until - prov_now();
		struct pollfd p[2] = { { .fd = w->stop[0], .events = POLLIN },
				       { .fd = w->gate, .events = POLLIN } };
		int r;

		if (atomic_load(&w->stopping))
			return 1;
		if (w->gate < 0 || left <= 0)
			return 0;
		r = poll(p, 2, (int)(left * 1000) + 1);
		if (r > 0 && p[0].revents)
			return 1;
		if (r > 0 || (r < 0 && errno != EINTR))
			return 0;
	}
}

void prov_watch_release(struct prov_watch *w)
{
	uint64_t one = 1;

	if (w && w->gate >= 0 && write(w->gate, &one, sizeof(one)) < 0)
		log_debug("cannot release the provider probes: %s", strerror(errno));
}

int prov_src_wait(struct prov_src *s, double secs)
{
	return prov_wait_fds(s->w, prov_now() + secs, s->ops == &prov_azure_ops);
}

double prov_backoff(struct prov_src *s, int attempt, double base, double cap)
{
	double top = base;

	for (int i = 0; i < attempt && top < cap; i++)
		top *= 2;
	if (top > cap)
		top = cap;
	return top * ((double)rand_r(&s->rng) / RAND_MAX);
}

/* ---- simulator and trigger file ---------------------------------------- */

/* What a simulated notice looks like on each provider: the documented
 * payload shape (PROVIDERS.md) with our deadline, and the usual lead time. */
struct prov_sim_style {
	const char *name;
	double lead;		/* seconds between notice and deadline; <0: --signal-grace */
};

static const struct prov_sim_style prov_sim_styles[] = {
	{ "aws", 120 }, { "gcp", 30 }, { "azure", 30 }, { "alibaba", 120 },
	{ "kubernetes", -1 }, { "slurm", -1 }, { NULL, 0 },
};

static void prov_sim_time(double t, int rfc1123, char *buf, size_t n)
{
	time_t secs = (time_t)t;
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(buf, n, rfc1123 ? "%a, %d %b %Y %H:%M:%S GMT" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The raw payload the provider would have served for this notice. */
static char *prov_sim_payload(const char *prov, enum prov_kind kind, double deadline)
{
	char t[64], *out = NULL;
	int rc = -1;

	if (!strcmp(prov, "aws")) {
		prov_sim_time(deadline, 0, t, sizeof(t));
		rc = kind == PROV_REBALANCE ? asprintf(&out, "{\"noticeTime\": \"%s\"}", t)
			: asprintf(&out, "{\"action\": \"%s\", \"time\": \"%s\"}",
				   kind == PROV_TERMINATE ? "terminate" : "stop", t);
	} else if (!strcmp(prov, "gcp")) {
		out = strdup(kind == PROV_MAINTENANCE ? "TERMINATE_ON_HOST_MAINTENANCE" : "TRUE");
		rc = out ? 0 : -1;
	} else if (!strcmp(prov, "azure")) {
		prov_sim_time(deadline, 1, t, sizeof(t));
		rc = asprintf(&out, "{\"DocumentIncarnation\": 1, \"Events\": [{\"EventId\": "
			      "\"00000000-0000-0000-0000-000000000001\", \"EventStatus\": \"Scheduled\", "
			      "\"EventType\": \"%s\", \"ResourceType\": \"VirtualMachine\", "
			      "\"Resources\": [\"spotrun-simulated\"], \"NotBefore\": \"%s\", "
			      "\"Description\": \"simulated by spotrun\", \"EventSource\": \"Platform\", "
			      "\"DurationInSeconds\": -1}]}",
			      kind == PROV_TERMINATE ? "Terminate" : kind == PROV_MAINTENANCE ? "Freeze"
			      : "Preempt", t);
	} else if (!strcmp(prov, "alibaba")) {
		prov_sim_time(deadline, 0, t, sizeof(t));
		out = strdup(t);
		rc = out ? 0 : -1;
	} else {
		out = strdup("{\"signal\": \"SIGTERM\"}");
		rc = out ? 0 : -1;
	}
	return rc < 0 ? NULL : out;
}

static void *prov_simulate_thread(void *arg)
{
	struct prov_src *s = arg;
	struct prov_watch *w = s->w;
	struct prov_notice n;
	char raw[160], source[32];

	if (prov_wait_until(w, w->sim_at))
		return NULL;
	if (w->sim_style) {
		double lead = w->sim_style->lead < 0 ? w->cfg.signal_grace : w->sim_style->lead;
		snprintf(source, sizeof(source), "simulate:%s", w->sim_style->name);
		prov_notice_make(&n, source, w->sim_kind, lead);
		n.raw = prov_sim_payload(w->sim_style->name, w->sim_kind, n.deadline);
	} else {
		prov_notice_make(&n, "simulate", w->sim_kind, w->cfg.signal_grace);
		snprintf(raw, sizeof(raw), "{\"simulated\": \"%.100s\"}", w->cfg.simulate);
		n.raw = strdup(raw);
	}
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
	struct prov_src *s = arg;
	struct prov_watch *w = s->w;
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

/* Parses "[PROVIDER:]KIND@SECS" (SECS may end in s, ms or m) into the
 * provider style (NULL: generic), kind and delay; -1 on error. */
static int prov_parse_simulate(const char *spec, const struct prov_sim_style **style,
			       enum prov_kind *kind, double *delay)
{
	char kname[32];
	const char *at = strchr(spec, '@'), *colon = strchr(spec, ':');
	char *end;

	*style = NULL;
	if (colon && at && colon < at) {
		for (const struct prov_sim_style *p = prov_sim_styles; p->name; p++)
			if (strlen(p->name) == (size_t)(colon - spec) && !strncmp(spec, p->name, strlen(p->name)))
				*style = p;
		if (!*style)
			return -1;
		spec = colon + 1;
	}
	if (!at || (size_t)(at - spec) >= sizeof(kname) || at == spec)
		return -1;
	memcpy(kname, spec, (size_t)(at - spec));
	kname[at - spec] = 0;
	if (prov_kind_parse(kname, kind))
		return -1;
	*delay = strtod(at + 1, &end);
	if (end == at + 1 || *delay < 0 || !isfinite(*delay))
		return -1;
	if (!strcmp(end, "ms"))
		*delay /= 1000;
	else if (!strcmp(end, "m"))
		*delay *= 60;
	else if (*end && strcmp(end, "s"))
		return -1;
	return 0;
}

int prov_config_check(const struct prov_config *cfg)
{
	const char *act = getenv("SPOTRUN_AZURE_ACT_ON");
	const struct prov_sim_style *style;
	enum prov_kind k;
	unsigned mask;
	double d;
	int known = 0;

	for (size_t i = 0; prov_known_names[i]; i++)
		known |= !strcmp(cfg->force, prov_known_names[i]);
	if (!known)
		return log_fail(EX_USAGE, "unknown provider '%s' (known: auto, none, aws, gcp, azure, "
					  "alibaba, oci, ibm, runpod, vast)", cfg->force);
	if (cfg->simulate && prov_parse_simulate(cfg->simulate, &style, &k, &d))
		return log_fail(EX_USAGE, "invalid --simulate '%s': expected [PROVIDER:]KIND@SECONDS, "
					  "KIND one of preempt, terminate, rebalance, maintenance, "
					  "PROVIDER one of aws, gcp, azure, alibaba, kubernetes, slurm",
				cfg->simulate);
	if (act && act[0] && prov_azure_parse_act_on(act, &mask))
		return log_fail(EX_CONFIG, "invalid SPOTRUN_AZURE_ACT_ON '%s': expected a list of "
					   "Preempt, Terminate, Freeze, Reboot, Redeploy", act);
	return 0;
}

/* ---- threads ----------------------------------------------------------- */

/* Starts fn in a new thread with a copy of *tmpl (or a fresh context). */
static int prov_spawn_src(struct prov_watch *w, const struct prov_src *tmpl, void *(*fn)(void *))
{
	struct prov_src *s = malloc(sizeof(*s));
	int rc = -1;

	if (!s)
		return -1;
	if (tmpl)
		*s = *tmpl;
	else
		memset(s, 0, sizeof(*s));
	s->w = w;
	pthread_mutex_lock(&w->lock);
	if (!atomic_load(&w->stopping) && w->nthreads < PROV_MAX_THREADS &&
	    !pthread_create(&w->threads[w->nthreads], NULL, fn, s)) {
		w->srcs[w->nthreads++] = s;
		rc = 0;
	}
	pthread_mutex_unlock(&w->lock);
	if (rc)
		free(s);
	return rc;
}

static void *prov_extra_thread(void *arg)
{
	struct prov_src *s = arg;

	s->extra(s);
	return NULL;
}

int prov_src_spawn(struct prov_src *s, void (*fn)(struct prov_src *))
{
	struct prov_src t = *s;

	t.extra = fn;
	t.rng ^= 0x5bd1e995u;
	return prov_spawn_src(s->w, &t, prov_extra_thread);
}

/* A probe said found (1) or not (0): settles when it wins or is the last. */
static int prov_report(struct prov_src *s, int found, const struct prov_identity *id)
{
	struct prov_watch *w = s->w;
	struct prov_identity me = *id;
	int won = 0;

	snprintf(me.provider, sizeof(me.provider), "%s", s->ops->name);
	pthread_mutex_lock(&w->lock);
	if (found == 1 || (found == 0 && s->forced))
		won = prov_settle_locked(w, &me);
	w->probes_done++;
	if (!w->settled && w->probes_done == w->probes_total) {
		struct prov_identity none = { .provider = "none" };
		prov_settle_locked(w, &none);
	}
	pthread_mutex_unlock(&w->lock);
	prov_wake(w);
	if (found == 0 && s->forced)
		log_warn("provider %s: its metadata service did not answer; watching it anyway",
			 s->ops->name);
	return won;
}

static void *prov_probe_thread(void *arg)
{
	struct prov_src *s = arg;
	struct prov_identity id = { 0 };
	int r;

	if (prov_wait_gate(s->w))
		return NULL;
	r = s->ops->identify(s, &id);
	if (r < 0 || !prov_report(s, r, &id))
		return NULL;
	log_info("provider %s detected%s%s", s->ops->name, id.region[0] ? " in " : "", id.region);
	s->quick = 0; /* watching: patient timeouts */
	if (s->ops->watch && !s->w->cfg.identify_only)
		s->ops->watch(s);
	return NULL;
}

void prov_src_claim(struct prov_src *s)
{
	pthread_mutex_lock(&s->w->lock);
	s->w->claimed++;
	pthread_mutex_unlock(&s->w->lock);
}

/* Settles "none" at settle_at, unless a probe already got an answer from
 * its service: that one gets 2 s more to read its identity. */
static void *prov_settle_thread(void *arg)
{
	struct prov_src *s = arg;
	struct prov_watch *w = s->w;
	struct prov_identity none = { .provider = "none" };
	int claimed;

	if (prov_wait_gate(w))
		return NULL;
	w->settle_at = prov_now() + w->settle_after; /* only this thread reads it */
	if (prov_wait_until(w, w->settle_at))
		return NULL;
	pthread_mutex_lock(&w->lock);
	claimed = w->claimed && !w->settled;
	pthread_mutex_unlock(&w->lock);
	if (claimed && prov_wait_until(w, w->settle_at + 2))
		return NULL;
	prov_settle(w, &none);
	return NULL;
}

static void prov_scheduler(struct prov_watch *w)
{
	const char *k = getenv("KUBERNETES_SERVICE_HOST"), *sl = getenv("SLURM_JOB_ID");

	if (sl && sl[0])
		snprintf(w->scheduler, sizeof(w->scheduler), "slurm");
	else if (k && k[0])
		snprintf(w->scheduler, sizeof(w->scheduler), "kubernetes");
}

/* Environment-known providers (RunPod, Vast): 1 when one settled. */
static int prov_start_env(struct prov_watch *w, const struct prov_ops *only)
{
	for (size_t i = 0; i < PROV_NALL; i++) {
		struct prov_src s = { .w = w, .ops = prov_all[i] };
		struct prov_identity id = { 0 };

		if (prov_all[i]->network || (only && only != prov_all[i]))
			continue;
		if (prov_all[i]->identify(&s, &id) == 1 || only) {
			snprintf(id.provider, sizeof(id.provider), "%s", prov_all[i]->name);
			prov_settle(w, &id);
			return 1;
		}
	}
	return 0;
}

static int prov_start_probes(struct prov_watch *w)
{
	const struct prov_ops *only = strcmp(w->cfg.force, "auto") ? prov_find(w->cfg.force) : NULL;
	struct prov_src tmpl = { .poll = w->cfg.poll_interval > 0 ? w->cfg.poll_interval : 2 };

	if (prov_start_env(w, only))
		return 0;
	w->probes_total = 0;
	for (size_t i = 0; i < PROV_NALL; i++)
		w->probes_total += prov_all[i]->network && (!only || only == prov_all[i]);
	for (size_t i = 0; i < PROV_NALL; i++) {
		if (!prov_all[i]->network || (only && only != prov_all[i]))
			continue;
		tmpl.ops = prov_all[i];
		tmpl.quick = !only;
		tmpl.forced = !!only;
		tmpl.rng = (unsigned)(getpid() ^ time(NULL)) * 2654435761u + (unsigned)i;
		if (prov_spawn_src(w, &tmpl, prov_probe_thread))
			return -1;
	}
	if (!only) {
		w->settle_after = w->cfg.settle_timeout > 0 ? w->cfg.settle_timeout : 0.3;
		if (prov_spawn_src(w, NULL, prov_settle_thread))
			return -1;
	}
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
	w->kick = w->gate = -1;
	pthread_mutex_init(&w->lock, NULL);
	if (pipe2(w->ready, O_CLOEXEC | O_NONBLOCK) || pipe2(w->stop, O_CLOEXEC) ||
	    (w->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (cfg->hold > 0 && (w->gate = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)) {
		rc = log_fail(EX_OSERR, "cannot create pipe: %s", strerror(errno));
		goto fail;
	}
	if ((rc = prov_config_check(cfg)))
		goto fail;
	w->held_until = prov_now() + cfg->hold;
	prov_scheduler(w);
	if (cfg->simulate) {
		prov_parse_simulate(cfg->simulate, &w->sim_style, &w->sim_kind, &delay);
		w->sim_at = prov_now() + delay;
		if (prov_spawn_src(w, NULL, prov_simulate_thread))
			goto fail_thread;
	}
	if (cfg->trigger_file && prov_spawn_src(w, NULL, prov_trigger_thread))
		goto fail_thread;
	if (!strcmp(cfg->force, "none"))
		prov_settle(w, &none);
	else if (prov_start_probes(w))
		goto fail_thread;
	*out = w;
	return 0;
fail_thread:
	rc = log_fail(EX_OSERR, "cannot start a watcher thread");
fail:
	prov_watch_stop(w);
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

void prov_watch_committed(struct prov_watch *w)
{
	uint64_t one = 1;
	ssize_t r;

	if (!w)
		return;
	atomic_store(&w->ack_wanted, 1);
	r = write(w->kick, &one, sizeof(one));
	(void)r;
}

static void prov_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void prov_watch_stop(struct prov_watch *w)
{
	int n;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->stopping, 1);
	n = w->nthreads;
	pthread_mutex_unlock(&w->lock);
	if (w->stop[1] > 0)
		prov_close(&w->stop[1]); /* every source's poll() sees POLLHUP */
	for (int i = 0; i < n; i++) {
		pthread_join(w->threads[i], NULL);
		free(w->srcs[i]);
	}
	for (size_t i = 0; i < w->qlen; i++)
		prov_notice_clear(&w->queue[i]);
	for (int i = 0; i < 2; i++) {
		if (w->stop[i] > 0)
			prov_close(&w->stop[i]);
		if (w->ready[i] > 0)
			prov_close(&w->ready[i]);
	}
	prov_close(&w->kick);
	prov_close(&w->gate);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
