/*
 * provider.h - interruption sources.  A provider answers two questions:
 * where am I (identity), and is this machine or job about to be taken away
 * (notices).  Each source runs in its own watcher thread and may block (a
 * long-poll, a poll period) with a deadline; the supervise loop never does:
 * it waits on prov_watch_fd() and takes what is ready with prov_watch_take().
 *
 * Sources: cloud metadata services (aws, gcp, azure, alibaba, ...), the
 * simulator (--simulate KIND@SECS), a trigger file (--notice-file).  Signals
 * to spotrun itself (Kubernetes, Slurm) are turned into notices by the
 * runner with prov_notice_make().
 */
#ifndef SPOTRUN_PROVIDER_H
#define SPOTRUN_PROVIDER_H

#include <stddef.h>

struct prov_identity {
	char provider[32];	/* "aws", "gcp", ... or "none" */
	char region[64];
	char zone[64];
	char instance_type[96];
	char instance_id[128];
	char lifecycle[32];	/* "spot", "on-demand", "preemptible", ... */
	char scheduler[32];	/* "kubernetes", "slurm" or "": who delivers signals */
};

enum prov_kind { PROV_PREEMPT, PROV_TERMINATE, PROV_REBALANCE, PROV_MAINTENANCE, PROV_SCHEDULER };

struct prov_notice {
	char source[32];	/* provider or "signal", "file", "simulate" */
	enum prov_kind kind;
	double received;	/* CLOCK_REALTIME seconds */
	double deadline;	/* when the machine/job goes away */
	char *raw;		/* the payload as received (malloc'd), or NULL */
};

/* Watch configuration, from the run options. */
struct prov_config {
	const char *force;	/* --provider: "auto", "none" or a name */
	const char *simulate;	/* --simulate KIND@SECS, or NULL */
	const char *trigger_file; /* --notice-file, or NULL */
	double signal_grace;	/* deadline budget of simulated and signal notices */
	double poll_interval;	/* metadata poll period */
	double settle_timeout;	/* auto-detection gives up after this (0.3 s) */
	int identify_only;	/* detect: settle identity, watch no notices */
	double hold;		/* > 0: probes wait up to this long for
				 * prov_watch_release() (run: until the command
				 * has started, so it never waits for libcurl) */
};

struct prov_watch;

/* Validates the config without starting anything (used to report usage
 * errors before the child starts).  Returns 0 or EX_USAGE (logged). */
int prov_config_check(const struct prov_config *cfg);
/* Starts detection and watching in background threads. */
int prov_watch_start(const struct prov_config *cfg, struct prov_watch **out);
/* Lets held probes start (see prov_config.hold); safe with NULL, twice. */
void prov_watch_release(struct prov_watch *w);
/* Readable when identity settled or a notice is ready. */
int prov_watch_fd(const struct prov_watch *w);
/* Takes one ready notice: 1 taken, 0 none (drains the fd when empty). */
int prov_watch_take(struct prov_watch *w, struct prov_notice *n);
/* Identity once settled: 1 settled (copied), 0 not yet. */
int prov_watch_identity(struct prov_watch *w, struct prov_identity *id);
/* Stops the threads (bounded: each source has a stop fd) and frees.  An
 * acknowledgement asked for with prov_watch_committed() that is still being
 * sent gets at most about 2 s to finish first. */
void prov_watch_stop(struct prov_watch *w);
/* The checkpoint taken for the notices delivered so far is safely in the
 * store: providers that want an acknowledgement send it now (Azure: the
 * StartRequests POST for each Scheduled Event delivered).  Returns at once;
 * the watcher thread sends it.  Safe to call with NULL or more than once. */
void prov_watch_committed(struct prov_watch *w);

/* Provider names accepted by --provider (NULL-terminated), and one line on
 * how a provider delivers notices ("no in-guest notice exists" for some). */
extern const char *const prov_known_names[];
const char *prov_notice_method(const char *provider);
/* 1 when spotrun watches an in-guest notice of this provider. */
int prov_has_notices(const char *provider);

void prov_notice_make(struct prov_notice *n, const char *source, enum prov_kind kind, double budget);
void prov_notice_clear(struct prov_notice *n);
const char *prov_kind_name(enum prov_kind k);
int prov_kind_parse(const char *s, enum prov_kind *out);
/* The notice as JSON text (malloc'd): source, kind, received, deadline,
 * identity and raw payload; written to SPOTRUN_NOTICE_FILE and the store. */
char *prov_notice_json(const struct prov_notice *n, const struct prov_identity *id);
/* The same object on one line (for `spotrun watch --json`). */
char *prov_notice_json_line(const struct prov_notice *n, const struct prov_identity *id);

double prov_now(void);	/* CLOCK_REALTIME as double seconds */

#endif
