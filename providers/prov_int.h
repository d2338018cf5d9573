/*
 * prov_int.h - private to providers/: what the watch framework (watch.c),
 * the HTTP helper (http.c), the payload parsers (parse.c) and the provider
 * sources (aws.c, gcp.c, azure.c, others.c) share.  Nothing outside
 * providers/ includes it, except the unit tests and fuzz targets of the
 * parsers.
 *
 * Threads: every source runs in its own thread with a struct prov_src.  A
 * source first identifies (1 = this is my provider, 0 = not, -1 = stopped),
 * then, if it won detection, watches for notices until stop.  It may block
 * only in prov_src_wait() (poll on the stop pipe) or prov_http() (curl multi
 * with the stop pipe among its fds), so prov_watch_stop() is prompt.
 */
#ifndef SPOTRUN_PROV_INT_H
#define SPOTRUN_PROV_INT_H

#include <stddef.h>

#include "provider.h"

struct prov_src;

/* One provider: its name, how it identifies and how it watches. */
struct prov_ops {
	const char *name;
	const char *how;	/* how notices arrive, for `spotrun detect` */
	int network;		/* identifies by asking a metadata service */
	int (*identify)(struct prov_src *s, struct prov_identity *id);
	void (*watch)(struct prov_src *s);	/* NULL: identity only */
};

extern const struct prov_ops prov_aws_ops, prov_gcp_ops, prov_azure_ops, prov_alibaba_ops,
	prov_oci_ops, prov_ibm_ops, prov_runpod_ops, prov_vast_ops;

/* A source's thread context. */
struct prov_src {
	struct prov_watch *w;
	const struct prov_ops *ops;
	int quick;		/* auto-detection: short timeouts, no retries */
	int forced;		/* --provider NAME */
	double poll;		/* poll period, seconds */
	char base[512];		/* endpoint base URL, no trailing slash */
	char token[2048];	/* session token (AWS, Alibaba, IBM) */
	double token_exp;	/* CLOCK_MONOTONIC seconds */
	char name[256];		/* Azure: this VM's compute name */
	char last[4][512];	/* last payloads delivered, to send each once */
	unsigned rng;		/* jitter */
	void (*extra)(struct prov_src *s);	/* body of a thread from prov_src_spawn */
};

/* ---- framework (watch.c) --------------------------------------------- */
/* Queues a notice built from the source (source = provider name, kind,
 * deadline; raw = a copy of body[0..len)). */
void prov_src_notice(struct prov_src *s, enum prov_kind kind, double received, double deadline,
		     const char *body, size_t len);
/* Waits secs or until stop (or a wake-up from prov_watch_committed when
 * kick is set): 1 = stop requested, 0 = time passed or kicked. */
int prov_src_wait(struct prov_src *s, double secs);
int prov_src_stopping(const struct prov_src *s);
int prov_src_stopfd(const struct prov_src *s);
/* A quick probe got its first answer: auto-detection waits for its identity. */
void prov_src_claim(struct prov_src *s);
/* Runs fn in one more thread with a copy of s (GCP watches two keys). */
int prov_src_spawn(struct prov_src *s, void (*fn)(struct prov_src *));
/* Kicked: prov_watch_committed() was called and not yet consumed. */
int prov_src_take_ack(struct prov_src *s);
int prov_src_ack_wanted(const struct prov_src *s);
/* Backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
double prov_backoff(struct prov_src *s, int attempt, double base, double cap);
double prov_mono(void);
/* Copies an environment variable (or def) into buf without a trailing '/'. */
void prov_env_base(char *buf, size_t len, const char *var, const char *def);

/* ---- HTTP (http.c) --------------------------------------------------- */
struct prov_http {
	const char *method;		/* GET (default), PUT, POST */
	const char *url;
	const char *headers[6];		/* "Name: value", NULL-terminated */
	const char *body;		/* request body or NULL */
	long connect_ms, total_ms;
	int no_abort;			/* keep going after stop (bounded by total_ms) */
	/* results */
	long status;			/* HTTP status, 0 when no answer */
	char *resp;			/* body (NUL-terminated, malloc'd), capped at 64 KiB */
	size_t resp_len;
	char etag[128];
	char flavor[32];		/* Metadata-Flavor response header */
};
/* 0: an HTTP answer arrived (status set); -1: transport error or timeout;
 * -2: stopped.  Free h->resp with prov_http_free. */
int prov_http(struct prov_src *s, struct prov_http *h);
void prov_http_free(struct prov_http *h);
/* Timeouts for a source: quick (auto-detection) or patient. */
void prov_http_timeouts(const struct prov_src *s, struct prov_http *h);

/* ---- payload parsers (parse.c): pure, no I/O, fuzzed ------------------ */
#define PROV_ACT_PREEMPT (1u << 0)
#define PROV_ACT_TERMINATE (1u << 1)
#define PROV_ACT_FREEZE (1u << 2)
#define PROV_ACT_REBOOT (1u << 3)
#define PROV_ACT_REDEPLOY (1u << 4)

#define PROV_AWS_LEAD 120.0	/* seconds, when the payload has no time */
#define PROV_GCP_LEAD 30.0
#define PROV_GCP_MAINT_LEAD 60.0
#define PROV_AZURE_LEAD 30.0

/* "2017-09-18T08:22:00Z" (optional fraction, surrounding blanks): 0 ok. */
int prov_parse_iso8601(const char *s, size_t len, double *t);
/* "Mon, 11 Apr 2022 22:26:58 GMT" (weekday optional): 0 ok. */
int prov_parse_rfc1123(const char *s, size_t len, double *t);
/* AWS spot/instance-action: 1 notice (kind, deadline set), -1 not JSON
 * (still a notice: kind terminate, default lead). */
int prov_aws_parse_action(const char *body, size_t len, double received, enum prov_kind *kind,
			  double *deadline);
/* AWS rebalance recommendation: 1 when it is the documented JSON. */
int prov_aws_parse_rebalance(const char *body, size_t len, double *notice_time);
/* AWS/Alibaba termination-time: 1 and *t when the value is a time. */
int prov_parse_termination_time(const char *body, size_t len, double *t);
/* GCP "TRUE"/"FALSE" (trimmed): 1, 0, or -1 for anything else. */
int prov_gcp_parse_bool(const char *body, size_t len);
/* GCP maintenance-event: 1 for TERMINATE_ON_HOST_MAINTENANCE. */
int prov_gcp_parse_maintenance(const char *body, size_t len);
/* Text after the last '/', trimmed ("projects/1/zones/us-central1-a"). */
void prov_last_segment(const char *s, size_t len, char *out, size_t outlen);
/* Region from a zone: "us-central1-a" -> "us-central1", "us-south-1" -> "us-south". */
void prov_region_from_zone(const char *zone, char *out, size_t outlen);

/* Azure: SPOTRUN_AZURE_ACT_ON ("Preempt,Terminate"): 0 ok. */
int prov_azure_parse_act_on(const char *spec, unsigned *mask);
struct prov_azure_event {
	char id[128];
	enum prov_kind kind;
	double deadline;
};
/* Scheduled Events document: *incarnation, and up to max events that list
 * vm in Resources and whose type is in mask.  Returns that count, or -1
 * when the document is malformed. */
int prov_azure_parse_events(const char *body, size_t len, const char *vm, unsigned mask,
			    double received, long long *incarnation, struct prov_azure_event *ev,
			    int max);
/* Azure compute metadata: identity fields and the VM's name; 0 ok. */
int prov_azure_parse_compute(const char *body, size_t len, struct prov_identity *id, char *name,
			     size_t namelen);
/* The StartRequests body for the given event ids (malloc'd JSON). */
char *prov_azure_ack_body(const struct prov_azure_event *ev, int n);
/* OCI /opc/v2/instance/ JSON: 0 ok. */
int prov_oci_parse_instance(const char *body, size_t len, struct prov_identity *id);
/* IBM token JSON (access_token) and instance JSON: 0 ok. */
int prov_ibm_parse_token(const char *body, size_t len, char *tok, size_t toklen);
int prov_ibm_parse_instance(const char *body, size_t len, struct prov_identity *id);
/* Copies a trimmed text value into a fixed field (truncating safely). */
void prov_copy_trim(char *dst, size_t dstlen, const char *s, size_t len);

#endif
