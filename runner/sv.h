/*
 * sv.h - internals of the supervise loop shared by supervise.c (state
 * machine), sv_run.c (set-up, commit clients, notice file) and sv_push.c
 * (background pushes).  Not used outside runner/.
 *
 * Invariants: only the loop thread touches struct sv, except the push
 * thread, which owns sv->push.job while push.busy is set and reports back
 * through push.done_fd.  Every timer is a CLOCK_MONOTONIC deadline.
 */
#ifndef SPOTRUN_SV_H
#define SPOTRUN_SV_H

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include "runner.h"
#include "provider.h"
#include "ckpt.h"
#include "xfer.h"

#define SV_MAX_CLIENTS 16
/* Provider probes (and the libcurl they load) wait until SV_PROBE_DELAY s
 * after the command has started, or SV_PROBE_HOLD s at most (a restore
 * that needs this machine's identity releases them at once). */
#define SV_PROBE_DELAY 0.02
#define SV_PROBE_HOLD 2.0

enum sv_state { SV_RUNNING, SV_NOTICED, SV_TERMINATING, SV_KILLING, SV_DRAINING, SV_BACKOFF,
		SV_FINISHING, SV_DONE };
enum sv_next { NEXT_EXIT, NEXT_RESTART, NEXT_INTERRUPTED };

struct sv_client {
	int fd;
	double deadline;
	size_t len;
	char buf[4608];
};

struct sv_pushq {
	pthread_t thread;
	int running;		/* a push thread exists (join it when done) */
	int done_fd[2];
	char pending[PATH_MAX + 320];	/* newest committed folder waiting for a push */
	char active[PATH_MAX + 320];	/* folder being pushed */
	char pushed[PATH_MAX + 320];	/* newest folder safe in the store */
	int result, failures;
	int newest_committed_set;
	double started_at;
	double bytes_per_sec;	/* measured by earlier pushes, 0 = unknown */
	uint64_t last_raw_bytes;	/* size of the last pushed checkpoint */
	struct ckpt_result last;	/* written by the thread, read after join */
	struct prov_identity id;	/* the thread's copy */
	struct xfer_store *store;	/* NULL with --store none */
	unsigned char key[CKPT_KEY_LEN];	/* --encrypt-key-file */
	int have_key;
};

struct sv {
	struct opts *o;
	char job[256];
	char ckpt_dir[PATH_MAX];
	char rundir[PATH_MAX];
	char socket_path[PATH_MAX + 32];
	char notice_file[PATH_MAX + 32];
	char state_file[PATH_MAX + 32];
	char **argv;

	/* settings */
	int notice_signal, max_restarts, exit_interrupted;
	double signal_grace, kill_after, restart_delay;
	const char *restart_on;

	sigset_t orig_mask;
	int sigfd, listen_fd;
	struct sv_client clients[SV_MAX_CLIENTS];
	struct prov_watch *watch;
	struct prov_identity id;
	int id_settled;
	struct xfer_place here_place;	/* sv_move.c: id's place, "" while unknown */

	enum sv_state state;
	enum sv_next next;
	pid_t child;
	int child_alive, child_code, final_code;
	int restarts, starts_before, starts_saved;
	double started_at, term_at, kill_at, drain_at, restart_at;
	double probe_at;	/* provider probes released then; -1 done */
	int drain_sig;
	struct prov_notice notice;
	int noticed;
	double last_commit_at;	/* CLOCK_REALTIME of the newest commit */
	struct sv_pushq push;
	/* sv_restore: the restored checkpoint was made on other GPUs; the child
	 * resuming from hw_dir gets both fingerprints ("null": no GPU) */
	int hw_changed;
	char hw_old[16384], hw_new[16384];
	char hw_dir[PATH_MAX + 320];
	char run_started[40];

	/* schedulers, hooks, observability (sv_events.c, slurm.c, metrics.c) */
	struct hook_set *hooks;
	int hook_strict;
	struct sv_metrics *metrics;	/* NULL without --metrics-file */
	struct sv_recorder *rec;	/* NULL with --store none */
	struct json_t *runsum;		/* this run's summary merged into runs[] */
	char host[256];
	char slurm_job[64];		/* what scontrol requeue takes, "" outside Slurm */
	int slurm_requeue;		/* requeue after an interruption */
	int slurm_restarts;		/* SLURM_RESTART_COUNT, -1 unset */
};

double sv_mono(void);
void sv_set_state(struct sv *sv, enum sv_state s);
int sv_loop(struct sv *sv);
int sv_start_child(struct sv *sv);
void sv_on_notice(struct sv *sv, struct prov_notice *n);
void sv_check_drained(struct sv *sv);
void sv_after_drain(struct sv *sv);

/* sv_run.c */
struct json_t;
void sv_event(struct sv *sv, const char *event, struct json_t *data);
void sv_state_save(struct sv *sv, int starts);
void sv_write_notice_file(struct sv *sv);
void sv_on_commit_exit(struct sv *sv, int exited_cleanly);
double sv_clients_deadline(const struct sv *sv);
int sv_clients_pollfds(struct sv *sv, struct pollfd *pfd);
void sv_clients_accept(struct sv *sv);
void sv_clients_service(struct sv *sv, struct pollfd *pfd, int n);

/* sv_events.c: one event -> hooks, metrics, the job record and the store's
 * events/ (written by the record thread, never by the loop). */
int sv_events_open(struct sv *sv);
void sv_events_close(struct sv *sv);
/* Starts the record thread (after the store proved readable). */
void sv_events_record(struct sv *sv);
/* Waits (bounded) until the record thread has written what it was given. */
void sv_events_flush(struct sv *sv);
/* Keys of this run's entry in job.json runs[] (start, end), written by the
 * record thread: the first appends the entry, later ones merge.  Takes it. */
void sv_events_run(struct sv *sv, struct json_t *entry);
/* The event document: {version, event, job, time, host, run, provider, data}. */
struct json_t *sv_event_doc(struct sv *sv, const char *event, struct json_t *data);
/* Exit: the "exit" event and its hooks (synchronous, each within its timeout). */
void sv_events_exit(struct sv *sv, int code);
/* Spotrun's own children that are not the command's tree (running hooks). */
int sv_spared_pgids(const struct sv *sv, pid_t *out, int max);

/* child.c: sv_child_kill_all sparing some process groups (running hooks);
 * returns how many it signalled. */
int sv_child_kill_spare(pid_t pgid, int sig, const pid_t *spare, int nspare);
/* 1 while a child of ours outside the spared groups exists. */
int sv_child_others(const pid_t *spare, int nspare);

/* jobrec.c: runs[] entries of the job record (earlier starts anywhere). */
int run_jobrec_count(struct xfer_store *st, const char *job);

/* slurm.c */
void sv_slurm_setup(struct sv *sv);
/* After an interrupted run whose checkpoint is committed. */
void sv_slurm_requeue(struct sv *sv);
/* SLURM_JOB_NAME (+ _TASK for arrays), sanitized; 0 when not under Slurm. */
int sv_slurm_job_name(char *out, size_t n);

/* metrics.c: Prometheus text file, rewritten atomically on every change. */
int sv_metrics_open(struct sv *sv);
void sv_metrics_event(struct sv *sv, const char *event, const struct json_t *data);
void sv_metrics_close(struct sv *sv);

/* sv_push.c */
int sv_push_open(struct sv *sv);
void sv_push_close(struct sv *sv);
void sv_push_committed(struct sv *sv, const char *dir);
void sv_push_newest(struct sv *sv);
double sv_push_estimate(const struct sv *sv);
int sv_push_fd(const struct sv *sv);
double sv_push_deadline(const struct sv *sv);
void sv_push_done(struct sv *sv);
void sv_finish(struct sv *sv);
void sv_finish_done(struct sv *sv);
void sv_record_start(struct sv *sv);
void sv_record_end(struct sv *sv);
/* Before the first start: newest committed checkpoint from the store (or
 * a newer one from --from-store). */
int sv_restore(struct sv *sv);

/* sv_move.c: the resume policy (docs/migration.md "The resume policy").
 * Getting the checkpoint to resume here is a move: a pull (from the store,
 * or from --from-store), or a copy from --from-store into the store first
 * and a pull from there.  Between places it is a migration, which
 * --migrate allows or refuses before anything moves. */
enum sv_way { SV_PULL, SV_MIGRATE };
struct sv_leg {			/* bytes from one place to another */
	uint64_t bytes;
	int priced;		/* the catalog has a price */
	double per_gb, usd, seconds;
	char rule[200];		/* the egress rule used, or why there is no price */
};
struct sv_way_est {
	int possible;		/* 0: why_not says why */
	struct sv_leg copy;	/* SV_MIGRATE: from-store -> store */
	struct sv_leg pull;	/* -> here */
	int priced;
	uint64_t bytes;
	double usd, seconds;
	char why_not[200];
};
struct sv_move {
	int active;		/* a move to record after the pull (sv_move_done) */
	int migrating;		/* the places differ: --migrate was applied */
	int recorded;
	enum sv_way way;
	struct xfer_store *src;	/* where the checkpoint is (not owned) */
	uint64_t seq;
	struct xfer_place from, store, here;
	struct sv_way_est est[2];	/* by enum sv_way */
	struct ckpt_migrate_result copied;	/* SV_MIGRATE */
};
/* --migrate: 0 deny, 1 allow, 2 max-cost (*max set); -1 invalid (logged). */
int sv_move_policy(const struct opts *o, double *max);
/* The store's checkpoint seq is about to be pulled: is that a migration,
 * and is it allowed?  0 go on (m->active: record after the pull), EX_CONFIG
 * refused, EX_USAGE bad policy, or a store error. */
int sv_move_check(struct sv *sv, uint64_t seq, struct sv_move *m);
/* --from-store's checkpoint seq is newer than the store's (v, n: the
 * store's committed checkpoints): prices both ways, logs them, applies
 * --migrate and, for SV_MIGRATE, copies it (and what it references) into
 * the store.  0 go on with m->way, else EX_* (nothing pulled). */
int sv_move_from(struct sv *sv, struct xfer_store *from, uint64_t seq, const struct ckpt_info *v, size_t n,
		 struct sv_move *m);
/* After the pull (r), or after a copy whose pull failed (r NULL): job.json's
 * migrations[] in the stores involved and the migration event.  Once. */
void sv_move_done(struct sv *sv, struct sv_move *m, const struct ckpt_result *r);

#endif
