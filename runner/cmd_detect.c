/*
 * cmd_detect.c - `spotrun detect` (where am I: provider, region, zone,
 * instance type and id, lifecycle, scheduler, how notices arrive, GPUs)
 * and `spotrun watch` (print interruption notices as they arrive until
 * SIGINT/SIGTERM).  Both run the same provider watch as `spotrun run`
 * (providers/provider.h): detect only until identity settles, watch until
 * interrupted, waiting in one poll() over the watch fd and a signalfd.
 * Results go to stdout, messages to stderr.
 */
#include "runner.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"

#define DETECT_WAIT_S 20.0	/* a forced provider's probes are patient */

static void detect_config(const struct opts *o, struct prov_config *pc)
{
	double poll = opt_seconds(o, OPT_POLL_INTERVAL);

	memset(pc, 0, sizeof(*pc));
	pc->force = opt_str(o, OPT_PROVIDER) ? opt_str(o, OPT_PROVIDER) : "auto";
	pc->poll_interval = poll > 0 ? poll : 2;
	pc->signal_grace = 30;
	pc->settle_timeout = 0.3;
}

static double detect_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits until identity settles (or the deadline): 1 settled. */
static int detect_wait(struct prov_watch *w, struct prov_identity *id)
{
	double end = detect_mono() + DETECT_WAIT_S;
	struct prov_notice n;

	while (!prov_watch_identity(w, id)) {
		struct pollfd p = { .fd = prov_watch_fd(w), .events = POLLIN };
		double left = end - detect_mono();

		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return 0;
		while (prov_watch_take(w, &n))
			prov_notice_clear(&n);
	}
	return 1;
}

static json_t *detect_gpus(void)
{
	char *fp = ckpt_gpu_fingerprint();
	json_t *g = fp ? json_loads(fp, 0, NULL) : NULL;

	free(fp);
	return g ? g : json_null();
}

static void detect_print_human(const struct prov_identity *id, json_t *gpus)
{
	const char *how = prov_notice_method(id->provider);
	json_t *dev;
	size_t i;

#define DETECT_LINE(k, v) printf("%-14s %s\n", k ":", (v)[0] ? (v) : "-")
	DETECT_LINE("provider", id->provider);
	DETECT_LINE("region", id->region);
	DETECT_LINE("zone", id->zone);
	DETECT_LINE("instance type", id->instance_type);
	DETECT_LINE("instance id", id->instance_id);
	DETECT_LINE("lifecycle", id->lifecycle);
	DETECT_LINE("scheduler", id->scheduler);
	DETECT_LINE("notices", how);
#undef DETECT_LINE
	if (id->scheduler[0])
		printf("%-14s %s\n", "", "SIGTERM/SIGUSR1 from the scheduler count as notices");
	if (!json_is_object(gpus)) {
		printf("%-14s %s\n", "gpus:", "none");
		return;
	}
	printf("%-14s %lld (%s)\n", "gpus:", json_integer_value(json_object_get(gpus, "count")),
	       json_string_value(json_object_get(gpus, "driver")) ?: "?");
	json_array_foreach(json_object_get(gpus, "devices"), i, dev)
		printf("%-14s %s\n", "", json_string_value(json_object_get(dev, "name")) ?: "?");
}

static int detect_print_json(const struct prov_identity *id, json_t *gpus)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:O}", "provider",
			      id->provider, "region", id->region, "zone", id->zone, "instance_type",
			      id->instance_type, "instance_id", id->instance_id, "lifecycle",
			      id->lifecycle, "scheduler", id->scheduler, "notices",
			      prov_notice_method(id->provider), "in_guest_notice",
			      prov_has_notices(id->provider), "gpus", gpus);
	char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;

	json_decref(o);
	if (!s)
		return log_fail(EX_SOFTWARE, "cannot build the JSON answer");
	printf("%s\n", s);
	free(s);
	return 0;
}

int cmd_detect(struct opts *o)
{
	struct prov_config pc;
	struct prov_identity id;
	struct prov_watch *w = NULL;
	json_t *gpus;
	int rc;

	if (o->nargs > 0)
		return log_fail(EX_USAGE, "unexpected argument '%s' (usage: spotrun detect [--json])",
				o->args[0]);
	detect_config(o, &pc);
	pc.identify_only = 1;
	if ((rc = prov_config_check(&pc)) || (rc = prov_watch_start(&pc, &w)))
		return rc;
	if (!detect_wait(w, &id)) {
		memset(&id, 0, sizeof(id));
		snprintf(id.provider, sizeof(id.provider), "%s", pc.force);
		log_warn("provider detection did not settle in %.0f s", DETECT_WAIT_S);
	}
	prov_watch_stop(w);
	gpus = detect_gpus();
	if (opt_flag(o, OPT_JSON))
		rc = detect_print_json(&id, gpus);
	else
		detect_print_human(&id, gpus);
	json_decref(gpus);
	fflush(stdout);
	return rc;
}

/* ---- watch ------------------------------------------------------------- */

static void watch_print(const struct prov_notice *n, const struct prov_identity *id, int json)
{
	char when[32];
	time_t t = (time_t)n->deadline;
	struct tm tm;
	char *s;

	if (json) {
		if ((s = prov_notice_json_line(n, id)))
			printf("%s\n", s);
		free(s);
	} else {
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%s notice from %s: deadline %s (in %.1f s)\n", prov_kind_name(n->kind),
		       n->source, when, n->deadline - prov_now());
	}
	fflush(stdout);
}

/* Handles a wake-up of the watch fd: identity once, then notices. */
static void watch_take(struct prov_watch *w, struct prov_identity *id, int *settled, int json)
{
	struct prov_notice n;

	if (!*settled && prov_watch_identity(w, id)) {
		*settled = 1;
		log_note("provider: %s%s%s; notices: %s", id->provider, id->region[0] ? " in " : "",
			 id->region, prov_notice_method(id->provider));
	}
	while (prov_watch_take(w, &n)) {
		watch_print(&n, *settled ? id : NULL, json);
		prov_notice_clear(&n);
	}
}

static int watch_loop(struct prov_watch *w, int sfd, int json)
{
	struct prov_identity id;
	int settled = 0;

	for (;;) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
				       { .fd = prov_watch_fd(w), .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return log_fail(EX_OSERR, "poll: %s", strerror(errno));
		}
		if (p[1].revents)
			watch_take(w, &id, &settled, json);
		if (p[0].revents) { /* SIGINT or SIGTERM: consumed, so unblocking cannot kill */
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
			return 0;
		}
	}
}

int cmd_watch(struct opts *o)
{
	struct prov_config pc;
	struct prov_watch *w = NULL;
	sigset_t set, old;
	int sfd = -1, rc;

	if (o->nargs > 0)
		return log_fail(EX_USAGE, "unexpected argument '%s' (usage: spotrun watch [--json])",
				o->args[0]);
	detect_config(o, &pc);
	pc.simulate = opt_str(o, OPT_SIMULATE);
	pc.trigger_file = opt_str(o, OPT_NOTICE_TRIGGER);
	if ((rc = prov_config_check(&pc)))
		return rc;
	/* blocked before the watcher threads start, so they inherit the mask */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		rc = log_fail(EX_OSERR, "signalfd: %s", strerror(errno));
		goto out;
	}
	if ((rc = prov_watch_start(&pc, &w)))
		goto out;
	rc = watch_loop(w, sfd, opt_flag(o, OPT_JSON));
out:
	prov_watch_stop(w);
	if (sfd >= 0)
		close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
